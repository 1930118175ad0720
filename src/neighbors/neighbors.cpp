#include "neighbors/neighbors.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#if defined(__SANITIZE_ADDRESS__)
// hnswlib 0.6.2's SSE prefetches read one link past the end of a neighbour list (harmless, but
// AddressSanitizer stops on it); sanitizer builds use its plain loops.
#define NO_MANUAL_VECTORIZATION
#endif
#include <hnswlib/hnswlib.h>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <utility>

namespace tokmap::neighbors {

namespace {

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

// Below a few thousand rows a second OpenMP thread costs more (team start, idle spinning) than
// the work it takes over; results are identical either way.
int thread_count_for(std::size_t n, int requested) { return n < 2048 ? 1 : thread_count(requested); }

void check_arguments(std::span<const float> data, std::size_t n, std::size_t d,
                     const KnnOptions& options) {
  if (n < 2) throw Error("k-nearest neighbours need at least 2 rows, got " + std::to_string(n));
  if (d == 0) throw Error("k-nearest neighbours need at least 1 column");
  if (data.size() != n * d)
    throw Error("k-nearest neighbours: data has " + std::to_string(data.size()) +
                " values, expected " + std::to_string(n) + " x " + std::to_string(d));
  if (options.k < 1 || options.k > n - 1)
    throw Error("k-nearest neighbours: k = " + std::to_string(options.k) + " must be in [1, " +
                std::to_string(n - 1) + "]");
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw Error("k-nearest neighbours: too many rows (" + std::to_string(n) + ")");
}

// Rows scaled to unit length (zero rows stay zero).
std::vector<float> normalized_rows(std::span<const float> data, std::size_t n, std::size_t d) {
  std::vector<float> out(data.begin(), data.end());
  for (std::size_t i = 0; i < n; ++i) {
    float* row = out.data() + i * d;
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(row[j]) * row[j];
    if (s > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(s));
      for (std::size_t j = 0; j < d; ++j) row[j] *= inv;
    }
  }
  return out;
}

// Recomputes the distances of candidate neighbours exactly, sorts by (distance, index) and
// writes the first k into the result row.
void finish_row(std::span<const float> data, std::size_t d, Metric metric, std::size_t i,
                std::vector<std::int32_t>& candidates, std::size_t k, KnnResult& result) {
  std::vector<std::pair<float, std::int32_t>> scored;
  scored.reserve(candidates.size());
  const float* a = data.data() + i * d;
  for (std::int32_t j : candidates) {
    if (static_cast<std::size_t>(j) == i) continue;
    scored.emplace_back(distance(a, data.data() + static_cast<std::size_t>(j) * d, d, metric), j);
  }
  std::sort(scored.begin(), scored.end());
  scored.erase(std::unique(scored.begin(), scored.end()), scored.end());
  for (std::size_t m = 0; m < k; ++m) {
    // Always enough candidates: callers pass at least k indices other than i.
    result.indices[i * k + m] = scored[m].second;
    result.distances[i * k + m] = scored[m].first;
  }
}

}  // namespace

float distance(const float* a, const float* b, std::size_t d, Metric metric) {
  if (metric == Metric::euclidean) {
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) {
      const double t = static_cast<double>(a[j]) - b[j];
      s += t * t;
    }
    return static_cast<float>(std::sqrt(s));
  }
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t j = 0; j < d; ++j) {
    ab += static_cast<double>(a[j]) * b[j];
    aa += static_cast<double>(a[j]) * a[j];
    bb += static_cast<double>(b[j]) * b[j];
  }
  if (aa == 0 || bb == 0) return 1.0f;
  return static_cast<float>(std::max(0.0, 1.0 - ab / std::sqrt(aa * bb)));
}

KnnResult knn(std::span<const float> data, std::size_t n, std::size_t d,
              const KnnOptions& options) {
  Algorithm algorithm = options.algorithm;
  if (algorithm == Algorithm::automatic)
    algorithm = n <= options.exact_threshold ? Algorithm::exact : Algorithm::hnsw;
  return algorithm == Algorithm::exact ? knn_exact(data, n, d, options)
                                       : knn_hnsw(data, n, d, options);
}

KnnResult knn_exact(std::span<const float> data, std::size_t n, std::size_t d,
                    const KnnOptions& options) {
  check_arguments(data, n, d, options);
  const std::size_t k = options.k;
  const int threads = thread_count_for(n, options.threads);
  std::vector<float> normalized;
  std::span<const float> x = data;
  if (options.metric == Metric::cosine) {
    normalized = normalized_rows(data, n, d);
    x = normalized;
  }
  std::vector<float> sq(n);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(x[i * d + j]) * x[i * d + j];
    sq[i] = static_cast<float>(s);
  }
  KnnResult result;
  result.n = n;
  result.k = k;
  result.indices.resize(n * k);
  result.distances.resize(n * k);

  // A few spare candidates absorb rounding differences between the BLAS distances and the
  // exact recomputation at the k-th place.
  const std::size_t keep = std::min(n - 1, k + 4);
  const std::size_t block =
      std::clamp<std::size_t>((std::size_t{1} << 24) / std::max<std::size_t>(n, 1), 16, 1024);
  std::vector<float> gram(block * n);
  for (std::size_t start = 0; start < n; start += block) {
    const std::size_t rows = std::min(block, n - start);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(n), static_cast<int>(d), 1.0f, x.data() + start * d,
                static_cast<int>(d), x.data(), static_cast<int>(d), 0.0f, gram.data(),
                static_cast<int>(n));
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = start + r;
      float* g = gram.data() + r * n;
      // Squared distances in place (vectorised), then a bounded max-heap of the `keep`
      // smallest (d2, j); most candidates fail the single comparison with the current worst.
      const float sqi = sq[i];
