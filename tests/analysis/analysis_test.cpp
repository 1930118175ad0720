// Map-quality numbers against scikit-learn, and properties of alignment, stability, outliers,
// clusters and cross-space overlap.
#include "analysis/analysis.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
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

TEST(Jaccard, MatchesTheNaiveReferenceOnAPartlyChangedSpace) {
  // Layer b is layer a plus noise: neighbourhoods change partly, so every Jaccard value between 0
  // and 1 occurs, and both metrics are exercised.
  const std::size_t n = 60, d = 12;
  auto a = gaussian(n, d, 20);
  auto b = a;
  const auto noise = gaussian(n, d, 21, 0.6f);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] += noise[i];
  for (const auto metric : {neighbors::Metric::cosine, neighbors::Metric::euclidean}) {
    for (const std::size_t k : {std::size_t(1), std::size_t(5), std::size_t(10), n}) {
      const auto fast = neighborhood_jaccard({a, n, d}, {b, n, d}, k, metric);
      const auto naive = neighborhood_jaccard_naive({a, n, d}, {b, n, d}, k, metric);
      ASSERT_EQ(fast.size(), n);
      for (std::size_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(fast[i], naive[i]) << "point " << i;
    }
  }
  // Same space: 1 everywhere; k = n - 1: every other point, so 1 as well.
  for (const auto v : neighborhood_jaccard({a, n, d}, {a, n, d}, 10, neighbors::Metric::cosine))
    EXPECT_FLOAT_EQ(v, 1.0f);
  for (const auto v : neighborhood_jaccard({a, n, d}, {b, n, d}, n, neighbors::Metric::cosine))
    EXPECT_FLOAT_EQ(v, 1.0f);
  const auto partly = neighborhood_jaccard({a, n, d}, {b, n, d}, 10, neighbors::Metric::cosine);
  EXPECT_LT(*std::min_element(partly.begin(), partly.end()), 0.5f);
  EXPECT_THROW(neighborhood_jaccard({a, 1, d}, {b, 1, d}, 10, neighbors::Metric::cosine), Error);
  // From neighbour lists found once (a chain of layers): the same values.
  const auto na = nearest_neighbors({a, n, d}, 10, neighbors::Metric::cosine);
  const auto nb = nearest_neighbors({b, n, d}, 10, neighbors::Metric::cosine);
  EXPECT_EQ(jaccard_of_neighbors(na, nb, 10), partly);
  EXPECT_THROW(jaccard_of_neighbors(na, std::vector<std::int32_t>(nb.begin(), nb.end() - 1), 10),
               Error);
  EXPECT_THROW(nearest_neighbors({a, n, d}, n, neighbors::Metric::cosine), Error);
}

TEST(Jaccard, IsSharedOverTwiceKMinusShared) {
  // 4 points on a line; b moves point 0 next to point 2: with k = 1, point 0's neighbour is 1 in
  // a and 2 in b.
  const std::vector<float> a{0, 1, 3, 7};
  const std::vector<float> b{2.9f, 1, 3, 7};
  const auto j = neighborhood_jaccard({a, 4, 1}, {b, 4, 1}, 1, neighbors::Metric::euclidean);
  EXPECT_FLOAT_EQ(j[0], 0.0f);  // {1} vs {2}
  EXPECT_FLOAT_EQ(j[3], 1.0f);  // {2} both
  const auto j2 = neighborhood_jaccard({a, 4, 1}, {b, 4, 1}, 2, neighbors::Metric::euclidean);
  // Point 0: {1, 2} vs {2, 1}: 1; point 3: {2, 1} vs {2, 0}: 1 / 3.
  EXPECT_FLOAT_EQ(j2[0], 1.0f);
  EXPECT_FLOAT_EQ(j2[3], 1.0f / 3.0f);
}

TEST(MostChanged, LowestFirstTiesByIndexNonFiniteLast) {
  const std::vector<float> s{0.5f, std::numeric_limits<float>::quiet_NaN(), 0.1f, 0.5f, 0.0f, 1.0f};
  EXPECT_EQ(most_changed(s, 10), (std::vector<std::int32_t>{4, 2, 0, 3, 5, 1}));
  EXPECT_EQ(most_changed(s, 3), (std::vector<std::int32_t>{4, 2, 0}));
  EXPECT_TRUE(most_changed(s, 0).empty());
}

