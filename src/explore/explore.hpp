#pragma once
// The exploration engine: texts → tokens → hidden states → maps and analyses → report data, as
// a library. An Engine holds loaded models and tokenizers, so a second request costs only its
// own tokens; each stage is a plain function with an option struct. The CLI (`tokmap viz`), a
// server and the Python bindings all call this; nothing here parses flags or prints.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/model.hpp"
#include "report/report.hpp"
#include "tokenizer/tokenizer.hpp"

namespace tokmap::atlas {
struct Atlas;
}

namespace tokmap::explore {

namespace fs = std::filesystem;

// Asked now and then during long work (between texts, forward-pass batches and every 50 t-SNE
// iterations, possibly from several threads at once): true stops the work, which then throws
// tokmap::Error with ErrorKind::cancelled. Must be cheap and thread-safe.
using CancelCheck = std::function<bool()>;

// How the engine talks to its caller: notes and warnings for the user, progress of long work
// (called on the calling thread only) and cancellation. Any of them may be empty.
struct Hooks {
  std::function<void(std::string_view)> info;
  std::function<void(std::string_view)> warn;
  std::function<void(std::string_view what, std::size_t done, std::size_t total)> progress;
  CancelCheck cancelled;

  void note(std::string_view message) const {
    if (info) info(message);
  }
  void warning(std::string_view message) const {
    if (warn) warn(message);
  }
  void step(std::string_view what, std::size_t done, std::size_t total) const {
    if (progress) progress(what, done, total);
  }
  // Throws the cancelled error when the caller has asked to stop.
  void check_cancelled() const;
};

// The error thrown when a CancelCheck said stop.
[[noreturn]] void throw_cancelled();

// --- Texts and tokens --------------------------------------------------------------------------

struct Text {
  std::string text;
  std::string origin;     // "--text 2", "notes.txt line 7": used in error messages
  bool from_ids = false;  // text is a list of token ids ("464,314,182")
};

// The model's tokenizer: tokenizer.json / vocab+merges in a folder, or a GGUF file's
// vocabulary. When `optional` (the texts are token ids), a model without one gives nullopt;
// otherwise the error says how to give ids instead.
std::optional<tokenizer::Tokenizer> load_tokenizer(const fs::path& model_path, bool optional);

// How a token is shown: the tokenizer's display form, else "#<id>".
std::string display_token(const tokenizer::Tokenizer* tokenizer, std::int32_t id);

struct EncodeOptions {
  bool lossy =
      false;  // replace invalid UTF-8 with U+FFFD (one warning per text) instead of failing
  bool add_special_tokens = true;
};
// One text's tokens; errors are prefixed with the text's origin. A text from ids is taken as it
// is (each id's offsets are its digits in the list), with or without a tokenizer.
tokenizer::Encoding encode(const tokenizer::Tokenizer* tokenizer, const Text& text,
                           const EncodeOptions& options, const Hooks& hooks = {});

// --- Models ------------------------------------------------------------------------------------

struct LoadedModel {
  std::string name;  // as shown ("demo-brown-gpt2", a folder name, "llama3.2:1b")
  fs::path location;
  model::Model model;
  std::optional<tokenizer::Tokenizer> tokenizer;  // none: a model without one, run on ids
};

// Loads models once and keeps them: a later request for the same model costs nothing. Safe to
// share between threads (loading is serialised; loaded models are read-only).
class Engine {
 public:
  explicit Engine(model::ResolveOptions resolve = {});
  // `spec` as --model takes it ("" = the default bundled model). With `ids_only` a model without
  // a tokenizer loads (its texts must be ids); otherwise a missing tokenizer is an error.
  const LoadedModel& load(const std::string& spec, bool ids_only = false);

