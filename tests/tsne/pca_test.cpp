// PCA's two paths (covariance for n >= d, Gram matrix for n < d) give the same projections.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tsne/tsne.hpp"

namespace tokmap::tsne {
namespace {

TEST(Pca, GramPathMatchesCovariancePath) {
  const std::size_t n = 40, d = 60, k = 10;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  // Columns with clearly different variances so the components are well separated.
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      x[i * d + j] = normal(rng) * (1.0f + 0.15f * float(d - j)) + 0.3f;
  // Stacking X twice keeps the same covariance (up to scale) but takes the covariance path.
  std::vector<float> stacked(x);
  stacked.insert(stacked.end(), x.begin(), x.end());

  std::vector<float> via_gram(n * k), via_covariance(2 * n * k);
  pca(via_gram, x, n, d, k);
  pca(via_covariance, stacked, 2 * n, d, k);
  double scale = 0;
  for (const float v : via_covariance) scale = std::max(scale, double(std::fabs(v)));
  for (std::size_t i = 0; i < n * k; ++i) {
    EXPECT_NEAR(via_gram[i], via_covariance[i], 1e-4 * scale)
        << "row " << i / k << " component " << i % k;
  }
}

TEST(Pca, GramPathZeroesDirectionsBeyondTheRank) {
  // 5 points span at most 4 dimensions after centring: components 5.. carry no variance.
  const std::size_t n = 5, d = 30, k = 5;
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) x[i * d + j] = std::sin(float(i * 7 + j));
  std::vector<float> out(n * k);
  pca(out, x, n, d, k);
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(out[i * k + 4], 0.0f, 1e-5f);
}

}  // namespace
}  // namespace tokmap::tsne
