// Weights: the tensors of every architecture by name and expected shape, found in one
// safetensors file, in shards listed by model.safetensors.index.json, or in a GGUF file
// (gguf.cpp renames its tensors to these names). Tensors stay in the mapped files in their own
// type; WeightBuffers converts them per layer for the forward pass.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <set>
#include <thread>

#include "io/io.hpp"
#include "io/json.hpp"
#include "model/weights_internal.hpp"

namespace tokmap::model {

Model::Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

std::size_t Tensor::numel() const {
  std::size_t count = 1;
  for (const auto d : shape) count *= static_cast<std::size_t>(d);
  return count;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

namespace {

// Every float weight must be finite: a NaN or Inf would spread through the forward pass into
// every later hidden state. Scans the stored bits (about a memory read); quantised tensors are
// checked when they are converted.
void check_finite_weights(const Tensor& tensor) {
  const std::size_t n = tensor.numel();
  const std::byte* data = tensor.bytes.data();
  std::size_t at = n;
  switch (tensor.type) {
    case WeightType::f32:
      if (reinterpret_cast<std::uintptr_t>(data) % alignof(float) == 0) {
        at = io::first_non_finite(std::span(reinterpret_cast<const float*>(data), n));
      } else {
        for (std::size_t i = 0; i < n && at == n; ++i) {
          std::uint32_t bits;
          std::memcpy(&bits, data + 4 * i, 4);
          if ((bits & 0x7F800000u) == 0x7F800000u) at = i;
        }
      }
      break;
    case WeightType::f16:
    case WeightType::bf16: {
      const std::uint16_t mask = tensor.type == WeightType::f16 ? 0x7C00 : 0x7F80;
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, data + 2 * i, 2);
        if ((bits & mask) == mask) {
          at = i;
          break;
        }
      }
      break;
    }
    case WeightType::f64:
      for (std::size_t i = 0; i < n; ++i) {
        double value;
        std::memcpy(&value, data + 8 * i, 8);
        if (!std::isfinite(value)) {
          at = i;
          break;
        }
      }
      break;
    default:
      return;
  }
  if (at == n) return;
  float value = 0;
  tensor_element_to_f32(tensor, at, value);
  std::vector<std::int64_t> index(tensor.shape.size());
  std::size_t rest = at;
  for (std::size_t d = tensor.shape.size(); d-- > 0;) {
    const auto extent = static_cast<std::size_t>(tensor.shape[d]);
    index[d] = static_cast<std::int64_t>(extent == 0 ? 0 : rest % extent);
    rest = extent == 0 ? 0 : rest / extent;
  }
  throw Error(tensor.file + ": tensor '" + tensor.name + "' has a non-finite value (" +
              (std::isnan(value) ? "NaN"
               : value > 0       ? "+Inf"
                                 : "-Inf") +
              ") at index " + std::to_string(at) + " " + shape_text(index) +
              "; the weights are corrupt");
}

std::optional<WeightType> weight_type_of(io::DType dtype) {
  switch (dtype) {
    case io::DType::F32:
      return WeightType::f32;
    case io::DType::F16:
      return WeightType::f16;
    case io::DType::BF16:
      return WeightType::bf16;
    case io::DType::F64:
      return WeightType::f64;
    default:
      return std::nullopt;
  }
}

// Shard file names in an index must be plain names in the model folder.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name != "." && name != "..";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Tensor tables

const Tensor* TensorTable::find(const std::string& name) const {
  const auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

Tensor TensorTable::get(const std::string& name, const std::vector<std::int64_t>& shape) const {
  const Tensor* tensor = find(name);
  if (tensor == nullptr) {
    throw Error(where + ": tensor '" + (describe ? describe(name) : name) +
                "' is missing (expected shape " + shape_text(shape) + ")");
  }
  if (tensor->shape != shape) {
    throw Error(where_of(*tensor) + ": tensor '" + tensor->name + "' has shape " +
                shape_text(tensor->shape) + ", expected " + shape_text(shape) + " from " +
                config_name);
  }
  return *tensor;
}

Tensor TensorTable::get_if(bool wanted, const std::string& name,
                           const std::vector<std::int64_t>& shape) const {
  return wanted ? get(name, shape) : Tensor{};
}

std::string TensorTable::where_of(const Tensor& tensor) const { return tensor.file; }

void add_safetensors(TensorTable& table, const io::SafetensorsFile& file,
                     const std::set<std::string>* only) {
  for (const auto& info : file.tensors()) {
    if (only != nullptr && only->count(info.name) == 0) continue;
    Tensor tensor;
    tensor.name = info.name;
    tensor.file = file.path().string();
    tensor.shape = info.shape;
    tensor.bytes = file.raw(info);
    const auto type = weight_type_of(info.dtype);
    // Other dtypes (integer buffers such as attention masks) are fine until a weight needs them.
    tensor.type = type.value_or(WeightType::f32);
    if (!type) tensor.bytes = {};
    table.unsupported_dtype[info.name] = type ? "" : std::string(io::dtype_name(info.dtype));
    table.tensors[info.name] = std::move(tensor);
  }
}

// ---------------------------------------------------------------------------------------------
// Architectures: names and shapes

namespace {

using Shape = std::vector<std::int64_t>;

// The prefix under which a checkpoint keeps its base model ("model.", "transformer.", ...):
// the one for which `probe` exists, else none.
std::string prefix_for(const TensorTable& table, std::initializer_list<const char*> prefixes,
                       const std::string& probe) {
  for (const char* prefix : prefixes) {
    if (table.find(prefix + probe) != nullptr) return prefix;
  }
  return "";
}

void build_gpt2(ModelBuilder& b) {
  const Config& c = b.config;
  const TensorTable& t = b.table;
  const std::string p = prefix_for(t, {"transformer."}, "wte.weight");
  const std::int64_t C = c.n_embd, I = c.n_inner, V = c.vocab_size, P = c.position_table_rows;
  b.model.layout = MatrixLayout::in_out;
  b.model.token_embedding = b.get(p + "wte.weight", {V, C});
  b.model.position_embedding = b.get(p + "wpe.weight", {P, C});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string h = p + "h." + std::to_string(l) + ".";
    Model::Layer layer;
    layer.attn_norm = b.get(h + "ln_1.weight", {C});
    layer.attn_norm_bias = b.get(h + "ln_1.bias", {C});
    layer.qkv = b.get(h + "attn.c_attn.weight", {C, 3 * C});
    layer.qkv_bias = b.get(h + "attn.c_attn.bias", {3 * C});
    layer.o = b.get(h + "attn.c_proj.weight", {C, C});
    layer.o_bias = b.get(h + "attn.c_proj.bias", {C});
    layer.mlp_norm = b.get(h + "ln_2.weight", {C});
    layer.mlp_norm_bias = b.get(h + "ln_2.bias", {C});
    layer.up = b.get(h + "mlp.c_fc.weight", {C, I});
    layer.up_bias = b.get(h + "mlp.c_fc.bias", {I});
    layer.down = b.get(h + "mlp.c_proj.weight", {I, C});
    layer.down_bias = b.get(h + "mlp.c_proj.bias", {C});
    b.model.layers.push_back(layer);
  }
  b.model.final_norm = b.get(p + "ln_f.weight", {C});
  b.model.final_norm_bias = b.get(p + "ln_f.bias", {C});
  // lm_head.weight (absent when tied) and the attn.bias / attn.masked_bias buffers are not
  // needed for hidden states; a present lm_head must still fit the vocabulary.
  b.check_if_present("lm_head.weight", {V, C});
}

void build_llama_family(ModelBuilder& b) {
  const Config& c = b.config;
  const std::string p =
      prefix_for(b.table, {"model.", "language_model.model."}, "embed_tokens.weight");
  const std::int64_t C = c.n_embd, I = c.n_inner, V = c.vocab_size, D = c.head_dim;
  const std::int64_t Q = std::int64_t(c.n_head) * D, KV = std::int64_t(c.n_kv_head) * D;
  const bool phi3 = c.architecture == Architecture::phi3;
  b.model.token_embedding = b.get(p + "embed_tokens.weight", {V, C});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string h = p + "layers." + std::to_string(l) + ".";
    Model::Layer layer;
    layer.attn_norm = b.get(h + "input_layernorm.weight", {C});
    if (phi3) {
      layer.qkv = b.get(h + "self_attn.qkv_proj.weight", {Q + 2 * KV, C});
    } else {
      layer.q = b.get(h + "self_attn.q_proj.weight", {Q, C});
      layer.k = b.get(h + "self_attn.k_proj.weight", {KV, C});
      layer.v = b.get(h + "self_attn.v_proj.weight", {KV, C});
      layer.q_bias = b.get_if(c.qkv_bias, h + "self_attn.q_proj.bias", {Q});
      layer.k_bias = b.get_if(c.qkv_bias, h + "self_attn.k_proj.bias", {KV});
      layer.v_bias = b.get_if(c.qkv_bias, h + "self_attn.v_proj.bias", {KV});
    }
    layer.q_norm = b.get_if(c.qk_norm, h + "self_attn.q_norm.weight", {D});
    layer.k_norm = b.get_if(c.qk_norm, h + "self_attn.k_norm.weight", {D});
    layer.o = b.get(h + "self_attn.o_proj.weight", {C, Q});
    layer.o_bias = b.get_if(c.out_bias, h + "self_attn.o_proj.bias", {C});
    if (c.sandwich_norms) {
      layer.post_attn_norm = b.get(h + "post_attention_layernorm.weight", {C});
      layer.mlp_norm = b.get(h + "pre_feedforward_layernorm.weight", {C});
      layer.post_mlp_norm = b.get(h + "post_feedforward_layernorm.weight", {C});
    } else {
      layer.mlp_norm = b.get(h + "post_attention_layernorm.weight", {C});
    }
    if (phi3) {
      layer.gate_up = b.get(h + "mlp.gate_up_proj.weight", {2 * I, C});
    } else {
      layer.gate = b.get(h + "mlp.gate_proj.weight", {I, C});
      layer.up = b.get(h + "mlp.up_proj.weight", {I, C});
      layer.gate_bias = b.get_if(c.mlp_bias, h + "mlp.gate_proj.bias", {I});
      layer.up_bias = b.get_if(c.mlp_bias, h + "mlp.up_proj.bias", {I});
    }
    layer.down = b.get(h + "mlp.down_proj.weight", {C, I});
    layer.down_bias = b.get_if(c.mlp_bias, h + "mlp.down_proj.bias", {C});
    b.model.layers.push_back(layer);
  }
  b.model.final_norm = b.get(p + "norm.weight", {C});
  b.check_if_present("lm_head.weight", {V, C});
}

void build_gpt_neox(ModelBuilder& b) {
  const Config& c = b.config;
  const std::string p = prefix_for(b.table, {"gpt_neox."}, "embed_in.weight");
  const std::int64_t C = c.n_embd, I = c.n_inner, V = c.vocab_size;
  b.model.qkv_per_head = true;
  b.model.token_embedding = b.get(p + "embed_in.weight", {V, C});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string h = p + "layers." + std::to_string(l) + ".";
    Model::Layer layer;
    layer.attn_norm = b.get(h + "input_layernorm.weight", {C});
    layer.attn_norm_bias = b.get(h + "input_layernorm.bias", {C});
    layer.qkv = b.get(h + "attention.query_key_value.weight", {3 * C, C});
    layer.qkv_bias = b.get_if(c.qkv_bias, h + "attention.query_key_value.bias", {3 * C});
    layer.o = b.get(h + "attention.dense.weight", {C, C});
    layer.o_bias = b.get_if(c.out_bias, h + "attention.dense.bias", {C});
    layer.mlp_norm = b.get(h + "post_attention_layernorm.weight", {C});
    layer.mlp_norm_bias = b.get(h + "post_attention_layernorm.bias", {C});
    layer.up = b.get(h + "mlp.dense_h_to_4h.weight", {I, C});
    layer.up_bias = b.get(h + "mlp.dense_h_to_4h.bias", {I});
    layer.down = b.get(h + "mlp.dense_4h_to_h.weight", {C, I});
    layer.down_bias = b.get(h + "mlp.dense_4h_to_h.bias", {C});
    b.model.layers.push_back(layer);
  }
  b.model.final_norm = b.get(p + "final_layer_norm.weight", {C});
  b.model.final_norm_bias = b.get(p + "final_layer_norm.bias", {C});
  b.check_if_present("embed_out.weight", {V, C});
}

