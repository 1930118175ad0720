#pragma once
// Transformer models on the CPU: configs of the supported architectures (GPT-2, Llama, Mistral,
// Qwen2/3, Gemma 1/2/3, Phi-3, GPT-NeoX, BERT, RoBERTa, DistilBERT), weights (validated name →
// shape tables, each tensor kept in its stored type), finding a model (folder, GGUF file,
// bundled, Hugging Face cache), and one forward pass built from shared kernels that captures
// hidden states exactly as Hugging Face's output_hidden_states=True: n_layer + 1 states, index 0
// = the embeddings (scaled and normalised where the model does so), index l = output of block l,
// the last with the final norm applied (encoders have none: the last block's output).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace tokmap::io {
class MappedFile;
}

namespace tokmap::model {

namespace fs = std::filesystem;

// Hugging Face model_type values that tokmap runs. Families share one forward pass; what differs
// between them is data in Config (norms, residual arrangement, RoPE, masks, MLP kind).
enum class Architecture {
  gpt2,
  llama,
  mistral,
  qwen2,
  qwen3,
  gemma,
  gemma2,
  gemma3_text,
  phi3,
  gpt_neox,
  bert,
  roberta,
  distilbert,
};
std::string_view architecture_name(Architecture architecture);

// gelu_new is the tanh approximation (HF gelu_new / gelu_pytorch_tanh / gelu_fast); gelu is
// exact (erf); silu is x * sigmoid(x).
enum class Activation { gelu_new, gelu, relu, silu };
enum class NormKind { layer_norm, rms_norm };
// How a block adds its attention and MLP to the residual stream.
enum class Residual {
  pre_norm,  // x += attn(norm1(x)); x += mlp(norm2(x))        (GPT-2, Llama, Gemma, ...)
  parallel,  // x += attn(norm1(x)) + mlp(norm2(x))            (GPT-NeoX use_parallel_residual)
  post_norm  // x = norm1(x + attn(x)); x = norm2(x + mlp(x))  (BERT family)
};

// Rotary position embedding of one kind of layer: inverse frequencies
// theta^(-2i/rotary_dim), then rescaled as rope_scaling says.
struct Rope {
  enum class Scaling { none, linear, llama3 };
  double theta = 10000.0;
  Scaling scaling = Scaling::none;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int original_max_positions = 8192;                     // llama3
  // GGUF's rope_freqs tensor (llama.cpp's Llama 3.1+ conversion writes the llama3 scaling as
  // one divisor per inverse frequency): empty, or rotary_dim / 2 values dividing the inverse
  // frequencies after `scaling`.
  std::vector<double> freq_factors;
};

struct Config {
  std::string model_type = "gpt2";
  Architecture architecture = Architecture::gpt2;
  // GPT-2's names for the sizes every architecture has.
  int n_layer = 12;
  int n_head = 12;
  int n_embd = 768;
  int n_positions = 1024;  // longest window the model is run on (max_position_embeddings)
  int vocab_size = 50257;
  int n_inner = 0;  // 0 in config.json (null/absent) means 4 * n_embd; resolved on load
  float layer_norm_epsilon = 1e-5f;
  Activation activation = Activation::gelu_new;
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;

  // Attention shape: n_kv_head < n_head is grouped-query attention; head_dim may differ from
  // n_embd / n_head (Gemma, Qwen3). Resolved on parse (never 0 afterwards).
  int n_kv_head = 0;
  int head_dim = 0;
  float attention_scale = 0;         // 0 = 1 / sqrt(head_dim); Gemma: query_pre_attn_scalar^-1/2
  float attn_logit_softcapping = 0;  // 0 = none; else scores = cap * tanh(scores / cap)
  // 0 = none; else the output head's logits = cap * tanh(logits / cap) (Gemma 2: 30 when absent).
  float final_logit_softcapping = 0;
  bool causal = true;  // false for the bidirectional encoders
  // Per layer: 0 = full attention, else a token sees itself and the window - 1 before it.
  std::vector<int> sliding_window;
  bool qkv_bias = true, out_bias = true, mlp_bias = true;
  bool qk_norm = false;  // per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3)

  NormKind norm = NormKind::layer_norm;
  bool norm_adds_one = false;  // Gemma: RMSNorm scales by (1 + weight)
  Residual residual = Residual::pre_norm;
  bool sandwich_norms = false;  // Gemma 2/3: norms on the attention and MLP outputs too
  bool final_norm = true;       // the last hidden state is normalised (false: encoders)
  bool gated_mlp = false;       // down(act(gate(x)) * up(x)) instead of down(act(up(x)))