#pragma omp simd
      for (std::size_t j = 0; j < n; ++j) g[j] = sqi + sq[j] - 2.0f * g[j];
      std::priority_queue<std::pair<float, std::int32_t>> heap;
      float worst = std::numeric_limits<float>::infinity();
      for (std::size_t j = 0; j < n; ++j) {
        const float d2 = g[j];
        if (heap.size() == keep && !(d2 < worst)) continue;
        if (j == i) continue;
        if (heap.size() == keep) heap.pop();
        heap.emplace(d2, static_cast<std::int32_t>(j));
        if (heap.size() == keep) worst = heap.top().first;
      }
      std::vector<std::int32_t> candidates;
      candidates.reserve(keep);
      while (!heap.empty()) {
        candidates.push_back(heap.top().second);
        heap.pop();
      }
      finish_row(data, d, options.metric, i, candidates, k, result);
    }
  }
  return result;
}

KnnResult knn_hnsw(std::span<const float> data, std::size_t n, std::size_t d,
                   const KnnOptions& options) {
  check_arguments(data, n, d, options);
  const std::size_t k = options.k;
  const int threads = thread_count_for(n, options.threads);
  std::vector<float> normalized;
  std::span<const float> x = data;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  if (options.metric == Metric::cosine) {
    normalized = normalized_rows(data, n, d);
    x = normalized;
    space = std::make_unique<hnswlib::InnerProductSpace>(d);
  } else {
    space = std::make_unique<hnswlib::L2Space>(d);
  }
  const std::size_t query_k = std::min(n, k + 1);
  std::size_t ef = options.hnsw_ef_search;
  if (ef == 0) ef = std::max<std::size_t>(2 * query_k + 10, 64);
  KnnResult result;
  result.n = n;
  result.k = k;
  result.indices.resize(n * k);
  result.distances.resize(n * k);
  try {
    hnswlib::HierarchicalNSW<float> index(space.get(), n, options.hnsw_m,
                                          options.hnsw_ef_construction,
                                          static_cast<std::size_t>(options.seed % 1000003) + 100);
    // Insertion in row order on one thread: the graph (and so the result) does not depend on
    // the thread count.
    for (std::size_t i = 0; i < n; ++i) index.addPoint(x.data() + i * d, i);
    index.setEf(ef);
#pragma omp parallel for num_threads(threads) schedule(static, 64)
    for (std::size_t i = 0; i < n; ++i) {
      auto found = index.searchKnn(x.data() + i * d, query_k);
      std::vector<std::int32_t> candidates;
      candidates.reserve(found.size());
      while (!found.empty()) {
        candidates.push_back(static_cast<std::int32_t>(found.top().second));
        found.pop();
      }
      // Without i itself among the results there are k + 1 others: finish_row keeps the best k.
      // If HNSW returns fewer than k others (rare), top up with the lowest other indices so the
      // row is complete and deterministic.
      std::size_t others = 0;
      for (auto c : candidates) others += static_cast<std::size_t>(c) != i;
      for (std::size_t j = 0; others < k && j < n; ++j) {
        if (j == i || std::find(candidates.begin(), candidates.end(),
                                static_cast<std::int32_t>(j)) != candidates.end())
          continue;
        candidates.push_back(static_cast<std::int32_t>(j));
        ++others;
      }
      finish_row(data, d, options.metric, i, candidates, k, result);
    }
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(std::string("approximate k-nearest neighbours (hnswlib): ") + e.what());
  }
  return result;
}

double recall(const KnnResult& approx, const KnnResult& exact) {
  if (approx.n != exact.n || approx.n == 0) return 0.0;
  std::size_t hits = 0;
  for (std::size_t i = 0; i < approx.n; ++i) {
    const auto* e = exact.indices.data() + i * exact.k;
    for (std::size_t m = 0; m < approx.k; ++m) {
      const auto a = approx.indices[i * approx.k + m];
      if (std::find(e, e + exact.k, a) != e + exact.k) ++hits;
    }
  }
  return static_cast<double>(hits) / static_cast<double>(approx.n * approx.k);
}

ScopedBlasThreads::ScopedBlasThreads(int threads) : previous_(openblas_get_num_threads()) {
  openblas_set_num_threads(std::max(threads, 1));
}

ScopedBlasThreads::~ScopedBlasThreads() { openblas_set_num_threads(previous_); }

}  // namespace tokmap::neighbors
