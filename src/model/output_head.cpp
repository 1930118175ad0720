// The output head: hidden states → next-token distributions (final norm, unembedding,
// Gemma 2's final soft-capping, softmax), reduced on the fly to a top k and the entropy so that
// a whole (tokens, vocabulary) matrix of logits is never kept.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <thread>

#include "model/weights_internal.hpp"

namespace tokmap::model {

namespace {

// Vocabulary rows per piece: the piece's (T, rows) logits stay in cache-sized slices while the
// running sums are updated, and a piece of a quantised head converts in one go.
constexpr std::size_t kPieceRows = 4096;
constexpr std::size_t kRowBlock = 512;

void check_input(const Model& model, std::span<const float> hidden, std::size_t T,
                 const NextTokenOptions& options) {
  if (!has_output_head(model)) {
    throw Error(model.weights_path().string() + ": " +
                std::string(architecture_name(model.config().architecture)) +
                " has no causal LM head (no next-token predictions)");
  }
  const auto C = static_cast<std::size_t>(model.config().n_embd);
  if (hidden.size() != T * C) {
    throw Error("next_token: hidden states of " + std::to_string(hidden.size()) +
                " values, expected " + std::to_string(T) + " x " + std::to_string(C));
  }
  if (options.top_k < 1 || options.top_k > model.config().vocab_size) {
    throw Error("next_token: top_k must be in 1.." + std::to_string(model.config().vocab_size));
  }
}

// The rows as the head sees them: with the final norm applied when asked. out: (T, C).
void normalise(std::vector<float>& out, const Model& model, std::span<const float> hidden,
               std::size_t T, bool final_norm, bool naive) {
  const Config& config = model.config();
  const int C = config.n_embd;
  out.assign(hidden.begin(), hidden.end());
  if (!final_norm || !config.final_norm) return;
  WeightBuffers weights;
  const auto weight = weights.f32(model.final_norm);
  const auto bias = weights.f32(model.final_norm_bias);
  const float eps = config.layer_norm_epsilon;
  if (config.norm == NormKind::layer_norm) {
    (naive ? kernels::layernorm_naive : kernels::layernorm)(out, hidden, weight, bias, int(T), C,
                                                            eps);
  } else {
    (naive ? kernels::rmsnorm_naive : kernels::rmsnorm)(out, hidden, weight, int(T), C, eps,
                                                        config.norm_adds_one);
  }
}

// Running softmax sums and top k of one row over the pieces seen so far.
struct RowState {
  double max = -INFINITY;
  double sum = 0;                                   // sum of exp(z - max)
  double weighted = 0;                              // sum of exp(z - max) * z
  std::vector<std::pair<float, std::int32_t>> top;  // (logit, id), best first