// --- Map assessment -----------------------------------------------------------------------------

// n points in `clusters` well-separated Gaussian blobs on a plane, embedded isometrically into
// d = 10 dimensions (so the plane itself is a faithful map): returns (original, map).
std::pair<std::vector<float>, std::vector<float>> planar_data(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> map(n * 2), original(n * 10, 0.0f);
  for (std::size_t i = 0; i < n; ++i) {
    const float angle = 2.0f * 3.14159265f * static_cast<float>(i % 5) / 5.0f;
    map[2 * i] = 20.0f * std::cos(angle) + 2.0f * normal(rng);
    map[2 * i + 1] = 20.0f * std::sin(angle) + 2.0f * normal(rng);
    // x -> axes 0 and 3, y -> axes 1 and 7 (orthonormal directions), plus nothing else.
    original[i * 10 + 0] = map[2 * i] * 0.6f;
    original[i * 10 + 3] = map[2 * i] * 0.8f;
    original[i * 10 + 1] = map[2 * i + 1] * 0.8f;
    original[i * 10 + 7] = map[2 * i + 1] * -0.6f;
  }
  return {original, map};
}

MapFacts facts_of(const std::vector<float>& original, const std::vector<float>& map, std::size_t n,
                  std::size_t dims, double kl = 0.3, double kl_uniform = 1.5) {
  const auto q = map_quality({original, n, 10}, {map, n, dims}, {});
  MapFacts facts;
  facts.kl = kl;
  facts.kl_uniform = kl_uniform;
  facts.trustworthiness = q.trustworthiness;
  facts.continuity = q.continuity;
  facts.knn_preservation = q.knn_preservation;
  facts.k = q.k;
  return facts;
}

bool has_flag(const MapAssessment& a, const std::string& flag) {
  return std::find(a.flags.begin(), a.flags.end(), flag) != a.flags.end();
}

std::string describe(const MapAssessment& a) {
  std::string out = std::string(rating_name(a.rating)) + ":";
  for (const auto& r : a.reasons) out += " [" + r + "]";
  return out;
}

TEST(AssessMap, AGoodMapIsGoodWithoutFlags) {
  const std::size_t n = 200;
  const auto [original, map] = planar_data(n, 20);
  const auto a = assess_map({map, n, 2}, facts_of(original, map, n, 2), {original, n, 10});
  EXPECT_EQ(a.rating, Rating::good) << describe(a);
  EXPECT_TRUE(a.flags.empty()) << describe(a);
  EXPECT_EQ(a.effective_dims, 2);
  ASSERT_EQ(a.spread.size(), 2u);
  EXPECT_GT(a.spread[1] / a.spread[0], 0.5);
  EXPECT_DOUBLE_EQ(a.coincident_fraction, 0.0);
  EXPECT_NEAR(a.kl_ratio, 0.2, 1e-12);
  EXPECT_EQ(a.kl_rating, Rating::good);
  EXPECT_EQ(a.trustworthiness_rating, Rating::good);
  EXPECT_TRUE(a.neighbors_meaningful);
}