void build_encoder(ModelBuilder& b) {
  const Config& c = b.config;
  const bool distil = c.architecture == Architecture::distilbert;
  const std::string p = prefix_for(b.table, {"bert.", "roberta.", "distilbert."},
                                   "embeddings.word_embeddings.weight");
  const std::int64_t C = c.n_embd, I = c.n_inner, V = c.vocab_size, P = c.position_table_rows;
  b.model.token_embedding = b.get(p + "embeddings.word_embeddings.weight", {V, C});
  b.model.position_embedding = b.get(p + "embeddings.position_embeddings.weight", {P, C});
  if (c.type_vocab_size > 0) {  // DistilBERT and GGUF files without token_types.weight: none
    b.model.token_type_embedding =
        b.get(p + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, C});
  }
  b.model.embedding_norm = b.get_norm(p + "embeddings.LayerNorm", "weight", {C});
  b.model.embedding_norm_bias = b.get_norm(p + "embeddings.LayerNorm", "bias", {C});
  for (int l = 0; l < c.n_layer; ++l) {
    Model::Layer layer;
    if (distil) {
      const std::string h = p + "transformer.layer." + std::to_string(l) + ".";
      layer.q = b.get(h + "attention.q_lin.weight", {C, C});
      layer.q_bias = b.get(h + "attention.q_lin.bias", {C});
      layer.k = b.get(h + "attention.k_lin.weight", {C, C});
      layer.k_bias = b.get(h + "attention.k_lin.bias", {C});
      layer.v = b.get(h + "attention.v_lin.weight", {C, C});
      layer.v_bias = b.get(h + "attention.v_lin.bias", {C});
      layer.o = b.get(h + "attention.out_lin.weight", {C, C});
      layer.o_bias = b.get(h + "attention.out_lin.bias", {C});
      layer.attn_norm = b.get(h + "sa_layer_norm.weight", {C});
      layer.attn_norm_bias = b.get(h + "sa_layer_norm.bias", {C});
      layer.up = b.get(h + "ffn.lin1.weight", {I, C});
      layer.up_bias = b.get(h + "ffn.lin1.bias", {I});
      layer.down = b.get(h + "ffn.lin2.weight", {C, I});
      layer.down_bias = b.get(h + "ffn.lin2.bias", {C});
      layer.mlp_norm = b.get(h + "output_layer_norm.weight", {C});
      layer.mlp_norm_bias = b.get(h + "output_layer_norm.bias", {C});
    } else {
      const std::string h = p + "encoder.layer." + std::to_string(l) + ".";
      layer.q = b.get(h + "attention.self.query.weight", {C, C});
      layer.q_bias = b.get(h + "attention.self.query.bias", {C});
      layer.k = b.get(h + "attention.self.key.weight", {C, C});
      layer.k_bias = b.get(h + "attention.self.key.bias", {C});
      layer.v = b.get(h + "attention.self.value.weight", {C, C});
      layer.v_bias = b.get(h + "attention.self.value.bias", {C});
      layer.o = b.get(h + "attention.output.dense.weight", {C, C});
      layer.o_bias = b.get(h + "attention.output.dense.bias", {C});
      layer.attn_norm = b.get_norm(h + "attention.output.LayerNorm", "weight", {C});
      layer.attn_norm_bias = b.get_norm(h + "attention.output.LayerNorm", "bias", {C});
      layer.up = b.get(h + "intermediate.dense.weight", {I, C});
      layer.up_bias = b.get(h + "intermediate.dense.bias", {I});
      layer.down = b.get(h + "output.dense.weight", {C, I});
      layer.down_bias = b.get(h + "output.dense.bias", {C});
      layer.mlp_norm = b.get_norm(h + "output.LayerNorm", "weight", {C});
      layer.mlp_norm_bias = b.get_norm(h + "output.LayerNorm", "bias", {C});
    }
    b.model.layers.push_back(layer);
  }
}

}  // namespace

