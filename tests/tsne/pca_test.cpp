// PCA's two paths (covariance for n >= d, Gram matrix for n < d) give the same projections.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>

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

// The axes principal_axes gives (what atlases store to project new points) are orthonormal
// and are the ones pca projects onto: pca(x) = (x - mean) . axes^T.
TEST(Pca, PrincipalAxesAreOrthonormalAndTheOnesPcaProjectsOnto) {
  const std::size_t n = 300, d = 24, k = 5;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      x[i * d + j] = normal(rng) * (1.0f + 0.2f * float(d - j)) - 1.0f;
  std::vector<float> axes(k * d), projected(n * k);
  principal_axes(axes, x, n, d, k);
  pca(projected, x, n, d, k);
  for (std::size_t a = 0; a < k; ++a)
    for (std::size_t b = 0; b < k; ++b) {
      double dot = 0;
      for (std::size_t j = 0; j < d; ++j) dot += double(axes[a * d + j]) * axes[b * d + j];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-5) << a << " " << b;
    }
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) mean[j] += x[i * d + j] / double(n);
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c) {
      double v = 0;
      for (std::size_t j = 0; j < d; ++j) v += (x[i * d + j] - mean[j]) * axes[c * d + j];
      worst = std::max(worst, std::abs(v - projected[i * k + c]));
      scale = std::max(scale, std::abs(v));
    }
  EXPECT_LT(worst, 1e-5 * scale);
  EXPECT_THROW(principal_axes(axes, x, n, d, d + 1), Error);
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

namespace tokmap::tsne {
namespace {

// Against numpy's SVD (tests/data/tsne/make_pca_reference.py): the explained variance ratios and
// the projections up to sign, on both of pca()'s paths.
TEST(Pca, ExplainedVarianceAndProjectionsMatchNumpy) {
  std::ifstream in(std::string(TOKMAP_TEST_DATA) + "/tsne/pca_reference.txt");
  ASSERT_TRUE(in) << "missing tests/data/tsne/pca_reference.txt";
  int cases = 0;
  std::size_t n = 0, d = 0, k = 0;
  while (in >> n >> d >> k) {
    ++cases;
    std::vector<float> x(n * d);
    for (auto& v : x) in >> v;
    std::vector<double> ratio(k);
    for (auto& v : ratio) in >> v;
    std::vector<double> magnitude(n * k);
    for (auto& v : magnitude) in >> v;
    ASSERT_TRUE(in);
    std::vector<float> projected(n * k);
    pca(projected, x, n, d, k);
    const auto explained = explained_variance_ratio(projected, x, n, d, k);
    ASSERT_EQ(explained.size(), k);
    for (std::size_t c = 0; c < k; ++c)
      EXPECT_NEAR(explained[c], ratio[c], 1e-5) << "n " << n << " d " << d << " axis " << c;
    for (std::size_t i = 0; i < n * k; ++i)
      EXPECT_NEAR(std::fabs(projected[i]), magnitude[i], 1e-4) << "n " << n << " entry " << i;
  }
  EXPECT_EQ(cases, 2);
}

TEST(Pca, ExplainedVarianceOfConstantDataIsZero) {
  const std::vector<float> x(5 * 3, 2.0f);
  std::vector<float> projected(5 * 2);
  pca(projected, x, 5, 3, 2);
  EXPECT_EQ(explained_variance_ratio(projected, x, 5, 3, 2), (std::vector<double>{0.0, 0.0}));
  EXPECT_THROW(explained_variance_ratio(projected, x, 5, 3, 3), Error);
}

}  // namespace
}  // namespace tokmap::tsne
