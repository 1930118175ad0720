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

namespace tokmap::model::kernels {
namespace {

std::vector<float> noise(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

float worst(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(Kernels, TransposedMatmulMatchesNaive) {
  for (const auto& [T, C, OC] : {std::tuple{1, 1, 1}, std::tuple{7, 33, 65}, std::tuple{70, 96, 40}}) {
    const auto inp = noise(T * C, 1), weight = noise(OC * C, 2), bias = noise(OC, 3);
    std::vector<float> fast(T * OC), naive(T * OC);
    matmul_transposed(fast, inp, weight, bias, T, C, OC);
    matmul_transposed_naive(naive, inp, weight, bias, T, C, OC);
    EXPECT_LE(worst(fast, naive), 1e-4f * std::sqrt(float(C)));
  }
}

TEST(Kernels, NormsMatchNaive) {
  const int T = 5, C = 48;
  const auto inp = noise(T * C, 4, 3.0f), weight = noise(C, 5), bias = noise(C, 6);
  std::vector<float> fast(T * C), naive(T * C);
  layernorm(fast, inp, weight, bias, T, C, 1e-5f);
  layernorm_naive(naive, inp, weight, bias, T, C, 1e-5f);
  EXPECT_LE(worst(fast, naive), 1e-5f);
  for (const bool add_one : {false, true}) {
    rmsnorm(fast, inp, weight, T, C, 1e-6f, add_one);
    rmsnorm_naive(naive, inp, weight, T, C, 1e-6f, add_one);
    EXPECT_LE(worst(fast, naive), 1e-5f) << add_one;
  }
}

TEST(Kernels, RopeMatchesNaiveWithStridesAndPartialRotation) {
  const int T = 9, heads = 3, head_dim = 16, rotary = 8;
  const HeadView view{5, 3 * heads * head_dim, 3 * head_dim};  // GPT-NeoX-like interleaving
  auto fast = noise(5 + T * view.row_stride, 7);
  auto naive = fast;
  std::vector<int> positions(T);
  for (int t = 0; t < T; ++t) positions[t] = 3 * t;
  Rope r;
  r.theta = 10000;
  const auto inverse = rope_inverse_frequencies(r, rotary);
  std::vector<float> cos(T * rotary / 2), sin(T * rotary / 2);
  rope_tables(cos, sin, positions, inverse);
  rope(fast, view, T, heads, rotary, cos, sin);
  rope_naive(naive, view, T, heads, rotary, positions, inverse);
  EXPECT_LE(worst(fast, naive), 1e-5f);
}

TEST(Kernels, RopeScalingFollowsTheLlama3Rule) {
  Rope r;
  r.theta = 500000;
  r.scaling = Rope::Scaling::llama3;
  r.factor = 32;
  r.low_freq_factor = 1;
  r.high_freq_factor = 4;
  r.original_max_positions = 8192;
  Rope plain = r;
  plain.scaling = Rope::Scaling::none;
  const auto scaled = rope_inverse_frequencies(r, 64), base = rope_inverse_frequencies(plain, 64);
  EXPECT_DOUBLE_EQ(scaled[0], base[0]);  // high frequency: kept
  EXPECT_NEAR(scaled[31], base[31] / 32, 1e-12 * base[31]);  // longest wavelength: / factor
  Rope linear = plain;
  linear.scaling = Rope::Scaling::linear;
  linear.factor = 4;
  EXPECT_DOUBLE_EQ(rope_inverse_frequencies(linear, 64)[5], base[5] / 4);
}

TEST(Kernels, GeneralAttentionMatchesNaive) {
  struct Case {
    int T, heads, kv_heads, head_dim;
    bool causal;
    int window;
    float softcap;
  };
  for (const Case c : {Case{1, 2, 1, 8, true, 0, 0}, Case{23, 4, 2, 16, true, 0, 0},
                       Case{70, 4, 2, 8, true, 8, 5.0f}, Case{70, 4, 4, 8, false, 0, 0},
                       Case{130, 2, 1, 32, true, 0, 30.0f}}) {
    const std::size_t q_width = std::size_t(c.heads) * c.head_dim;
    const std::size_t kv_width = std::size_t(c.kv_heads) * c.head_dim;
    const auto q = noise(c.T * q_width, 8, 2.0f), k = noise(c.T * kv_width, 9, 2.0f),
               v = noise(c.T * kv_width, 10);
    const HeadView qv{0, q_width, std::size_t(c.head_dim)},
        kvv{0, kv_width, std::size_t(c.head_dim)};
    AttentionShape shape;
    shape.T = c.T;
    shape.n_head = c.heads;
    shape.n_kv_head = c.kv_heads;
    shape.head_dim = c.head_dim;
    shape.scale = 1.0f / std::sqrt(float(c.head_dim));
    shape.causal = c.causal;
    shape.window = c.window;
    shape.softcap = c.softcap;
    std::vector<float> fast(c.T * q_width), naive(c.T * q_width),
        scratch(std::min(64, c.T) * c.T);
    for (int h = 0; h < c.heads; ++h) {
      attention_head(fast, q_width, q, qv, k, kvv, v, kvv, scratch, shape, h);
    }
    attention_naive(naive, q_width, q, qv, k, kvv, v, kvv, shape);
    EXPECT_LE(worst(fast, naive), 2e-5f) << c.T << " window " << c.window;
  }
}

TEST(Kernels, ActivationsAndGatesMatchNaive) {
  const auto x = noise(999, 11, 4.0f);
  for (const auto kind : {Activation::gelu_new, Activation::gelu, Activation::relu, Activation::silu}) {
    auto fast = x, naive = x;
    activation(fast, kind);
    activation_naive(naive, kind);
    EXPECT_LE(worst(fast, naive), 2e-6f * 16) << int(kind);
  }
  const int T = 3, I = 5;
  const auto gate_up = noise(T * 2 * I, 12);  // fused rows: [gate | up]
  std::vector<float> out(T * I), want(T * I);
  gated_activation(out, gate_up, 2 * I, std::span(gate_up).subspan(I), 2 * I, T, I, Activation::silu);
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < I; ++i) {
      const double g = gate_up[t * 2 * I + i], u = gate_up[t * 2 * I + I + i];
      want[t * I + i] = float(g / (1 + std::exp(-g)) * u);
    }
  }
  EXPECT_LE(worst(out, want), 1e-6f);
}

}  // namespace
}  // namespace tokmap::model::kernels
