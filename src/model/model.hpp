#pragma once
// GPT-2-family models on the CPU: config, weights (validated name → shape table), finding a
// model (folder, bundled, Hugging Face cache), and the forward pass that captures hidden states
// exactly as Hugging Face's output_hidden_states=True: n_layer + 1 states, index 0 = wte + wpe,
// index l = output of block l, the last with ln_f applied.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace tokmap::model {

namespace fs = std::filesystem;

enum class Activation { gelu_new, gelu, relu };

struct Config {
  int n_layer = 12;
  int n_head = 12;
  int n_embd = 768;
  int n_positions = 1024;
  int vocab_size = 50257;
  int n_inner = 0;  // 0 in config.json (null/absent) means 4 * n_embd; resolved on load
  float layer_norm_epsilon = 1e-5f;
  Activation activation = Activation::gelu_new;
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
};

// Parses a Hugging Face GPT-2 config.json; missing fields take GPT-2's defaults, unknown fields
// are ignored. `where` names the file in error messages.
Config parse_config(std::string_view json_text, const std::string& where);
Config load_config(const fs::path& config_json);

// ---------------------------------------------------------------------------------------------
// Finding a model

struct ResolveOptions {
  // Folders that hold the bundled models (first match wins).
  std::vector<fs::path> bundled_dirs;
  // Hugging Face hub cache; empty = $HF_HUB_CACHE, else $HF_HOME/hub, else
  // ~/.cache/huggingface/hub.
  fs::path hf_cache;
};

struct ModelLocation {
  fs::path folder;   // holds config.json, model.safetensors and the tokenizer files
  std::string name;  // how to name it in outputs (bundled name, HF id, or the folder)
};

inline constexpr std::string_view kDefaultModel = "demo-brown-gpt2";

// `spec` is a folder, a bundled model name, or a Hugging Face model id (resolved offline in the
// cache; aliases such as gpt2 ↔ openai-community/gpt2). Empty = the default bundled model.
// When nothing is found the error lists every place looked and how to get the model.
ModelLocation resolve_model(std::string_view spec, const ResolveOptions& options);
fs::path default_hf_cache();

// ---------------------------------------------------------------------------------------------
// Weights

class Model {
 public:
  // Loads config.json and model.safetensors from `folder`, validating every tensor's presence,
  // dtype, shape and values (a NaN or Inf is named with its tensor and first index); F16/BF16
  // are converted to float32, aligned F32 tensors are used in place.
  static Model load(const fs::path& folder);

  const Config& config() const { return config_; }
  const fs::path& weights_path() const;  // the model.safetensors it was loaded from
  std::size_t parameter_count() const;

  struct Layer {
    // All weights in Hugging Face's Conv1D layout: (in_features, out_features) row-major.
    std::span<const float> ln_1_weight, ln_1_bias;            // (C)
    std::span<const float> attn_weight, attn_bias;            // (C, 3C), (3C)
    std::span<const float> attn_proj_weight, attn_proj_bias;  // (C, C), (C)
    std::span<const float> ln_2_weight, ln_2_bias;            // (C)
    std::span<const float> fc_weight, fc_bias;                // (C, n_inner), (n_inner)
    std::span<const float> fc_proj_weight, fc_proj_bias;      // (n_inner, C), (C)
  };
  std::span<const float> wte;  // (vocab_size, C)
  std::span<const float> wpe;  // (n_positions, C)
  std::vector<Layer> layers;
  std::span<const float> ln_f_weight, ln_f_bias;  // (C)

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

 private:
  Model();
  struct Storage;
  Config config_;
  std::unique_ptr<Storage> storage_;  // the mapped file and any converted tensors
};

// ---------------------------------------------------------------------------------------------
// Forward pass

struct ForwardOptions {
  // Hidden-state indices to capture, each in [0, n_layer]; empty = all n_layer + 1.
  std::vector<int> layers;
  // Texts longer than n_positions are split into windows of n_positions tokens that start
  // `window_stride` tokens apart (0 = n_positions / 2); each token keeps the state from the
  // earliest window that holds it, i.e. the one giving it the most left context, so every
  // token beyond the first window sees at least n_positions - stride tokens of context. The
  // last window is aligned to the end of the text.
  int window_stride = 0;
  // Windows are packed into batches of at most this many tokens (matmuls run on the batch).
  int batch_tokens = 2048;
  // OpenMP threads for the non-BLAS kernels; 0 = all cores.
  int threads = 0;
};

// Hidden states of a run of consecutive tokens of one text.
struct HiddenStates {
  std::size_t text_index = 0;
  std::size_t first_token = 0;  // index within the text
  std::size_t token_count = 0;
  std::size_t width = 0;  // n_embd
  // One entry per selected layer, in the order of ForwardOptions::layers:
  // (token_count, width) row-major.
  std::vector<std::span<const float>> layers;
};

using HiddenStatesSink = std::function<void(const HiddenStates&)>;
using ProgressCallback = std::function<void(std::size_t tokens_done, std::size_t tokens_total)>;

// Runs the model over every text (token ids), calling `sink` for each run of tokens in text
// order; never holds more than one batch's selected layers. Throws for empty texts or ids out
// of the vocabulary, and when a layer produces a NaN or Inf (naming the layer, text and token),
// so a sink never sees a non-finite hidden state.
void forward(const Model& model, std::span<const std::vector<std::int32_t>> texts,
             const ForwardOptions& options, const HiddenStatesSink& sink,
             const ProgressCallback& progress = {});

// A one-line advice when the BLAS library runs a generic kernel on a CPU that has much faster
// ones (OpenBLAS 0.3.21 does not recognise some recent Xeons and falls back to "Prescott", about
// 3.5x slower for the forward pass), or empty. Never changes the setting itself.
std::string blas_kernel_advice();

// Validates a --layers specification ("all", "last", or a comma list such as "0,3,6", negative
// numbers counting from the end) against n_layer; returns sorted unique indices.
std::vector<int> parse_layers(std::string_view spec, int n_layer);

// ---------------------------------------------------------------------------------------------
// Kernels (exposed for tests and benchmarks). Layouts in comments, outputs first.

namespace kernels {
// out = inp @ weight + bias. out: (T, OC), inp: (T, C), weight: (C, OC), bias: (OC) or empty.
void matmul(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
            std::span<const float> bias, int T, int C, int OC);
void matmul_naive(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                  std::span<const float> bias, int T, int C, int OC);
// out: (T, C), inp: (T, C), weight/bias: (C)
void layernorm(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
               std::span<const float> bias, int T, int C, float eps);
// Causal self-attention for one sequence. out: (T, C); qkv: (T, 3C) as [q | k | v];
// scratch: at least (T, T) floats.
void attention(std::span<float> out, std::span<const float> qkv, std::span<float> scratch, int T,
               int C, int n_head, float scale);
// The same for head h alone: writes out's columns [h * C / n_head, (h + 1) * C / n_head).
void attention_head(std::span<float> out, std::span<const float> qkv, std::span<float> scratch,
                    int T, int C, int n_head, int h, float scale);
void attention_naive(std::span<float> out, std::span<const float> qkv, int T, int C, int n_head,
                     float scale);
// In place on (n) values.
void activation(std::span<float> x, Activation kind);
float fast_exp(float x);
}  // namespace kernels

}  // namespace tokmap::model
