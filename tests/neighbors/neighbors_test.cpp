#include "neighbors/neighbors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

namespace nb = tokmap::neighbors;

namespace {

// Gaussian blobs: n points in d dimensions around `clusters` random centres.
std::vector<float> blobs(std::size_t n, std::size_t d, int clusters, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(static_cast<std::size_t>(clusters) * d);
  for (auto& c : centres) c = 4.0f * normal(rng);
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % static_cast<std::size_t>(clusters);
    for (std::size_t j = 0; j < d; ++j) x[i * d + j] = centres[c * d + j] + normal(rng);
  }
  return x;
}

// Brute force with double distances; ties by index.
std::vector<std::int32_t> brute(const std::vector<float>& x, std::size_t n, std::size_t d,
                                std::size_t k, nb::Metric metric) {
  std::vector<std::int32_t> out(n * k);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<std::pair<float, std::int32_t>> all;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i)
        all.emplace_back(nb::distance(&x[i * d], &x[j * d], d, metric),
                         static_cast<std::int32_t>(j));
    std::sort(all.begin(), all.end());
    for (std::size_t m = 0; m < k; ++m) out[i * k + m] = all[m].second;
  }
  return out;
}

}  // namespace

TEST(Neighbors, ExactMatchesBruteForceEuclideanAndCosine) {
  const std::size_t n = 600, d = 12, k = 10;
  const auto x = blobs(n, d, 5, 1);
  for (auto metric : {nb::Metric::euclidean, nb::Metric::cosine}) {
    nb::KnnOptions options;
    options.k = k;
    options.metric = metric;
    const auto result = nb::knn_exact(x, n, d, options);
    EXPECT_EQ(result.indices, brute(x, n, d, k, metric));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t m = 0; m < k; ++m) {
        const auto j = static_cast<std::size_t>(result.indices[i * k + m]);
        EXPECT_NE(j, i);
        EXPECT_FLOAT_EQ(result.distances[i * k + m], nb::distance(&x[i * d], &x[j * d], d, metric));
        if (m > 0) {
          EXPECT_LE(result.distances[i * k + m - 1], result.distances[i * k + m]);
        }
      }
    }
  }
}

TEST(Neighbors, DuplicatesAreNeighboursButNotSelf) {
  const std::size_t d = 3;
  std::vector<float> x = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 5, 5, 5};
  nb::KnnOptions options;
  options.k = 2;
  const auto result = nb::knn_exact(x, 5, d, options);
  EXPECT_EQ(result.indices[0], 1);
  EXPECT_EQ(result.indices[1], 2);
  EXPECT_EQ(result.distances[0], 0.0f);
  EXPECT_EQ(result.indices[2], 0);
  EXPECT_EQ(result.indices[3], 2);
}

TEST(Neighbors, HnswRecallAtLeast098) {
  const std::size_t n = 2500, d = 20, k = 30;
  const auto x = blobs(n, d, 12, 2);
  for (auto metric : {nb::Metric::euclidean, nb::Metric::cosine}) {
    nb::KnnOptions options;
    options.k = k;
    options.metric = metric;
    const auto exact = nb::knn_exact(x, n, d, options);
    const auto approx = nb::knn_hnsw(x, n, d, options);
    EXPECT_GE(nb::recall(approx, exact), 0.98);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t m = 0; m < k; ++m) ASSERT_NE(approx.indices[i * k + m], static_cast<int>(i));
  }
}

TEST(Neighbors, DeterministicAcrossThreadCounts) {
  const std::size_t n = 1200, d = 16, k = 15;
  const auto x = blobs(n, d, 8, 3);
  for (auto algorithm : {nb::Algorithm::exact, nb::Algorithm::hnsw}) {
    nb::KnnOptions options;
    options.k = k;
    options.algorithm = algorithm;
    options.threads = 1;
    const auto one = nb::knn(x, n, d, options);
    options.threads = 2;
    const auto two = nb::knn(x, n, d, options);
    options.threads = 3;
    const auto three = nb::knn(x, n, d, options);
    EXPECT_EQ(one.indices, two.indices);
    EXPECT_EQ(one.distances, two.distances);
    EXPECT_EQ(one.indices, three.indices);
    EXPECT_EQ(one.distances, three.distances);
  }
}

TEST(Neighbors, RejectsBadArguments) {
  std::vector<float> x = {0, 1, 2, 3};
  nb::KnnOptions options;
  options.k = 2;
  EXPECT_THROW(nb::knn(x, 2, 2, options), tokmap::Error);  // k > n - 1
  options.k = 1;
  EXPECT_THROW(nb::knn(x, 1, 4, options), tokmap::Error);  // n < 2
  EXPECT_THROW(nb::knn(x, 3, 2, options), tokmap::Error);  // size mismatch
  EXPECT_NO_THROW(nb::knn(x, 2, 2, options));
}
