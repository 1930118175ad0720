// tokmap viz end to end: the report folder's contents, its data contract, the figures, and bad
// input (one-line error, nothing left behind, an existing report replaced whole or untouched).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli_support.hpp"

namespace {

using namespace tokmap::cli_test;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::vector<std::string> kTexts = {
    "--text", "The bank of the river was muddy.", "--text",
    "I deposited money at the bank, then walked along the river bank."};

json report_data(const fs::path& index_html) {
  const std::string html = slurp(index_html);
  const std::string open = "<script type=\"application/json\" id=\"tokmap-data\">";
  const auto begin = html.find(open);
  EXPECT_NE(begin, std::string::npos);
  const auto end = html.find("</script>", begin);
  EXPECT_EQ(html.find("/*TOKMAP_DATA*/null"), std::string::npos);  // placeholder replaced
  return json::parse(html.substr(begin + open.size(), end - begin - open.size()));
}

TEST(Viz, WritesTheWholeReportFolder) {
  TempDir dir;
  const fs::path out = dir / "report";
  std::vector<std::string> args{"viz", "--highlight", "bank", "--out", out.string()};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  const Result r = run_tokmap(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("perplexity"));  // the automatic choice is printed

  for (const char* name : {"index.html", "points.tsv", "maps.tsv", "tensors.tsv", "metadata.tsv",
                           "projector_config.json"}) {
    EXPECT_TRUE(fs::is_regular_file(out / name)) << name;
  }
  const json data = report_data(out / "index.html");
  EXPECT_EQ(data["version"], 1);
  EXPECT_EQ(data["models"], json::array({"demo-brown-gpt2"}));
  EXPECT_EQ(data["layers"], json::array({0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(data["dims"], json::array({2, 3}));
  const std::size_t n = data["tokens"].size();
  EXPECT_EQ(n, 8u + 14u - 2u);  // first tokens excluded by default
  EXPECT_EQ(data["maps"].size(), 7u * 2u);
  for (const auto& map : data["maps"]) {
    EXPECT_EQ(map["coords"].size(), n * map["dims"].get<std::size_t>());
    EXPECT_GT(map["trustworthiness"].get<double>(), 0.5);
    EXPECT_GT(map["kl"].get<double>(), 0.0);
  }
  EXPECT_EQ(data["analysis"].size(), 7u);
  EXPECT_EQ(data["analysis"][0]["neighbors"][0].size(), 5u);
  EXPECT_EQ(data["settings"]["highlight"], json::array({"bank"}));
  EXPECT_THAT(data["created_with"].get<std::string>(),
              HasSubstr("--layers all --dims 2,3 --perplexity 4.8 --seed 0"));
  // Tokens carry byte offsets into their text.
  const auto& token = data["tokens"][0];
  const std::string text = data["texts"][token["text"].get<int>()];
  const auto offset = token["offset"];
  std::string shown = token["display"];
  EXPECT_EQ(text.substr(offset[0].get<std::size_t>(),
                        offset[1].get<std::size_t>() - offset[0].get<std::size_t>()),
            shown);

  // points.tsv: header + one row per (layer, token).
  const std::string points = slurp(out / "points.tsv");
  EXPECT_EQ(points.substr(0, points.find('\n')),
            "model\tlayer\tperplexity\ttoken\ttext\tposition\tx\ty\tx3\ty3\tz3\tcluster\toutlier\ts"
            "tability\trating\trating3");
  EXPECT_EQ(std::count(points.begin(), points.end(), '\n'), static_cast<long>(1 + 7 * n));
  // Projector: the tensors have n rows of 128 values, the metadata a header and n rows.
  const std::string tensors = slurp(out / "tensors.tsv");
  EXPECT_EQ(std::count(tensors.begin(), tensors.end(), '\n'), static_cast<long>(n));
  EXPECT_EQ(std::count(tensors.begin(), tensors.begin() + tensors.find('\n'), '\t'), 127);
  const json projector = json::parse(slurp(out / "projector_config.json"));
  EXPECT_EQ(projector["embeddings"][0]["tensorPath"], "tensors.tsv");
  EXPECT_EQ(projector["embeddings"].size(), 7u);

  // Figures: every layer as PNG/SVG/PDF, the layer grid, the 3D views.
  for (const char* name :
       {"demo-brown-gpt2-layer0-perplexity4.8.png", "demo-brown-gpt2-layer6-perplexity4.8.svg",
        "demo-brown-gpt2-layer6-perplexity4.8.pdf", "demo-brown-gpt2-layers-perplexity4.8.png",
        "demo-brown-gpt2-layer6-perplexity4.8-3d.png"}) {
    EXPECT_TRUE(fs::is_regular_file(out / "figures" / name)) << name;
  }
  const std::string png = slurp(out / "figures" / "demo-brown-gpt2-layer6-perplexity4.8.png");
  EXPECT_EQ(png.substr(1, 3), "PNG");
  const std::string pdf = slurp(out / "figures" / "demo-brown-gpt2-layer6-perplexity4.8.pdf");
  EXPECT_EQ(pdf.substr(0, 5), "%PDF-");
  EXPECT_EQ(dir.file_count(), 1u);  // no staging folder left behind
}

TEST(Viz, ComparesModelsAcrossPerplexitiesAndSeeds) {
  TempDir dir;
  const fs::path out = dir / "report";
  std::vector<std::string> args{"viz",
                                "--model",
                                "demo-brown-gpt2",
                                "--model",
                                "demo-brown-gpt2-small",
                                "--layers",
                                "last",
                                "--dims",
                                "2",
                                "--perplexity",
                                "3,5",
                                "--seeds",
                                "2",
                                "--no-figures",
                                "--quiet",
                                "--out",
                                out.string()};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  const Result r = run_tokmap(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const json data = report_data(out / "index.html");
  EXPECT_EQ(data["models"], json::array({"demo-brown-gpt2", "demo-brown-gpt2-small"}));
  EXPECT_EQ(data["perplexities"], json::array({3.0, 5.0}));
  EXPECT_EQ(data["maps"].size(), 2u * 2u);  // 2 models x 2 perplexities, last layer, 2D
  for (const auto& map : data["maps"]) {
    ASSERT_FALSE(map["stability"].is_null());
    EXPECT_GT(map["stability"].get<double>(), 0.0);
    EXPECT_EQ(map["seed_coords"].size(), 1u);
  }
  ASSERT_EQ(data["comparison"]["pairs"].size(), 1u);
  EXPECT_EQ(data["comparison"]["pairs"][0]["layer_a"], 6);
  EXPECT_EQ(data["comparison"]["pairs"][0]["layer_b"], 4);
  EXPECT_FALSE(fs::exists(out / "figures"));
}

TEST(Viz, IncludeFirstIterationsAndThreads) {
  TempDir dir;
  std::vector<std::string> args{"viz",          "--include-first",
                                "--iterations", "60",
                                "--threads",    "1",
                                "--layers",     "0,6",
                                "--dims",       "2",
                                "--no-figures", "--quiet",
                                "--out",        (dir / "r").string()};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  ASSERT_EQ(run_tokmap(args).code, 0);
  const json data = report_data(dir / "r" / "index.html");
  EXPECT_EQ(data["tokens"].size(), 8u + 14u);  // first tokens kept
  EXPECT_EQ(data["tokens"][0]["position"], 0);
  EXPECT_EQ(data["layers"], json::array({0, 6}));
  EXPECT_FALSE(data["settings"]["exclude_first"].get<bool>());
  EXPECT_THAT(data["created_with"].get<std::string>(), HasSubstr("--iterations 60"));
}

TEST(Viz, SameInputSameReport) {
  TempDir dir;
  std::vector<std::string> args{"viz", "--layers",     "last",   "--dims",
                                "2",   "--no-figures", "--quiet"};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  auto first = args, second = args;
  first.insert(first.end(), {"--out", (dir / "a").string()});
  second.insert(second.end(), {"--out", (dir / "b").string()});
  ASSERT_EQ(run_tokmap(first).code, 0);
  ASSERT_EQ(run_tokmap(second).code, 0);
  EXPECT_EQ(slurp(dir / "a" / "points.tsv"), slurp(dir / "b" / "points.tsv"));
  EXPECT_EQ(slurp(dir / "a" / "index.html"), slurp(dir / "b" / "index.html"));
}

// The README promises the same bytes for any thread count: every file of the report (page,
// points.tsv, maps.tsv, Projector export, PNG/SVG/PDF figures), all layers, 2D and 3D, two
// seeds, for --threads 1, 2 and 3.
TEST(Viz, AnyThreadCountGivesTheSameBytes) {
  TempDir dir;
  std::vector<std::string> args{"viz", "--layers", "all", "--dims",
                                "2,3", "--seeds",  "2",   "--quiet"};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  const auto files = [](const fs::path& root) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& entry : fs::recursive_directory_iterator(root))
      if (entry.is_regular_file())
        out.emplace_back(fs::relative(entry.path(), root).string(), slurp(entry.path()));
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<std::pair<std::string, std::string>> reference;
  for (const char* threads : {"1", "2", "3"}) {
    auto run = args;
    const fs::path out = dir / (std::string("threads") + threads);
    run.insert(run.end(), {"--threads", threads, "--out", out.string()});
    ASSERT_EQ(run_tokmap(run).code, 0) << threads;
    auto got = files(out);
    if (reference.empty()) {
      reference = std::move(got);
      EXPECT_GT(reference.size(), 20u);
      continue;
    }
    ASSERT_EQ(got.size(), reference.size()) << threads;
    for (std::size_t f = 0; f < got.size(); ++f) {
      EXPECT_EQ(got[f].first, reference[f].first);
      EXPECT_TRUE(got[f].second == reference[f].second)
          << got[f].first << " differs between --threads 1 and --threads " << threads;
    }
  }
}

TEST(Viz, BadInputLeavesNothingAndExistingReportsAlone) {
  TempDir dir;
  const fs::path out = dir / "report";
  fs::create_directory(out);
  write(out / "keep.txt", "old report");
  expect_error(run_tokmap({"viz", "--text", "Hi there", "--out", out.string()}), 1,
               "at least 4 tokens");
  expect_error(
      run_tokmap({"viz", "--text", "The bank of the river.", "--dims", "4", "--out", out.string()}),
      2, "--dims");
  expect_error(run_tokmap({"viz", "--text", "The bank of the river.", "--layers", "9", "--out",
                           out.string()}),
               2, "out of range");
  expect_error(run_tokmap({"viz", "--text", "The bank of the river.", "--out",
                           (dir / "missing" / "r").string()}),
               1, "does not exist");
  write(dir / "file", "x");
  expect_error(
      run_tokmap({"viz", "--text", "The bank of the river.", "--out", (dir / "file").string()}), 1,
      "not a folder");
  EXPECT_EQ(slurp(out / "keep.txt"), "old report");
  EXPECT_EQ(dir.file_count(), 2u);  // report/ and file: no staging folders

  // A successful run replaces the old folder whole.
  std::vector<std::string> args{"viz",          "--layers", "last",  "--dims",    "2",
                                "--no-figures", "--quiet",  "--out", out.string()};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  ASSERT_EQ(run_tokmap(args).code, 0);
  EXPECT_FALSE(fs::exists(out / "keep.txt"));
  EXPECT_TRUE(fs::exists(out / "index.html"));
  EXPECT_EQ(dir.file_count(), 2u);
}

// --- The maps' assessment: flagged in the data, points.tsv, maps.tsv and the summary ----------

const std::vector<std::string> kRatings = {"good", "fair", "poor", "degenerate"};

int rating_rank(const json& assessment) {
  return static_cast<int>(
      std::find(kRatings.begin(), kRatings.end(), assessment["rating"].get<std::string>()) -
      kRatings.begin());
}

std::string name_of(const json& map) {
  char perplexity[32];
  std::snprintf(perplexity, sizeof perplexity, "%g", map["perplexity"].get<double>());
  return "layer " + std::to_string(map["layer"].get<int>()) + ", perplexity " + perplexity + ", " +
         std::to_string(map["dims"].get<int>()) + "D";
}

TEST(Viz, EveryMapIsAssessedAndTheSummaryNamesTheWorst) {
  TempDir dir;
  const fs::path out = dir / "report";
  std::vector<std::string> args{"viz", "--layers",     "0,3,6", "--perplexity", "3,5", "--seeds",
                                "2",   "--no-figures", "--out", out.string()};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  const Result r = run_tokmap(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json data = report_data(out / "index.html");
  ASSERT_EQ(data["maps"].size(), 3u * 2u * 2u);
  const json* worst = nullptr;
  for (const auto& map : data["maps"]) {
    ASSERT_TRUE(map.contains("assessment")) << name_of(map);
    const auto& a = map["assessment"];
    EXPECT_NE(std::find(kRatings.begin(), kRatings.end(), a["rating"].get<std::string>()),
              kRatings.end());
    EXPECT_EQ(a["spread"].size(), map["dims"].get<std::size_t>());
    EXPECT_TRUE(a["neighbors_meaningful"].get<bool>());  // 20 tokens
    EXPECT_EQ(map["k"], 9);
    // KL is rated against the map with every point in one place, for the same P: it is larger
    // than any optimised map's, about log 4 for perplexity (N - 1) / 4.
    const double kl_uniform = map["kl_uniform"].get<double>();
    EXPECT_GT(kl_uniform, map["kl"].get<double>()) << name_of(map);
    EXPECT_NEAR(a["kl_ratio"].get<double>(), map["kl"].get<double>() / kl_uniform, 1e-9);
    EXPECT_FALSE(a["ratings"]["kl"].is_null());
    EXPECT_EQ(a["reasons"].size() > 0, a["flags"].size() > 0);
    // The other seed: geometry and KL only.
    ASSERT_EQ(map["seed_assessments"].size(), 1u);
    EXPECT_TRUE(map["seed_assessments"][0]["ratings"]["trustworthiness"].is_null());
    EXPECT_EQ(map["seed_kl"].size(), 1u);
    if (worst == nullptr || rating_rank(a) > rating_rank((*worst)["assessment"]) ||
        (rating_rank(a) == rating_rank((*worst)["assessment"]) &&
         a["kl_ratio"].get<double>() > (*worst)["assessment"]["kl_ratio"].get<double>())) {
      worst = &map;
    }
  }
  // The summary names the worst first-seed map (the other seeds here are no worse), whatever
  // its perplexity, with its rating.
  ASSERT_NE(worst, nullptr);
  bool a_seed_is_worse = false;
  for (const auto& map : data["maps"]) {
    a_seed_is_worse |=
        rating_rank(map["seed_assessments"][0]) > rating_rank((*worst)["assessment"]);
  }
  if (!a_seed_is_worse) {
    const std::string rating = (*worst)["assessment"]["rating"];
    EXPECT_THAT(r.err, HasSubstr(rating == "good"
                                     ? "all 24 maps rated good; worst: " + name_of(*worst)
                                     : "worst map: " + name_of(*worst) + ", seed 0, " + rating));
  }
  // maps.tsv: one row per map and seed, with the rating and reasons.
  const std::string maps = slurp(out / "maps.tsv");
  EXPECT_EQ(std::count(maps.begin(), maps.end(), '\n'), 1 + 12 * 2);
  EXPECT_THAT(maps.substr(0, maps.find('\n')),
              HasSubstr("\tkl\tkl_uniform\tkl_ratio\ttrustworthiness\t"));
  // points.tsv: every row carries the ratings of its 2D and 3D maps.
  const std::string points = slurp(out / "points.tsv");
  const std::string first_row = points.substr(points.find('\n') + 1);
  EXPECT_THAT(
      first_row.substr(0, first_row.find('\n')),
      ::testing::MatchesRegex(".*\t(good|fair|poor|degenerate)\t(good|fair|poor|degenerate)"));
}

TEST(Viz, DegenerateMapsAreFlaggedAndNamed) {
  // One iteration leaves every map unoptimised, at its initial scale: a point.
  TempDir dir;
  const fs::path out = dir / "report";
  std::vector<std::string> args{"viz", "--layers",     "last",  "--iterations",
                                "1",   "--no-figures", "--out", out.string()};
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  const Result r = run_tokmap(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json data = report_data(out / "index.html");
  for (const auto& map : data["maps"]) {
    EXPECT_EQ(map["assessment"]["rating"], "degenerate") << map["assessment"].dump();
    EXPECT_EQ(map["assessment"]["ratings"]["kl"], "degenerate") << map["assessment"].dump();
  }
  EXPECT_THAT(r.err, ::testing::ContainsRegex(
                         "worst map: layer 6, perplexity 4\\.8, [23]D, degenerate: [^\n]*KL"));
  EXPECT_THAT(r.err, HasSubstr("tokmap: warning: 2 of 2 maps are degenerate"));
  const std::string points = slurp(out / "points.tsv");
  EXPECT_THAT(points, HasSubstr("\tdegenerate\tdegenerate\n"));
}

TEST(Viz, TinyInputsSayTheNeighbourNumbersAreNotMeaningful) {
  TempDir dir;
  const fs::path out = dir / "report";
  const Result r = run_tokmap({"viz", "--text", "The bank of the river was muddy.", "--layers",
                               "last", "--dims", "2", "--no-figures", "--out", out.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const json data = report_data(out / "index.html");
  ASSERT_EQ(data["tokens"].size(), 7u);
  const auto& a = data["maps"][0]["assessment"];
  EXPECT_FALSE(a["neighbors_meaningful"].get<bool>());
  EXPECT_TRUE(a["ratings"]["trustworthiness"].is_null());
  EXPECT_TRUE(a["ratings"]["continuity"].is_null());
  EXPECT_TRUE(a["ratings"]["knn_preservation"].is_null());
  EXPECT_NE(std::find(a["flags"].begin(), a["flags"].end(), "few_points"), a["flags"].end());
  EXPECT_THAT(r.err, HasSubstr("the neighbour numbers are not meaningful"));
}

// --- issue #10 ----------------------------------------------------------------------------------

std::vector<std::string> quick(const fs::path& out) {
  return {"viz",          "--layers", "last",         "--dims", "2",
          "--iterations", "100",      "--no-figures", "--out",  out.string()};
}

TEST(Viz, HighlightSaysWhenAWordMatchesNothingOrOnlySubTokens) {
  TempDir dir;
  auto args = quick(dir / "r");
  args.insert(args.end(), {"--text", "A deep unease settled over the river bank.", "--text",
                           "The bank was closed.", "--highlight", "unease", "--highlight", "zebra",
                           "--highlight", "Bank"});
  const Result r = run_tokmap(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: --highlight 'zebra' matches no token in the texts"));
  EXPECT_THAT(r.err, HasSubstr("--highlight 'unease' is not one token: it matches only as "
                               "sub-tokens (' une' + 'ase')"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("'Bank'")));  // a whole token: nothing to say
  const json data = report_data(dir / "r" / "index.html");
  std::vector<std::string> marked;
  for (const auto& i : data["settings"]["highlight_tokens"]) {
    marked.push_back(data["tokens"][i.get<std::size_t>()]["display"]);
  }
  EXPECT_EQ(marked, (std::vector<std::string>{" une", "ase", " bank", " bank"}));
}

TEST(Viz, IncompleteUtf8TokensAreLabelledWithTheirCharacter) {
  TempDir dir;
  auto args = quick(dir / "r");
  // 木 (E6 9C A8) is two tokens in GPT-2: " <0xE6><0x9C>" and "<0xA8>".
  args.insert(args.end(),
              {"--text", "The wood 木 and the river bank were old.", "--perplexity", "2"});
  args.erase(std::find(args.begin(), args.end(), "--no-figures"));
  const Result r = run_tokmap(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const json data = report_data(dir / "r" / "index.html");
  std::vector<std::pair<std::string, std::string>> labelled;
  for (const auto& t : data["tokens"]) {
    if (t.contains("label")) labelled.emplace_back(t["display"], t["label"]);
  }
  EXPECT_EQ(labelled, (std::vector<std::pair<std::string, std::string>>{{" <0xE6><0x9C>", " 木"},
                                                                        {"<0xA8>", "木"}}));
  // The figures draw the labels: the PDF's text (pdftotext, poppler-utils) has the character
  // and no byte escapes.
  const fs::path pdf = dir / "r" / "figures" / "demo-brown-gpt2-layer6-perplexity2.pdf";
  ASSERT_TRUE(fs::is_regular_file(pdf));
  const fs::path text = dir / "figure.txt";
  ASSERT_EQ(std::system(("pdftotext " + quote(pdf.string()) + " " + quote(text.string())).c_str()),
            0);
  const std::string drawn = slurp(text);
  std::size_t drawn_characters = 0;
  for (auto at = drawn.find("木"); at != std::string::npos; at = drawn.find("木", at + 1)) {
    ++drawn_characters;
  }
  EXPECT_GE(drawn_characters, 3u);  // both tokens' labels and the legend's text
  EXPECT_THAT(drawn, ::testing::Not(HasSubstr("<0x")));
}

TEST(Viz, LayerMinusOneIsTheLastLayer) {
  TempDir dir;
  auto args = quick(dir / "r");
  args[2] = "0,-1";
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  ASSERT_EQ(run_tokmap(args).code, 0);
  EXPECT_EQ(report_data(dir / "r" / "index.html")["layers"], json::array({0, 6}));
}

TEST(Viz, TextNumbersInPointsTsvStartAtOneAsInThePage) {
  TempDir dir;
  auto args = quick(dir / "r");
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  ASSERT_EQ(run_tokmap(args).code, 0);
  const std::string points = slurp(dir / "r" / "points.tsv");
  std::istringstream lines(points);
  std::string line;
  std::getline(lines, line);  // header
  std::set<std::string> texts;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::stringstream fs_(line);
    for (std::string f; std::getline(fs_, f, '\t');) fields.push_back(f);
    texts.insert(fields.at(4));
  }
  EXPECT_EQ(texts, (std::set<std::string>{"1", "2"}));  // the page says "text 1", "text 2"
  const std::string metadata = slurp(dir / "r" / "metadata.tsv");
  EXPECT_THAT(metadata, HasSubstr(" bank\t1\t"));
  EXPECT_THAT(metadata, HasSubstr(" bank\t2\t"));
}

TEST(Viz, CreatedWithIsACompleteCommandAndFromReportRerunsIt) {
  TempDir dir;
  write(dir / "texts.txt", "The bank of the river was muddy.\nI sat on the bank of the river.\n");
  const fs::path first = dir / "a";
  const Result r = run_tokmap({"viz",
                               "--file",
                               (dir / "texts.txt").string(),
                               "--highlight",
                               "bank",
                               "--layers",
                               "0,-1",
                               "--dims",
                               "2",
                               "--perplexity",
                               "3",
                               "--seed",
                               "7",
                               "--metric",
                               "euclidean",
                               "--normalize",
                               "none",
                               "--include-first",
                               "--iterations",
                               "120",
                               "--no-logit-lens",
                               "--no-figures",
                               "--quiet",
                               "--out",
                               first.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(report_data(first / "index.html")["lens"], nlohmann::json::array());
  EXPECT_EQ(report_data(first / "index.html")["settings"]["logit_lens"], false);
  const std::string command = report_data(first / "index.html")["created_with"];
  EXPECT_EQ(command, "tokmap viz --model demo-brown-gpt2 --file " + (dir / "texts.txt").string() +
                         " --highlight bank --layers 0,-1 --dims 2 --perplexity 3 --seed 7 "
                         "--seeds 1 --metric euclidean --normalize none --include-first "
                         "--iterations 120 --no-logit-lens --no-figures");
  // The command itself, run by a shell with an --out, makes the same report. (--out is left
  // off so that the same input gives the same index.html wherever it is written.)
  const fs::path second = dir / "b";
  const std::string shell = quote(TOKMAP_BINARY) + command.substr(std::string("tokmap").size()) +
                            " --quiet --out " + quote(second.string());
  ASSERT_EQ(std::system(shell.c_str()), 0) << shell;
  EXPECT_EQ(slurp(first / "points.tsv"), slurp(second / "points.tsv"));
  // --from-report reruns it from the report alone (its texts), even with the file gone.
  fs::remove(dir / "texts.txt");
  const fs::path third = dir / "c";
  const Result again = run_tokmap({"viz", "--from-report", (first / "index.html").string(), "--out",
                                   third.string(), "--quiet"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(slurp(first / "points.tsv"), slurp(third / "points.tsv"));
  const json rerun = report_data(third / "index.html");
  EXPECT_EQ(rerun["settings"], report_data(first / "index.html")["settings"]);
  // The rerun names its input as the report's texts; everything else is the same command.
  std::string expected = command;
  const std::string file_flag = "--file " + (dir / "texts.txt").string();
  expected.replace(expected.find(file_flag), file_flag.size(),
                   "--text 'The bank of the river was muddy.' --text 'I sat on the bank of the "
                   "river.'");
  EXPECT_EQ(rerun["created_with"], expected);
  // Flags that would change the maps cannot be mixed in; a page that is no report is named.
  expect_error(run_tokmap({"viz", "--from-report", (first / "index.html").string(), "--seed", "1",
                           "--out", (dir / "d").string()}),
               2, "--seed cannot be given with it");
  write(dir / "page.html", "<html></html>");
  expect_error(run_tokmap({"viz", "--from-report", (dir / "page.html").string(), "--out",
                           (dir / "d").string()}),
               1, "page.html: not a tokmap report");
  EXPECT_FALSE(fs::exists(dir / "d"));
}

TEST(Viz, StagingFolderOfAKilledRunIsRemovedByTheNextRun) {
  TempDir dir;
  const fs::path out = dir / "report";
  std::string text;
  for (int i = 0; i < 60; ++i) text += "The bank of the river was muddy and wide. ";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::freopen("/dev/null", "w", stderr);
    ::execl(TOKMAP_BINARY, "tokmap", "viz", "--text", text.c_str(), "--out", out.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for the staging folder, then kill the run where no handler can clean up.
  bool started = false;
  for (int i = 0; i < 4000 && !started; ++i) {
    started = dir.file_count() > 0;
    if (!started) ::usleep(5000);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(started);
  ASSERT_EQ(dir.file_count(), 1u);  // the staging folder, left behind
  EXPECT_FALSE(fs::exists(out));
  // A staging folder a live run still holds is left alone (here: one this test holds locked).
  const fs::path live = dir / ".report.tmp-LIVE00";
  fs::create_directory(live);
  const int fd = ::open(live.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto args = quick(out);
  args.insert(args.end(), kTexts.begin(), kTexts.end());
  ASSERT_EQ(run_tokmap(args).code, 0);
  EXPECT_TRUE(fs::exists(live));
  ::close(fd);
  EXPECT_EQ(dir.file_count(), 2u);  // report/ and the live folder: the killed run's is gone
  ASSERT_EQ(run_tokmap(args).code, 0);
  EXPECT_EQ(dir.file_count(), 1u);  // the unlocked one is stale now
}

}  // namespace
