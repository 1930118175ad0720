#pragma once
// Reference maps ("atlases"): a corpus's hidden states mapped once per layer, kept with what
// placing new points needs, and the placement of new points into those frozen maps
// (openTSNE's `transform`: only the new points move; the reference stays fixed).
//
// Feature space of a layer (the space P and the neighbour index live in):
//   x (width)  --minus the corpus mean (viz's "center")-->  --cosine: x / |x|-->  u
//   f (rank) = (u - pca_mean) . components^T       components: (rank, width) row-major
// and euclidean distances in f. The reference's t-SNE maps are made from f with the same
// perplexity, so placement uses the affinities the maps were made from.
//
// Placement of one new point (independently of every other new point, so a point's position does
// not depend on the batch; the same bytes for any thread count):
//   - its k = min(3 perplexity, n - 1) nearest reference points in f (exact), conditional
//     probabilities p_j at the atlas's perplexity (sum 1);
//   - start at the p-weighted mean of those neighbours' map positions;
//   - minimise KL(p || q) with q_j = w_j / sum_all w, w_j = (1 + |y - y_j|^2)^-1 over all
//     reference points j: gradient = sum_j p_j w_j (y - y_j) - sum_j w_j^2 (y - y_j) / sum_j w_j.
// Confidence: overlap of the point's kc nearest reference points in f with its kc nearest
// reference points in the map, turned into [0, 1] by a table calibrated at build time on
// held-out corpus tokens placed leave-one-out (the fraction of those with that overlap that
// landed within their own map neighbourhood).
//
// The file (docs/ATLAS_FORMAT.md) is a safetensors container: metadata "format" =
// "tokmap-atlas", "version" = "1", "atlas" = a JSON document; tensors named per layer. The
// reader validates it like every other input and throws one tokmap::Error naming the file and
// the field at fault.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace tokmap::atlas {

inline constexpr int kFormatVersion = 1;

struct AtlasToken {
  std::int32_t id = 0;
  std::string display;  // as viz shows it
  std::int32_t text = 0;
  std::int32_t position = 0;
  std::uint32_t begin = 0, end = 0;  // bytes of texts[text] the token covers
};

struct AtlasMap {
  int dims = 2;
  std::vector<float> coords;       // (n, dims)
  std::vector<float> calibration;  // (kc + 1): confidence for a raw overlap of 0 .. kc
  double kl = 0.0;
};

struct AtlasLayer {
  int layer = 0;                  // hidden-state index
  std::vector<float> mean;        // (width) corpus mean removed first
  std::vector<float> pca_mean;    // (width)
  std::vector<float> components;  // (rank, width)
  std::vector<float> features;    // (n, rank) the reference points in feature space
  std::vector<AtlasMap> maps;     // one per dims
};

struct Atlas {
  std::string model;              // model name as resolved
  std::string metric = "cosine";  // cosine | euclidean (before the PCA)
  std::string normalize = "center";
  std::size_t width = 0;
  std::size_t rank = 0;
  std::size_t n = 0;  // reference tokens
  double perplexity = 30.0;
  int confidence_k = 10;
  std::uint64_t seed = 0;
  std::vector<std::string> texts;  // the corpus pieces (for the page's search / context)
  std::vector<AtlasToken> tokens;  // (n)
  std::vector<AtlasLayer> layers;
  std::string provenance;  // free text: corpus, licence, command
};

struct BuildOptions {
  std::vector<int> dims{2};
  double perplexity = 30.0;
  int rank = 50;  // PCA dimensions of the feature space (<= width)
  std::string metric = "cosine";
  int iterations = 750;
  std::uint64_t seed = 0;
  int confidence_k = 10;
  std::size_t holdout = 300;  // corpus tokens placed leave-one-out to calibrate the confidence
  int threads = 0;
};

// Progress: (done, total) over layers.
using Progress = std::function<void(std::size_t, std::size_t)>;

// states[l]: (n, width) raw hidden states of the corpus tokens at layer layers[l].
// Fills everything but model, texts, tokens and provenance (the caller's).
Atlas build(const std::vector<std::vector<float>>& states, const std::vector<int>& layers,
            std::size_t n, std::size_t width, const BuildOptions& options,
            const Progress& progress = {});

struct PlaceOptions {
  int iterations = 50;  // from the P-weighted start; 50 vs 100: median displacement +10%, half the time
  double learning_rate = 1.0;
  double momentum = 0.8;
  double max_step = 1.0;  // per-iteration step norm cap, in map units
  int threads = 0;
};

struct Placement {
  int layer = 0;
  int dims = 2;
  std::vector<float> coords;      // (m, dims)
  std::vector<float> confidence;  // (m) calibrated, [0, 1]
  std::vector<float> overlap;     // (m) raw neighbour overlap, [0, 1]
};

// Places m new points into every map of layer index `layer_index`. raw: (m, width) hidden states
// of that layer, as produced by the model (normalised here with the atlas's corpus mean).
// exclude: per new point, a reference row to leave out (for leave-one-out checks) or -1; empty =
// none.
std::vector<Placement> place(const Atlas& atlas, std::size_t layer_index,
                             std::span<const float> raw, std::size_t m,
                             const PlaceOptions& options = {},
                             std::span<const std::int64_t> exclude = {});

// The same, for points already in feature space (m, rank).
Placement place_features(const Atlas& atlas, std::size_t layer_index, std::size_t map_index,
                         std::span<const float> features, std::size_t m,
                         const PlaceOptions& options = {},
                         std::span<const std::int64_t> exclude = {});

// raw (m, width) -> features (m, rank) for a layer.
std::vector<float> to_features(const Atlas& atlas, std::size_t layer_index,
                               std::span<const float> raw, std::size_t m);

// Largest distance between two points of a map, from its bounding box diagonal.
double map_diameter(const AtlasMap& map, std::size_t n);

void write(const std::filesystem::path& path, const Atlas& atlas);
Atlas read(const std::filesystem::path& path);

}  // namespace tokmap::atlas
