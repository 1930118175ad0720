#include <cblas.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>

#include "io/io.hpp"
#include "model/model.hpp"

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

void forward(const Model& model, std::span<const std::vector<std::int32_t>> texts,
             const ForwardOptions& options, const HiddenStatesSink& sink,
             const ProgressCallback& progress) {
  const Config& config = model.config();
  const int C = config.n_embd;
  const int I = config.n_inner;
  const int n_layer = config.n_layer;

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

  // Pack windows into batches: the matmuls see every token of the batch at once.
  std::size_t done_tokens = 0;
  std::vector<float> x, ln, qkv, att, proj, hidden, scratch, captured;
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
    att.resize(TC);
    proj.resize(TC);
    qkv.resize(3 * TC);
    hidden.resize(std::size_t(T) * I);
    captured.resize(layers.size() * TC);
    int max_window = 0;
    std::vector<std::size_t> window_rows;  // first row of each window in the batch
    for (std::size_t rows = 0; const auto& w : batch) {
      max_window = std::max(max_window, w.length);
      window_rows.push_back(rows);
      rows += static_cast<std::size_t>(w.length);
    }
    scratch.resize(std::size_t(threads) * max_window * max_window);

    // out (T, OC) = inp (T, K) weight (K, OC) + bias, in fixed pieces of kMatmulRows rows.
    auto matmul_rows = [&](std::vector<float>& out, const std::vector<float>& inp,
                           std::span<const float> weight, std::span<const float> bias, int K,
                           int OC) {
      parallel_pieces((T + kMatmulRows - 1) / kMatmulRows, threads, [&](int piece, int) {
        const int begin = piece * kMatmulRows, rows = std::min(kMatmulRows, T - begin);
        kernels::matmul(std::span(out).subspan(std::size_t(begin) * OC, std::size_t(rows) * OC),
                        std::span(inp).subspan(std::size_t(begin) * K, std::size_t(rows) * K),
                        weight, bias, rows, K, OC);
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

    // Embeddings: x = wte[id] + wpe[position in window].
    {
      std::size_t row = 0;
      for (const auto& w : batch) {
        for (int p = 0; p < w.length; ++p, ++row) {
          const float* token = model.wte.data() + std::size_t(texts[w.text][w.begin + p]) * C;
          const float* position = model.wpe.data() + std::size_t(p) * C;
          float* out = x.data() + row * C;
          for (int c = 0; c < C; ++c) out[c] = token[c] + position[c];
        }
      }
    }
    capture(0, x.data());

    const float eps = config.layer_norm_epsilon;
    auto layernorm_rows = [&](std::vector<float>& out, const std::vector<float>& in,
                              std::span<const float> weight, std::span<const float> bias) {
      parallel_rows(T, threads, [&](int begin, int end) {
        kernels::layernorm(std::span(out).subspan(std::size_t(begin) * C),
                           std::span(in).subspan(std::size_t(begin) * C), weight, bias, end - begin,
                           C, eps);
      });
    };

    for (int l = 0; l < deepest && l < n_layer; ++l) {
      const Model::Layer& layer = model.layers[l];
      layernorm_rows(ln, x, layer.ln_1_weight, layer.ln_1_bias);
      matmul_rows(qkv, ln, layer.attn_weight, layer.attn_bias, C, 3 * C);
      float scale = config.scale_attn_weights ? 1.0f / std::sqrt(float(C / config.n_head)) : 1.0f;
      if (config.scale_attn_by_inverse_layer_idx) scale /= float(l + 1);
      // One piece per window and head.
      parallel_pieces(
          static_cast<int>(batch.size()) * config.n_head, threads, [&](int piece, int worker) {
            const Window& w = batch[static_cast<std::size_t>(piece / config.n_head)];
            const std::size_t row = window_rows[piece / config.n_head];
            kernels::attention_head(
                std::span(att).subspan(row * C), std::span(qkv).subspan(row * 3 * C),
                std::span(scratch).subspan(std::size_t(worker) * max_window * max_window), w.length,
                C, config.n_head, piece % config.n_head, scale);
          });
      matmul_rows(proj, att, layer.attn_proj_weight, layer.attn_proj_bias, C, C);
      for (std::size_t i = 0; i < TC; ++i) x[i] += proj[i];

      layernorm_rows(ln, x, layer.ln_2_weight, layer.ln_2_bias);
      matmul_rows(hidden, ln, layer.fc_weight, layer.fc_bias, C, I);
      parallel_rows(T, threads, [&](int begin, int end) {
        kernels::activation(
            std::span(hidden).subspan(std::size_t(begin) * I, std::size_t(end - begin) * I),
            config.activation);
      });
      matmul_rows(proj, hidden, layer.fc_proj_weight, layer.fc_proj_bias, I, C);
      for (std::size_t i = 0; i < TC; ++i) x[i] += proj[i];

      if (l + 1 < n_layer) {
        capture(l + 1, x.data());
      } else {
        // The last hidden state has the final layer norm applied (Hugging Face convention).
        layernorm_rows(ln, x, model.ln_f_weight, model.ln_f_bias);
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