TEST(AssessMap, APointIsDegenerate) {
  const std::size_t n = 50;
  const auto [original, good] = planar_data(n, 21);
  // Every point at (3, -2) up to float noise, as a collapsed optimisation leaves them.
  std::vector<float> map(n * 2);
  const auto noise = gaussian(n, 2, 22, 1e-6f);
  for (std::size_t i = 0; i < n; ++i) {
    map[2 * i] = 3.0f + noise[2 * i];
    map[2 * i + 1] = -2.0f + noise[2 * i + 1];
  }
  const auto a = assess_map({map, n, 2}, facts_of(original, map, n, 2, 1.99, 1.99));
  EXPECT_EQ(a.rating, Rating::degenerate);
  EXPECT_TRUE(has_flag(a, "point")) << describe(a);
  EXPECT_TRUE(has_flag(a, "uniform_kl")) << describe(a);
  EXPECT_EQ(a.effective_dims, 0);
  EXPECT_DOUBLE_EQ(a.coincident_fraction, 1.0);
  EXPECT_EQ(a.kl_rating, Rating::degenerate);
  EXPECT_THAT(a.reasons.front(), ::testing::HasSubstr("same place"));
  // Exactly equal coordinates too, and a tiny map (1e-4 across, a t-SNE initialisation).
  const std::vector<float> same(n * 3, 7.5f);
  EXPECT_TRUE(has_flag(assess_map({same, n, 3}, {}), "point"));
  auto tiny = gaussian(n, 2, 23, 1e-4f);
  EXPECT_TRUE(has_flag(assess_map({tiny, n, 2}, {}), "point"));
}

TEST(AssessMap, AStraightLineIsDegenerateIn2DAnd3D) {
  const std::size_t n = 120;
  const auto [original, good] = planar_data(n, 24);
  for (const std::size_t dims : {2u, 3u}) {
    // Points spread along (1, 2[, -1]) over tens of units, 0.1% of that across.
    std::vector<float> map(n * dims);
    const auto along = gaussian(n, 1, 25, 15.0f);
    const auto across = gaussian(n, dims, 26, 0.01f);
    const float dir[3] = {1.0f, 2.0f, -1.0f};
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < dims; ++c)
        map[i * dims + c] = along[i] * dir[c] + across[i * dims + c];
    }
    const auto a = assess_map({map, n, dims}, facts_of(original, map, n, dims), {original, n, 10});
    EXPECT_EQ(a.rating, Rating::degenerate) << dims << "D " << describe(a);
    EXPECT_TRUE(has_flag(a, "line")) << describe(a);
    EXPECT_EQ(a.effective_dims, 1);
    EXPECT_THAT(a.reasons.front(),
                ::testing::HasSubstr(std::to_string(dims) + "D map is a straight line"));
  }
  // 20:1 is suspicious (fair: one-dimensional data give such ribbons), not yet a line.
  std::vector<float> map(n * 2);
  const auto along = gaussian(n, 1, 27, 15.0f);
  const auto across = gaussian(n, 1, 28, 0.8f);
  for (std::size_t i = 0; i < n; ++i) {
    map[2 * i] = along[i];
    map[2 * i + 1] = across[i];
  }
  const auto a = assess_map({map, n, 2}, {});
  EXPECT_TRUE(has_flag(a, "elongated")) << describe(a);
  EXPECT_FALSE(has_flag(a, "line"));
  EXPECT_EQ(a.rating, Rating::fair);
}

TEST(AssessMap, AFlat3DMapIsAPlane) {
  const std::size_t n = 200;
  const auto [original, flat] = planar_data(n, 29);
  // The faithful planar map, tilted into 3D, with a depth of 0.05% of its extent.
  std::vector<float> map(n * 3);
  const auto depth = gaussian(n, 1, 30, 0.01f);
  for (std::size_t i = 0; i < n; ++i) {
    map[3 * i] = flat[2 * i];
    map[3 * i + 1] = 0.6f * flat[2 * i + 1] + 0.8f * depth[i];
    map[3 * i + 2] = 0.8f * flat[2 * i + 1] - 0.6f * depth[i];
  }
  const auto a = assess_map({map, n, 3}, facts_of(original, map, n, 3), {original, n, 10});
  EXPECT_TRUE(has_flag(a, "plane")) << describe(a);
  EXPECT_FALSE(has_flag(a, "line"));
  EXPECT_EQ(a.effective_dims, 2);
  EXPECT_EQ(a.rating, Rating::poor) << describe(a);
  EXPECT_THAT(describe(a), ::testing::HasSubstr("3D map is flat"));
  // A real third axis: no flag.
  const auto round = gaussian(n, 3, 31, 10.0f);
  EXPECT_EQ(assess_map({round, n, 3}, {}).effective_dims, 3);
  EXPECT_TRUE(assess_map({round, n, 3}, {}).flags.empty());
}