  // Adds the logits z[0..count) of ids first..first+count (ascending ids).
  void add(const float* z, std::size_t count, std::int32_t first, std::size_t k) {
    double piece_max = -INFINITY;
    for (std::size_t j = 0; j < count; ++j) piece_max = std::max(piece_max, double(z[j]));
    if (piece_max > max) {
      const double scale = std::exp(max - piece_max);  // 0 on the first piece
      sum *= scale;
      weighted *= scale;
      max = piece_max;
    }
    // max is one of the float logits, so z - max is exact in float; expf is accurate to an ulp
    // and about twice as fast as exp in double on the vocabulary-long rows; sums stay double.
    const auto top_of_piece = static_cast<float>(max);
    for (std::size_t j = 0; j < count; ++j) {
      const double e = std::exp(z[j] - top_of_piece);
      sum += e;
      weighted += e * double(z[j]);
      // Ids come in ascending order, so an equal logit later loses: ties keep the smaller id.
      if (top.size() == k && !(z[j] > top.back().first)) continue;
      const auto at = std::find_if(top.begin(), top.end(),
                                   [&](const auto& entry) { return z[j] > entry.first; });
      top.insert(at, {z[j], first + static_cast<std::int32_t>(j)});
      if (top.size() > k) top.pop_back();
    }
  }
};

template <typename Fn>
void parallel_rows(std::size_t n, int threads, Fn&& fn) {
  const std::size_t workers = std::clamp<std::size_t>(
      threads > 0 ? std::size_t(threads) : std::thread::hardware_concurrency(), 1,
      std::max<std::size_t>(1, n / 8));
  if (workers <= 1) {
    fn(0, n);
    return;
  }
  std::vector<std::jthread> pool;
  const std::size_t chunk = (n + workers - 1) / workers;
  for (std::size_t w = 1; w < workers; ++w) {
    const std::size_t begin = std::min(n, w * chunk), end = std::min(n, begin + chunk);
    pool.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(0, std::min(n, chunk));
}

}  // namespace

bool has_output_head(const Model& model) {
  return model.config().causal && model.output_head.present();
}

NextToken next_token(const Model& model, std::span<const float> hidden, std::size_t T,
                     const NextTokenOptions& options) {
  check_input(model, hidden, T, options);
  const Config& config = model.config();
  const auto C = static_cast<std::size_t>(config.n_embd);
  const auto V = static_cast<std::size_t>(config.vocab_size);
  const auto k = static_cast<std::size_t>(options.top_k);
  const float cap = config.final_logit_softcapping;
  std::vector<float> x;
  normalise(x, model, hidden, T, options.final_norm, false);

  const Tensor& head = model.output_head;
  const bool in_place = head.type == WeightType::f32 &&
                        reinterpret_cast<std::uintptr_t>(head.bytes.data()) % alignof(float) == 0;
  std::vector<float> converted;
  // Rows go through each piece in blocks, so the logits buffer is at most kRowBlock x
  // kPieceRows floats (8 MiB) however many rows come (a 7B model's 33 layers x 2048 tokens).
  const std::size_t block = std::min(T, kRowBlock);
  std::vector<float> logits(block * kPieceRows);
  std::vector<RowState> rows(T);
  for (std::size_t first = 0; first < V; first += kPieceRows) {
    const std::size_t count = std::min(kPieceRows, V - first);
    std::span<const float> weight;
    if (in_place) {
      weight = {reinterpret_cast<const float*>(head.bytes.data()) + first * C, count * C};
    } else {
      converted.resize(count * C);
      tensor_rows_to_f32(head, first, count, converted);
      weight = converted;
    }
    for (std::size_t row0 = 0; row0 < T; row0 += block) {
      const std::size_t n = std::min(block, T - row0);
      // logits (n, count) = x[row0 .. row0 + n) (n, C) @ weight (count, C)^T
      kernels::matmul_transposed(std::span(logits).first(n * count),
                                 std::span<const float>(x).subspan(row0 * C, n * C), weight, {},
                                 int(n), int(C), int(count));
      parallel_rows(n, options.threads, [&](std::size_t begin, std::size_t end) {
        for (std::size_t t = begin; t < end; ++t) {
          float* z = logits.data() + t * count;
          if (cap > 0) {
            for (std::size_t j = 0; j < count; ++j) z[j] = cap * std::tanh(z[j] / cap);
          }
          rows[row0 + t].add(z, count, static_cast<std::int32_t>(first), k);
        }
      });
    }
  }
  NextToken out;
  out.top_k = options.top_k;
  out.ids.resize(T * k);
  out.probs.resize(T * k);
  out.entropy.resize(T);
  for (std::size_t t = 0; t < T; ++t) {
    const RowState& r = rows[t];
    const double log_z = r.max + std::log(r.sum);
    // H = log Z - E[z]
    out.entropy[t] = static_cast<float>(std::max(0.0, log_z - r.weighted / r.sum));
    for (std::size_t j = 0; j < k; ++j) {
      out.ids[t * k + j] = r.top[j].second;
      out.probs[t * k + j] = static_cast<float>(std::exp(double(r.top[j].first) - log_z));
    }
  }
  return out;
}

NextToken next_token_naive(const Model& model, std::span<const float> hidden, std::size_t T,
                           const NextTokenOptions& options) {
  check_input(model, hidden, T, options);
  const Config& config = model.config();
  const auto C = static_cast<std::size_t>(config.n_embd);
  const auto V = static_cast<std::size_t>(config.vocab_size);
  const auto k = static_cast<std::size_t>(options.top_k);
  const double cap = config.final_logit_softcapping;
  std::vector<float> x;
  normalise(x, model, hidden, T, options.final_norm, true);
  std::vector<float> head(V * C);
  tensor_rows_to_f32(model.output_head, 0, V, head);
  NextToken out;
  out.top_k = options.top_k;
  std::vector<double> z(V);
  std::vector<std::int32_t> order(V);
  for (std::size_t t = 0; t < T; ++t) {
    for (std::size_t v = 0; v < V; ++v) {
      double dot = 0;
      for (std::size_t c = 0; c < C; ++c) dot += double(x[t * C + c]) * double(head[v * C + c]);
      z[v] = cap > 0 ? cap * std::tanh(dot / cap) : dot;
    }
    const double max = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (const double value : z) sum += std::exp(value - max);
    const double log_z = max + std::log(sum);
    double entropy = 0;
    for (const double value : z) {
      const double log_p = value - log_z;
      entropy -= std::exp(log_p) * log_p;
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return z[a] > z[b]; });
    for (std::size_t j = 0; j < k; ++j) {
      out.ids.push_back(order[j]);
      out.probs.push_back(static_cast<float>(std::exp(z[order[j]] - log_z)));
    }
    out.entropy.push_back(static_cast<float>(entropy));
  }
  return out;
}

}  // namespace tokmap::model
