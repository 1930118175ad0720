// `tokmap atlas build|info|place|check` on the bundled model: a token's placed position does not
// depend on the other texts placed with it nor on --threads; bad files fail with the file named.
#include <algorithm>
#include <set>

#include "cli/cli_support.hpp"

namespace tokmap::cli_test {
namespace {

using ::testing::HasSubstr;

const TempDir& atlas_dir() {
  static TempDir dir;
  return dir;
}

fs::path small_atlas() {
  static const fs::path path = [] {
    const fs::path p = atlas_dir() / "small.tokmap-atlas";
    const auto r =
        run_tokmap({"atlas", "build", "--file", (kData / "../../samples/austen.jsonl").string(),
                    "--max-tokens", "400", "--layers", "0,6", "--iterations", "250", "--rank", "16",
                    "--out", p.string(), "--quiet"});
    EXPECT_EQ(r.code, 0) << r.err;
    return p;
  }();
  return path;
}

// The rows of points.tsv whose source is `source` and text is `text` (1-based), as lines.
std::vector<std::string> rows_of(const std::string& tsv, const std::string& source,
                                 const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(tsv);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(source + "\t" + text + "\t", 0) == 0) out.push_back(line);
  }
  return out;
}

std::string first_fields(const std::string& line, int count) {
  std::size_t at = 0;
  for (int i = 0; i < count && at != std::string::npos; ++i) at = line.find('\t', at + 1);
  return line.substr(0, at);
}

TEST(AtlasCommand, PlacementIsBatchAndThreadIndependent) {
  const auto atlas = small_atlas();
  const std::string a =
      "It is a truth universally acknowledged, that a single man in possession "
      "of a good fortune, must be in want of a wife.";
  const std::string b =
      "Mr. Bennet was so odd a mixture of quick parts, sarcastic humour, "
      "reserve, and caprice.";
  const auto alone = run_tokmap(
      {"atlas", "place", "--atlas", atlas.string(), "--text", a, "--threads", "1", "--quiet"});
  ASSERT_EQ(alone.code, 0) << alone.err;
  const auto both = run_tokmap({"atlas", "place", "--atlas", atlas.string(), "--text", a, "--text",
                                b, "--threads", "2", "--quiet"});
  ASSERT_EQ(both.code, 0) << both.err;
  const auto placed_alone = rows_of(alone.out, "placed", "1");
  ASSERT_GT(placed_alone.size(), 20u);
  EXPECT_EQ(placed_alone, rows_of(both.out, "placed", "1"));
  EXPECT_GT(rows_of(both.out, "placed", "2").size(), 10u);
  EXPECT_EQ(rows_of(alone.out, "atlas", "1").size(), rows_of(both.out, "atlas", "1").size());
  EXPECT_THAT(alone.out, HasSubstr("source\ttext\tposition\ttoken"));
}

// viz --atlas: points.tsv marks each row's source; the placed rows of a text are the same with
// or without another text placed beside it.
TEST(AtlasCommand, VizPlacesIntoTheAtlas) {
  const auto atlas = small_atlas();
  const fs::path one = atlas_dir() / "one", two = atlas_dir() / "two";
  const std::string a = "It is a truth universally acknowledged.";
  auto r = run_tokmap({"viz", "--atlas", atlas.string(), "--text", a, "--out", one.string(),
                       "--no-figures", "--quiet"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_tokmap({"viz", "--atlas", atlas.string(), "--text", a, "--text", "Mr. Bennet was odd.",
                  "--out", two.string(), "--no-figures", "--quiet", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string p1 = slurp(one / "points.tsv"), p2 = slurp(two / "points.tsv");
  EXPECT_EQ(p1.rfind("source\tmodel\tlayer", 0), 0u);
  std::size_t atlas_rows = 0, placed_rows = 0;
  std::istringstream in(p1);
  std::string line;
  std::vector<std::string> placed_one, placed_two;
  while (std::getline(in, line)) {
    atlas_rows += line.rfind("atlas\t", 0) == 0;
    if (line.rfind("placed\t", 0) == 0) {
      ++placed_rows;
      placed_one.push_back(first_fields(line, 9));
    }
  }
  EXPECT_EQ(atlas_rows, 400u * 2);  // two layers
  EXPECT_EQ(placed_rows, 6u * 2);   // "It is a truth universally acknowledged." less its first
  EXPECT_THAT(slurp(one / "index.html"), HasSubstr("\"source\":\"placed\""));
  // Source, model, layer, perplexity, token, text, position, x, y: the same bytes in the second
  // report (the clusters and outliers are of all the points, so they may differ).
  std::istringstream in2(p2);
  while (std::getline(in2, line)) {
    if (line.rfind("placed\t", 0) == 0) placed_two.push_back(first_fields(line, 9));
  }
  for (const auto& row : placed_one) {
    EXPECT_NE(std::find(placed_two.begin(), placed_two.end(), row), placed_two.end()) << row;
  }
  // --from-report places the report's own placed texts again: the same points.tsv.
  const fs::path again = atlas_dir() / "again";
  r = run_tokmap({"viz", "--from-report", (one / "index.html").string(), "--out", again.string(),
                  "--no-figures", "--quiet"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(again / "points.tsv"), p1);
}

// The same corpus gives the same atlas bytes with one thread and with two.
TEST(AtlasCommand, BuildIsThreadIndependent) {
  const auto atlas = small_atlas();  // --threads unset: every core
  const fs::path one = atlas_dir() / "one-thread.tokmap-atlas";
  const auto r =
      run_tokmap({"atlas", "build", "--file", (kData / "../../samples/austen.jsonl").string(),
                  "--max-tokens", "400", "--layers", "0,6", "--iterations", "250", "--rank", "16",
                  "--out", one.string(), "--quiet", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(slurp(one) == slurp(atlas));
}

TEST(AtlasCommand, InfoAndCheck) {
  const auto atlas = small_atlas();
  const auto info = run_tokmap({"atlas", "info", atlas.string()});
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("model: demo-brown-gpt2"));
  EXPECT_THAT(info.out, HasSubstr("tokens: 400"));
  const auto check = run_tokmap({"atlas", "check", atlas.string(), "--texts", "1"});
  ASSERT_EQ(check.code, 0) << check.err;
  EXPECT_THAT(check.out, HasSubstr("layer\tdims\tmedian_displacement"));
}

TEST(AtlasCommand, BadFilesNameTheFile) {
  const auto atlas = small_atlas();
  const fs::path bad = atlas_dir() / "cut.tokmap-atlas";
  {
    const std::string bytes = slurp(atlas);
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  const auto r = run_tokmap({"atlas", "info", bad.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(bad.string()));
  const auto missing =
      run_tokmap({"atlas", "place", "--atlas", (atlas_dir() / "none").string(), "--text", "x"});
  EXPECT_EQ(missing.code, 1);
}

}  // namespace
}  // namespace tokmap::cli_test
