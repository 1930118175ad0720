// The forward pass's numeric kernels: free functions over spans, outputs first, with naive
// references beside the fast paths (tests compare them).
#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

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

void matmul_transposed(std::span<float> out, std::span<const float> inp,
                       std::span<const float> weight, std::span<const float> bias, int T, int C,
                       int OC) {
  float beta = 0.0f;
  if (!bias.empty()) {
    for (int t = 0; t < T; ++t)
      std::copy(bias.begin(), bias.end(), out.begin() + std::size_t(t) * OC);
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, OC, C, 1.0f, inp.data(), C, weight.data(),
              C, beta, out.data(), OC);
}

void matmul_transposed_naive(std::span<float> out, std::span<const float> inp,
                             std::span<const float> weight, std::span<const float> bias, int T,
                             int C, int OC) {
  for (int t = 0; t < T; ++t) {
    for (int o = 0; o < OC; ++o) {
      double sum = bias.empty() ? 0.0 : bias[o];
      for (int c = 0; c < C; ++c)
        sum += double(inp[std::size_t(t) * C + c]) * weight[std::size_t(o) * C + c];
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

void layernorm_naive(std::span<float> out, std::span<const float> inp,
                     std::span<const float> weight, std::span<const float> bias, int T, int C,
                     float eps) {
  for (int t = 0; t < T; ++t) {
    const float* x = inp.data() + std::size_t(t) * C;
    double mean = 0, variance = 0;
    for (int c = 0; c < C; ++c) mean += x[c];
    mean /= C;
    for (int c = 0; c < C; ++c) variance += (x[c] - mean) * (x[c] - mean);
    variance /= C;
    for (int c = 0; c < C; ++c) {
      out[std::size_t(t) * C + c] =
          static_cast<float>((x[c] - mean) / std::sqrt(variance + eps) * weight[c] + bias[c]);
    }
  }
}

void rmsnorm(std::span<float> out, std::span<const float> inp, std::span<const float> weight, int T,
             int C, float eps, bool add_one) {
  for (int t = 0; t < T; ++t) {
    const float* x = inp.data() + std::size_t(t) * C;
    float* y = out.data() + std::size_t(t) * C;
    float sum_squares = 0.0f;
    for (int c = 0; c < C; ++c) sum_squares += x[c] * x[c];
    const float rms = 1.0f / std::sqrt(sum_squares / float(C) + eps);
    if (add_one) {
      for (int c = 0; c < C; ++c) y[c] = x[c] * rms * (1.0f + weight[c]);
    } else {
      for (int c = 0; c < C; ++c) y[c] = x[c] * rms * weight[c];
    }
  }
}

void rmsnorm_naive(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                   int T, int C, float eps, bool add_one) {
  for (int t = 0; t < T; ++t) {
    const float* x = inp.data() + std::size_t(t) * C;
    double sum_squares = 0;
    for (int c = 0; c < C; ++c) sum_squares += double(x[c]) * x[c];
    const double rms = 1.0 / std::sqrt(sum_squares / C + eps);
    for (int c = 0; c < C; ++c) {
      const double w = add_one ? 1.0 + double(weight[c]) : double(weight[c]);
      out[std::size_t(t) * C + c] = static_cast<float>(x[c] * rms * w);
    }
  }
}

void head_rmsnorm(std::span<float> x, HeadView view, int T, int n_heads, int head_dim,
                  std::span<const float> weight, float eps, bool add_one) {
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      const std::span<float> head = x.subspan(view.at(t, h), head_dim);
      rmsnorm(head, head, weight, 1, head_dim, eps, add_one);
    }
  }
}

std::vector<double> rope_inverse_frequencies(const Rope& rope, int rotary_dim) {
  std::vector<double> inverse(rotary_dim / 2);
  for (int i = 0; i < rotary_dim / 2; ++i) {
    // float32 as Hugging Face computes it: 1 / theta ** (arange(0, dim, 2).float() / dim).
    inverse[i] = static_cast<float>(
        1.0 / std::pow(rope.theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim)));
  }
  switch (rope.scaling) {
    case Rope::Scaling::none:
      break;
    case Rope::Scaling::linear:
      for (auto& f : inverse) f /= rope.factor;
      break;
    case Rope::Scaling::llama3: {
      // transformers' _compute_llama3_parameters: long wavelengths slowed by `factor`, short
      // ones kept, the band between blended linearly in 1 / wavelength.
      const double old_context = rope.original_max_positions;
      const double low_wavelength = old_context / rope.low_freq_factor;
      const double high_wavelength = old_context / rope.high_freq_factor;
      for (auto& f : inverse) {
        const double wavelength = 2.0 * M_PI / f;
        if (wavelength > low_wavelength) {
          f /= rope.factor;
        } else if (wavelength >= high_wavelength) {
          const double smooth = (old_context / wavelength - rope.low_freq_factor) /
                                (rope.high_freq_factor - rope.low_freq_factor);
          f = (1.0 - smooth) * f / rope.factor + smooth * f;
        }
      }
      break;
    }
  }
  if (rope.freq_factors.size() == inverse.size()) {
    for (std::size_t i = 0; i < inverse.size(); ++i) inverse[i] /= rope.freq_factors[i];
  }
  return inverse;
}

