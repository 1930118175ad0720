// The report module: token kinds, file names, the embedded data (safe inside <script>), the
// page template's placeholder, points.tsv and the Projector export.
#include "report/report.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/io.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::report {
namespace {

using test_support::TempDir;

TEST(Report, TokenKinds) {
  EXPECT_EQ(token_kind(" bank", 3, false), "word");
  EXPECT_EQ(token_kind("The", 0, false), "word");
  EXPECT_EQ(token_kind("ings", 5, false), "continuation");
  EXPECT_EQ(token_kind(" café", 2, false), "word");
  EXPECT_EQ(token_kind(",", 4, false), "punctuation");
  EXPECT_EQ(token_kind(" 2024", 4, false), "number");
  EXPECT_EQ(token_kind("\n\n", 4, false), "punctuation");       // raw bytes, not the "\n" display
  EXPECT_EQ(token_kind("\xe2\x80", 4, false), "continuation");  // part of a character
  EXPECT_EQ(token_kind(" \xe2\x80\x94", 4, false), "punctuation");      // em dash
  EXPECT_EQ(token_kind(" \xf0\x9f\xa4\x96", 4, false), "punctuation");  // emoji
  EXPECT_EQ(token_kind("\xe6\x97\xa5", 4, false), "continuation");      // 日 inside a word
  EXPECT_EQ(token_kind("<|endoftext|>", 4, true), "special");
}

TEST(Report, FileStemsAreSafe) {
  EXPECT_EQ(file_stem("demo-brown-gpt2"), "demo-brown-gpt2");
  EXPECT_EQ(file_stem("openai-community/gpt2"), "openai-community_gpt2");
  const std::string stem = file_stem("../../etc");  // one harmless path component
  EXPECT_EQ(stem.find('/'), std::string::npos);
  EXPECT_NE(stem.front(), '.');
  EXPECT_EQ(file_stem(""), "model");
}

ReportData small_report() {
  ReportData data;
  data.title = "a </script><script>alert(1)</script> title";
  data.texts = {"Hello world"};
  data.models = {"m"};
  data.layers = {0, 1};
  data.perplexities = {2};
  data.seeds = {0};
  data.dims = {2};
  data.tokens = {{0, 1, 995, " world", {5, 11}, "word", ""},
                 {0, 2, 0, "!", {11, 12}, "punctuation", ""}};
  for (const int layer : {0, 1}) {
    Map map;
    map.layer = layer;
    map.perplexity = 2;
    map.coords = {0.5f, 1.25f, -3.0f, 4.0f};
    map.kl = 0.1;
    data.maps.push_back(map);
    Analysis analysis;
    analysis.layer = layer;
    analysis.neighbor_count = 1;
    analysis.neighbors = {1, 0};
    analysis.neighbor_distances = {0.5f, 0.5f};
    analysis.cluster = {0, 0};
    analysis.outlier = {0.0f, 1.0f};
    data.analysis.push_back(analysis);
  }
  data.settings = {"cosine", "center", true, {"world"}, {0}};
  return data;
}

TEST(Report, JsonFollowsTheContractAndCannotCloseItsScript) {
  const std::string text = to_json(small_report());
  EXPECT_EQ(text.find("</"), std::string::npos);
  const auto data = nlohmann::json::parse(text);
  EXPECT_EQ(data["version"], 1);
  EXPECT_EQ(data["title"], "a </script><script>alert(1)</script> title");  // "<\/" parses back
  EXPECT_EQ(data["tokens"][0]["offset"], nlohmann::json::array({5, 11}));
  EXPECT_EQ(data["maps"][1]["coords"], nlohmann::json::parse("[0.5, 1.25, -3.0, 4.0]"));
  EXPECT_TRUE(data["maps"][0]["stability"].is_null());
  EXPECT_EQ(data["analysis"][0]["neighbors"], nlohmann::json::parse("[[1], [0]]"));
  EXPECT_FALSE(data.contains("comparison"));
  EXPECT_EQ(data["settings"]["highlight_tokens"], nlohmann::json::array({0}));
  EXPECT_FALSE(data["tokens"][0].contains("label"));  // only when it differs from display
}

TEST(Report, ReadDataJsonGivesBackTheDataOfWriteHtml) {
  TempDir dir;
  ReportData data = small_report();
  data.tokens[0].label = " 木";
  write_html(dir / "index.html", data);
  const auto back = nlohmann::json::parse(read_data_json(dir / "index.html"));
  EXPECT_EQ(back["title"], data.title);
  EXPECT_EQ(back["tokens"][0]["label"], " 木");
  io::write_file_atomically(dir / "other.html", "<html></html>");
  EXPECT_THROW(read_data_json(dir / "other.html"), Error);
}

TEST(Report, ComparisonPairsNameBothLayersAndTheNeighbourhoodSize) {
  ReportData data = small_report();
  data.models = {"m", "small"};
  ComparisonPair pair;
  pair.a = 0;
  pair.b = 1;
  pair.layer_a = 6;
  pair.layer_b = 4;
  pair.overlap = {0.5f, 1.0f};  // per token, in the order of data.tokens
  pair.mean = 0.75;
  data.comparison.push_back(pair);
  const auto json = nlohmann::json::parse(to_json(data));
  const auto& p = json["comparison"]["pairs"][0];
  EXPECT_EQ(p["a"], 0);
  EXPECT_EQ(p["b"], 1);
  EXPECT_EQ(p["layer_a"], 6);
  EXPECT_EQ(p["layer_b"], 4);
  EXPECT_EQ(p["overlap"], nlohmann::json::parse("[0.5, 1.0]"));
  EXPECT_EQ(p["overlap"].size(), data.tokens.size());
  EXPECT_DOUBLE_EQ(p["mean"].get<double>(), 0.75);
  // k = 10 asked for, but two tokens have one neighbour each (what neighborhood_overlap counts).
  EXPECT_EQ(p["k"], 1);
}

TEST(Report, PageTemplateHasOnePlaceholderAndTheHtmlReplacesIt) {
  const std::string_view page = page_template();
  const std::string placeholder = "/*TOKMAP_DATA*/null";
  const auto first = page.find(placeholder);
  ASSERT_NE(first, std::string_view::npos);
  EXPECT_EQ(page.find(placeholder, first + 1), std::string_view::npos);
  TempDir dir;
  write_html(dir / "index.html", small_report());
  const std::string html = io::read_text_file(dir / "index.html");
  EXPECT_EQ(html.find(placeholder), std::string::npos);
  EXPECT_NE(html.find("\"version\":1"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
}

TEST(Report, PointsTsvAndProjectorExport) {
  TempDir dir;
  const ReportData data = small_report();
  write_points_tsv(dir / "points.tsv", data);
  const std::string points = io::read_text_file(dir / "points.tsv");
  // Texts numbered from 1 as in the page ("text 1") and the figures; positions from 0.
  EXPECT_NE(points.find("m\t1\t2\t world\t1\t1\t0.5\t1.25\t\t\t\t0\t0\t\n"), std::string::npos)
      << points;
  const std::vector<float> layer0 = {1, 2, 3, 4, 5, 6}, layer1 = {6, 5, 4, 3, 2, 1};
  write_projector(dir.path(), data, {{0, 1, 3, &layer1}, {0, 0, 3, &layer0}});
  EXPECT_EQ(io::read_text_file(dir / "tensors.tsv"), "6\t5\t4\n3\t2\t1\n");
  EXPECT_EQ(io::read_text_file(dir / "tensors-m-layer0.tsv"), "1\t2\t3\n4\t5\t6\n");
  EXPECT_EQ(
      io::read_text_file(dir / "metadata.tsv"),
      "token\ttext\tposition\tkind\tcluster\n world\t1\t1\tword\t0\n!\t1\t2\tpunctuation\t0\n");
  const auto config = nlohmann::json::parse(io::read_text_file(dir / "projector_config.json"));
  EXPECT_EQ(config["embeddings"][1]["tensorShape"], nlohmann::json::array({2, 3}));
  const std::vector<float> wrong = {1, 2};
  EXPECT_THROW(write_projector(dir.path(), data, {{0, 0, 3, &wrong}}), Error);
}

}  // namespace
}  // namespace tokmap::report
