#pragma once
// k-nearest neighbours of the rows of a matrix: exact (blocked BLAS distance computation) and
// approximate (hnswlib HNSW graph), euclidean and cosine.
//
// Layouts: `data` is (n, d) row-major float32. Results are (n, k) row-major, neighbours of row
// i sorted by increasing distance (ties by increasing index); a row is never its own neighbour
// (exact duplicates of it are). Results are deterministic: the same input and options give the
// same bytes for any thread count (the HNSW graph is built in insertion order on one thread;
// queries run in parallel; the final distances are recomputed by one fixed scalar loop).
//
// Nothing here prints; errors are tokmap::Error.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.hpp"

namespace tokmap::neighbors {

enum class Metric {
  euclidean,  // distance = ||a - b||
  cosine,     // distance = 1 - a.b / (|a| |b|); an all-zero row has distance 1 to everything
};

enum class Algorithm {
  automatic,  // exact for n <= KnnOptions::exact_threshold, HNSW above
  exact,
  hnsw,
};

struct KnnOptions {
  std::size_t k = 15;
  Metric metric = Metric::euclidean;
  Algorithm algorithm = Algorithm::automatic;
  // Largest n for which `automatic` uses the exact search. On the Brown embeddings (50 PCA
  // dimensions, k = 90, 2 cores) n = 20,000 took 5.9 s exact and 12.0 s with HNSW (recall
  // 0.9989); exact grows as n^2 and HNSW about as n log n, so they cross near 50,000.
  std::size_t exact_threshold = 50000;
  // HNSW parameters (hnswlib names). ef_search 0 = max(2k + 10, 64).
  std::size_t hnsw_m = 16;
  std::size_t hnsw_ef_construction = 200;
  std::size_t hnsw_ef_search = 0;
  std::uint64_t seed = 0;
  int threads = 0;  // 0 = all cores (OpenMP default)
};

struct KnnResult {
  std::size_t n = 0;
  std::size_t k = 0;
  std::vector<std::int32_t> indices;  // (n, k) row-major
  std::vector<float> distances;       // (n, k) row-major, in the metric's units (not squared)
};

// Dispatches on options.algorithm. Requires 1 <= k <= n - 1; throws tokmap::Error otherwise.
KnnResult knn(std::span<const float> data, std::size_t n, std::size_t d, const KnnOptions& options);

KnnResult knn_exact(std::span<const float> data, std::size_t n, std::size_t d,
                    const KnnOptions& options);
KnnResult knn_hnsw(std::span<const float> data, std::size_t n, std::size_t d,
                   const KnnOptions& options);

// Distance between two rows in the given metric, computed by the same scalar loop (double
// accumulation) that produces KnnResult::distances.
float distance(const float* a, const float* b, std::size_t d, Metric metric);

// Fraction of (row, neighbour) pairs of `approx` that also appear in the same row of `exact`.
double recall(const KnnResult& approx, const KnnResult& exact);

// OpenBLAS keeps its own thread pool, whose idle threads spin and yield. Callers that already run
// one job per core (viz's parallel t-SNE chains) give BLAS one thread while they do; the previous
// setting comes back at the end of the scope. The setting is process-wide: one scope at a time.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int previous_;
};

}  // namespace tokmap::neighbors
