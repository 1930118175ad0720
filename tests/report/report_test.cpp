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
  data.tokens = {{0, 1, 995, " world", {5, 11}, "word", "", {}, "", 1.0f},
                 {0, 2, 0, "!", {11, 12}, "punctuation", "", {}, "", 1.0f}};
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

TEST(Report, LogitLensIsWrittenPerModelWithRowsOfKAndTheTokensItNames) {
  ReportData data = small_report();
  EXPECT_EQ(nlohmann::json::parse(to_json(data))["lens"], nlohmann::json::array());
  LogitLens lens;
  lens.model = 0;
  lens.k = 2;
  lens.vocab_size = 50257;
  lens.final_layer = 6;
  lens.final_top1 = {13, 262};
  LogitLens::Layer layer;
  layer.layer = 6;
  layer.top_ids = {13, 11, 262, 286};  // (2 tokens, k = 2)
  layer.top_probs = {0.5f, 0.25f, 0.75f, 0.125f};
  layer.entropy = {1.5f, 0.5f};
  lens.layers.push_back(layer);
  lens.tokens = {{11, ","}, {13, "."}, {262, " the"}, {286, " of"}};
  data.lens.push_back(lens);
  const auto json = nlohmann::json::parse(to_json(data));
  const auto& l = json["lens"][0];
  EXPECT_EQ(l["model"], 0);
  EXPECT_EQ(l["k"], 2);
  EXPECT_EQ(l["vocab_size"], 50257);
  EXPECT_EQ(l["final_layer"], 6);
  EXPECT_EQ(l["final_top1"], nlohmann::json::parse("[13, 262]"));
  EXPECT_EQ(l["layers"][0]["layer"], 6);
  EXPECT_EQ(l["layers"][0]["top_ids"], nlohmann::json::parse("[[13, 11], [262, 286]]"));
  EXPECT_EQ(l["layers"][0]["top_probs"], nlohmann::json::parse("[[0.5, 0.25], [0.75, 0.125]]"));
  EXPECT_EQ(l["layers"][0]["entropy"], nlohmann::json::parse("[1.5, 0.5]"));
  EXPECT_EQ(l["tokens"]["262"], " the");
  EXPECT_EQ(l["tokens"].size(), 4u);
}

