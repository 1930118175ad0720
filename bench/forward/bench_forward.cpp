// Times model::forward() on fixed token ids: best (and median) of N runs per thread count,
// after one warm-up run; optionally a per-kernel breakdown of one transformer block at the
// same shapes, and a dump of the last hidden state for comparison with another implementation.
//
//   bench_forward --model DIR --ids FILE [--threads 1,2] [--runs 5] [--breakdown]
//                 [--dump-last OUT.f32]
// --runs 0 skips the whole-model timing (with --breakdown: only the per-kernel times).
//
// FILE: one text per line, token ids separated by spaces. Prints one JSON object per line.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "model/model.hpp"

using namespace tokmap;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of the whole process (all threads): less sensitive than wall time to other
// programs on a shared machine, and shows how many cores a run really kept busy.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::vector<std::vector<std::int32_t>> read_ids(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::vector<std::vector<std::int32_t>> texts;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::int32_t> ids;
    long id = 0;
    while (fields >> id) ids.push_back(static_cast<std::int32_t>(id));
    if (!ids.empty()) texts.push_back(std::move(ids));
  }
  return texts;
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(std::stoi(item));
  return values;
}

// Times each kernel of one block at the forward pass's shapes (T tokens in windows of `window`),
// min over `runs`, in milliseconds; multiply by n_layer for the whole model.
void breakdown(const model::Model& model, int T, int window, int threads, int runs) {
  const auto& config = model.config();
  const int C = config.n_embd, I = config.n_inner;
  openblas_set_num_threads(threads);
  std::vector<float> x(std::size_t(T) * C, 0.5f), ln(x.size()), qkv(3 * x.size()), att(x.size()),
      proj(x.size()), hidden(std::size_t(T) * I), scratch(std::size_t(window) * window);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
  if (config.architecture != model::Architecture::gpt2) {
    std::printf("{\"breakdown\": \"skipped: the per-kernel breakdown times GPT-2 blocks\"}\n");
    return;
  }
  // Block 0's weights as float32 (the forward pass converts them the same way, per layer).
  model::WeightBuffers buffers;
  struct {
    std::span<const float> ln_1_weight, ln_1_bias, attn_weight, attn_bias, attn_proj_weight,
        attn_proj_bias, fc_weight, fc_bias, fc_proj_weight, fc_proj_bias;
  } layer;
  const auto& block0 = model.layers[0];
  layer.ln_1_weight = buffers.f32(block0.attn_norm);
  layer.ln_1_bias = buffers.f32(block0.attn_norm_bias);
  layer.attn_weight = buffers.f32(block0.qkv);
  layer.attn_bias = buffers.f32(block0.qkv_bias);
  layer.attn_proj_weight = buffers.f32(block0.o);
  layer.attn_proj_bias = buffers.f32(block0.o_bias);
  layer.fc_weight = buffers.f32(block0.up);
  layer.fc_bias = buffers.f32(block0.up_bias);
  layer.fc_proj_weight = buffers.f32(block0.down);
  layer.fc_proj_bias = buffers.f32(block0.down_bias);
  struct Item { const char* name; double flops; std::function<void()> fn; double best = 1e30; };
  const double hs = C / config.n_head;
  const float scale = 1.0f / std::sqrt(float(hs));
  std::vector<Item> items;
  items.push_back({"layernorm (x2 per block)", 0, [&] {
                     model::kernels::layernorm(ln, x, layer.ln_1_weight, layer.ln_1_bias, T, C, 1e-5f); }});
  items.push_back({"matmul qkv", 2.0 * T * C * 3 * C, [&] {
                     model::kernels::matmul(qkv, ln, layer.attn_weight, layer.attn_bias, T, C, 3 * C); }});
  items.push_back({"attention", 2.0 * 2.0 * (T / window) * double(window) * window * C, [&] {
                     for (int r = 0; r < T; r += window)
                       model::kernels::attention(std::span(att).subspan(std::size_t(r) * C),
                                                 std::span<const float>(qkv).subspan(std::size_t(r) * 3 * C),
                                                 scratch, window, C, config.n_head, scale); }});
  items.push_back({"matmul attn proj", 2.0 * T * C * C, [&] {
                     model::kernels::matmul(proj, att, layer.attn_proj_weight, layer.attn_proj_bias, T, C, C); }});
  items.push_back({"residual add (x2 per block)", 0, [&] {
                     for (std::size_t i = 0; i < x.size(); ++i) x[i] += proj[i] * 1e-9f; }});
  items.push_back({"matmul fc", 2.0 * T * C * I, [&] {
                     model::kernels::matmul(hidden, ln, layer.fc_weight, layer.fc_bias, T, C, I); }});
  items.push_back({"gelu_new", 0, [&] {
                     std::fill(hidden.begin(), hidden.end(), 0.25f);
                     model::kernels::activation(hidden, model::Activation::gelu_new); }});
  items.push_back({"matmul fc proj", 2.0 * T * I * C, [&] {
                     model::kernels::matmul(proj, hidden, layer.fc_proj_weight, layer.fc_proj_bias, T, I, C); }});
  for (int r = 0; r < runs; ++r) {
    for (auto& item : items) {
      const auto start = Clock::now();
      item.fn();
      item.best = std::min(item.best, seconds_since(start));
    }
  }
  double block = 0;
  for (const auto& item : items) {
    const bool twice = std::string(item.name).find("x2") != std::string::npos;
    block += item.best * (twice ? 2 : 1);
  }
  for (const auto& item : items) {
    const bool twice = std::string(item.name).find("x2") != std::string::npos;
    std::printf("{\"breakdown\": \"%s\", \"threads\": %d, \"ms_per_block\": %.3f, \"share\": %.3f, \"gflops\": %.1f}\n",
                item.name, threads, item.best * 1e3 * (twice ? 2 : 1),
                item.best * (twice ? 2 : 1) / block, item.flops > 0 ? item.flops / item.best / 1e9 : 0.0);
  }
  std::printf("{\"breakdown\": \"block total\", \"threads\": %d, \"ms_per_block\": %.3f, \"ms_model_estimate\": %.1f}\n",
              threads, block * 1e3, block * 1e3 * config.n_layer);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, ids_path, dump_last;
  std::vector<int> thread_counts = {1, 2};
  int runs = 5;
  bool do_breakdown = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", arg.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (arg == "--model") model_dir = value();
    else if (arg == "--ids") ids_path = value();
    else if (arg == "--threads") thread_counts = parse_list(value());
    else if (arg == "--runs") runs = std::stoi(value());
    else if (arg == "--breakdown") do_breakdown = true;
    else if (arg == "--dump-last") dump_last = value();
    else { std::fprintf(stderr, "unknown argument %s\n", arg.c_str()); return 2; }
  }
  if (model_dir.empty() || ids_path.empty()) {
    std::fprintf(stderr, "usage: bench_forward --model DIR --ids FILE [--threads 1,2] [--runs N] [--breakdown] [--dump-last OUT.f32]\n");
    return 2;
  }
  try {
    auto start = Clock::now();
    const model::Model model = model::Model::load(model_dir);
    const double load_s = seconds_since(start);
    const auto texts = read_ids(ids_path);
    std::size_t tokens = 0;
    int longest = 0;
    for (const auto& t : texts) {
      tokens += t.size();
      longest = std::max(longest, int(t.size()));
    }
    const int n_layer = model.config().n_layer;
    std::printf("{\"model\": \"%s\", \"load_s\": %.3f, \"texts\": %zu, \"tokens\": %zu, \"openblas_core\": \"%s\", \"openblas_config\": \"%s\"}\n",
                model_dir.c_str(), load_s, texts.size(), tokens, openblas_get_corename(),
                openblas_get_config());
    std::fflush(stdout);

    for (const int threads : runs > 0 ? thread_counts : std::vector<int>{}) {
      model::ForwardOptions options;  // all n_layer + 1 hidden states, as `embed --layers all`
      options.threads = threads;
      std::vector<double> times, cpu_times;
      for (int r = 0; r <= runs; ++r) {  // run 0 is the warm-up (page-in of the mapped weights)
        std::size_t seen = 0;
        const double cpu_start = process_cpu_seconds();
        start = Clock::now();
        model::forward(model, texts, options, [&](const model::HiddenStates& states) {
          seen += states.token_count;
          if (!dump_last.empty() && r == 0 && threads == thread_counts.front()) {
            std::ofstream out(dump_last, states.text_index == 0 && states.first_token == 0
                                             ? std::ios::binary | std::ios::trunc
                                             : std::ios::binary | std::ios::app);
            const auto last = states.layers.back();
            out.write(reinterpret_cast<const char*>(last.data()), std::streamsize(last.size_bytes()));
          }
        });
        const double s = seconds_since(start);
        const double cpu = process_cpu_seconds() - cpu_start;
        if (seen != tokens) throw Error("forward returned " + std::to_string(seen) + " tokens, expected " + std::to_string(tokens));
        if (r > 0) {
          times.push_back(s);
          cpu_times.push_back(cpu);
        }
      }
      std::vector<double> sorted = times;
      std::sort(sorted.begin(), sorted.end());
      std::string all;
      for (const double t : times) all += (all.empty() ? "" : ", ") + std::to_string(t);
      std::printf("{\"impl\": \"tokmap\", \"threads\": %d, \"layers\": %d, \"runs\": %d, \"best_s\": %.4f, \"median_s\": %.4f, \"tokens_per_s\": %.1f, \"times_s\": [%s], \"min_cpu_s\": %.4f}\n",
                  threads, n_layer + 1, runs, sorted.front(), sorted[sorted.size() / 2],
                  double(tokens) / sorted.front(), all.c_str(),
                  *std::min_element(cpu_times.begin(), cpu_times.end()));
      std::fflush(stdout);
    }
    if (do_breakdown) {
      for (const int threads : thread_counts) breakdown(model, int(tokens), longest, threads, std::max(3, runs));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_forward: %s\n", e.what());
    return 1;
  }
  return 0;
}