Tensor ModelBuilder::get(const std::string& name, const Shape& shape) {
  Tensor tensor = table.get(name, shape);
  check_type(tensor);
  return tensor;
}

Tensor ModelBuilder::get_if(bool wanted, const std::string& name, const Shape& shape) {
  return wanted ? get(name, shape) : Tensor{};
}

// Old BERT checkpoints name LayerNorm parameters gamma/beta (transformers renames them on load).
Tensor ModelBuilder::get_norm(const std::string& base, const std::string& kind,
                              const Shape& shape) {
  const std::string modern = base + "." + kind;
  const std::string legacy = base + "." + (kind == "weight" ? "gamma" : "beta");
  if (table.find(modern) == nullptr && table.find(legacy) != nullptr) return get(legacy, shape);
  return get(modern, shape);
}

void ModelBuilder::check_if_present(const std::string& name, const Shape& shape) {
  if (const Tensor* tensor = table.find(name); tensor != nullptr && tensor->shape != shape) {
    throw Error(tensor->file + ": tensor '" + name + "' has shape " + shape_text(tensor->shape) +
                ", expected " + shape_text(shape));
  }
}

void ModelBuilder::check_type(const Tensor& tensor) {
  if (const auto it = table.unsupported_dtype.find(tensor.name);
      it != table.unsupported_dtype.end() && !it->second.empty()) {
    throw Error(tensor.file + ": tensor '" + tensor.name + "' has dtype " + it->second +
                ", expected " + table.supported_types);
  }
  if (tensor.type != WeightType::f32 && tensor.type != WeightType::f16 &&
      tensor.type != WeightType::bf16 && tensor.type != WeightType::f64) {
    // Quantised: each row must be whole blocks.
    const std::size_t block = weight_block_values(tensor.type);
    if (tensor.shape.empty() || std::size_t(tensor.shape.back()) % block != 0) {
      throw Error(tensor.file + ": tensor '" + tensor.name + "' of type " +
                  std::string(weight_type_name(tensor.type)) + " has rows of " +
                  std::to_string(tensor.shape.empty() ? 0 : tensor.shape.back()) +
                  " values, not a multiple of its block size " + std::to_string(block));
    }
  }
  // The forward pass converts a tensor that is not float32 into a buffer of its own: refuse
  // sizes above the allocation limit now, not halfway through a run.
  if (tensor.type != WeightType::f32 && tensor.numel() * sizeof(float) > io::max_input_bytes()) {
    throw Error(tensor.file + ": tensor '" + tensor.name + "' would need " +
                std::to_string(tensor.numel() * sizeof(float)) +
                " bytes as float32, above the limit of " + std::to_string(io::max_input_bytes()) +
                " (set TOKMAP_MAX_BYTES to raise it)");
  }
  check_finite_weights(tensor);
}