TEST(AssessMap, ARandomMapScoresRandomTrustworthinessAndIsDegenerate) {
  const std::size_t n = 300;
  const auto [original, good] = planar_data(n, 32);
  double mean = 0;
  for (unsigned seed = 0; seed < 5; ++seed) {
    const auto random = gaussian(n, 2, 100 + seed, 10.0f);
    const auto facts = facts_of(original, random, n, 2, 1.6, 1.5);
    mean += facts.trustworthiness / 5;
    const auto a = assess_map({random, n, 2}, facts, {original, n, 10});
    EXPECT_EQ(a.rating, Rating::degenerate) << describe(a);
    EXPECT_TRUE(has_flag(a, "random_neighbors")) << describe(a);
    EXPECT_EQ(a.trustworthiness_rating, Rating::degenerate);
    EXPECT_EQ(a.effective_dims, 2);  // its geometry is fine: only the numbers give it away
  }
  // The expected value the assessment compares with is what random maps do score.
  EXPECT_NEAR(mean, random_trustworthiness(n, 10), 0.02);
  EXPECT_NEAR(random_trustworthiness(100000, 10), 0.5, 1e-3);
  EXPECT_NEAR(random_trustworthiness(12, 5), 1.0 - 6.0 * 7.0 / (11.0 * 8.0), 1e-12);
}

TEST(AssessMap, KlIsRatedAgainstTheMapWithEveryPointInOnePlace) {
  const std::size_t n = 100;
  const auto [original, map] = planar_data(n, 33);
  auto facts = facts_of(original, map, n, 2);
  for (const auto& [kl, rating] :
       {std::pair{0.4, Rating::good}, std::pair{0.6, Rating::fair}, std::pair{0.8, Rating::poor},
        std::pair{0.95, Rating::degenerate}, std::pair{1.3, Rating::degenerate}}) {
    facts.kl = kl;
    facts.kl_uniform = 1.0;
    const auto a = assess_map({map, n, 2}, facts);
    EXPECT_EQ(a.kl_rating, rating) << kl;
    EXPECT_EQ(a.rating, rating) << kl << " " << describe(a);
    EXPECT_NEAR(a.kl_ratio, kl, 1e-12);
  }
  facts.kl_uniform = std::numeric_limits<double>::quiet_NaN();  // unknown: not rated
  EXPECT_FALSE(assess_map({map, n, 2}, facts).kl_rating.has_value());
}

TEST(AssessMap, TinyMapsSayTheNeighbourNumbersAreNotMeaningful) {
  const std::size_t n = 8;
  const auto [original, map] = planar_data(n, 34);
  const auto facts = facts_of(original, map, n, 2);
  EXPECT_EQ(facts.k, 3u);
  const auto a = assess_map({map, n, 2}, facts, {original, n, 10});
  EXPECT_FALSE(a.neighbors_meaningful);
  EXPECT_FALSE(a.trustworthiness_rating.has_value());
  EXPECT_FALSE(a.continuity_rating.has_value());
  EXPECT_FALSE(a.knn_rating.has_value());
  EXPECT_TRUE(has_flag(a, "few_points"));
  EXPECT_THAT(describe(a), ::testing::HasSubstr("not meaningful"));
  EXPECT_EQ(a.rating, Rating::good);  // nothing is wrong with it; the numbers just say little
  // 12 points are enough.
  const auto [o12, m12] = planar_data(12, 35);
  EXPECT_TRUE(assess_map({m12, 12, 2}, facts_of(o12, m12, 12, 2)).neighbors_meaningful);
}

