// The forward pass's numeric kernels: free functions over spans, outputs first, with naive
// references beside the fast paths (tests compare them).
#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "model/model.hpp"

namespace tokmap::model::kernels {

void matmul(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
            std::span<const float> bias, int T, int C, int OC) {
  float beta = 0.0f;
  if (!bias.empty()) {
    for (int t = 0; t < T; ++t)
      std::copy(bias.begin(), bias.end(), out.begin() + std::size_t(t) * OC);
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, OC, C, 1.0f, inp.data(), C,
              weight.data(), OC, beta, out.data(), OC);
}

void matmul_naive(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                  std::span<const float> bias, int T, int C, int OC) {
  for (int t = 0; t < T; ++t) {
    for (int o = 0; o < OC; ++o) {
      double sum = bias.empty() ? 0.0 : bias[o];
      for (int c = 0; c < C; ++c)
        sum += double(inp[std::size_t(t) * C + c]) * weight[std::size_t(c) * OC + o];
      out[std::size_t(t) * OC + o] = static_cast<float>(sum);
    }
  }
}

void layernorm(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
               std::span<const float> bias, int T, int C, float eps) {
  for (int t = 0; t < T; ++t) {
    const float* x = inp.data() + std::size_t(t) * C;
    float* y = out.data() + std::size_t(t) * C;
    float mean = 0.0f;
    for (int c = 0; c < C; ++c) mean += x[c];
    mean /= C;
    float variance = 0.0f;
    for (int c = 0; c < C; ++c) variance += (x[c] - mean) * (x[c] - mean);
    variance /= C;
    const float rstd = 1.0f / std::sqrt(variance + eps);
    for (int c = 0; c < C; ++c) y[c] = (x[c] - mean) * rstd * weight[c] + bias[c];
  }
}

namespace {

// exp(x) with ~2 ulp error, written without branches or libm calls so loops over it
// vectorise (glibc's vector expf is only used under -ffast-math). Always inlined: a call in
// the loop body would stop the vectoriser.
[[gnu::always_inline]] inline float exp_inline(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  // x - n*ln2 in two steps (Cody-Waite) to keep the reduced argument exact.
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  // Minimax polynomial for exp on [-ln2/2, ln2/2] (Cephes expf).
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // Scale by 2^n in two halves so that n = 128 (x near 88.7) does not overflow the exponent.
  const int exponent = static_cast<int>(n);
  const int half = exponent / 2;
  const float scale_a = std::bit_cast<float>(static_cast<std::uint32_t>(half + 127) << 23);
  const float scale_b =
      std::bit_cast<float>(static_cast<std::uint32_t>(exponent - half + 127) << 23);
  return p * scale_a * scale_b;
}

}  // namespace

float fast_exp(float x) { return exp_inline(x); }

void activation(std::span<float> x, Activation kind) {
  float* v = x.data();
  const std::size_t n = x.size();
  switch (kind) {
    case Activation::gelu_new: {
      constexpr float kSqrt2OverPi = 0.7978845608028654f;
      for (std::size_t i = 0; i < n; ++i) {
        const float u = kSqrt2OverPi * (v[i] + 0.044715f * v[i] * v[i] * v[i]);
        // tanh(u) = 1 - 2 / (exp(2u) + 1): exact at both tails, vectorisable.
        const float tanh_u = 1.0f - 2.0f / (exp_inline(2.0f * u) + 1.0f);
        v[i] = 0.5f * v[i] * (1.0f + tanh_u);
      }
      return;
    }
    case Activation::gelu:
      for (std::size_t i = 0; i < n; ++i)
        v[i] = 0.5f * v[i] * (1.0f + std::erf(v[i] * 0.70710678118654752f));
      return;
    case Activation::relu:
      for (std::size_t i = 0; i < n; ++i) v[i] = std::max(v[i], 0.0f);
      return;
  }
}

namespace {

// Row i of causal softmax over scores[0..i]; zeroes the masked tail up to `width` so a GEMM
// over the whole row block can follow.
void causal_softmax_row(float* row, int i, int width) {
  float max_score = row[0];
  for (int j = 1; j <= i; ++j) max_score = std::max(max_score, row[j]);
  for (int j = 0; j <= i; ++j) row[j] = exp_inline(row[j] - max_score);
  float sum = 0.0f;
  for (int j = 0; j <= i; ++j) sum += row[j];
  const float inverse = 1.0f / sum;
  for (int j = 0; j <= i; ++j) row[j] *= inverse;
  for (int j = i + 1; j < width; ++j) row[j] = 0.0f;
}

}  // namespace

void attention_head(std::span<float> out, std::span<const float> qkv, std::span<float> scratch,
                    int T, int C, int n_head, int h, float scale) {
  const int hs = C / n_head;
  const int row_stride = 3 * C;
  float* scores = scratch.data();  // (T, T), only the causal part of each row block is used
  // Row blocks of queries only need the keys up to their last row: computing the lower
  // triangle block by block halves the work of the full (T, T) product.
  constexpr int kBlock = 64;
  const float* q = qkv.data() + h * hs;
  const float* k = qkv.data() + C + h * hs;
  const float* v = qkv.data() + 2 * C + h * hs;
  for (int i0 = 0; i0 < T; i0 += kBlock) {
    const int rows = std::min(kBlock, T - i0);
    const int keys = i0 + rows;
    float* block = scores + std::size_t(i0) * T;
    // block = scale * q[i0 : i0 + rows] k[0 : keys]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hs, scale,
                q + std::size_t(i0) * row_stride, row_stride, k, row_stride, 0.0f, block, T);
    for (int r = 0; r < rows; ++r) causal_softmax_row(block + std::size_t(r) * T, i0 + r, keys);
    // out[i0 : i0 + rows, head] = block v[0 : keys]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, keys, 1.0f, block, T, v,
                row_stride, 0.0f, out.data() + std::size_t(i0) * C + h * hs, C);
  }
}

void attention(std::span<float> out, std::span<const float> qkv, std::span<float> scratch, int T,
               int C, int n_head, float scale) {
  for (int h = 0; h < n_head; ++h) attention_head(out, qkv, scratch, T, C, n_head, h, scale);
}

void attention_naive(std::span<float> out, std::span<const float> qkv, int T, int C, int n_head,
                     float scale) {
  const int hs = C / n_head;
  std::vector<double> weights(T);
  for (int h = 0; h < n_head; ++h) {
    for (int i = 0; i < T; ++i) {
      const float* q = qkv.data() + std::size_t(i) * 3 * C + h * hs;
      double max_score = -INFINITY;
      for (int j = 0; j <= i; ++j) {
        const float* k = qkv.data() + std::size_t(j) * 3 * C + C + h * hs;
        double dot = 0.0;
        for (int d = 0; d < hs; ++d) dot += double(q[d]) * k[d];
        weights[j] = dot * scale;
        max_score = std::max(max_score, weights[j]);
      }
      double sum = 0.0;
      for (int j = 0; j <= i; ++j) sum += (weights[j] = std::exp(weights[j] - max_score));
      for (int d = 0; d < hs; ++d) {
        double value = 0.0;
        for (int j = 0; j <= i; ++j)
          value += weights[j] / sum * qkv[std::size_t(j) * 3 * C + 2 * C + h * hs + d];
        out[std::size_t(i) * C + h * hs + d] = static_cast<float>(value);
      }
    }
  }
}

}  // namespace tokmap::model::kernels
