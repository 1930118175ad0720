#pragma once
// Assembling a report folder: the self-contained index.html (the page from web/, bundled at
// build time, with the data of docs/REPORT_FORMAT.md inlined), points.tsv and an Embedding
// Projector export. Static figures come from src/render.
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/analysis.hpp"
#include "core/error.hpp"

namespace tokmap::report {

namespace fs = std::filesystem;

struct Token {
  int text = 0;
  int position = 0;
  int id = 0;
  std::string display;
  std::pair<std::size_t, std::size_t> offset;
  std::string kind;  // word, continuation, punctuation, number, special
  // What to show when it differs from `display`: for a token made of incomplete UTF-8 bytes
  // ("<0xE6><0x9D>"), the whole character(s) its text gives them ("木"); else empty.
  std::string label;
  // Reports of models that tokenize differently (settings.points == "spans"): each model's own
  // tokens of this span, model by model. Empty otherwise.
  struct Piece {
    std::string display;
    std::int32_t id = 0;
  };
  std::vector<std::vector<Piece>> pieces;
  // Reports of text placed into an atlas (viz --atlas): "atlas" for the reference's tokens,
  // "placed" for the new text's, with the placement confidence in [0, 1]. Empty otherwise.
  std::string source;
  float confidence = 1.0f;
};

// A model name as a file-name part: "openai-community/gpt2" -> "openai-community_gpt2".
std::string file_stem(std::string_view name);

// The kind of a token (see docs/REPORT_FORMAT.md) from its raw bytes: classifying the display
// form would take an escaped newline ("\n") for a word piece.
std::string token_kind(std::string_view bytes, int position, bool special);

struct Map {
  int model = 0;
  int layer = 0;
  double perplexity = 0;
  int dims = 2;
  std::vector<float> coords;                    // (N, dims)
  std::vector<std::vector<float>> seed_coords;  // other seeds, aligned to coords
  double kl = 0;
  double trustworthiness = 0, continuity = 0, knn_preservation = 0;
  std::size_t k = 10;  // neighbours behind the three numbers above (fewer for tiny N)
  std::optional<double> stability;
  std::vector<float> point_stability;  // (N) or empty
  // KL of the uninformative map with every point in one place, for the same P (NaN: unknown).
  double kl_uniform = std::numeric_limits<double>::quiet_NaN();
  // Is this map a picture of the data (degenerate/suspicious maps flagged)? First seed, then one
  // per seed_coords entry (those without trustworthiness/continuity: not computed per seed).
  std::optional<analysis::MapAssessment> assessment;
  std::vector<double> seed_kl;                            // per seed_coords entry
  std::vector<analysis::MapAssessment> seed_assessments;  // per seed_coords entry, or empty
  // Atlas reports (viz --atlas): (N) placement confidence of every point in this map (1 for the
  // atlas's own rows: they are the reference). Empty otherwise.
  std::vector<float> confidence;
};

struct Analysis {
  int model = 0;
  int layer = 0;
  std::vector<std::int32_t> neighbors;  // (N, neighbor_count)
  std::vector<float> neighbor_distances;
  std::size_t neighbor_count = 5;
  std::vector<std::int32_t> cluster;  // (N)
  std::vector<float> outlier;         // (N)
  std::vector<std::int32_t> top_outliers;
};

// Neighbourhood overlap of the same tokens in two models' hidden states: overlap[i] is the
// share of token i's k nearest neighbours (token indices as in ReportData::tokens) in model a's
// layer layer_a that are also among its k nearest in model b's layer layer_b.
struct ComparisonPair {
  int a = 0, b = 1;
  int layer_a = 0, layer_b = 0;
  std::vector<float> overlap;  // (N)
  double mean = 0;
  // The neighbourhood size asked for; the JSON gives min(k, N - 1), what
  // analysis::neighborhood_overlap counts.
  std::size_t k = 10;
  // Token indices ranked by overlap, lowest (most changed between the models) first.
  std::vector<std::int32_t> most_changed;
};

// How each token's neighbourhood in the model's space changed from one mapped layer of a model
// to the next (docs/REPORT_FORMAT.md "changes"): jaccard[i] is the Jaccard index of token i's k
// nearest neighbours in previous_layer and in layer (1 = unchanged, 0 = all new).
struct LayerChange {
  int model = 0;
  int layer = 0;
  int previous_layer = 0;
  std::size_t k = 10;          // as used: min(10, N - 1)
  std::vector<float> jaccard;  // (N)
  double mean = 0;
  std::vector<std::int32_t> most_changed;  // token indices, lowest Jaccard first
};

// A linear view of one (model, layer): the points projected onto the top principal axes of the
// (normalised) hidden states; 2D views are the first two columns (PCA axes are nested).
struct PcaView {
  int model = 0;
  int layer = 0;
  int dims =
      3;  // columns of coords: the report's largest map dims (fewer if the states have fewer)
  std::vector<float> coords;      // (N, dims)
  std::vector<double> explained;  // (dims): share of the total variance per axis
};

// The logit lens of one model (causal LMs only): each point's next-token predictions at each
// selected layer through the model's final norm and output head. A point that is a span of
// several tokens is predicted from its last token.
struct LogitLens {
  int model = 0;
  int k = 5;
  int vocab_size = 0;                    // the entropy's upper bound is ln(vocab_size)
  int final_layer = 0;                   // n_layer
  std::vector<std::int32_t> final_top1;  // (N): the final layer's top-1 (computed even when
                                         // the final layer is not among `layers`)
  struct Layer {
    int layer = 0;
    std::vector<std::int32_t> top_ids;  // (N, k), most probable first
    std::vector<float> top_probs;       // (N, k)
    std::vector<float> entropy;         // (N), nats
  };
  std::vector<Layer> layers;
  // How each id in top_ids / final_top1 is shown (the model's tokenizer), ascending ids.
  std::vector<std::pair<std::int32_t, std::string>> tokens;
};

struct Settings {
  std::string metric;
  std::string normalize;
  bool exclude_first = true;
  std::vector<std::string> highlight;
  // The tokens --highlight matched (indices into tokens), including the sub-token runs of a
  // word the tokenizer splits.
  std::vector<std::int32_t> highlight_tokens;
  // What a point is: "tokens" (every model tokenizes alike), or "spans" (the shortest spans of
  // text that every model's tokens cover exactly; see Token::pieces).
  std::string points = "tokens";
  // Whether the logit lens was asked for (--no-logit-lens: false). Asked for and absent from
  // ReportData::lens for a model: that model has no causal LM head (an encoder).
  bool logit_lens = true;
};

struct ReportData {
  std::string title;
  std::string created_with;
  std::vector<std::string> texts;
  std::vector<std::string> models;
  std::vector<int> layers;
  std::vector<double> perplexities;
  std::vector<std::uint64_t> seeds;
  std::vector<int> dims;
  std::vector<Token> tokens;
  std::vector<Map> maps;
  std::vector<Analysis> analysis;
  std::vector<ComparisonPair> comparison;
  std::vector<LogitLens> lens;  // one per model that has an output head
  std::vector<LayerChange> changes;
  std::vector<PcaView> pca;
  Settings settings;
};

// The data object of docs/REPORT_FORMAT.md as JSON text (safe to embed in a <script>).
std::string to_json(const ReportData& data);

// The page template bundled at build time (web/), with the placeholder `/*TOKMAP_DATA*/null`.
std::string_view page_template();
// The page with `data_json` (to_json's text) inlined, and for `tokmap serve`'s live page a live
// configuration object (JSON text; "null" = a static report). See docs/SERVE.md.
std::string page_html(std::string_view data_json, std::string_view live_json = "null");
// index.html: the template with the data inlined; written atomically.
void write_html(const fs::path& path, const ReportData& data);
// The data object's JSON text from an index.html written by write_html (errors name the file).
std::string read_data_json(const fs::path& index_html);

// points.tsv: one row per (model, layer, perplexity, token) with the 2D and 3D coordinates of
// the first seed, cluster, outlier score, stability and the rating of the 2D and 3D maps. Texts
// are numbered from 1, as in the page ("text 1") and the figures; positions from 0.
void write_points_tsv(const fs::path& path, const ReportData& data);

// maps.tsv: one row per map (model, layer, perplexity, dims) with its numbers, the assessment's
// rating, flags and reasons.
void write_maps_tsv(const fs::path& path, const ReportData& data);

// The map whose assessment is worst (rating, then KL ratio, then lower trustworthiness), over
// every map and seed; null when no map has an assessment. `seed` receives the seed index
// (0 = the first seed).
const Map* worst_map(const ReportData& data, std::size_t* seed = nullptr);

// Embedding Projector export (projector.tensorflow.org): tensors.tsv for the first model's last
// layer, tensors-<model>-layer<l>.tsv for the others, metadata.tsv (token, text, position, kind,
// cluster) and projector_config.json listing them. `hidden(model, layer)` gives (N, d).
struct ProjectorTensor {
  int model = 0;
  int layer = 0;
  std::size_t width = 0;
  const std::vector<float>* values = nullptr;  // (N, width)
};
void write_projector(const fs::path& folder, const ReportData& data,
                     const std::vector<ProjectorTensor>& tensors);

}  // namespace tokmap::report