TEST(AssessMap, RankGradesKeepTheirShareOfTheWayFromRandomForSmallN) {
  // n = 20, k = 9: a random map scores 0.518, so "good" (80% of the way to 1) starts at 0.904.
  const std::size_t n = 20;
  const auto [original, map] = planar_data(n, 38);
  MapFacts facts;
  facts.k = 9;
  facts.continuity = 0.95;
  facts.trustworthiness = 0.9;
  auto a = assess_map({map, n, 2}, facts);
  EXPECT_NEAR(a.random_trustworthiness, 1.0 - 10.0 * 11.0 / (19.0 * 12.0), 1e-12);
  EXPECT_EQ(a.trustworthiness_rating, Rating::fair) << describe(a);
  EXPECT_THAT(describe(a), ::testing::HasSubstr("trustworthiness 0.90 is fair (good from 0.90"));
  facts.trustworthiness = 0.91;
  EXPECT_EQ(assess_map({map, n, 2}, facts).trustworthiness_rating, Rating::good);
  facts.trustworthiness = 0.6;  // within 0.1 of random
  a = assess_map({map, n, 2}, facts);
  EXPECT_EQ(a.rating, Rating::degenerate);
  EXPECT_THAT(describe(a), ::testing::HasSubstr("no better than a random map's (0.52)"));
}

TEST(AssessMap, CoincidentPointsCountUnlessTheyAreNeighboursInTheInput) {
  const std::size_t n = 100;
  auto [original, map] = planar_data(n, 36);
  for (std::size_t i = 0; i < 30; ++i) {  // 30% of the points collapse onto point 0
    map[2 * (i + 1)] = map[0];
    map[2 * (i + 1) + 1] = map[1];
  }
  auto a = assess_map({map, n, 2}, {}, {original, n, 10});
  EXPECT_NEAR(a.coincident_fraction, 0.31, 1e-12);
  EXPECT_TRUE(has_flag(a, "coincident")) << describe(a);
  EXPECT_EQ(a.rating, Rating::poor);
  // The same tokens with identical inputs (repeated tokens at layer 0) may coincide.
  for (std::size_t i = 0; i < 30; ++i)
    std::copy_n(original.begin(), 10, original.begin() + 10 * static_cast<std::ptrdiff_t>(i + 1));
  a = assess_map({map, n, 2}, {}, {original, n, 10});
  EXPECT_DOUBLE_EQ(a.coincident_fraction, 0.0);
  EXPECT_TRUE(a.flags.empty()) << describe(a);
  // Nearly identical inputs (a token repeated in a long text, its state shifted a little by the
  // context) stacked in the map are right too, as long as they are each other's input neighbours:
  // 9 near-copies of point 0 (its 10 nearest) are not counted, 30 are (most of them are not
  // among each other's 10 nearest).
  auto [near_original, near_map] = planar_data(n, 36);
  const auto stack = [&](std::size_t copies) {
    auto o = near_original;
    auto m = near_map;
    for (std::size_t i = 1; i <= copies; ++i) {
      for (std::size_t c = 0; c < 10; ++c) o[10 * i + c] = o[c] + 1e-4f * float(i);
      m[2 * i] = m[0];
      m[2 * i + 1] = m[1];
    }
    return assess_map({m, n, 2}, {}, {o, n, 10});
  };
  EXPECT_DOUBLE_EQ(stack(9).coincident_fraction, 0.0) << describe(stack(9));
  EXPECT_GT(stack(30).coincident_fraction, 0.1);
  // Most points on one spot: degenerate.
  for (std::size_t i = 0; i < 60; ++i) {
    map[2 * (i + 1)] = map[0];
    map[2 * (i + 1) + 1] = map[1];
  }
  EXPECT_EQ(assess_map({map, n, 2}, {}).rating, Rating::degenerate);
}

TEST(AssessMap, NonFiniteCoordinatesAndBadShapes) {
  std::vector<float> map = gaussian(20, 2, 37, 5.0f);
  map[7] = std::numeric_limits<float>::quiet_NaN();
  const auto a = assess_map({map, 20, 2}, {});
  EXPECT_EQ(a.rating, Rating::degenerate);
  EXPECT_TRUE(has_flag(a, "non_finite"));
  EXPECT_THROW(assess_map({map, 20, 4}, {}), Error);
  EXPECT_THROW(assess_map({std::span(map).first(2), 1, 2}, {}), Error);
  EXPECT_STREQ(rating_name(Rating::fair), "fair");
}

}  // namespace
}  // namespace tokmap::analysis