void ModelBuilder::build() {
  switch (config.architecture) {
    case Architecture::gpt2:
      build_gpt2(*this);
      break;
    case Architecture::gpt_neox:
      build_gpt_neox(*this);
      break;
    case Architecture::bert:
    case Architecture::roberta:
    case Architecture::distilbert:
      build_encoder(*this);
      break;
    default:
      build_llama_family(*this);
      break;
  }
}

void ModelBuilder::finish(Model& out, std::unique_ptr<ModelStorage> storage) {
  model.config_ = config;
  model.storage_ = std::move(storage);
  out = std::move(model);
}

Model ModelBuilder::release(std::unique_ptr<ModelStorage> storage) {
  model.config_ = config;
  model.storage_ = std::move(storage);
  return std::move(model);
}

// ---------------------------------------------------------------------------------------------
// Loading

Model Model::load(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return load_gguf(path);  // GgufFile refuses other files
  if (!fs::is_directory(path, ec)) throw Error(path.string() + ": model folder does not exist");
  const fs::path& folder = path;
  const Config config = load_config(folder / "config.json");

  auto storage = std::make_unique<ModelStorage>();
  const fs::path single = folder / "model.safetensors";
  const fs::path index = folder / "model.safetensors.index.json";
  std::string where;
  if (fs::is_regular_file(single, ec)) {
    storage->path = single;
    storage->shards.push_back(std::make_unique<io::SafetensorsFile>(single));
    where = single.string();
  } else if (fs::is_regular_file(index, ec)) {
    storage->path = index;
    where = index.string();
    const auto root = io::parse_json(io::read_text_file(index), where);
    const auto map = root.is_object() ? root.find("weight_map") : root.end();
    if (map == root.end() || !map->is_object()) {
      throw Error(where + ": 'weight_map' (tensor name → shard file) is missing");
    }
    std::map<std::string, std::set<std::string>> by_shard;
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string() || !plain_file_name(it.value().get<std::string>())) {
        throw Error(where + ": weight_map entry '" + it.key() +
                    "' must name a file in the model folder, found " + it.value().dump());
      }
      by_shard[it.value().get<std::string>()].insert(it.key());
    }
    storage->shard_tensors = by_shard;
  } else {
    throw Error(single.string() + ": model.safetensors is missing (and there is no " +
                "model.safetensors.index.json)");
  }
  for (const auto& [shard, names] : storage->shard_tensors) {
    const fs::path shard_path = folder / shard;
    if (!fs::is_regular_file(shard_path, ec)) {
      throw Error(where + ": shard '" + shard + "' (holding '" + *names.begin() + "') is missing");
    }
    storage->shards.push_back(std::make_unique<io::SafetensorsFile>(shard_path));
  }

  ModelBuilder builder(config, storage->table);
  storage->table.where = where;
  storage->table.config_name = "config.json";
  if (storage->shard_tensors.empty()) {
    add_safetensors(storage->table, *storage->shards.front(), nullptr);
  } else {
    std::size_t i = 0;
    for (const auto& [shard, names] : storage->shard_tensors) {
      const auto& file = *storage->shards[i++];
      add_safetensors(storage->table, file, &names);
      for (const auto& name : names) {
        if (file.find(name) == nullptr) {
          throw Error(where + ": weight_map puts tensor '" + name + "' in " + shard +
                      ", which does not hold it");
        }
      }
    }
  }
  builder.build();
  Model model;
  builder.finish(model, std::move(storage));
  return model;
}

