#pragma once
// Internal to src/model: the tensor tables the loaders fill and the builder that checks them
// against an architecture's names and shapes.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/io.hpp"
#include "model/model.hpp"

namespace tokmap::model {

std::string shape_text(const std::vector<std::int64_t>& shape);

// Tensors by (Hugging Face) name.
struct TensorTable {
  std::map<std::string, Tensor> tensors;
  // name → dtype name for tensors of a dtype no weight may have (empty when fine).
  std::map<std::string, std::string> unsupported_dtype;
  std::string where;        // the file named when a tensor is missing
  std::string config_name;  // where the expected shapes come from ("config.json")
  // The types a weight may have, for the message about one that has another.
  std::string supported_types = "F32, F16 or BF16";
  // How to name a missing tensor (GGUF: llama.cpp's name for the Hugging Face one).
  std::function<std::string(const std::string&)> describe;

  const Tensor* find(const std::string& name) const;
  Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const;
  Tensor get_if(bool wanted, const std::string& name, const std::vector<std::int64_t>& shape) const;
  std::string where_of(const Tensor& tensor) const;
};

// Adds a safetensors file's tensors (only those in `only`, when given).
void add_safetensors(TensorTable& table, const io::SafetensorsFile& file,
                     const std::set<std::string>* only);

struct ModelStorage {
  fs::path path;
  std::vector<std::unique_ptr<io::SafetensorsFile>> shards;
  std::map<std::string, std::set<std::string>> shard_tensors;  // sharded: file → names
  std::vector<std::vector<std::byte>> owned;                   // tensors a loader had to rewrite
  std::unique_ptr<GgufFile> gguf;                              // a GGUF model file
  TensorTable table;
};

struct ModelBuilder {
  ModelBuilder(const Config& c, const TensorTable& t) : config(c), table(t) {}
  const Config& config;
  const TensorTable& table;
  Model model;

  Tensor get(const std::string& name, const std::vector<std::int64_t>& shape);
  Tensor get_if(bool wanted, const std::string& name, const std::vector<std::int64_t>& shape);
  Tensor get_norm(const std::string& base, const std::string& kind,
                  const std::vector<std::int64_t>& shape);
  // The named unembedding when present, else `tied` (the token embedding).
  Tensor output_head(const std::string& name, const Tensor& tied,
                     const std::vector<std::int64_t>& shape);
  void check_if_present(const std::string& name, const std::vector<std::int64_t>& shape);
  void check_type(const Tensor& tensor);
  // Fills `model` with the tensors of config.architecture.
  void build();
  void finish(Model& out, std::unique_ptr<ModelStorage> storage);
  Model release(std::unique_ptr<ModelStorage> storage);  // finish() for non-members of Model
};

// A GGUF model file (gguf.cpp).
Model load_gguf(const fs::path& path);

// One element as float32 (for error messages).
void tensor_element_to_f32(const Tensor& tensor, std::size_t index, float& value);
// Puts rows permuted per head by llama.cpp's converter (Meta's interleaved RoPE order) back in
// Hugging Face's order. values: the converted tensor.
void unpermute_rope_rows(std::vector<float>& values, const Tensor& tensor);

}  // namespace tokmap::model
