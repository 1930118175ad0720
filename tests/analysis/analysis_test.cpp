// Map-quality numbers against scikit-learn, and properties of alignment, stability, outliers,
// clusters and cross-space overlap.
#include "analysis/analysis.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

namespace tokmap::analysis {
namespace {

const std::string kData = TOKMAP_TEST_DATA;

std::vector<float> gaussian(std::size_t n, std::size_t d, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n * d);
  for (auto& x : v) x = normal(rng);
  return v;
}

TEST(MapQuality, MatchesScikitLearnTrustworthiness) {
  std::ifstream in(kData + "/analysis/trustworthiness_reference.json");
  const auto reference = nlohmann::json::parse(in);
  const std::vector<float> x = reference["X"], y = reference["Y"];
  const std::size_t n = reference["n"], d = reference["d"], dims = reference["dims"];
  for (const auto& c : reference["cases"]) {
    QualityOptions options;
    options.k = c["k"];
    options.metric =
        c["metric"] == "cosine" ? neighbors::Metric::cosine : neighbors::Metric::euclidean;
    const auto quality = map_quality({x, n, d}, {y, n, dims}, options);
    EXPECT_NEAR(quality.trustworthiness, c["trustworthiness"].get<double>(), 1e-9) << c.dump();
    if (!c["continuity"].is_null()) {
      EXPECT_NEAR(quality.continuity, c["continuity"].get<double>(), 1e-9) << c.dump();
    }
  }
}

TEST(MapQuality, IdentityMapIsPerfect) {
  const auto x = gaussian(50, 2, 1);
  const auto quality = map_quality({x, 50, 2}, {x, 50, 2}, {});
  EXPECT_DOUBLE_EQ(quality.trustworthiness, 1.0);
  EXPECT_DOUBLE_EQ(quality.continuity, 1.0);
  EXPECT_DOUBLE_EQ(quality.knn_preservation, 1.0);
  EXPECT_EQ(quality.k, 10u);
}

TEST(MapQuality, TinyInputsLowerKAndRejectTooFewPoints) {
  const auto x = gaussian(7, 3, 2);
  const auto y = gaussian(7, 2, 3);
  EXPECT_EQ(map_quality({x, 7, 3}, {y, 7, 2}, {}).k, 3u);
  EXPECT_THROW(map_quality({std::span(x).first(9), 3, 3}, {std::span(y).first(6), 3, 2}, {}),
               Error);
}

TEST(Procrustes, UndoesRotationReflectionScaleAndShift) {
  const std::size_t n = 40;
  const auto target = gaussian(n, 2, 4);
  std::vector<float> moving(n * 2);
  const float angle = 1.1f, scale = 3.5f;
  for (std::size_t i = 0; i < n; ++i) {
    const float x = target[2 * i], y = -target[2 * i + 1];  // reflected
    moving[2 * i] = scale * (std::cos(angle) * x - std::sin(angle) * y) + 7;
    moving[2 * i + 1] = scale * (std::sin(angle) * x + std::cos(angle) * y) - 2;
  }
  std::vector<float> aligned(n * 2);
  const double residual = procrustes_align(aligned, {target, n, 2}, {moving, n, 2});
  EXPECT_LT(residual, 1e-5);
  for (std::size_t i = 0; i < n * 2; ++i) EXPECT_NEAR(aligned[i], target[i], 1e-4);
}

TEST(Procrustes, Works3D) {
  const std::size_t n = 30;
  const auto target = gaussian(n, 3, 5);
  std::vector<float> moving(n * 3);
  for (std::size_t i = 0; i < n; ++i) {  // a permutation of the axes is a rotation/reflection
    moving[3 * i] = target[3 * i + 2];
    moving[3 * i + 1] = target[3 * i];
    moving[3 * i + 2] = -target[3 * i + 1];
  }
  std::vector<float> aligned(n * 3);
  EXPECT_LT(procrustes_align(aligned, {target, n, 3}, {moving, n, 3}), 1e-5);
}

TEST(Stability, IdenticalMapsAreFullyStableAndUnrelatedOnesAreNot) {
  const std::size_t n = 100;
  const auto a = gaussian(n, 2, 6);
  const auto b = gaussian(n, 2, 7);
  const Matrix same[] = {{a, n, 2}, {a, n, 2}, {a, n, 2}};
  const auto stable = stability(same);
  EXPECT_DOUBLE_EQ(stable.overall, 1.0);
  ASSERT_EQ(stable.aligned.size(), 3u);
  const Matrix different[] = {{a, n, 2}, {b, n, 2}};
  EXPECT_LT(stability(different).overall, 0.3);
  EXPECT_THROW(stability(std::span(same).first(1)), Error);
}

TEST(Outliers, AFarPointScoresHighest) {
  const std::size_t n = 200;
  auto x = gaussian(n, 5, 8);
  for (std::size_t c = 0; c < 5; ++c) x[17 * 5 + c] += 25.0f;
  const auto scores = outlier_scores({x, n, 5}, {});
  const auto top = std::max_element(scores.begin(), scores.end()) - scores.begin();
  EXPECT_EQ(top, 17);
  EXPECT_GT(scores[17], 3.0f);
  std::size_t flagged = 0;
  for (const auto s : scores) flagged += s > 3.0f;
  EXPECT_LT(flagged, 10u);
}

TEST(Clusters, FindsSeparatedBlobsDeterministically) {
  const std::size_t per = 60, n = 3 * per, d = 8;
  auto x = gaussian(n, d, 9, 0.5f);
  for (std::size_t i = 0; i < n; ++i) x[i * d + (i / per)] += 10.0f;  // blob b shifted on axis b
  const auto result = clusters({x, n, d}, {});
  EXPECT_EQ(result.count, 3u);
  for (std::size_t b = 0; b < 3; ++b) {
    for (std::size_t i = b * per; i < (b + 1) * per; ++i) {
      EXPECT_EQ(result.labels[i], result.labels[b * per]) << i;
    }
  }
  EXPECT_NE(result.labels[0], result.labels[per]);
  EXPECT_NE(result.labels[per], result.labels[2 * per]);
  EXPECT_GT(result.modularity, 0.5);
  EXPECT_EQ(clusters({x, n, d}, {}).labels, result.labels);
}

TEST(Overlap, SameSpaceOverlapsFullyAndNoiseDoesNot) {
  const std::size_t n = 80;
  const auto a = gaussian(n, 16, 10);
  const auto b = gaussian(n, 4, 11);
  const auto same = neighborhood_overlap({a, n, 16}, {a, n, 16}, 10, neighbors::Metric::cosine);
  for (const auto v : same) EXPECT_FLOAT_EQ(v, 1.0f);
  const auto other = neighborhood_overlap({a, n, 16}, {b, n, 4}, 10, neighbors::Metric::euclidean);
  double mean = 0;
  for (const auto v : other) mean += v;
  EXPECT_LT(mean / n, 0.35);
}

}  // namespace
}  // namespace tokmap::analysis