const fs::path& Model::weights_path() const { return storage_->path; }

std::size_t Model::parameter_count() const {
  std::size_t count = 0;
  auto add = [&](const Tensor& t) {
    if (t.present()) count += t.numel();
  };
  add(token_embedding);
  add(position_embedding);
  add(token_type_embedding);
  add(embedding_norm);
  add(embedding_norm_bias);
  add(final_norm);
  add(final_norm_bias);
  for (const auto& l : layers) {
    for (const Tensor* t :
         {&l.attn_norm, &l.attn_norm_bias, &l.q,      &l.k,         &l.v,
          &l.q_bias,    &l.k_bias,         &l.v_bias, &l.qkv,       &l.qkv_bias,
          &l.q_norm,    &l.k_norm,         &l.o,      &l.o_bias,    &l.post_attn_norm,
          &l.mlp_norm,  &l.mlp_norm_bias,  &l.gate,   &l.gate_bias, &l.up,
          &l.up_bias,   &l.gate_up,        &l.down,   &l.down_bias, &l.post_mlp_norm}) {
      add(*t);
    }
  }
  return count;
}

// ---------------------------------------------------------------------------------------------

std::span<const float> WeightBuffers::f32(const Tensor& tensor) {
  if (!tensor.present()) return {};
  if (tensor.type == WeightType::f32 && tensor.unpermute_heads == 0 &&
      reinterpret_cast<std::uintptr_t>(tensor.bytes.data()) % alignof(float) == 0) {
    return {reinterpret_cast<const float*>(tensor.bytes.data()), tensor.numel()};
  }
  if (used_ == buffers_.size()) buffers_.emplace_back();
  std::vector<float>& buffer = buffers_[used_++];
  buffer.resize(tensor.numel());
  const std::size_t row = tensor.shape.empty() ? 1 : std::size_t(tensor.shape.back());
  const std::size_t rows = row == 0 ? 0 : tensor.numel() / row;
  // Large tensors are converted by several threads, each a contiguous range of rows.
  constexpr std::size_t kValuesPerThread = 1 << 18;
  const std::size_t parts = std::min<std::size_t>(
      {std::size_t(threads_), rows, std::max<std::size_t>(1, tensor.numel() / kValuesPerThread)});
  if (parts <= 1) {
    tensor_rows_to_f32(tensor, 0, rows, buffer);
  } else {
    std::vector<std::thread> workers;
    std::vector<std::exception_ptr> errors(parts);
    for (std::size_t p = 0; p < parts; ++p) {
      workers.emplace_back([&, p] {
        const std::size_t begin = rows * p / parts, end = rows * (p + 1) / parts;
        try {
          tensor_rows_to_f32(tensor, begin, end - begin,
                             std::span(buffer).subspan(begin * row, (end - begin) * row));
        } catch (...) {
          errors[p] = std::current_exception();
        }
      });
    }
    for (auto& w : workers) w.join();
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);  // the first range's error, whatever the timing
    }
  }
  if (tensor.unpermute_heads > 0) unpermute_rope_rows(buffer, tensor);
  return buffer;
}

}  // namespace tokmap::model
