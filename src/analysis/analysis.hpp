#pragma once
// The numbers that say how far to trust a t-SNE map: trustworthiness and continuity
// (scikit-learn's definitions), k-NN preservation, stability across seeds (Procrustes
// alignment + neighbourhood agreement), outliers and clusters found in the ORIGINAL space, and
// neighbourhood overlap between two models' embeddings of the same tokens.
//
// Layouts: X is (n, d) row-major (the original space), Y is (n, dims) row-major (a map).
// Nothing here prints; errors are tokmap::Error.
#include <cstddef>
#include <cstdint>
#include <span>
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

}  // namespace tokmap::analysis