  // Embeddings.
  float embedding_scale = 1.0f;   // Gemma: sqrt(n_embd)
  bool learned_positions = true;  // a position table (GPT-2, BERT); false: RoPE
  bool embedding_norm = false;    // BERT: LayerNorm after the embedding sum
  int type_vocab_size = 0;        // BERT token types (tokmap feeds type 0)
  int padding_idx = -1;           // RoBERTa: positions count from padding_idx + 1
  int position_table_rows = 0;    // rows of the position table (learned_positions)

  // RoPE (learned_positions == false): the first rotary_dim dimensions of each head rotate, in
  // Hugging Face's rotate_half pairing (i, i + rotary_dim / 2).
  int rotary_dim = 0;
  Rope rope;        // full-attention layers
  Rope rope_local;  // sliding-window layers (Gemma 3 rope_local_base_freq)
};

// Parses a Hugging Face config.json. GPT-2 when model_type is absent (missing fields take
// GPT-2's defaults); for the other architectures the sizes are required. Unknown fields are
// ignored; an unknown model_type or an unsupported value (rope_scaling type, activation,
// position_embedding_type, ...) fails naming it and `where`.
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
  // Ollama's model store; empty = $OLLAMA_MODELS, else ~/.ollama/models.
  fs::path ollama_models;
};

struct ModelLocation {
  fs::path folder;   // holds config.json, model.safetensors and the tokenizer files; or a .gguf
  std::string name;  // how to name it in outputs (bundled name, HF id, Ollama name, or path)
};

inline constexpr std::string_view kDefaultModel = "demo-brown-gpt2";

// `spec` is a folder, a model file (GGUF), a bundled model name, a Hugging Face model id
// (resolved offline in the cache; aliases such as gpt2 ↔ openai-community/gpt2), or an Ollama
// model name (NAME[:TAG], TAG defaulting to latest, NAME possibly namespace/name or
// host/namespace/name) in the Ollama store: the manifest
// manifests/<host, default registry.ollama.ai>/<namespace, default library>/<name>/<tag> names
// the GGUF blob (layer of mediaType application/vnd.ollama.image.model) under
// blobs/sha256-<hex>. Empty = the default bundled model. When nothing is found the error lists
// every place looked and how to get the model.
ModelLocation resolve_model(std::string_view spec, const ResolveOptions& options);
fs::path default_hf_cache();
fs::path default_ollama_models();
// The GGUF blob of an Ollama model name in `store`, or empty when its manifest is absent (a
// manifest that is present but unusable throws, naming it). Adds the manifest path to `looked`.
fs::path find_ollama_model(const fs::path& store, std::string_view name,
                           std::vector<std::string>& looked);

// ---------------------------------------------------------------------------------------------
// Weights

// How a tensor is stored. The quantised types are GGUF's, in ggml's block layouts: q8_0 and
// q4_0 in blocks of 32 values, the k-quants in super-blocks of 256.
enum class WeightType { f32, f16, bf16, f64, q8_0, q4_0, q4_k, q5_k, q6_k };
std::string_view weight_type_name(WeightType type);
// Values per block (1 for the plain types) and bytes per block.
std::size_t weight_block_values(WeightType type);
std::size_t weight_block_bytes(WeightType type);

// One tensor as it lies in the mapped file, in its own type: row-major, outermost dimension
// first (Hugging Face's order; GGUF's ne[] reversed). Absent tensors have an empty name.
struct Tensor {
  std::string name;
  std::string file;  // for error messages
  WeightType type = WeightType::f32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> bytes;
  // GGUF's llama Q/K rows are permuted per head to Meta's interleaved RoPE order; with
  // unpermute_heads > 0 the conversion puts them back in Hugging Face's rotate_half order.
  int unpermute_heads = 0;
  bool present() const { return !name.empty(); }
  std::size_t numel() const;
};

// Converts (dequantises) rows [row_begin, row_begin + row_count) of a tensor seen as
// (numel / shape.back(), shape.back()) into out (row_count * shape.back() floats), throwing
// (naming file, tensor, row) at the first non-finite value.
void tensor_rows_to_f32(const Tensor& tensor, std::size_t row_begin, std::size_t row_count,
                        std::span<float> out);

// The layout of weight matrices: GPT-2's Conv1D stores (in, out); nn.Linear and GGUF store
// (out, in).
enum class MatrixLayout { in_out, out_in };