 private:
  model::ResolveOptions resolve_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<LoadedModel>> models_;  // by spec
};

// --- The pipeline --------------------------------------------------------------------------------

struct VizOptions {
  std::vector<std::string> models;  // specs; empty = the default bundled model
  EncodeOptions encode;
  std::string layers = "all";  // all | last | list, negative counting from the end
  std::vector<int> dims{2, 3};
  std::vector<double> perplexities;  // empty = chosen from the number of points
  std::uint64_t seed = 0;
  int seeds = 1;                       // maps per setting; > 1 adds stability across seeds
  std::string metric = "cosine";       // cosine | euclidean (original space)
  std::string normalize = "center";    // none | center | spherize
  bool exclude_first = true;           // drop each text's position-0 token
  bool logit_lens = true;              // next-token predictions per layer (causal LMs only)
  std::vector<std::string> highlight;  // words whose tokens are emphasised and labelled
  int iterations = 750;
  int threads = 0;  // 0 = every core; results do not depend on it
  // An earlier run to start from (a live page re-running after an edit): each map of a layer
  // that run also mapped starts from its layout — tokens it had (the same text, or the
  // unchanged bytes around an edit) where they were, new ones beside their neighbour in the
  // text — and is aligned to it, so the picture stays recognisable. Null: the usual start.
  std::shared_ptr<const report::ReportData> previous;
};

// Checks the options' values (usage errors name the flag); run() calls it first.
void validate(const VizOptions& options);

// The perplexity used when none is given: (n - 1) / 4 clamped to [2, 30].
double default_perplexity(std::size_t n_points);

// One point of the maps. When every model tokenizes the texts alike, a point is a token. When
// they do not (GPT-2 against Llama), a point is the shortest span of a text that each model's
// tokens cover exactly — a word, mostly — and each model's vector for it is the mean of its
// tokens' hidden states over that span.
struct Point {
  std::size_t text = 0;
  std::pair<std::size_t, std::size_t> span;         // bytes of the text
  std::vector<std::vector<std::size_t>> positions;  // [model] → token positions, ascending
};

struct Points {
  std::vector<std::vector<tokenizer::Encoding>> encodings;  // [model][text]
  std::vector<Point> points;
  bool aligned = false;  // the models tokenize differently: points are spans (see Point)
};

// Stage 1: each model's tokens of each text and the points to map. Tokens added around a text
// that cover none of it (BOS, [CLS]) are never part of a span when aligning.
// encodings: [model][text]
Points make_points(std::vector<std::vector<tokenizer::Encoding>> encodings, bool exclude_first);

// One model's hidden states of the points.
struct ModelStates {
  std::string name;
  int n_layer = 0;
  std::size_t width = 0;
  std::vector<int> layers;                 // hidden-state indices, ascending
  std::vector<std::vector<float>> hidden;  // per layer: (N, width) row-major, normalised
};

// What a tap sees: one batch's raw states (neither averaged over spans nor normalised), one
// entry of h.layers per hidden-state index in `layers`.
using StateTap = std::function<void(const model::HiddenStates& h, std::span<const int> layers)>;

struct StateOptions {
  std::string layers = "all";
  std::string normalize = "center";  // none | center | spherize, per layer over the points
  int threads = 0;
  // Called with every batch of the forward pass, which also runs `extra_layers` for it (not
  // kept in ModelStates): the logit lens reads raw states here, so none are stored twice.
  StateTap tap;
  std::vector<int> extra_layers;
  CancelCheck cancelled;  // asked after every forward-pass batch
  // Told (tokens done, tokens total) after every forward-pass batch, on the calling thread.
  std::function<void(std::size_t, std::size_t)> progress;
};
// Stage 2: the hidden states of model `m`'s tokens, one row per point.
ModelStates hidden_states(const LoadedModel& model, const Points& points, std::size_t m,
                          const StateOptions& options);

// Stage 2b, the logit lens: each point's next-token predictions at every selected layer
// through the model's own output head (final norm + unembedding, Gemma 2's final soft-capping),
// lm_head(final_norm(h_l)) below the last layer and lm_head(h_L) at the last (Hugging Face's
// last hidden state already has the final norm). A span of several tokens (Points::aligned) is
// predicted from its last token: what the model expects after the whole span. Only the top k,
// their probabilities and the entropy are kept, never a row of logits.
struct LensOptions {
  bool enabled = true;  // false: hidden_states_with_lens is hidden_states
  int top_k = 5;
  int threads = 0;
};
// Whether a model gets a lens: causal LMs with an output head (not the BERT family encoders).
bool has_logit_lens(const LoadedModel& model);
// hidden_states() of model m, computing its lens from the same forward pass when it has an
// output head (`lens` is left empty otherwise).
ModelStates hidden_states_with_lens(const LoadedModel& model, const Points& points, std::size_t m,
                                    const StateOptions& options, const LensOptions& lens_options,
                                    std::optional<report::LogitLens>& lens);

// Stage 3: neighbours, clusters and outliers of each (model, layer) in the original space.
struct AnalysisOptions {
  std::string metric = "cosine";
  std::uint64_t seed = 0;
};
std::vector<report::Analysis> analyze(const std::vector<ModelStates>& states,
                                      const AnalysisOptions& options);

// Stage 4: t-SNE maps of every (model, perplexity, dims), layers chained (each map starts from
// the previous layer's and is aligned to it), with quality and assessment. Warnings of the
// runs are passed to hooks.warn once each.
struct MapOptions {
  std::vector<int> dims{2, 3};
  std::vector<double> perplexities;  // at least one
  std::uint64_t seed = 0;
  int seeds = 1;
  int iterations = 750;
  std::string metric = "cosine";
  int threads = 0;
  CancelCheck cancelled;  // asked every 50 iterations of every run
  // A starting layout (N, dims) for the first seed of a (model, layer, dims), used instead of
  // the previous layer's map, and the map aligned to it; empty = the usual start.
  std::function<std::vector<float>(std::size_t model, int layer, int dims, double perplexity)>
      start_from;
};
std::vector<report::Map> make_maps(const std::vector<ModelStates>& states,
                                   const MapOptions& options, const Hooks& hooks = {});

// For VizOptions::previous: each point of `now` that is the same token of the same text in
// `previous` (identical text, or the unchanged bytes before and after an edit, same display)
// gets that token's index there; others -1.
std::vector<std::int64_t> match_previous(const report::ReportData& previous,
                                         const report::ReportData& now);
// The starting layout of (model, layer, dims) from previous's map of it (of the closest
// perplexity), or empty when it has none or fewer than 3 points match.
std::vector<float> start_from_previous(const report::ReportData& previous,
                                       std::span<const std::int64_t> previous_of,
                                       const report::ReportData& now, std::size_t model, int layer,
                                       int dims, double perplexity, std::uint64_t seed);

// Stage 5: the same points' neighbourhoods in model 0 against every other model at matching
// relative depth (layer 6 of 6 pairs with layer 4 of 4).
std::vector<report::ComparisonPair> compare_models(const std::vector<ModelStates>& states,
                                                   const std::string& metric);

// Stage 6: what changed between layers. For each model and each mapped layer after its first,
// the Jaccard index of every point's k nearest neighbours (in the model's normalised space) in
// the previous mapped layer and in this one, and the points that changed most.
struct ChangeOptions {
  std::string metric = "cosine";
  std::size_t k = 10;       // lowered to N - 1
  std::size_t ranked = 20;  // points kept in most_changed
};
std::vector<report::LayerChange> layer_changes(const std::vector<ModelStates>& states,
                                               const ChangeOptions& options = {});
// The cross-model version: each pair's points ranked by overlap, lowest first (most_changed).
void rank_comparison(std::vector<report::ComparisonPair>& pairs, std::size_t ranked = 20);

// Stage 7: a linear PCA view of each (model, layer) beside the t-SNE maps, with each axis's
// share of the variance (layout: report::PcaView).
struct PcaOptions {
  int dims = 3;  // axes kept; the 2D view is the first two
  int threads = 0;
};
std::vector<report::PcaView> pca_views(const std::vector<ModelStates>& states,
                                       const PcaOptions& options = {});

// Everything a report is made of.
struct Result {
  report::ReportData data;
  std::vector<ModelStates> states;
  std::vector<std::uint8_t> emphasis;  // (N): highlighted points
  std::vector<std::string> warnings;   // also given to hooks.warn as they came
  double seconds = 0;
};

// The whole pipeline. data.created_with is left empty: the caller knows how it was asked.
Result run(Engine& engine, const std::vector<Text>& texts, const VizOptions& options,
           const Hooks& hooks = {});

// --- Placing text into an atlas (viz --atlas) ------------------------------------------------

struct AtlasVizOptions {
  std::string model;  // empty: the atlas's own model
  EncodeOptions encode;
  bool exclude_first = true;
  int threads = 0;
};
// The texts' tokens placed into the frozen maps of an atlas (src/atlas, docs/ATLAS_FORMAT.md):
// the report's points are the atlas's tokens (Token::source "atlas") followed by the new ones
// ("placed", Token::confidence from the last layer's first map); texts likewise (the atlas's
// first). Analyses run in the atlas's feature space. A placed token's position does not depend
// on the other texts placed with it.
Result run_atlas(Engine& engine, const std::vector<Text>& texts, const fs::path& atlas_file,
                 const AtlasVizOptions& options, const Hooks& hooks = {});
// The same with the atlas already read (a server keeps it); atlas_name is used in messages.
Result run_atlas(Engine& engine, const std::vector<Text>& texts, const atlas::Atlas& atlas,
                 const std::string& atlas_name, const AtlasVizOptions& options,
                 const Hooks& hooks = {});

// Only the placement of run_atlas, without the analyses or the atlas's own points: what a
// live page needs to add a sentence to a map it already shows.
struct PlacedMap {
  std::size_t atlas_layer = 0;  // index into Atlas::layers
  std::size_t map_index = 0;    // index into that layer's maps
  int layer = 0;                // hidden-state index
  int dims = 2;
  std::vector<float> coords;      // (m, dims)
  std::vector<float> confidence;  // (m), calibrated, [0, 1]
};
struct Placed {
  const LoadedModel* model = nullptr;
  std::vector<tokenizer::Encoding> encodings;  // [text]
  std::vector<Point> points;                   // (m) placed tokens; Point::text indexes texts
  std::vector<std::vector<float>> features;    // [atlas layer]: (m, rank) feature-space rows
  std::vector<PlacedMap> maps;                 // every map of every atlas layer, in order
  double seconds = 0;
};
Placed place(Engine& engine, const std::vector<Text>& texts, const atlas::Atlas& atlas,
             const std::string& atlas_name, const AtlasVizOptions& options,
             const Hooks& hooks = {});

// --- Output --------------------------------------------------------------------------------------

struct WriteOptions {
  bool figures = true;  // PNG/SVG/PDF figures in figures/
  int threads = 0;
};
// Writes index.html, points.tsv, maps.tsv, the Projector export and the figures into `folder`
// (which exists; use io::StagingFolder for an all-or-nothing report).
void write_report(const fs::path& folder, const Result& result, const WriteOptions& options = {});

// The one-line summary of a run ("96 tokens, 14 maps in 0.8 s; layer 6: KL ...; worst map ...")
// and the warning naming degenerate maps (empty when there are none).
std::string summary(const Result& result);
std::string degenerate_maps(const report::ReportData& data);

}  // namespace tokmap::explore
