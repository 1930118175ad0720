#include "tsne/tsne.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "io/io.hpp"

namespace ts = tokmap::tsne;
namespace nb = tokmap::neighbors;

namespace {

const std::string kData = std::string(TOKMAP_TEST_DATA) + "/tsne/";

std::vector<float> blobs(std::size_t n, std::size_t d, int clusters, float spread, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(static_cast<std::size_t>(clusters) * d);
  for (auto& c : centres) c = spread * normal(rng);
  std::vector<float> x(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % static_cast<std::size_t>(clusters);
    for (std::size_t j = 0; j < d; ++j) x[i * d + j] = centres[c * d + j] + normal(rng);
  }
  return x;
}

std::vector<std::vector<double>> read_table(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::vector<double> row;
    double v;
    while (s >> v) row.push_back(v);
    if (!row.empty()) rows.push_back(row);
  }
  return rows;
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double relative_error(const std::vector<float>& approx, const std::vector<float>& exact) {
  double s = 0;
  for (std::size_t e = 0; e < exact.size(); ++e) {
    const double t = static_cast<double>(approx[e]) - exact[e];
    s += t * t;
  }
  return std::sqrt(s) / norm(exact);
}

// Repulsion normalised by Z, the quantity that enters the gradient.
struct Repulsion {
  std::vector<float> force;
  double z = 0;
};

Repulsion repulsion(ts::Method method, const std::vector<float>& y, std::size_t n, int dims,
                    double dof) {
  Repulsion r;
  r.force.resize(y.size());
  if (method == ts::Method::exact) {
    r.z = ts::repulsive_exact(r.force, y, n, dims, dof);
  } else if (method == ts::Method::barnes_hut) {
    r.z = ts::repulsive_barnes_hut(r.force, y, n, dims, dof, 0.5);
  } else {
    const ts::FftParams params = ts::fft_params(ts::TsneOptions{}, dims);
    ts::FftWorkspace workspace;
    r.z = ts::repulsive_fft(r.force, y, n, dims, dof, params, workspace);
  }
  for (auto& f : r.force) f = static_cast<float>(f / r.z);
  return r;
}

// A spread-out embedding like a t-SNE map's: clusters of different sizes over ~[-30, 30].
std::vector<float> embedding_like(std::size_t n, int dims, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> y(n * static_cast<std::size_t>(dims));
  std::vector<float> centres(20 * static_cast<std::size_t>(dims));
  for (auto& c : centres) c = 12.0f * normal(rng);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 20;
    const float s = 0.5f + static_cast<float>(c % 4);
    for (int a = 0; a < dims; ++a) y[i * dims + a] = centres[c * dims + a] + s * normal(rng);
  }
  return y;
}

// Exact k nearest neighbours of y (n, dims) and their squared distances (n, k).
std::pair<nb::KnnResult, std::vector<float>> neighbors_squared(const std::vector<float>& y,
                                                               std::size_t n, int dims,
                                                               std::size_t k) {
  nb::KnnOptions options;
  options.k = k;
  auto knn = nb::knn(y, n, static_cast<std::size_t>(dims), options);
  std::vector<float> sq(knn.distances.size());
  for (std::size_t e = 0; e < sq.size(); ++e) sq[e] = knn.distances[e] * knn.distances[e];
  return {std::move(knn), std::move(sq)};
}

double pos_agreement(const std::vector<float>& y, std::size_t n, int dims,
                     const std::vector<std::string>& labels, std::size_t k) {
  nb::KnnOptions options;
  options.k = k;
  options.algorithm = nb::Algorithm::exact;
  const auto knn = nb::knn(y, n, static_cast<std::size_t>(dims), options);
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t m = 0; m < k; ++m)
      same += labels[static_cast<std::size_t>(knn.indices[i * k + m])] == labels[i];
  return static_cast<double>(same) / static_cast<double>(n * k);
}

}  // namespace