class Model {
 public:
  // Loads a Hugging Face folder (config.json and model.safetensors, or the shards listed in
  // model.safetensors.index.json) or a GGUF file, validating every tensor's presence, dtype and
  // shape against the config, and the values of float tensors (a NaN or Inf is named with its
  // tensor and first index). Tensors stay in their own type in the mapped file; the forward pass
  // converts one layer at a time.
  static Model load(const fs::path& path);

  const Config& config() const { return config_; }
  const fs::path& weights_path() const;  // the file it was loaded from (first shard, or .gguf)
  std::size_t parameter_count() const;

  // Every tensor a block may have; which are present depends on the architecture. Matrices
  // are in `layout`; norms and biases are vectors.
  struct Layer {
    Tensor attn_norm, attn_norm_bias;  // before attention (post_norm: after it)
    Tensor q, k, v, q_bias, k_bias, v_bias;
    Tensor qkv, qkv_bias;   // fused: (q rows, k rows, v rows), or per head when qkv_per_head
    Tensor q_norm, k_norm;  // (head_dim)
    Tensor o, o_bias;
    Tensor post_attn_norm;  // sandwich norms (Gemma 2/3)
    Tensor mlp_norm, mlp_norm_bias;
    Tensor gate, gate_bias, up, up_bias;
    Tensor gate_up;  // fused: gate rows then up rows (Phi-3)
    Tensor down, down_bias;
    Tensor post_mlp_norm;
  };
  Tensor token_embedding;       // (vocab_size, C)
  Tensor position_embedding;    // (positions, C) when learned
  Tensor token_type_embedding;  // (type_vocab_size, C)
  Tensor embedding_norm, embedding_norm_bias;
  std::vector<Layer> layers;
  Tensor final_norm, final_norm_bias;
  // The unembedding, (vocab_size, C) in every layout: lm_head / embed_out, or token_embedding
  // when the checkpoint has none (tied: GPT-2, Gemma, Qwen2 small; GGUF without output.weight,
  // as llama.cpp reads it). Absent for the encoders, which have no causal LM head.
  Tensor output_head;
  MatrixLayout layout = MatrixLayout::out_in;
  // GPT-NeoX's Hugging Face query_key_value groups its columns per head: [q_h, k_h, v_h].
  bool qkv_per_head = false;

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

 private:
  Model();
  friend struct ModelBuilder;
  Config config_;
  std::unique_ptr<struct ModelStorage> storage_;  // the mapped file(s)
};

// Converts tensors to float32 for the forward pass, reusing its buffers layer after layer:
// aligned F32 tensors are returned in place, others are converted into the next buffer.
class WeightBuffers {
 public:
  // Starts a new layer: buffers handed out before may be overwritten.
  void reset() { used_ = 0; }
  std::span<const float> f32(const Tensor& tensor);  // empty span for an absent tensor
  // Threads that convert one large tensor, each a fixed range of rows (element-wise, so the
  // result does not depend on the count). Default 1.
  void set_threads(int threads) { threads_ = threads < 1 ? 1 : threads; }

 private:
  std::vector<std::vector<float>> buffers_;
  std::size_t used_ = 0;
  int threads_ = 1;
};

// ---------------------------------------------------------------------------------------------
// GGUF files (llama.cpp, Ollama, LM Studio)

// GGUF's metadata value types, with their numbers in the file.
enum class GgufType : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12
};
std::string_view gguf_type_name(GgufType type);

// One metadata value. Integers and booleans are in `integer` (u64 above INT64_MAX saturates),
// floats in `number`; arrays keep their elements in the vector of their kind (arrays of arrays
// keep only their length).
struct GgufValue {
  GgufType type = GgufType::u8;
  GgufType element_type = GgufType::u8;  // arrays
  std::uint64_t offset = 0;              // byte offset of the value in the file
  std::int64_t integer = 0;
  double number = 0;
  std::string string;
  std::uint64_t count = 0;  // array length
  std::vector<std::int64_t> integers;
  std::vector<double> numbers;
  std::vector<std::string> strings;
  bool is_integer() const;  // an integer type (not bool)
  bool is_float() const { return type == GgufType::f32 || type == GgufType::f64; }
};

// A GGUF file (version 2 or 3, little-endian), validated against its own bounds on open: every
// count, string and array length, tensor dimension, type, offset and size, and the alignment,
// with overflow-safe arithmetic; errors name the file, the key or tensor, and the byte offset.
// Tensor data stays in the mapping.
class GgufFile {
 public:
  struct TensorInfo {
    std::string name;
    std::vector<std::int64_t> shape;  // outermost first: GGUF's ne[] reversed
    std::uint32_t ggml_type = 0;
    std::string_view type_name;  // ggml's name ("Q4_K"), or "type N" when unknown
    bool supported = false;      // `type` is one tokmap converts
    WeightType type = WeightType::f32;
    std::uint64_t info_offset = 0;  // where its entry starts in the header
    std::uint64_t data_offset = 0;  // from the start of the file
    std::uint64_t size = 0;         // bytes
  };