TEST(Report, ChangesAndPcaViewsFollowTheContract) {
  ReportData data = small_report();
  auto empty = nlohmann::json::parse(to_json(data));
  EXPECT_EQ(empty["changes"], nlohmann::json::array());
  EXPECT_EQ(empty["pca"], nlohmann::json::array());
  LayerChange change;
  change.layer = 1;
  change.previous_layer = 0;
  change.k = 1;
  change.jaccard = {1.0f, 0.0f};
  change.mean = 0.5;
  change.most_changed = {1, 0};
  data.changes.push_back(change);
  PcaView view;
  view.layer = 1;
  view.dims = 2;
  view.coords = {0.123456f, -1.0f, -0.123456f, 1.0f};
  view.explained = {0.75, 0.25};
  data.pca.push_back(view);
  data.comparison.push_back({});
  data.comparison[0].overlap = {0.0f, 1.0f};
  data.comparison[0].most_changed = {0, 1};
  const auto json = nlohmann::json::parse(to_json(data));
  const auto& c = json["changes"][0];
  EXPECT_EQ(c["model"], 0);
  EXPECT_EQ(c["layer"], 1);
  EXPECT_EQ(c["previous_layer"], 0);
  EXPECT_EQ(c["k"], 1);
  EXPECT_EQ(c["jaccard"], nlohmann::json::parse("[1.0, 0.0]"));
  EXPECT_DOUBLE_EQ(c["mean"].get<double>(), 0.5);
  EXPECT_EQ(c["most_changed"], nlohmann::json::array({1, 0}));
  const auto& v = json["pca"][0];
  EXPECT_EQ(v["dims"], 2);
  // Four significant digits for the view's coordinates.
  EXPECT_EQ(v["coords"], nlohmann::json::parse("[0.1235, -1.0, -0.1235, 1.0]"));
  EXPECT_EQ(v["explained"], nlohmann::json::parse("[0.75, 0.25]"));
  EXPECT_EQ(json["comparison"]["pairs"][0]["most_changed"], nlohmann::json::array({0, 1}));
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
  // Texts numbered from 1 as in the page ("text 1") and the figures; positions from 0. The last
  // two columns, the 2D and 3D maps' ratings, are empty: these maps are not assessed.
  EXPECT_NE(points.find("m\t1\t2\t world\t1\t1\t0.5\t1.25\t\t\t\t0\t0\t\t\t\n"), std::string::npos)
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

analysis::MapAssessment line_assessment() {
  analysis::MapAssessment a;
  a.rating = analysis::Rating::degenerate;
  a.effective_dims = 1;
  a.spread = {12.5, 0.01};
  a.kl_ratio = 0.97;
  a.random_trustworthiness = 0.52;
  a.kl_rating = analysis::Rating::degenerate;
  a.trustworthiness_rating = analysis::Rating::fair;
  a.flags = {"line", "uniform_kl"};
  a.reasons = {"the 2D map is a straight line", "KL\tis 97%"};
  return a;
}

TEST(Report, MapsCarryTheirAssessment) {
  ReportData data = small_report();
  data.maps[1].kl_uniform = 2.0;
  data.maps[1].k = 1;
  data.maps[1].assessment = line_assessment();
  data.maps[1].seed_kl = {0.4};
  data.maps[1].seed_assessments = {analysis::MapAssessment{}};
  const auto json = nlohmann::json::parse(to_json(data));
  EXPECT_FALSE(json["maps"][0].contains("assessment"));
  EXPECT_TRUE(json["maps"][0]["kl_uniform"].is_null());  // unknown
  const auto& m = json["maps"][1];
  EXPECT_EQ(m["k"], 1);
  EXPECT_DOUBLE_EQ(m["kl_uniform"].get<double>(), 2.0);
  const auto& a = m["assessment"];
  EXPECT_EQ(a["rating"], "degenerate");
  EXPECT_EQ(a["flags"], nlohmann::json::parse(R"(["line", "uniform_kl"])"));
  EXPECT_EQ(a["reasons"][0], "the 2D map is a straight line");
  EXPECT_EQ(a["effective_dims"], 1);
  EXPECT_EQ(a["spread"], nlohmann::json::parse("[12.5, 0.01]"));
  EXPECT_DOUBLE_EQ(a["kl_ratio"].get<double>(), 0.97);
  EXPECT_TRUE(a["neighbors_meaningful"].get<bool>());
  EXPECT_EQ(a["ratings"]["kl"], "degenerate");
  EXPECT_EQ(a["ratings"]["trustworthiness"], "fair");
  EXPECT_TRUE(a["ratings"]["continuity"].is_null());  // not rated
  EXPECT_EQ(m["seed_kl"], nlohmann::json::parse("[0.4]"));
  ASSERT_EQ(m["seed_assessments"].size(), 1u);
  EXPECT_EQ(m["seed_assessments"][0]["rating"], "good");
  EXPECT_TRUE(m["seed_assessments"][0]["kl_ratio"].is_null());
}

TEST(Report, PointsTsvAndMapsTsvCarryTheRatings) {
  TempDir dir;
  ReportData data = small_report();
  data.maps[1].assessment = line_assessment();
  data.maps[1].kl_uniform = 2.0;
  data.maps[0].assessment = analysis::MapAssessment{};
  write_points_tsv(dir / "points.tsv", data);
  const std::string points = io::read_text_file(dir / "points.tsv");
  EXPECT_EQ(points.substr(0, points.find('\n')),
            "model\tlayer\tperplexity\ttoken\ttext\tposition\tx\ty\tx3\ty3\tz3\tcluster\toutlier\ts"
            "tability\trating\trating3");
  EXPECT_NE(points.find("m\t0\t2\t world\t1\t1\t0.5\t1.25\t\t\t\t0\t0\t\tgood\t\n"),
            std::string::npos)
      << points;
  EXPECT_NE(points.find("m\t1\t2\t!\t1\t2\t-3\t4\t\t\t\t0\t1\t\tdegenerate\t\n"), std::string::npos)
      << points;

  write_maps_tsv(dir / "maps.tsv", data);
  const std::string maps = io::read_text_file(dir / "maps.tsv");
  EXPECT_EQ(
      maps,
      "model\tlayer\tperplexity\tdims\tseed\tkl\tkl_uniform\tkl_ratio\ttrustworthiness\tcon"
      "tinuity\tknn_preservation\tk\tstability\trating\teffective_dims\tcoincident_fraction\tf"
      "lags\treasons\n"
      "m\t0\t2\t2\t0\t0.1\t\t\t0\t0\t0\t10\t\tgood\t0\t0\t\t\n"
      "m\t1\t2\t2\t0\t0.1\t2\t0.97\t0\t0\t0\t10\t\tdegenerate\t1\t0\tline,uniform_kl\tthe 2D "
      "map is a straight line; KL\\tis 97%\n");
}

TEST(Report, WorstMapIsTheWorstRatedOverMapsAndSeeds) {
  ReportData data = small_report();
  EXPECT_EQ(worst_map(data), nullptr);  // nothing assessed
  data.maps.push_back(data.maps[0]);
  data.maps[2].layer = 2;
  analysis::MapAssessment poor;
  poor.rating = analysis::Rating::poor;
  poor.kl_ratio = 0.8;
  data.maps[0].assessment = analysis::MapAssessment{};
  data.maps[1].assessment = poor;
  poor.kl_ratio = 0.85;  // as poor, with a higher KL ratio: worse
  data.maps[2].assessment = poor;
  std::size_t seed = 7;
  EXPECT_EQ(worst_map(data, &seed), &data.maps[2]);
  EXPECT_EQ(seed, 0u);
  // Another seed of the first map collapsed: that seed is the worst.
  data.maps[0].seed_assessments = {analysis::MapAssessment{}, line_assessment()};
  EXPECT_EQ(worst_map(data, &seed), &data.maps[0]);
  EXPECT_EQ(seed, 2u);
}

}  // namespace
}  // namespace tokmap::report
