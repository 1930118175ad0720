// Fast kernels against their naive references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "model/model.hpp"

namespace tokmap::model::kernels {
namespace {

std::vector<float> random_vector(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(Kernels, MatmulMatchesNaive) {
  for (const auto& [T, C, OC] :
       {std::tuple{1, 1, 1}, std::tuple{7, 33, 65}, std::tuple{64, 128, 384}}) {
    const auto inp = random_vector(T * C, 1);
    const auto weight = random_vector(C * OC, 2);
    const auto bias = random_vector(OC, 3);
    std::vector<float> fast(T * OC), naive(T * OC);
    matmul(fast, inp, weight, bias, T, C, OC);
    matmul_naive(naive, inp, weight, bias, T, C, OC);
    EXPECT_LE(max_abs_diff(fast, naive), 1e-4f * std::sqrt(float(C))) << T << "x" << C << "x" << OC;
    matmul(fast, inp, weight, {}, T, C, OC);
    matmul_naive(naive, inp, weight, {}, T, C, OC);
    EXPECT_LE(max_abs_diff(fast, naive), 1e-4f * std::sqrt(float(C)));
  }
}

TEST(Kernels, AttentionMatchesNaive) {
  for (const auto& [T, C, H] :
       {std::tuple{1, 8, 2}, std::tuple{17, 32, 4}, std::tuple{100, 64, 4}}) {
    const auto qkv = random_vector(T * 3 * C, 4, 2.0f);
    std::vector<float> fast(T * C), naive(T * C), scratch(T * T);
    const float scale = 1.0f / std::sqrt(float(C / H));
    attention(fast, qkv, scratch, T, C, H, scale);
    attention_naive(naive, qkv, T, C, H, scale);
    EXPECT_LE(max_abs_diff(fast, naive), 1e-5f) << T;
  }
}

TEST(Kernels, FastExpIsAccurateOverTheWholeRange) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.5f; x += 0.0137f) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(fast_exp(x) - want) / want);
  }
  EXPECT_LE(worst, 5e-7);
  EXPECT_EQ(fast_exp(-1000.0f) < 1e-37f, true);
  EXPECT_TRUE(std::isfinite(fast_exp(1000.0f)));
}

TEST(Kernels, GeluNewMatchesTheTanhFormula) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.01f) x.push_back(v);
  std::vector<float> y = x;
  activation(y, Activation::gelu_new);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double want =
        0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(y[i], want, 1e-6 + 1e-6 * std::fabs(want)) << v;
  }
}

TEST(Kernels, LayernormHasZeroMeanUnitVariance) {
  const int T = 3, C = 64;
  const auto inp = random_vector(T * C, 5, 3.0f);
  std::vector<float> ones(C, 1.0f), zeros(C, 0.0f), out(T * C);
  layernorm(out, inp, ones, zeros, T, C, 1e-5f);
  for (int t = 0; t < T; ++t) {
    double mean = 0, var = 0;
    for (int c = 0; c < C; ++c) mean += out[t * C + c];
    mean /= C;
    for (int c = 0; c < C; ++c) var += (out[t * C + c] - mean) * (out[t * C + c] - mean);
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(var / C, 1.0, 1e-3);
  }
}

TEST(BlasAdvice, NamesTheSettingOnlyForAGenericKernel) {
  const std::string advice = blas_kernel_advice();
  const char* setting = std::getenv("OPENBLAS_CORETYPE");
  if (setting != nullptr && (std::string(setting) == "SkylakeX" || std::string(setting) == "Haswell")) {
    EXPECT_EQ(advice, "");  // a tuned kernel was asked for: nothing to advise
  }
  if (!advice.empty()) {
    EXPECT_NE(advice.find("OPENBLAS_CORETYPE="), std::string::npos) << advice;
    EXPECT_EQ(advice.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace tokmap::model::kernels