TEST(Tsne, JointProbabilitiesMatchScikitLearn) {
  const auto table = read_table(kData + "small.tsv");
  const std::size_t n = table.size(), d = table.at(0).size();
  ASSERT_EQ(n, 150u);
  std::vector<float> x;
  for (const auto& row : table)
    for (double v : row) x.push_back(static_cast<float>(v));
  const double perplexity = 5.0;
  const std::size_t k = 15;
  nb::KnnOptions options;
  options.k = k;
  options.algorithm = nb::Algorithm::exact;
  const auto knn = nb::knn(x, n, d, options);
  std::vector<float> sq(knn.distances.size());
  for (std::size_t e = 0; e < sq.size(); ++e) sq[e] = knn.distances[e] * knn.distances[e];
  std::vector<float> conditional(n * k);
  ts::conditional_probabilities(conditional, sq, n, k, perplexity);
  const auto p = ts::joint_probabilities(conditional, knn.indices, n, k);

  std::map<std::pair<int, int>, double> reference;
  for (const auto& row : read_table(kData + "small_P.tsv"))
    reference[{static_cast<int>(row[0]), static_cast<int>(row[1])}] = row[2];
  ASSERT_EQ(p.col.size(), reference.size());
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (auto e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e) {
      const auto it = reference.find({static_cast<int>(i), p.col[e]});
      ASSERT_NE(it, reference.end())
          << "entry (" << i << ", " << p.col[e] << ") not in sklearn's P";
      EXPECT_NEAR(p.val[e], it->second, 1e-4 * it->second + 1e-9) << i << ", " << p.col[e];
      total += p.val[e];
    }
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(Tsne, PerplexityCalibrationHitsTarget) {
  const std::size_t n = 300, d = 5, k = 45;
  const auto x = blobs(n, d, 4, 3.0f, 7);
  nb::KnnOptions options;
  options.k = k;
  const auto knn = nb::knn(x, n, d, options);
  std::vector<float> sq(n * k);
  for (std::size_t e = 0; e < sq.size(); ++e) sq[e] = knn.distances[e] * knn.distances[e];
  std::vector<float> conditional(n * k);
  ts::conditional_probabilities(conditional, sq, n, k, 15.0);
  for (std::size_t i = 0; i < n; ++i) {
    double h = 0, s = 0;
    for (std::size_t m = 0; m < k; ++m) {
      const double pm = conditional[i * k + m];
      s += pm;
      if (pm > 0) h -= pm * std::log(pm);
    }
    EXPECT_NEAR(s, 1.0, 1e-5);
    EXPECT_NEAR(std::exp(h), 15.0, 15.0 * 1e-3);
  }
}

// Stated bounds (relative L2 error of the Z-normalised repulsion over all points, and relative
// error of Z), on a 3,000-point map-like layout (20 clusters of width 0.5 to 3.5; 2D spans
// about 80 units, 3D about 25):
//   Barnes-Hut, theta 0.5:                      force < 2e-2, Z < 1e-2   (2D and 3D)
//   FFT, default grid (1 box/unit, 3 nodes/box): force < 5e-2, Z < 5e-3   (2D and 3D)
// (FIt-SNE's own default grid has the same accuracy.)
TEST(Tsne, ApproximateRepulsionMatchesExact) {
  const std::size_t n = 3000;
  for (int dims : {2, 3}) {
    for (double dof : {1.0, 0.6}) {
      auto y = embedding_like(n, dims, 11);
      if (dims == 3)
        for (auto& v : y) v *= 0.3f;  // keeps the 3-D FFT grid small enough for a unit test
      const auto exact = repulsion(ts::Method::exact, y, n, dims, dof);
      const auto bh = repulsion(ts::Method::barnes_hut, y, n, dims, dof);
      const auto fft = repulsion(ts::Method::fft, y, n, dims, dof);
      SCOPED_TRACE("dims " + std::to_string(dims) + " dof " + std::to_string(dof));
      EXPECT_LT(relative_error(bh.force, exact.force), 2e-2);
      EXPECT_LT(std::abs(bh.z - exact.z) / exact.z, 1e-2);
      EXPECT_LT(relative_error(fft.force, exact.force), 5e-2);
      EXPECT_LT(std::abs(fft.z - exact.z) / exact.z, 5e-3);
      std::printf("dims %d dof %.1f: BH force %.2e Z %.2e | FFT force %.2e Z %.2e\n", dims, dof,
                  relative_error(bh.force, exact.force), std::abs(bh.z - exact.z) / exact.z,
                  relative_error(fft.force, exact.force), std::abs(fft.z - exact.z) / exact.z);
    }
  }
}

// Kernel splitting (a coarse grid for the smooth far part, exact sums inside the near radius),
// forced at every radius the cost model may pick: it must be at least as accurate as the fine
// grid. Measured here (n 3000): force error 0.06-1.1% in 2D, 0.09-1.4% in 3D; Z error < 1e-3.
TEST(Tsne, SplitKernelRepulsionMatchesExact) {
  const std::size_t n = 3000;
  for (int dims : {2, 3}) {
    for (double dof : {1.0, 0.6}) {
      const auto y = embedding_like(n, dims, 12);
      const auto exact = repulsion(ts::Method::exact, y, n, dims, dof);
      for (double radius : {2.0, 4.0, 8.0, 16.0}) {
        ts::FftParams params = ts::fft_params(ts::TsneOptions{}, dims);
        params.near_radius = radius;
        params.split_box = radius;
        params.force_split = true;
        Repulsion fft;
        fft.force.resize(y.size());
        ts::FftWorkspace workspace;
        fft.z = ts::repulsive_fft(fft.force, y, n, dims, dof, params, workspace);
        for (auto& f : fft.force) f = static_cast<float>(f / fft.z);
        const double force_error = relative_error(fft.force, exact.force);
        const double z_error = std::abs(fft.z - exact.z) / exact.z;
        std::printf("dims %d dof %.1f radius %4.1f: force %.2e Z %.2e\n", dims, dof, radius,
                    force_error, z_error);
        SCOPED_TRACE("dims " + std::to_string(dims) + " dof " + std::to_string(dof) + " radius " +
                     std::to_string(radius));
        EXPECT_LT(force_error, 3e-2);
        EXPECT_LT(z_error, 2e-3);
      }
    }
  }
}

// The near field of a split kernel (cell lists trimmed to each point's reach) against the same
// per-pair terms summed over all pairs: 2D and 3D, 1 to 2,000 points, clustered maps, lattices
// whose points lie on the column and slab boundaries (spacing r_c / 4, half of them doubled)
// and maps with many exact duplicates. Degree 0 makes a missed pair visible: its term
// w - w(r_c^2) does not vanish as fast near the cutoff as the default degree 1's does.
TEST(Tsne, NearFieldMatchesAllPairs) {
  const auto lattice = [](int dims, int per_side, float spacing) {
    std::vector<float> y;
    const int count = dims == 2 ? per_side * per_side : per_side * per_side * per_side;
    for (int q = 0; q < count; ++q) {
      std::vector<float> point;
      int rest = q;
      for (int a = 0; a < dims; ++a) {
        point.push_back(static_cast<float>(rest % per_side) * spacing);
        rest /= per_side;
      }
      for (int copy = 0; copy < (q % 2 == 0 ? 2 : 1); ++copy)
        y.insert(y.end(), point.begin(), point.end());
    }
    return y;
  };
  struct Case {
    std::string name;
    int dims;
    std::vector<float> y;
    double radius;
  };
  std::vector<Case> cases;
  for (int dims : {2, 3}) {
    for (std::size_t n : {1, 2, 7, 300, 2000}) {
      auto y = embedding_like(n, dims, 31);
      cases.push_back({"clusters n " + std::to_string(n), dims, y, 4.0});
      cases.push_back({"clusters n " + std::to_string(n) + " wide radius", dims, y, 16.0});
    }
    cases.push_back({"lattice", dims, lattice(dims, dims == 2 ? 24 : 9, 1.0f), 4.0});
    cases.push_back({"lattice, radius on the diagonal", dims,
                     lattice(dims, dims == 2 ? 20 : 8, 1.0f), std::sqrt(2.0f)});
    auto dup = embedding_like(500, dims, 32);
    for (std::size_t i = 250; i < 500; ++i)
      for (int a = 0; a < dims; ++a) dup[i * dims + a] = dup[(i % 25) * dims + a];
    cases.push_back({"duplicates", dims, dup, 4.0});
  }
  for (const auto& c : cases) {
    const std::size_t n = c.y.size() / static_cast<std::size_t>(c.dims);
    for (const auto& [dof, degree] : {std::pair{1.0, 0}, {1.0, 1}, {1.0, 3}, {0.6, 1}}) {
      SCOPED_TRACE(c.name + " dims " + std::to_string(c.dims) + " dof " + std::to_string(dof) +
                   " degree " + std::to_string(degree));
      std::vector<float> fast(c.y.size(), 0.5f), reference(c.y.size(), 0.5f);
      const double z = ts::near_field_forces(fast, c.y, n, c.dims, dof, c.radius, degree, 1);
      const double z_ref =
          ts::near_field_forces_naive(reference, c.y, n, c.dims, dof, c.radius, degree);
      EXPECT_NEAR(z, z_ref, 1e-6 * std::abs(z_ref) + 1e-9);
      double worst = 0.0;
      for (std::size_t e = 0; e < fast.size(); ++e)
        worst = std::max(worst, std::abs(static_cast<double>(fast[e]) - reference[e]) /
                                    (1e-4 * std::abs(reference[e]) + 1e-5));
      EXPECT_LE(worst, 1.0);
      std::vector<float> threaded(c.y.size(), 0.5f);
      const double z_threaded =
          ts::near_field_forces(threaded, c.y, n, c.dims, dof, c.radius, degree, 3);
      EXPECT_EQ(z, z_threaded);
      EXPECT_EQ(fast, threaded);
    }
  }
}

// The fused exact pass (dense P rows, one loop) against the two reference kernels on an
// n-point embedding, at the given relative tolerances.
static void expect_fused_matches_separate(std::size_t n, unsigned seed, double att_tolerance,
                                          double rep_tolerance, double z_tolerance) {
  for (int dims : {1, 2, 3}) {
    auto y = embedding_like(n, dims, seed);
    const auto [knn, sq] = neighbors_squared(y, n, dims, 30);
    std::vector<float> conditional(n * 30);
    ts::conditional_probabilities(conditional, sq, n, 30, 10.0, 1);
    const auto p = ts::joint_probabilities(conditional, knn.indices, n, 30);
    std::vector<float> att(y.size()), rep(y.size()), att_ref(y.size()), rep_ref(y.size());
    const double z = ts::exact_forces_fused(att, rep, p, y, dims, 12.0);
    ts::attractive_forces(att_ref, p, y, dims, 12.0, 1.0);
    const double z_ref = ts::repulsive_exact(rep_ref, y, n, dims, 1.0);
    SCOPED_TRACE("n " + std::to_string(n) + " dims " + std::to_string(dims));
    EXPECT_LT(relative_error(att, att_ref), att_tolerance);
    EXPECT_LT(relative_error(rep, rep_ref), rep_tolerance);
    EXPECT_NEAR(z, z_ref, z_tolerance * z_ref);
  }
}

// In double up to kFusedDoubleMaxPoints points.
TEST(Tsne, FusedExactForcesMatchSeparateKernels) {
  expect_fused_matches_separate(ts::kFusedDoubleMaxPoints, 31, 1e-5, 1e-6, 1e-9);
}

// Above it in float per block of 512 pairs: float accuracy, also across block ends.
TEST(Tsne, FusedExactForcesInFloatMatchSeparateKernels) {
  for (const std::size_t n : {ts::kFusedDoubleMaxPoints + 1, std::size_t{1500}})
    expect_fused_matches_separate(n, 37, 1e-5, 1e-5, 1e-6);
}

TEST(Tsne, FullGradientMatchesExactOnSmallEmbedding) {
  // Early-optimisation geometry: everything within a unit-sized blob.
  const std::size_t n = 800, d = 10;
  const auto x = blobs(n, d, 5, 3.0f, 5);
  nb::KnnOptions options;
  options.k = 30;
  const auto knn = nb::knn(x, n, d, options);
  std::vector<float> sq(n * 30), conditional(n * 30);
  for (std::size_t e = 0; e < sq.size(); ++e) sq[e] = knn.distances[e] * knn.distances[e];
  ts::conditional_probabilities(conditional, sq, n, 30, 10.0);
  const auto p = ts::joint_probabilities(conditional, knn.indices, n, 30);
  for (int dims : {2, 3}) {
    auto y = embedding_like(n, dims, 3);
    for (auto& v : y) v *= 0.05f;
    ts::TsneOptions topt;
    std::vector<float> ge(y.size()), gb(y.size()), gf(y.size());
    ts::gradient(ge, p, y, dims, 12.0, 1.0, ts::Method::exact, topt);
    ts::gradient(gb, p, y, dims, 12.0, 1.0, ts::Method::barnes_hut, topt);
    ts::gradient(gf, p, y, dims, 12.0, 1.0, ts::Method::fft, topt);
    EXPECT_LT(relative_error(gb, ge), 2e-2) << dims;
    EXPECT_LT(relative_error(gf, ge), 1e-2) << dims;
  }
}

TEST(Tsne, BarnesHutSurvivesExactDuplicates) {
  // 500 points on 5 distinct locations, plus a few distinct ones.
  const std::size_t n = 520;
  for (int dims : {2, 3}) {
    std::vector<float> y(n * dims);
    for (std::size_t i = 0; i < n; ++i)
      for (int a = 0; a < dims; ++a)
        y[i * dims + a] = i < 500 ? static_cast<float>((i % 5) * (a + 1)) : 0.01f * i + a;
    const auto exact = repulsion(ts::Method::exact, y, n, dims, 1.0);
    const auto bh = repulsion(ts::Method::barnes_hut, y, n, dims, 1.0);
    const auto fft = repulsion(ts::Method::fft, y, n, dims, 1.0);
    for (float f : bh.force) ASSERT_TRUE(std::isfinite(f));
    EXPECT_LT(relative_error(bh.force, exact.force), 3e-2);
    EXPECT_LT(std::abs(bh.z - exact.z) / exact.z, 5e-3);
    // The FFT interpolates the near field, so 100 coincident points per site (Z dominated by
    // w(0) = 1 pairs) cost accuracy; it must stay finite and usable.
    for (float f : fft.force) ASSERT_TRUE(std::isfinite(f));
    EXPECT_LT(std::abs(fft.z - exact.z) / exact.z, 1.0);
  }
}

TEST(Tsne, KlDecreasesAndCallbackSeesEveryReport) {
  // Above 1,000 points, where bh and fft are not replaced by the (cheaper) exact gradient.
  const std::size_t n = 1200, d = 10;
  const auto x = blobs(n, d, 6, 4.0f, 9);
  for (auto method : {ts::Method::exact, ts::Method::barnes_hut, ts::Method::fft}) {
    ts::TsneOptions options;
    options.perplexity = 20;
    options.method = method;
    options.iterations = 400;
    options.early_exaggeration_iterations = 150;
    std::vector<std::pair<int, double>> reports;
    const auto result = ts::run_tsne(x, n, d, options, [&](const ts::IterationReport& r) {
      EXPECT_EQ(r.embedding.size(), n * 2);
      EXPECT_TRUE(r.kl_exact);
      reports.emplace_back(r.iteration, r.kl);
      return true;
    });
    ASSERT_EQ(reports.size(), 8u);
    EXPECT_EQ(reports.back().first, 400);
    EXPECT_DOUBLE_EQ(result.kl, reports.back().second);
    // After early exaggeration (iteration 150) the KL goes down, report to report.
    for (std::size_t r = 3; r < reports.size(); ++r)
      EXPECT_LE(reports[r].second, reports[r - 1].second + 1e-3) << ts::method_name(method);
    EXPECT_LT(reports.back().second, reports[2].second);
    EXPECT_LT(result.kl, 1.3) << ts::method_name(method);  // measured 1.23-1.24 at n = 1200
  }
}

TEST(Tsne, CallbackCanStop) {
  const auto x = blobs(200, 4, 2, 3.0f, 1);
  ts::TsneOptions options;
  options.perplexity = 10;
  const auto result = ts::run_tsne(x, 200, 4, options,
                                   [](const ts::IterationReport& r) { return r.iteration < 100; });
  EXPECT_TRUE(result.stopped);
  EXPECT_EQ(result.iterations, 100);
  EXPECT_EQ(result.embedding.size(), 400u);
}

TEST(Tsne, SameSeedSameBytesForAnyThreadCount) {
  // d > 50: PCA on; n above 1,000, where bh and fft run as such.
  const std::size_t n = 1200, d = 60;
  const auto x = blobs(n, d, 7, 3.0f, 4);
  for (auto method : {ts::Method::exact, ts::Method::barnes_hut, ts::Method::fft}) {
    for (int dims : {2, 3}) {
      // (3-D FFT is covered by KernelsBitIdenticalAcrossThreadCounts; its grid is slow here.)
      if (method != ts::Method::barnes_hut && dims == 3) continue;
      ts::TsneOptions options;
      options.method = method;
      options.dims = dims;
      options.iterations = 60;
      options.early_exaggeration_iterations = 30;
      options.seed = 42;
      options.threads = 1;
      const auto one = ts::run_tsne(x, n, d, options);
      options.threads = 3;
      const auto three = ts::run_tsne(x, n, d, options);
      EXPECT_EQ(one.embedding, three.embedding) << ts::method_name(method) << " " << dims;
    }
  }
  ts::TsneOptions options;
  options.iterations = 40;
  options.early_exaggeration_iterations = 20;
  options.init = ts::Init::random;
  options.seed = 7;
  const auto r1 = ts::run_tsne(x, n, d, options);
  const auto r2 = ts::run_tsne(x, n, d, options);
  EXPECT_EQ(r1.embedding, r2.embedding);
  options.seed = 8;
  EXPECT_NE(r1.embedding, ts::run_tsne(x, n, d, options).embedding);
}

// The parallel kernels (used above 4,096 points) give the same bytes for 1, 2 and 3 threads.
TEST(Tsne, KernelsBitIdenticalAcrossThreadCounts) {
  const std::size_t n = 5000;
  for (int dims : {2, 3}) {
    auto y = embedding_like(n, dims, 21);
    if (dims == 3)
      for (auto& v : y) v *= 0.3f;
    const auto [knn, sq] = neighbors_squared(y, n, dims, 10);
    std::vector<float> conditional(n * 10);
    ts::conditional_probabilities(conditional, sq, n, 10, 3.0, 1);
    std::vector<float> c3(n * 10);
    ts::conditional_probabilities(c3, sq, n, 10, 3.0, 3);
    EXPECT_EQ(conditional, c3);
    const auto p = ts::joint_probabilities(conditional, knn.indices, n, 10);
    ts::FftParams params = ts::fft_params(ts::TsneOptions{}, dims);
    ts::FftParams split = params;
    split.force_split = true;
    std::vector<std::vector<float>> forces;
    std::vector<double> zs;
    for (int threads : {1, 2, 3}) {
      std::vector<float> f(y.size());
      std::vector<float> all;
      zs.push_back(ts::repulsive_barnes_hut(f, y, n, dims, 1.0, 0.5, threads));
      all.insert(all.end(), f.begin(), f.end());
      ts::FftWorkspace workspace;
      zs.push_back(ts::repulsive_fft(f, y, n, dims, 1.0, params, workspace, threads));
      all.insert(all.end(), f.begin(), f.end());
      ts::FftWorkspace split_workspace;
      zs.push_back(ts::repulsive_fft(f, y, n, dims, 1.0, split, split_workspace, threads));
      all.insert(all.end(), f.begin(), f.end());
      ts::attractive_forces(f, p, y, dims, 12.0, 1.0, threads);
      all.insert(all.end(), f.begin(), f.end());
      if (dims == 2) {
        zs.push_back(ts::repulsive_exact(f, y, n, dims, 1.0, threads));
        all.insert(all.end(), f.begin(), f.end());
        zs.push_back(ts::kl_divergence(p, y, dims, 1.0, 0.0, threads));
      }
      forces.push_back(all);
    }
    EXPECT_EQ(forces[0], forces[1]) << dims;
    EXPECT_EQ(forces[0], forces[2]) << dims;
    const std::size_t per = zs.size() / 3;
    for (std::size_t q = 0; q < per; ++q) {
      EXPECT_EQ(zs[q], zs[per + q]) << dims << " " << q;
      EXPECT_EQ(zs[q], zs[2 * per + q]) << dims << " " << q;
    }
  }
}

TEST(Tsne, PcaInitHasStd1e4OnFirstAxis) {
  const std::size_t n = 300, d = 6;
  const auto x = blobs(n, d, 3, 3.0f, 2);
  ts::TsneOptions options;
  options.iterations = 0;
  const auto result = ts::run_tsne(x, n, d, options);
  double mean = 0, var = 0;
  for (std::size_t i = 0; i < n; ++i) mean += result.embedding[i * 2];
  mean /= n;
  for (std::size_t i = 0; i < n; ++i)
    var += (result.embedding[i * 2] - mean) * (result.embedding[i * 2] - mean);
  EXPECT_NEAR(std::sqrt(var / n), 1e-4, 1e-7);
}

TEST(Tsne, ErrorsAndWarnings) {
  ts::TsneOptions options;
  options.iterations = 10;
  std::vector<float> one = {1, 2, 3};
  EXPECT_THROW(ts::run_tsne(one, 1, 3, options), tokmap::Error);
  std::vector<float> same(50 * 3, 2.5f);
  try {
    ts::run_tsne(same, 50, 3, options);
    FAIL() << "identical rows accepted";
  } catch (const tokmap::Error& e) {
    EXPECT_NE(std::string(e.what()).find("identical"), std::string::npos);
    EXPECT_EQ(e.kind(), tokmap::ErrorKind::runtime);
  }
  auto x = blobs(20, 3, 2, 3.0f, 1);
  const auto result = ts::run_tsne(x, 20, 3, options);  // perplexity 30 >= 20
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_NE(result.warnings[0].find("30"), std::string::npos);
  EXPECT_NE(result.warnings[0].find("6.33"), std::string::npos);
  EXPECT_NEAR(result.perplexity, 19.0 / 3.0, 1e-12);
  EXPECT_EQ(result.neighbors, 19u);
  x[7 * 3 + 1] = std::nanf("");
  try {
    ts::run_tsne(x, 20, 3, options);
    FAIL() << "NaN accepted";
  } catch (const tokmap::Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 8"), std::string::npos) << e.what();
  }
  x[7 * 3 + 1] = 0.0f;
  options.dims = 4;
  try {
    ts::run_tsne(x, 20, 3, options);
    FAIL();
  } catch (const tokmap::Error& e) {
    EXPECT_EQ(e.kind(), tokmap::ErrorKind::usage);
  }
  // Two points work (perplexity lowered to 1/3).
  std::vector<float> two = {0, 0, 1, 1};
  options.dims = 2;
  EXPECT_NO_THROW(ts::run_tsne(two, 2, 2, options));
}

// 10-NN part-of-speech agreement of the 2-D map on 2,000 Brown tokens is within 0.01 of (or
// better than) scikit-learn's (mean of 3 seeds, tests/data/tsne/make_reference.py).
TEST(Tsne, BrownPartOfSpeechAgreementMatchesScikitLearn) {
  const auto matrix = tokmap::io::read_npy(kData + "brown-2000.npy");
  std::vector<std::string> labels;
  {
    std::ifstream in(kData + "brown-2000.pos.tsv");
    std::string line;
    while (std::getline(in, line)) labels.push_back(line);
  }
  ASSERT_EQ(labels.size(), matrix.rows);
  const auto reference = read_table(kData + "brown-2000.sklearn.tsv");  // header line skipped
  ASSERT_EQ(reference.size(), 1u);
  const double sklearn = reference[0][3];
  ts::TsneOptions options;
  const auto result = ts::run_tsne(matrix.data, matrix.rows, matrix.cols, options);
  const double ours = pos_agreement(result.embedding, matrix.rows, 2, labels, 10);
  std::printf("10-NN POS agreement: tokmap %.4f, scikit-learn %.4f (KL %.4f)\n", ours, sklearn,
              result.kl);
  EXPECT_GE(ours, sklearn - 0.01);
}