void rope_tables(std::span<float> cos, std::span<float> sin, std::span<const int> positions,
                 std::span<const double> inverse_frequencies) {
  const std::size_t half = inverse_frequencies.size();
  for (std::size_t t = 0; t < positions.size(); ++t) {
    for (std::size_t i = 0; i < half; ++i) {
      const float angle =
          static_cast<float>(positions[t]) * static_cast<float>(inverse_frequencies[i]);
      cos[t * half + i] = std::cos(angle);
      sin[t * half + i] = std::sin(angle);
    }
  }
}

void rope(std::span<float> x, HeadView view, int T, int n_heads, int rotary_dim,
          std::span<const float> cos, std::span<const float> sin) {
  const int half = rotary_dim / 2;
  for (int t = 0; t < T; ++t) {
    const float* c = cos.data() + std::size_t(t) * half;
    const float* s = sin.data() + std::size_t(t) * half;
    for (int h = 0; h < n_heads; ++h) {
      float* head = x.data() + view.at(t, h);
      for (int i = 0; i < half; ++i) {
        const float a = head[i], b = head[i + half];
        head[i] = a * c[i] - b * s[i];
        head[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void rope_naive(std::span<float> x, HeadView view, int T, int n_heads, int rotary_dim,
                std::span<const int> positions, std::span<const double> inverse_frequencies) {
  const int half = rotary_dim / 2;
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      float* head = x.data() + view.at(t, h);
      for (int i = 0; i < half; ++i) {
        const double angle = double(positions[t]) * inverse_frequencies[i];
        const double a = head[i], b = head[i + half];
        head[i] = static_cast<float>(a * std::cos(angle) - b * std::sin(angle));
        head[i + half] = static_cast<float>(b * std::cos(angle) + a * std::sin(angle));
      }
    }
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
    case Activation::silu:
      for (std::size_t i = 0; i < n; ++i) v[i] = v[i] / (1.0f + exp_inline(-v[i]));
      return;
  }
}

void activation_naive(std::span<float> x, Activation kind) {
  for (float& value : x) {
    const double v = value;
    switch (kind) {
      case Activation::gelu_new:
        value = static_cast<float>(
            0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
        break;
      case Activation::gelu:
        value = static_cast<float>(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
        break;
      case Activation::relu:
        value = static_cast<float>(std::max(v, 0.0));
        break;
      case Activation::silu:
        value = static_cast<float>(v / (1.0 + std::exp(-v)));
        break;
    }
  }
}

void gated_activation(std::span<float> out, std::span<const float> gate, std::size_t gate_stride,
                      std::span<const float> up, std::size_t up_stride, int T, int I,
                      Activation kind) {
  for (int t = 0; t < T; ++t) {
    const std::span<float> row = out.subspan(std::size_t(t) * I, I);
    if (row.data() != gate.data() + t * gate_stride) {
      std::copy_n(gate.data() + t * gate_stride, I, row.data());
    }
    activation(row, kind);
    const float* u = up.data() + t * up_stride;
    for (int i = 0; i < I; ++i) row[i] *= u[i];
  }
}

namespace {

// Softmax of row[begin, end) in place, after soft-capping when softcap > 0; zeroes the rest of
// the row up to `width` so a GEMM over the whole row block can follow.
void softmax_row(float* row, int begin, int end, int width, float softcap) {
  if (softcap > 0.0f) {
    for (int j = begin; j < end; ++j) row[j] = softcap * std::tanh(row[j] / softcap);
  }
  float max_score = row[begin];
  for (int j = begin + 1; j < end; ++j) max_score = std::max(max_score, row[j]);
  for (int j = begin; j < end; ++j) row[j] = exp_inline(row[j] - max_score);
  float sum = 0.0f;
  for (int j = begin; j < end; ++j) sum += row[j];
  const float inverse = 1.0f / sum;
  for (int j = begin; j < end; ++j) row[j] *= inverse;
  for (int j = 0; j < begin; ++j) row[j] = 0.0f;
  for (int j = end; j < width; ++j) row[j] = 0.0f;
}

// The keys query i sees: [begin, end).
std::pair<int, int> visible_keys(const AttentionShape& shape, int i) {
  const int end = shape.causal ? i + 1 : shape.T;
  const int begin = shape.window > 0 ? std::max(0, i - shape.window + 1) : 0;
  return {begin, end};
}

}  // namespace

void attention_head(std::span<float> out, std::size_t out_stride, std::span<const float> q,
                    HeadView q_view, std::span<const float> k, HeadView k_view,
                    std::span<const float> v, HeadView v_view, std::span<float> scratch,
                    const AttentionShape& shape, int h) {
  const int T = shape.T, hs = shape.head_dim;
  const int kv = h / (shape.n_head / shape.n_kv_head);
  // Row blocks of queries only need the keys up to their last row (causal): computing the
  // lower triangle block by block halves the work of the full (T, T) product.
  constexpr int kBlock = 64;
  const float* q_head = q.data() + q_view.at(0, h);
  const float* k_head = k.data() + k_view.at(0, kv);
  const float* v_head = v.data() + v_view.at(0, kv);
  float* block = scratch.data();  // (rows, T): scores of one row block
  for (int i0 = 0; i0 < T; i0 += kBlock) {
    const int rows = std::min(kBlock, T - i0);
    const int keys = shape.causal ? i0 + rows : T;
    // block = scale * q[i0 : i0 + rows] k[0 : keys]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, hs, shape.scale,
                q_head + std::size_t(i0) * q_view.row_stride, int(q_view.row_stride), k_head,
                int(k_view.row_stride), 0.0f, block, T);
    for (int r = 0; r < rows; ++r) {
      const auto [begin, end] = visible_keys(shape, i0 + r);
      softmax_row(block + std::size_t(r) * T, begin, end, keys, shape.softcap);
    }
    // out[i0 : i0 + rows, head] = block v[0 : keys]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, keys, 1.0f, block, T, v_head,
                int(v_view.row_stride), 0.0f,
                out.data() + std::size_t(i0) * out_stride + std::size_t(h) * hs, int(out_stride));
  }
}

void attention_naive(std::span<float> out, std::size_t out_stride, std::span<const float> q,
                     HeadView q_view, std::span<const float> k, HeadView k_view,
                     std::span<const float> v, HeadView v_view, const AttentionShape& shape) {
  const int T = shape.T, hs = shape.head_dim;
  std::vector<double> weights(T);
  for (int h = 0; h < shape.n_head; ++h) {
    const int kv = h / (shape.n_head / shape.n_kv_head);
    for (int i = 0; i < T; ++i) {
      const auto [begin, end] = visible_keys(shape, i);
      const float* qi = q.data() + q_view.at(i, h);
      double max_score = -INFINITY;
      for (int j = begin; j < end; ++j) {
        const float* kj = k.data() + k_view.at(j, kv);
        double dot = 0.0;
        for (int d = 0; d < hs; ++d) dot += double(qi[d]) * kj[d];
        dot *= shape.scale;
        if (shape.softcap > 0) dot = shape.softcap * std::tanh(dot / shape.softcap);
        weights[j] = dot;
        max_score = std::max(max_score, dot);
      }
      double sum = 0.0;
      for (int j = begin; j < end; ++j) sum += (weights[j] = std::exp(weights[j] - max_score));
      for (int d = 0; d < hs; ++d) {
        double value = 0.0;
        for (int j = begin; j < end; ++j) value += weights[j] / sum * v[v_view.at(j, kv) + d];
        out[std::size_t(i) * out_stride + std::size_t(h) * hs + d] = static_cast<float>(value);
      }
    }
  }
}

namespace {

AttentionShape gpt2_shape(int T, int C, int n_head, float scale) {
  AttentionShape shape;
  shape.T = T;
  shape.n_head = shape.n_kv_head = n_head;
  shape.head_dim = C / n_head;
  shape.scale = scale;
  return shape;
}

}  // namespace

void attention_head(std::span<float> out, std::span<const float> qkv, std::span<float> scratch,
                    int T, int C, int n_head, int h, float scale) {
  const std::size_t hs = std::size_t(C / n_head), stride = 3 * std::size_t(C);
  attention_head(out, C, qkv, {0, stride, hs}, qkv, {std::size_t(C), stride, hs}, qkv,
                 {2 * std::size_t(C), stride, hs}, scratch, gpt2_shape(T, C, n_head, scale), h);
}

void attention(std::span<float> out, std::span<const float> qkv, std::span<float> scratch, int T,
               int C, int n_head, float scale) {
  for (int h = 0; h < n_head; ++h) attention_head(out, qkv, scratch, T, C, n_head, h, scale);
}

void attention_naive(std::span<float> out, std::span<const float> qkv, int T, int C, int n_head,
                     float scale) {
  const std::size_t hs = std::size_t(C / n_head), stride = 3 * std::size_t(C);
  attention_naive(out, C, qkv, {0, stride, hs}, qkv, {std::size_t(C), stride, hs}, qkv,
                  {2 * std::size_t(C), stride, hs}, gpt2_shape(T, C, n_head, scale));
}

}  // namespace tokmap::model::kernels
