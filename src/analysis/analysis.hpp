#pragma once
// The numbers that say how far to trust a t-SNE map: trustworthiness and continuity
// (scikit-learn's definitions), k-NN preservation, stability across seeds (Procrustes
// alignment + neighbourhood agreement), outliers and clusters found in the ORIGINAL space, and
// neighbourhood overlap between two models' embeddings of the same tokens, and an assessment of
// each map that flags degenerate or suspicious ones (a point, a line, a flat 3D map, coincident
// points, a KL no better than an all-in-one-place map, random-level trustworthiness).
//
// Layouts: X is (n, d) row-major (the original space), Y is (n, dims) row-major (a map).
// Nothing here prints; errors are tokmap::Error.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "neighbors/neighbors.hpp"

namespace tokmap::analysis {

struct Matrix {
  std::span<const float> data;  // (rows, cols) row-major
  std::size_t rows = 0;
  std::size_t cols = 0;
};

struct QualityOptions {
  std::size_t k = 10;
  neighbors::Metric metric = neighbors::Metric::euclidean;  // in the original space
};

struct MapQuality {
  double trustworthiness = 0.0;   // 1 = no false neighbours in the map
  double continuity = 0.0;        // 1 = no original neighbours torn apart
  double knn_preservation = 0.0;  // mean fraction of each point's k original neighbours kept
  std::vector<float> per_point_preservation;  // (n)
  std::size_t k = 0;                          // k actually used (lowered for tiny n)
};

// Exact O(n^2 (d + log n)) ranks; meant for the sizes a report shows (n up to ~20k).
MapQuality map_quality(const Matrix& original, const Matrix& map, const QualityOptions& options);

// Orthogonal Procrustes: out (n, dims) = s * moving R + t, with R orthogonal (rotation or
// reflection), s a scale and t a translation that best match `target` in least squares.
// Returns the residual RMS distance after alignment.
double procrustes_align(std::span<float> out, const Matrix& target, const Matrix& moving);

struct Stability {
  std::vector<float> per_point;  // (n): mean Jaccard of k-NN sets in the map across seed pairs
  double overall = 0.0;          // mean of per_point
  std::vector<std::vector<float>> aligned;  // each map Procrustes-aligned to the first
};
// maps: K >= 2 embeddings of the same n points (different seeds).
Stability stability(std::span<const Matrix> maps, std::size_t k = 10);

struct OutlierOptions {
  std::size_t k = 10;
  neighbors::Metric metric = neighbors::Metric::euclidean;
};
// Mean distance to the k nearest neighbours in the original space, robustly standardised:
// (value - median) / (1.4826 * MAD). Scores above ~3 are outliers.
std::vector<float> outlier_scores(const Matrix& original, const OutlierOptions& options);

struct ClusterOptions {
  std::size_t k = 15;  // neighbours in the k-NN graph
  neighbors::Metric metric = neighbors::Metric::euclidean;
  double resolution = 1.0;
  std::uint64_t seed = 0;
};
struct Clustering {
  std::vector<std::int32_t> labels;  // (n), 0-based, clusters numbered by decreasing size
  std::size_t count = 0;
  double modularity = 0.0;
};
// Louvain community detection on the symmetrised k-NN graph of the ORIGINAL space.
Clustering clusters(const Matrix& original, const ClusterOptions& options);

// For each point, |N_a(i) ∩ N_b(i)| / k where N are the k nearest neighbours among the same n
// points in two spaces (e.g. two models' hidden states of the same tokens).
std::vector<float> neighborhood_overlap(const Matrix& a, const Matrix& b, std::size_t k,
                                        neighbors::Metric metric);

// For each point, the Jaccard index |N_a(i) ∩ N_b(i)| / |N_a(i) ∪ N_b(i)| of its k nearest
// neighbours among the same n points in two spaces (e.g. one model's consecutive layers): 1 = the
// same neighbourhood, 0 = none shared. k is lowered to n - 1. With s shared of k it is
// s / (2k - s): unlike the overlap s / k it reaches 0.5 only when two thirds are shared, so small
// changes spread over more of the scale. The _naive reference computes every distance and sorts.
std::vector<float> neighborhood_jaccard(const Matrix& a, const Matrix& b, std::size_t k,
                                        neighbors::Metric metric);
std::vector<float> neighborhood_jaccard_naive(const Matrix& a, const Matrix& b, std::size_t k,
                                              neighbors::Metric metric);

// The same from neighbour lists already found, so a chain of layers searches each layer once:
// a and b are (n, k) row-major neighbour indices of the same n points (nearest_neighbors).
std::vector<float> jaccard_of_neighbors(std::span<const std::int32_t> a,
                                        std::span<const std::int32_t> b, std::size_t k);
// Each point's k nearest others, (rows, k) row-major, nearest first (exact search); k must be
// below rows.
std::vector<std::int32_t> nearest_neighbors(const Matrix& x, std::size_t k,
                                            neighbors::Metric metric);

// The indices of the `count` points with the lowest similarity (most changed) first; ties by
// index, non-finite values last. count is lowered to the number of points.
std::vector<std::int32_t> most_changed(std::span<const float> similarity, std::size_t count);

// ---------------------------------------------------------------------------------------------
// Map assessment: is this map a picture of the data at all, and how good a one?

// Ordered: a larger value is worse.
enum class Rating { good = 0, fair = 1, poor = 2, degenerate = 3 };
// "good", "fair", "poor", "degenerate".
constexpr const char* rating_name(Rating rating) {
  switch (rating) {
    case Rating::good:
      return "good";
    case Rating::fair:
      return "fair";
    case Rating::poor:
      return "poor";
    case Rating::degenerate:
      break;
  }
  return "degenerate";
}

// The thresholds, in one place. Spreads are per principal axis of the centred map:
// sigma_k = s_k / sqrt(n), s_k the singular values of the centred (n, dims) coordinates
// (sigma_1 >= sigma_2 >= sigma_3), so sigma_k is the RMS extent along axis k.
struct AssessOptions {
  // A point: RMS radius sqrt(sum sigma_k^2) below this, in t-SNE map units, or below 1e-5 of the
  // centroid's distance from the origin (float resolution). t-SNE's kernel 1 / (1 + d^2) has a
  // natural unit length of 1: at an RMS radius of 0.01 typical distances are ~0.014 and
  // w_ij > 0.999, so Q is uniform to 0.1% and the map, however its shape looks once the page
  // zooms in on it, carries nothing (optimised maps span tens of units; PCA/random inits start
  // at ~1e-4, so a map this small never left its initialisation).
  double point_radius = 1e-2;
  // A line: sigma_2 / sigma_1 below this (2D and 3D): a 50:1 aspect ratio. t-SNE's repulsion
  // acts in every direction, so an optimised map spreads over the plane; even genuinely
  // one-dimensional data curl into a ribbon: t-SNE of points on a straight line in 10-D gave
  // sigma_2 / sigma_1 = 0.08 at N = 40 and 0.28 at N = 300 (perplexity 10), and the bundled
  // model's maps of the sample sentences >= 0.14 (20 tokens) and >= 0.34 (96 tokens), brown-2000
  // 0.80. Ratios under 0.02 are an optimisation that collapsed onto one axis. Below
  // `elongated_ratio` (10:1) the map is flagged as nearly a line (fair: 1-D data do that).
  double line_ratio = 0.02;
  double elongated_ratio = 0.1;
  // A flat 3D map (a plane): sigma_3 / sigma_1 below this (poor: it shows at most what a 2D map
  // shows, and its depth is noise); below `thin_ratio` nearly flat (fair). Measured: sample
  // sentences >= 0.087 (20 tokens, layer 0) and >= 0.13 (96 tokens), brown-2000 0.56, the 1-D
  // line at N = 40 0.065.
  double plane_ratio = 0.02;
  double thin_ratio = 0.1;
  // Coincident points: a point whose nearest other point in the map is closer than
  // coincident_distance x the map's RMS radius (1e-3: under a pixel at any zoom that frames the
  // map) that is not among its 10 nearest neighbours in the input. Optimised t-SNE maps keep
  // inputs that are not neighbours apart (repulsion); shares above these fractions mean a
  // (partial) collapse.
  double coincident_distance = 1e-3;
  double coincident_poor = 0.1;
  double coincident_degenerate = 0.5;
  // KL(P || Q) against that of the uninformative map with every point in one place (all
  // q_ij = 1 / (N (N - 1)), so KL_uniform = sum p_ij log p_ij + log(N (N - 1))). The ratio says how
  // far the map got from "shows nothing" (1: a collapsed map; around or above 1: a random
  // placement) towards P itself (0). Measured on optimised maps: 0.03-0.34 for the bundled
  // model's maps of the sample sentences (20 and 96 tokens, perplexity 5-30), 0.28 (2D) and 0.25
  // (3D) for brown-2000 at perplexity 30; larger N raise it slowly (KL grows with log N).
  double kl_good = 0.5;        // ratio below: good
  double kl_fair = 0.75;       // below: fair; otherwise poor
  double kl_degenerate = 0.9;  // at or above: degenerate (no better than a point)
  // Trustworthiness and continuity (k-NN ranks): a random map scores ~0.5 (exactly
  // random_trustworthiness(n, k)); within `random_margin` of that the map is degenerate. The
  // grades are the page's long-standing ones, stated for large N; for smaller N they are moved
  // to the same share of the way from random to 1 (0.9 is 80% of the way from 0.5).
  double rank_good = 0.9;
  double rank_fair = 0.8;
  double random_margin = 0.1;
  // k-NN preservation (shared share of the k nearest neighbours): t-SNE keeps ~0.3-0.6 of 10 in
  // maps of real data, so its grades are lower; it is reported but does not set the rating (it is
  // the strictest of the three neighbour numbers and is low for good maps of large N).
  double knn_good = 0.5;
  double knn_fair = 0.3;
  // Below this many points the k-NN numbers (k lowered to (n - 1) / 2) are not meaningful: with
  // n = 11 and k = 5 a random map already keeps half of each point's neighbours (k / (n - 1)),
  // and 7 points leave k = 3 of 6 others, so they are reported without a rating.
  std::size_t min_points_for_neighbors = 12;
};

// What is known about a map besides its coordinates (NaN = unknown, not rated).
struct MapFacts {
  double kl = std::numeric_limits<double>::quiet_NaN();          // final KL(P || Q)
  double kl_uniform = std::numeric_limits<double>::quiet_NaN();  // KL of the all-in-one-place map
  double trustworthiness = std::numeric_limits<double>::quiet_NaN();
  double continuity = std::numeric_limits<double>::quiet_NaN();
  double knn_preservation = std::numeric_limits<double>::quiet_NaN();
  std::size_t k = 10;  // neighbours the three numbers above used (MapQuality::k)
};

struct MapAssessment {
  Rating rating = Rating::good;  // the worst of the geometry, coincidence, KL and rank ratings
  // Effective dimensionality: 0 a point, 1 a line, 2 a plane (or a 2D map), 3.
  int effective_dims = 0;
  std::vector<double> spread;  // (dims) sigma_k, descending
  double rms_radius = 0.0;
  double coincident_fraction = 0.0;  // share of points on top of another (see AssessOptions)
  double kl_ratio = std::numeric_limits<double>::quiet_NaN();  // kl / kl_uniform
  double random_trustworthiness = 0.5;  // what a random map of this n and k scores
  bool neighbors_meaningful = true;     // false below min_points_for_neighbors
  // Per-number grades; empty = not rated (unknown, or not meaningful for tiny n).
  std::optional<Rating> kl_rating, trustworthiness_rating, continuity_rating, knn_rating;
  // Machine-readable flags: "non_finite", "point", "line", "elongated", "plane", "thin",
  // "coincident", "uniform_kl", "high_kl", "random_neighbors", "low_trustworthiness",
  // "low_continuity", "few_points".
  std::vector<std::string> flags;
  std::vector<std::string> reasons;  // one human-readable sentence per flag, worst first
};

// Expected trustworthiness (scikit-learn's definition) of a map that places n points at random,
// with k neighbours: 1 - (n - 1 - k)(n - k) / ((n - 1)(2n - 3k - 1)), ~0.5 for n >> k.
double random_trustworthiness(std::size_t n, std::size_t k);

// Assesses one map. map: (n, dims) row-major, dims 1-3; original (optional, may be empty):
// (n, d) row-major, used only to exempt pairs that are neighbours in the input (among each
// other's 10 nearest, duplicates included) from the coincidence count. Costs O(n dims^2) for the
// spread, O(n) expected for coincidence (a grid of cells coincident_distance x radius wide) and
// O(n d) per point that has a close partner.
MapAssessment assess_map(const Matrix& map, const MapFacts& facts, const Matrix& original = {},
                         const AssessOptions& options = {});

}  // namespace tokmap::analysis
