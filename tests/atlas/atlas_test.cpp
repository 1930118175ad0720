// Atlas: file round trip and validation, placement's batch and thread independence, and the
// held-out re-placement check on a small synthetic corpus (clusters in 24 dimensions).
#include "atlas/atlas.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "io/io.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::atlas {
namespace {

using test_support::error_of;
using test_support::TempDir;
using ::testing::HasSubstr;

constexpr std::size_t kWidth = 24;

// n points in 8 gaussian clusters, two "layers" (the second a rotated, noisier copy).
std::vector<std::vector<float>> corpus(std::size_t n, std::uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> centres(8 * kWidth);
  for (auto& c : centres) c = 4.0f * gauss(rng);
  std::vector<std::vector<float>> layers(2, std::vector<float>(n * kWidth));
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % 8;
    for (std::size_t d = 0; d < kWidth; ++d) {
      const float v = centres[c * kWidth + d] + gauss(rng);
      layers[0][i * kWidth + d] = v + 1.0f;
      layers[1][i * kWidth + (d + 5) % kWidth] = 2.0f * v + 0.5f * gauss(rng);
    }
  }
  return layers;
}

const Atlas& shared_atlas() {
  static const Atlas atlas = [] {
    const std::size_t n = 800;
    BuildOptions o;
    o.dims = {2, 3};
    o.rank = 12;
    o.perplexity = 20;
    o.iterations = 500;
    o.holdout = 100;
    Atlas a = build(corpus(n), {1, 3}, n, kWidth, o);
    a.model = "synthetic";
    a.texts = {"one text"};
    for (std::size_t i = 0; i < n; ++i)
      a.tokens.push_back({static_cast<std::int32_t>(i % 50), "t" + std::to_string(i), 0,
                          static_cast<std::int32_t>(i)});
    return a;
  }();
  return atlas;
}

std::vector<float> rows(const std::vector<float>& m, std::size_t from, std::size_t count) {
  return {m.begin() + from * kWidth, m.begin() + (from + count) * kWidth};
}

TEST(Atlas, BuildFillsEveryLayerAndMap) {
  const auto& a = shared_atlas();
  ASSERT_EQ(a.layers.size(), 2u);
  EXPECT_EQ(a.rank, 12u);
  for (const auto& l : a.layers) {
    ASSERT_EQ(l.maps.size(), 2u);
    EXPECT_EQ(l.features.size(), a.n * a.rank);
    for (const auto& m : l.maps) {
      EXPECT_EQ(m.coords.size(), a.n * m.dims);
      ASSERT_EQ(m.calibration.size(), std::size_t(a.confidence_k) + 1);
      EXPECT_TRUE(std::is_sorted(m.calibration.begin(), m.calibration.end()));
      EXPECT_GT(m.calibration.back(), 0.5f);
    }
  }
}

TEST(Atlas, FileRoundTripIsExact) {
  TempDir dir;
  const auto& a = shared_atlas();
  write(dir / "a.tokmap-atlas", a);
  const Atlas b = read(dir / "a.tokmap-atlas");
  EXPECT_EQ(b.model, a.model);
  EXPECT_EQ(b.n, a.n);
  EXPECT_EQ(b.perplexity, a.perplexity);
  ASSERT_EQ(b.tokens.size(), a.tokens.size());
  EXPECT_EQ(b.tokens[7].display, a.tokens[7].display);
  ASSERT_EQ(b.layers.size(), a.layers.size());
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_EQ(b.layers[l].features, a.layers[l].features);
    EXPECT_EQ(b.layers[l].components, a.layers[l].components);
    for (std::size_t k = 0; k < a.layers[l].maps.size(); ++k) {
      EXPECT_EQ(b.layers[l].maps[k].coords, a.layers[l].maps[k].coords);
      EXPECT_EQ(b.layers[l].maps[k].calibration, a.layers[l].maps[k].calibration);
    }
  }
}

TEST(Atlas, PlacementIsBatchIndependentAndThreadIndependent) {
  const auto& a = shared_atlas();
  const auto fresh = corpus(60, 99);  // new points from other draws of the same clusters? no:
  // other clusters entirely (seed 99), the harder case for determinism of the far field.
  const auto A = rows(fresh[0], 0, 20);
  auto AB = A;
  const auto B = rows(fresh[0], 20, 40);
  AB.insert(AB.end(), B.begin(), B.end());
  PlaceOptions one, two;
  one.threads = 1;
  two.threads = 2;
  const auto alone = place(a, 0, A, 20, one);
  const auto with_b = place(a, 0, AB, 60, two);
  ASSERT_EQ(alone.size(), 2u);
  for (std::size_t k = 0; k < alone.size(); ++k) {
    const std::size_t values = 20 * alone[k].dims;
    ASSERT_EQ(std::memcmp(alone[k].coords.data(), with_b[k].coords.data(), values * 4), 0);
    ASSERT_EQ(std::memcmp(alone[k].confidence.data(), with_b[k].confidence.data(), 20 * 4), 0);
  }
  const auto again = place(a, 0, AB, 60, one);
  for (std::size_t k = 0; k < again.size(); ++k) EXPECT_EQ(again[k].coords, with_b[k].coords);
}

