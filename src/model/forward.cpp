#include <cblas.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>

#include "io/io.hpp"
#include "model/weights_internal.hpp"

namespace tokmap::model {

namespace {

// Runs fn(begin, end) over [0, n) split across `threads` threads. Used for the cheap row-wise
// kernels; std::thread rather than OpenMP so idle OpenMP workers don't spin against
// OpenBLAS's own threads on small machines.
template <typename Fn>
void parallel_rows(int n, int threads, Fn&& fn) {
  threads = std::clamp(threads, 1, std::max(1, n / 16));
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  std::vector<std::jthread> workers;
  const int chunk = (n + threads - 1) / threads;
  for (int w = 1; w < threads; ++w) {
    const int begin = std::min(n, w * chunk);
    const int end = std::min(n, begin + chunk);
    workers.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(0, std::min(n, chunk));
}

// Runs fn(index) for index in [0, count) on up to `threads` threads, each taking every
// threads-th index. Work is cut into the same pieces for any thread count, so the results do not
// depend on it (each piece calls single-threaded BLAS).
template <typename Fn>
void parallel_pieces(int count, int threads, Fn&& fn) {
  threads = std::clamp(threads, 1, std::max(1, count));
  if (threads <= 1) {
    for (int i = 0; i < count; ++i) fn(i, 0);
    return;
  }
  std::vector<std::jthread> workers;
  for (int w = 1; w < threads; ++w)
    workers.emplace_back([&fn, w, threads, count] {
      for (int i = w; i < count; i += threads) fn(i, w);
    });
  for (int i = 0; i < count; i += threads) fn(i, 0);
}

// Sets OpenBLAS's thread count for a scope and restores it after.
class BlasThreads {
 public:
  explicit BlasThreads(int threads) : previous_(openblas_get_num_threads()) {
    openblas_set_num_threads(threads);
  }
  ~BlasThreads() { openblas_set_num_threads(previous_); }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int previous_;
};

// Rows per matmul piece: a token's result depends on its piece alone, never on the thread count
// (OpenBLAS's own threading splits the matrix by thread count, and its edge tiles round
// differently: embed and viz gave other bits for --threads 1 and 2). Each piece repacks the
// weights: at 64 rows that cost 15% of one thread's speed on GPT-2-small shapes, at 256 it is
// within noise of one whole-matrix sgemm (bench_forward, docs/BENCHMARKS.md).
constexpr int kMatmulRows = 256;

// A window of one text's tokens run as one sequence; tokens [keep_begin, keep_end) of the text
// take their hidden states from it.
struct Window {
  std::size_t text = 0;
  std::size_t begin = 0;  // first token of the window in the text
  int length = 0;
  std::size_t keep_begin = 0;
  std::size_t keep_end = 0;
};

std::vector<Window> plan_windows(std::span<const std::vector<std::int32_t>> texts, int n_positions,
                                 int stride) {
  std::vector<Window> windows;
  for (std::size_t t = 0; t < texts.size(); ++t) {
    const std::size_t n = texts[t].size();
    if (n <= static_cast<std::size_t>(n_positions)) {
      windows.push_back({t, 0, static_cast<int>(n), 0, n});
      continue;
    }
    std::size_t covered = 0;
    for (std::size_t begin = 0;; begin += stride) {
      // The last window ends exactly at the end of the text.
      const bool last = begin + n_positions >= n;
      if (last) begin = n - n_positions;
      windows.push_back({t, begin, n_positions, covered, begin + n_positions});
      covered = begin + n_positions;
      if (last) break;
    }
  }
  return windows;
}

}  // namespace

std::string blas_kernel_advice() {
  const std::string core = openblas_get_corename();
  const bool generic = core == "Prescott" || core == "Core2" || core == "Penryn" ||
                       core == "Nehalem" || core == "Sandybridge" || core == "Katmai";
  if (!generic) return {};
  const char* better = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                         : nullptr;
  if (better == nullptr) return {};
  return "OpenBLAS runs its generic '" + core + "' kernel on this CPU, which supports " +
         (std::string(better) == "SkylakeX" ? "AVX-512" : "AVX2") +
         "; model runs are several times faster with OPENBLAS_CORETYPE=" + better;
}

std::vector<int> parse_layers(std::string_view spec, int n_layer) {
  std::vector<int> layers;
  if (spec.empty() || spec == "all") {
    for (int l = 0; l <= n_layer; ++l) layers.push_back(l);
    return layers;
  }
  if (spec == "last") return {n_layer};
  std::string_view rest = spec;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int value = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || error != std::errc() || end != item.data() + item.size()) {
      throw Error("--layers: '" + std::string(item) +
                      "' is not a layer number (use all, last, or a list such as 0,3,6)",
                  ErrorKind::usage);
    }
    if (value < 0) value += n_layer + 1;
    if (value < 0 || value > n_layer) {
      throw Error("--layers: layer " + std::string(item) +
                      " is out of range; this model has layers 0.." + std::to_string(n_layer) +
                      " (0 = embeddings, " + std::to_string(n_layer) + " = last, after ln_f)",
                  ErrorKind::usage);
    }
    layers.push_back(value);
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

namespace {

// The float32 views of one layer's tensors.
struct LayerF32 {
  std::span<const float> attn_norm, attn_norm_bias, q, k, v, q_bias, k_bias, v_bias, qkv, qkv_bias,
      q_norm, k_norm, o, o_bias, post_attn_norm, mlp_norm, mlp_norm_bias, gate, gate_bias, up,
      up_bias, gate_up, down, down_bias, post_mlp_norm;
};

LayerF32 layer_f32(const Model::Layer& l, WeightBuffers& buffers) {
  buffers.reset();
  LayerF32 f;
  f.attn_norm = buffers.f32(l.attn_norm);
  f.attn_norm_bias = buffers.f32(l.attn_norm_bias);
  f.q = buffers.f32(l.q);
  f.k = buffers.f32(l.k);
  f.v = buffers.f32(l.v);
  f.q_bias = buffers.f32(l.q_bias);
  f.k_bias = buffers.f32(l.k_bias);
  f.v_bias = buffers.f32(l.v_bias);
  f.qkv = buffers.f32(l.qkv);
  f.qkv_bias = buffers.f32(l.qkv_bias);
  f.q_norm = buffers.f32(l.q_norm);
  f.k_norm = buffers.f32(l.k_norm);
  f.o = buffers.f32(l.o);
  f.o_bias = buffers.f32(l.o_bias);
  f.post_attn_norm = buffers.f32(l.post_attn_norm);
  f.mlp_norm = buffers.f32(l.mlp_norm);
  f.mlp_norm_bias = buffers.f32(l.mlp_norm_bias);
  f.gate = buffers.f32(l.gate);
  f.gate_bias = buffers.f32(l.gate_bias);
  f.up = buffers.f32(l.up);
  f.up_bias = buffers.f32(l.up_bias);
  f.gate_up = buffers.f32(l.gate_up);
  f.down = buffers.f32(l.down);
  f.down_bias = buffers.f32(l.down_bias);
  f.post_mlp_norm = buffers.f32(l.post_mlp_norm);
  return f;
}

// Rows of an embedding table as float32: in place for aligned F32, else converted into `row`.
const float* embedding_row(const Tensor& table, std::size_t index, std::vector<float>& row) {
  const std::size_t width = std::size_t(table.shape.back());
  if (table.type == WeightType::f32 &&
      reinterpret_cast<std::uintptr_t>(table.bytes.data()) % alignof(float) == 0) {
    return reinterpret_cast<const float*>(table.bytes.data()) + index * width;
  }
  row.resize(width);
  tensor_rows_to_f32(table, index, 1, row);
  return row.data();
}

}  // namespace

void forward(const Model& model, std::span<const std::vector<std::int32_t>> texts,
             const ForwardOptions& options, const HiddenStatesSink& sink,
             const ProgressCallback& progress) {
  const Config& config = model.config();
  const int C = config.n_embd;
  const int I = config.n_inner;
  const int n_layer = config.n_layer;
  const int H = config.n_head, KVH = config.n_kv_head, D = config.head_dim;
  const int Q = H * D, KV = KVH * D;
  const bool gpt2 = config.architecture == Architecture::gpt2;

  std::vector<int> layers = options.layers;
  if (layers.empty()) {
    for (int l = 0; l <= n_layer; ++l) layers.push_back(l);
  }
  for (const int l : layers) {
    if (l < 0 || l > n_layer) {
      throw Error("layer " + std::to_string(l) + " is out of range 0.." + std::to_string(n_layer),
                  ErrorKind::usage);
    }
  }
  // selected_slot[l] = where hidden state l goes in the output, or -1.
  std::vector<int> selected_slot(n_layer + 1, -1);
  for (std::size_t i = 0; i < layers.size(); ++i) selected_slot[layers[i]] = static_cast<int>(i);
  const int deepest = *std::max_element(layers.begin(), layers.end());

  std::size_t total_tokens = 0;
  for (std::size_t t = 0; t < texts.size(); ++t) {
    if (texts[t].empty()) throw Error("text " + std::to_string(t + 1) + " has no tokens");
    for (std::size_t i = 0; i < texts[t].size(); ++i) {
      const auto id = texts[t][i];
      if (id < 0 || id >= config.vocab_size) {
        throw Error("text " + std::to_string(t + 1) + ", token " + std::to_string(i) + ": id " +
                    std::to_string(id) + " is outside the vocabulary (size " +
                    std::to_string(config.vocab_size) + ")");
      }
    }
    total_tokens += texts[t].size();
  }

  const int threads = options.threads > 0
                          ? options.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const BlasThreads blas(1);  // parallel over fixed pieces instead (parallel_pieces)
  const int stride = options.window_stride > 0 ? std::min(options.window_stride, config.n_positions)
                                               : std::max(1, config.n_positions / 2);
  const std::vector<Window> windows = plan_windows(texts, config.n_positions, stride);

  // RoPE inverse frequencies of full and sliding layers.
  std::vector<double> inverse_full, inverse_local;
  if (!config.learned_positions) {
    inverse_full = kernels::rope_inverse_frequencies(config.rope, config.rotary_dim);
    inverse_local = kernels::rope_inverse_frequencies(config.rope_local, config.rotary_dim);
  }

  // Where q, k and v of each head lie after the projections.
  using kernels::HeadView;
  const bool fused_qkv = !model.layers.empty() && model.layers[0].qkv.present();
  const std::size_t qkv_width = std::size_t(Q) + 2 * std::size_t(KV);
  HeadView q_view{0, std::size_t(Q), std::size_t(D)}, k_view{0, std::size_t(KV), std::size_t(D)},
      v_view{0, std::size_t(KV), std::size_t(D)};
  if (fused_qkv && model.qkv_per_head) {
    q_view = {0, qkv_width, 3 * std::size_t(D)};
    k_view = {std::size_t(D), qkv_width, 3 * std::size_t(D)};
    v_view = {2 * std::size_t(D), qkv_width, 3 * std::size_t(D)};
  } else if (fused_qkv) {
    q_view = {0, qkv_width, std::size_t(D)};
    k_view = {std::size_t(Q), qkv_width, std::size_t(D)};
    v_view = {std::size_t(Q + KV), qkv_width, std::size_t(D)};
  }

  // Pack windows into batches: the matmuls see every token of the batch at once.
  std::size_t done_tokens = 0;
  std::vector<float> x, ln, ln2, qkv, q, k, v, att, proj, proj2, hidden, gate_up, gate, scratch,
      captured, cos_full, sin_full, cos_local, sin_local, row_buffer;
  std::vector<int> positions;
  WeightBuffers weights;
  weights.set_threads(threads);
  for (std::size_t first = 0; first < windows.size();) {
    std::size_t last = first;
    int T = 0;
    while (last < windows.size() &&
           (last == first || T + windows[last].length <= options.batch_tokens)) {
      T += windows[last].length;
      ++last;
    }
    const std::span<const Window> batch(windows.data() + first, last - first);
    first = last;

    const std::size_t TC = std::size_t(T) * C;
    x.resize(TC);
    ln.resize(TC);
    proj.resize(TC);
    if (config.residual == Residual::parallel) {
      ln2.resize(TC);
      proj2.resize(TC);
    }
    att.resize(std::size_t(T) * Q);
    if (fused_qkv) {
      qkv.resize(std::size_t(T) * qkv_width);
    } else {
      q.resize(std::size_t(T) * Q);
      k.resize(std::size_t(T) * KV);
      v.resize(std::size_t(T) * KV);
    }
    hidden.resize(std::size_t(T) * I);
    if (config.gated_mlp) {
      if (!model.layers.empty() && model.layers[0].gate_up.present()) {
        gate_up.resize(std::size_t(T) * 2 * I);
      } else {
        gate.resize(std::size_t(T) * I);
      }
    }
    captured.resize(layers.size() * TC);
    int max_window = 0;
    std::vector<std::size_t> window_rows;  // first row of each window in the batch
    positions.clear();
    for (std::size_t rows = 0; const auto& w : batch) {
      max_window = std::max(max_window, w.length);
      window_rows.push_back(rows);
      rows += static_cast<std::size_t>(w.length);
      // Position of each token in its window; RoBERTa counts non-padding tokens from
      // padding_idx + 1 and gives padding tokens padding_idx (create_position_ids_from_input_ids).
      int counted = 0;
      for (int p = 0; p < w.length; ++p) {
        if (config.padding_idx < 0) {
          positions.push_back(p);
        } else if (texts[w.text][w.begin + p] == config.padding_idx) {
          positions.push_back(config.padding_idx);
        } else {
          positions.push_back(config.padding_idx + 1 + counted++);
        }
      }
    }
    scratch.resize(std::size_t(threads) * std::min(max_window, 64) * max_window);
    if (!config.learned_positions) {
      const std::size_t half = std::size_t(config.rotary_dim / 2);
      for (auto* table : {&cos_full, &sin_full, &cos_local, &sin_local}) table->resize(T * half);
      kernels::rope_tables(cos_full, sin_full, positions, inverse_full);
      kernels::rope_tables(cos_local, sin_local, positions, inverse_local);
    }

    // out (T, OC) = inp (T, K) weight + bias, in fixed pieces of kMatmulRows rows; weight is
    // (K, OC) for GPT-2's Conv1D, (OC, K) for nn.Linear and GGUF.
    auto matmul_rows = [&](std::vector<float>& out, const std::vector<float>& inp,
                           std::span<const float> weight, std::span<const float> bias, int K,
                           int OC) {
      parallel_pieces((T + kMatmulRows - 1) / kMatmulRows, threads, [&](int piece, int) {
        const int begin = piece * kMatmulRows, rows = std::min(kMatmulRows, T - begin);
        const auto o = std::span(out).subspan(std::size_t(begin) * OC, std::size_t(rows) * OC);
        const auto in = std::span(inp).subspan(std::size_t(begin) * K, std::size_t(rows) * K);
        if (model.layout == MatrixLayout::in_out) {
          kernels::matmul(o, in, weight, bias, rows, K, OC);
        } else {
          kernels::matmul_transposed(o, in, weight, bias, rows, K, OC);
        }
      });
    };

    // A layer that overflows float32 (or weights that slipped past the load-time check) must
    // not reach the sink: name the first non-finite value's layer, text and token.
    auto check_state = [&](int layer, const float* state) {
      const std::size_t at = io::first_non_finite(std::span<const float>(state, TC));
      if (at == TC) return;
      std::size_t row = at / std::size_t(C);
      for (const auto& w : batch) {
        if (row < std::size_t(w.length)) {
          throw Error(model.weights_path().string() + ": layer " + std::to_string(layer) +
                      " produced a non-finite value (" + (std::isnan(state[at]) ? "NaN" : "Inf") +
                      ") for text " + std::to_string(w.text + 1) + ", token " +
                      std::to_string(w.begin + row) + ", dimension " +
                      std::to_string(at % std::size_t(C)) +
                      "; the model overflows float32 on this input");
        }
        row -= std::size_t(w.length);
      }
    };
    auto capture = [&](int layer, const float* state) {
      check_state(layer, state);
      if (selected_slot[layer] >= 0) {
        std::copy(state, state + TC, captured.begin() + selected_slot[layer] * TC);
      }
    };

    const float eps = config.layer_norm_epsilon;
    // out = norm(in) with the architecture's norm; bias only for LayerNorm.
    auto norm_rows = [&](std::vector<float>& out, const std::vector<float>& in,
                         std::span<const float> weight, std::span<const float> bias) {
      parallel_rows(T, threads, [&](int begin, int end) {
        const auto o = std::span(out).subspan(std::size_t(begin) * C);
        const auto i = std::span(in).subspan(std::size_t(begin) * C);
        if (config.norm == NormKind::layer_norm) {
          kernels::layernorm(o, i, weight, bias, end - begin, C, eps);
        } else {
          kernels::rmsnorm(o, i, weight, end - begin, C, eps, config.norm_adds_one);
        }
      });
    };

    // Embeddings: x = wte[id] * scale (+ token type 0) (+ position), then the embedding norm.
    {
      WeightBuffers embedding_buffers;
      const std::span<const float> type_row =
          model.token_type_embedding.present()
              ? std::span<const float>(embedding_row(model.token_type_embedding, 0, row_buffer),
                                       std::size_t(C))
              : std::span<const float>{};
      const std::vector<float> token_type(type_row.begin(), type_row.end());
      std::vector<float> token_buffer, position_buffer;
      std::size_t row = 0;
      for (const auto& w : batch) {
        for (int p = 0; p < w.length; ++p, ++row) {
          const float* token = embedding_row(model.token_embedding,
                                             std::size_t(texts[w.text][w.begin + p]), token_buffer);
          float* out = x.data() + row * C;
          if (config.embedding_scale != 1.0f) {
            for (int c = 0; c < C; ++c) out[c] = token[c] * config.embedding_scale;
          } else {
            std::copy_n(token, C, out);
          }
          if (!token_type.empty()) {
            for (int c = 0; c < C; ++c) out[c] += token_type[c];
          }
          if (config.learned_positions) {
            const float* position = embedding_row(model.position_embedding,
                                                  std::size_t(positions[row]), position_buffer);
            for (int c = 0; c < C; ++c) out[c] = out[c] + position[c];
          }
        }
      }
      if (model.embedding_norm.present()) {
        const auto weight = embedding_buffers.f32(model.embedding_norm);
        const auto bias = embedding_buffers.f32(model.embedding_norm_bias);
        norm_rows(ln, x, weight, bias);
        std::swap(x, ln);
      }
    }
    capture(0, x.data());

    // Attention of `in` → proj (T, C).
    auto attention_block = [&](int l, const LayerF32& w, const std::vector<float>& in) {
      float* q_data;
      float* k_data;
      float* v_data;
      if (fused_qkv) {
        matmul_rows(qkv, in, w.qkv, w.qkv_bias, C, int(qkv_width));
        q_data = k_data = v_data = qkv.data();
      } else {
        matmul_rows(q, in, w.q, w.q_bias, C, Q);
        matmul_rows(k, in, w.k, w.k_bias, C, KV);
        matmul_rows(v, in, w.v, w.v_bias, C, KV);
        q_data = q.data();
        k_data = k.data();
        v_data = v.data();
      }
      const std::size_t q_size = fused_qkv ? qkv.size() : q.size();
      const std::size_t k_size = fused_qkv ? qkv.size() : k.size();
      const std::size_t v_size = fused_qkv ? qkv.size() : v.size();
      const std::span<float> q_span(q_data, q_size), k_span(k_data, k_size);
      const bool sliding = config.sliding_window[l] > 0;
      if (config.qk_norm || !config.learned_positions) {
        parallel_rows(T, threads, [&](int begin, int end) {
          const int rows = end - begin;
          HeadView qv = q_view, kv = k_view;
          qv.offset += std::size_t(begin) * qv.row_stride;
          kv.offset += std::size_t(begin) * kv.row_stride;
          if (config.qk_norm) {
            kernels::head_rmsnorm(q_span, qv, rows, H, D, w.q_norm, eps, config.norm_adds_one);
            kernels::head_rmsnorm(k_span, kv, rows, KVH, D, w.k_norm, eps, config.norm_adds_one);
          }
          if (!config.learned_positions) {
            const std::size_t half = std::size_t(config.rotary_dim / 2);
            const auto& cos = sliding ? cos_local : cos_full;
            const auto& sin = sliding ? sin_local : sin_full;
            const auto c = std::span<const float>(cos).subspan(std::size_t(begin) * half);
            const auto s = std::span<const float>(sin).subspan(std::size_t(begin) * half);
            kernels::rope(q_span, qv, rows, H, config.rotary_dim, c, s);
            kernels::rope(k_span, kv, rows, KVH, config.rotary_dim, c, s);
          }
        });
      }
      float scale = config.attention_scale;
      if (gpt2) {
        scale = config.scale_attn_weights ? 1.0f / std::sqrt(float(C / config.n_head)) : 1.0f;
        if (config.scale_attn_by_inverse_layer_idx) scale /= float(l + 1);
      }
      // One piece per window and head.
      parallel_pieces(static_cast<int>(batch.size()) * H, threads, [&](int piece, int worker) {
        const Window& win = batch[static_cast<std::size_t>(piece / H)];
        const std::size_t row = window_rows[piece / H];
        kernels::AttentionShape shape;
        shape.T = win.length;
        shape.n_head = H;
        shape.n_kv_head = KVH;
        shape.head_dim = D;
        shape.scale = scale;
        shape.softcap = config.attn_logit_softcapping;
        shape.causal = config.causal;
        shape.window = config.sliding_window[l];
        HeadView qv = q_view, kv = k_view, vv = v_view;
        qv.offset += row * qv.row_stride;
        kv.offset += row * kv.row_stride;
        vv.offset += row * vv.row_stride;
        kernels::attention_head(
            std::span(att).subspan(row * Q), Q, std::span<const float>(q_data, q_size), qv,
            std::span<const float>(k_data, k_size), kv, std::span<const float>(v_data, v_size), vv,
            std::span(scratch).subspan(std::size_t(worker) * std::min(max_window, 64) * max_window),
            shape, piece % H);
      });
      matmul_rows(proj, att, w.o, w.o_bias, Q, C);
    };

    // MLP of `in` → out (T, C).
    auto mlp_block = [&](const LayerF32& w, const std::vector<float>& in, std::vector<float>& out) {
      if (config.gated_mlp) {
        if (!w.gate_up.empty()) {
          matmul_rows(gate_up, in, w.gate_up, {}, C, 2 * I);
          parallel_rows(T, threads, [&](int begin, int end) {
            const std::size_t off = std::size_t(begin) * 2 * I;
            kernels::gated_activation(std::span(hidden).subspan(std::size_t(begin) * I),
                                      std::span<const float>(gate_up).subspan(off), 2 * I,
                                      std::span<const float>(gate_up).subspan(off + I), 2 * I,
                                      end - begin, I, config.activation);
          });
        } else {
          matmul_rows(gate, in, w.gate, w.gate_bias, C, I);
          matmul_rows(hidden, in, w.up, w.up_bias, C, I);
          parallel_rows(T, threads, [&](int begin, int end) {
            const std::size_t off = std::size_t(begin) * I;
            // gate = act(gate) * up, in place; then hidden takes it for the down projection.
            kernels::gated_activation(
                std::span(gate).subspan(off), std::span<const float>(gate).subspan(off), I,
                std::span<const float>(hidden).subspan(off), I, end - begin, I, config.activation);
          });
          std::swap(gate, hidden);
        }
      } else {
        matmul_rows(hidden, in, w.up, w.up_bias, C, I);
        parallel_rows(T, threads, [&](int begin, int end) {
          kernels::activation(
              std::span(hidden).subspan(std::size_t(begin) * I, std::size_t(end - begin) * I),
              config.activation);
        });
      }
      matmul_rows(out, hidden, w.down, w.down_bias, I, C);
    };

    for (int l = 0; l < deepest && l < n_layer; ++l) {
      const LayerF32 w = layer_f32(model.layers[l], weights);
      switch (config.residual) {
        case Residual::pre_norm:
          norm_rows(ln, x, w.attn_norm, w.attn_norm_bias);
          attention_block(l, w, ln);
          if (config.sandwich_norms) norm_rows(proj, proj, w.post_attn_norm, {});
          for (std::size_t i = 0; i < TC; ++i) x[i] += proj[i];
          norm_rows(ln, x, w.mlp_norm, w.mlp_norm_bias);
          mlp_block(w, ln, proj);
          if (config.sandwich_norms) norm_rows(proj, proj, w.post_mlp_norm, {});
          for (std::size_t i = 0; i < TC; ++i) x[i] += proj[i];
          break;
        case Residual::parallel:
          // x = mlp(norm2(x)) + attn(norm1(x)) + x, summed in transformers' order.
          norm_rows(ln, x, w.attn_norm, w.attn_norm_bias);
          attention_block(l, w, ln);
          norm_rows(ln2, x, w.mlp_norm, w.mlp_norm_bias);
          mlp_block(w, ln2, proj2);
          for (std::size_t i = 0; i < TC; ++i) x[i] = proj2[i] + proj[i] + x[i];
          break;
        case Residual::post_norm:
          attention_block(l, w, x);
          for (std::size_t i = 0; i < TC; ++i) ln[i] = proj[i] + x[i];
          norm_rows(x, ln, w.attn_norm, w.attn_norm_bias);
          mlp_block(w, x, proj);
          for (std::size_t i = 0; i < TC; ++i) ln[i] = proj[i] + x[i];
          norm_rows(x, ln, w.mlp_norm, w.mlp_norm_bias);
          break;
      }

      if (l + 1 < n_layer || !config.final_norm) {
        capture(l + 1, x.data());
      } else {
        // The last hidden state has the final norm applied (Hugging Face convention).
        weights.reset();
        const auto weight = weights.f32(model.final_norm);
        const auto bias = weights.f32(model.final_norm_bias);
        norm_rows(ln, x, weight, bias);
        capture(n_layer, ln.data());
      }
    }

    std::size_t row = 0;
    for (const auto& w : batch) {
      HiddenStates states;
      states.text_index = w.text;
      states.first_token = w.keep_begin;
      states.token_count = w.keep_end - w.keep_begin;
      states.width = C;
      const std::size_t skip = w.keep_begin - w.begin;
      for (std::size_t i = 0; i < layers.size(); ++i) {
        states.layers.emplace_back(captured.data() + i * TC + (row + skip) * C,
                                   states.token_count * C);
      }
      sink(states);
      done_tokens += states.token_count;
      row += w.length;
    }
    if (progress) progress(done_tokens, total_tokens);
  }
}

}  // namespace tokmap::model