  explicit GgufFile(const fs::path& path);
  // The same on bytes in memory (which must outlive the object); `where` names them in errors.
  GgufFile(std::span<const std::byte> bytes, std::string where);
  GgufFile(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& where() const { return where_; }
  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_start() const { return data_start_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  std::span<const std::byte> data(const TensorInfo& tensor) const;

 private:
  void parse();
  std::unique_ptr<io::MappedFile> file_;
  std::span<const std::byte> bytes_;
  std::string where_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<TensorInfo> tensors_;
};

// True when the file starts with GGUF's magic.
bool is_gguf_file(const fs::path& path);

// A Hugging Face tokenizer.json (text) equivalent to the vocabulary in a GGUF file's metadata:
// tokenizer.ggml.model "gpt2" becomes byte-level BPE with its merges (the pre-tokenizer regex
// chosen by tokenizer.ggml.pre), "llama" SentencePiece-style BPE (Metaspace "▁", byte_fallback,
// merges ranked by score as transformers' convert_slow_tokenizer does); control tokens become
// special added tokens. Throws naming the key when the metadata has no usable vocabulary.
std::string gguf_tokenizer_json(const GgufFile& file);

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
// Output head: next-token predictions of hidden states (the logit lens)

// True for a causal LM with an output head (every decoder tokmap runs; not the encoders).
bool has_output_head(const Model& model);

struct NextTokenOptions {
  int top_k = 5;
  // Apply the final norm first: true for hidden states below the last layer. Hugging Face's
  // last hidden state (index n_layer) already has it, so it must not be applied twice.
  bool final_norm = true;
  int threads = 0;  // for the row-wise work; 0 = all cores (results do not depend on it)
};

// The top k of each row's next-token distribution, most probable first (ties: smaller id first).
struct NextToken {
  int top_k = 0;
  std::vector<std::int32_t> ids;  // (T, top_k)
  std::vector<float> probs;       // (T, top_k)
  std::vector<float> entropy;     // (T), nats, of the whole distribution over the vocabulary
};

// logits = softcap(norm(h) @ output_head^T), p = softmax(logits), with norm the final norm when
// options.final_norm and softcap Gemma 2's final_logit_softcapping (it keeps the ranking but
// changes the probabilities). hidden: (T, n_embd) raw states. Never holds a whole (T, vocab)
// matrix: the vocabulary is taken in pieces, keeping a running top k and the softmax sums
// (max, sum of exp, sum of exp * logit) per row in double.
NextToken next_token(const Model& model, std::span<const float> hidden, std::size_t T,
                     const NextTokenOptions& options);
// Reference: every logit of a row in double, softmax and entropy over the whole row, a full sort.
NextToken next_token_naive(const Model& model, std::span<const float> hidden, std::size_t T,
                           const NextTokenOptions& options);

// ---------------------------------------------------------------------------------------------
// Kernels (exposed for tests and benchmarks). Layouts in comments, outputs first.

namespace kernels {
// Each fast kernel has a naive reference beside it (double accumulation, no BLAS, no tricks)
// that tests compare it with.

// out = inp @ weight + bias. out: (T, OC), inp: (T, C), weight: (C, OC), bias: (OC) or empty.
void matmul(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
            std::span<const float> bias, int T, int C, int OC);
void matmul_naive(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                  std::span<const float> bias, int T, int C, int OC);
// out = inp @ weight^T + bias. out: (T, OC), inp: (T, C), weight: (OC, C) (nn.Linear, GGUF),
// bias: (OC) or empty.
void matmul_transposed(std::span<float> out, std::span<const float> inp,
                       std::span<const float> weight, std::span<const float> bias, int T, int C,
                       int OC);
void matmul_transposed_naive(std::span<float> out, std::span<const float> inp,
                             std::span<const float> weight, std::span<const float> bias, int T,
                             int C, int OC);

// out: (T, C), inp: (T, C), weight/bias: (C)
void layernorm(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
               std::span<const float> bias, int T, int C, float eps);
void layernorm_naive(std::span<float> out, std::span<const float> inp,
                     std::span<const float> weight, std::span<const float> bias, int T, int C,
                     float eps);
// out = inp / sqrt(mean(inp^2) + eps) * w, w = weight or (1 + weight) when add_one (Gemma).
// out: (T, C), inp: (T, C), weight: (C). out may alias inp.
void rmsnorm(std::span<float> out, std::span<const float> inp, std::span<const float> weight, int T,
             int C, float eps, bool add_one);
void rmsnorm_naive(std::span<float> out, std::span<const float> inp, std::span<const float> weight,
                   int T, int C, float eps, bool add_one);

// Where per-head vectors lie in a buffer: element d of head h of token t is at
// offset + t * row_stride + h * head_stride + d.
struct HeadView {
  std::size_t offset = 0;
  std::size_t row_stride = 0;
  std::size_t head_stride = 0;
  std::size_t at(std::size_t t, std::size_t h) const {
    return offset + t * row_stride + h * head_stride;
  }
};

// RMSNorm of every head vector in place (Qwen3 / Gemma 3 q and k norms). x: T rows of n_heads
// vectors of head_dim as `view` says; weight: (head_dim).
void head_rmsnorm(std::span<float> x, HeadView view, int T, int n_heads, int head_dim,
                  std::span<const float> weight, float eps, bool add_one);

// Inverse frequencies of RoPE: (rotary_dim / 2) values theta^(-2i / rotary_dim), rescaled as
// rope.scaling says (linear: / factor; llama3: Meta's wavelength-dependent blend).
std::vector<double> rope_inverse_frequencies(const Rope& rope, int rotary_dim);
// cos, sin: (T, rotary_dim / 2) for the given positions, computed as Hugging Face does (float32
// angle = float32 position * float32 inverse frequency).
void rope_tables(std::span<float> cos, std::span<float> sin, std::span<const int> positions,
                 std::span<const double> inverse_frequencies);
// Rotates the first rotary_dim dimensions of every head in place, pairing dimension i with
// i + rotary_dim / 2 (Hugging Face's rotate_half). cos, sin: (T, rotary_dim / 2).
void rope(std::span<float> x, HeadView view, int T, int n_heads, int rotary_dim,
          std::span<const float> cos, std::span<const float> sin);
void rope_naive(std::span<float> x, HeadView view, int T, int n_heads, int rotary_dim,
                std::span<const int> positions, std::span<const double> inverse_frequencies);

// Self-attention of one sequence of T tokens.
struct AttentionShape {
  int T = 0;
  int n_head = 1;
  int n_kv_head = 1;  // query head h reads key/value head h / (n_head / n_kv_head)
  int head_dim = 0;
  float scale = 1.0f;    // on q·k
  float softcap = 0.0f;  // 0 = none; else scores = softcap * tanh(scores / softcap)
  bool causal = true;
  int window = 0;  // 0 = unlimited; else query i sees keys (i - window, i]
};
// Query head h: writes out's columns [h * head_dim, (h + 1) * head_dim) of rows with stride
// out_stride. q/k/v are read through their views (they may share one buffer). scratch: at
// least min(64, T) * T floats.
void attention_head(std::span<float> out, std::size_t out_stride, std::span<const float> q,
                    HeadView q_view, std::span<const float> k, HeadView k_view,
                    std::span<const float> v, HeadView v_view, std::span<float> scratch,
                    const AttentionShape& shape, int h);
void attention_naive(std::span<float> out, std::size_t out_stride, std::span<const float> q,
                     HeadView q_view, std::span<const float> k, HeadView k_view,
                     std::span<const float> v, HeadView v_view, const AttentionShape& shape);

// GPT-2's causal multi-head attention. out: (T, C); qkv: (T, 3C) as [q | k | v];
// scratch: at least min(64, T) * T floats.
void attention(std::span<float> out, std::span<const float> qkv, std::span<float> scratch, int T,
               int C, int n_head, float scale);
// The same for head h alone: writes out's columns [h * C / n_head, (h + 1) * C / n_head).
void attention_head(std::span<float> out, std::span<const float> qkv, std::span<float> scratch,
                    int T, int C, int n_head, int h, float scale);
void attention_naive(std::span<float> out, std::span<const float> qkv, int T, int C, int n_head,
                     float scale);

// In place on (n) values.
void activation(std::span<float> x, Activation kind);
void activation_naive(std::span<float> x, Activation kind);
// out = act(gate) * up, row by row. out: (T, I); gate, up: T rows of I values, rows
// gate_stride / up_stride floats apart (a fused gate_up buffer has both in one row).
void gated_activation(std::span<float> out, std::span<const float> gate, std::size_t gate_stride,
                      std::span<const float> up, std::size_t up_stride, int T, int I,
                      Activation kind);
float fast_exp(float x);
}  // namespace kernels

}  // namespace tokmap::model