// A held-out "sentence" (40 consecutive corpus rows) placed leave-one-out lands where the full
// map put it: the median displacement is a small part of the map's diameter.
TEST(Atlas, HeldOutRowsLandWhereTheMapPutThem) {
  const auto& a = shared_atlas();
  const auto states = corpus(800);
  std::vector<std::int64_t> self(40);
  for (std::size_t i = 0; i < 40; ++i) self[i] = 300 + static_cast<std::int64_t>(i);
  for (std::size_t l = 0; l < 2; ++l) {
    const auto placed = place(a, l, rows(states[l], 300, 40), 40, {}, self);
    for (std::size_t k = 0; k < placed.size(); ++k) {
      const auto& map = a.layers[l].maps[k];
      std::vector<double> moved;
      for (std::size_t i = 0; i < 40; ++i) {
        double s = 0;
        for (int c = 0; c < map.dims; ++c) {
          const double t =
              placed[k].coords[i * map.dims + c] - map.coords[(300 + i) * map.dims + c];
          s += t * t;
        }
        moved.push_back(std::sqrt(s));
      }
      std::nth_element(moved.begin(), moved.begin() + 20, moved.end());
      const double relative = moved[20] / map_diameter(map, a.n);
      EXPECT_LT(relative, 0.05) << "layer " << l << " dims " << map.dims;
      std::printf("layer %zu, %dD: median displacement %.4f of the diameter\n", l, map.dims,
                  relative);
      float mean_conf = 0;
      for (float c : placed[k].confidence) mean_conf += c / 40;
      EXPECT_GT(mean_conf, 0.3f);
    }
  }
}

// The confidence is calibrated: over held-out corpus tokens (each placed with its own reference
// row left out), the mean confidence is close to the share placed "well" (within the radius of
// the token's own confidence_k-th nearest map neighbour of where the full map put it, the
// build's definition), and well-placed tokens get higher confidences than the others.
TEST(Atlas, ConfidenceIsCalibratedOnHeldOutTokens) {
  const auto& a = shared_atlas();
  const auto states = corpus(800);
  const std::size_t h = 400, l = a.layers.size() - 1;
  std::vector<std::int64_t> self(h);
  for (std::size_t i = 0; i < h; ++i) self[i] = static_cast<std::int64_t>(i);
  const auto placed = place(a, l, rows(states[l], 0, h), h, {}, self);
  for (std::size_t k = 0; k < placed.size(); ++k) {
    const auto& map = a.layers[l].maps[k];
    const int dims = map.dims;
    const auto kc = static_cast<std::size_t>(a.confidence_k);
    double good = 0, conf = 0, conf_good = 0, conf_bad = 0;
    std::size_t n_good = 0, n_bad = 0;
    for (std::size_t i = 0; i < h; ++i) {
      const auto sq = [&](const float* p, const float* q) {
        double s = 0;
        for (int c = 0; c < dims; ++c) s += double(p[c] - q[c]) * (p[c] - q[c]);
        return s;
      };
      const float* home = map.coords.data() + i * dims;
      std::vector<double> d2;
      for (std::size_t j = 0; j < a.n; ++j)
        if (j != i) d2.push_back(sq(home, map.coords.data() + j * dims));
      std::nth_element(d2.begin(), d2.begin() + (kc - 1), d2.end());
      const bool ok = sq(placed[k].coords.data() + i * dims, home) <= d2[kc - 1];
      const double c = placed[k].confidence[i];
      good += ok;
      conf += c;
      (ok ? conf_good : conf_bad) += c;
      ++(ok ? n_good : n_bad);
    }
    good /= double(h);
    conf /= double(h);
    std::printf("%dD: mean confidence %.3f, placed well %.3f (%zu of %zu)\n", dims, conf, good,
                n_good, h);
    EXPECT_NEAR(conf, good, 0.15) << dims << "D";
    if (n_good > 10 && n_bad > 10) {
      EXPECT_GT(conf_good / double(n_good), conf_bad / double(n_bad)) << dims << "D";
    }
  }
}

TEST(Atlas, ReaderNamesTheFileAndTheFault) {
  TempDir dir;
  const auto path = dir / "a.tokmap-atlas";
  write(path, shared_atlas());
  const auto size = std::filesystem::file_size(path);
  std::string bytes = io::read_text_file(path);

  const auto bad = dir / "bad.tokmap-atlas";
  io::write_file_atomically(bad, bytes.substr(0, size / 2));
  EXPECT_THAT(error_of([&] { read(bad); }), HasSubstr(bad.string()));

  // A version the reader does not know.
  std::string v2 = bytes;
  const auto at = v2.find("\"version\":\"1\"");
  ASSERT_NE(at, std::string::npos);
  v2[at + 11] = '2';
  io::write_file_atomically(bad, v2);
  EXPECT_THAT(error_of([&] { read(bad); }), HasSubstr("version '2' is not supported"));

  // A size in the JSON that disagrees with an array.
  std::string wrong = bytes;
  const auto rank = wrong.find("\\\"rank\\\":12");
  ASSERT_NE(rank, std::string::npos);
  wrong[rank + 10] = '1';  // 12 -> 11
  io::write_file_atomically(bad, wrong);
  EXPECT_THAT(error_of([&] { read(bad); }),
              AllOf(HasSubstr(bad.string()), HasSubstr("has shape"), HasSubstr("data bytes")));

  // Not an atlas at all.
  io::write_file_atomically(bad, "hello");
  EXPECT_THAT(error_of([&] { read(bad); }), HasSubstr(bad.string()));
}

}  // namespace
}  // namespace tokmap::atlas
