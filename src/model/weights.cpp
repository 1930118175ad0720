#include <cmath>
#include <cstring>

#include "io/io.hpp"
#include "model/model.hpp"

namespace tokmap::model {

struct Model::Storage {
  explicit Storage(const fs::path& path) : file(path) {}
  io::SafetensorsFile file;
  std::vector<std::vector<float>> converted;  // tensors that were not float32 in the file
};

Model::Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

// Every weight must be finite: a NaN or Inf would spread through the forward pass into every
// later hidden state. The scan reads each tensor once (about a memory copy's time).
void check_finite_weights(std::span<const float> values, const std::string& name,
                          const io::TensorInfo& info, const fs::path& path) {
  const std::size_t at = io::first_non_finite(values);
  if (at == values.size()) return;
  std::vector<std::int64_t> index(info.shape.size());
  std::size_t rest = at;
  for (std::size_t d = info.shape.size(); d-- > 0;) {
    const auto extent = static_cast<std::size_t>(info.shape[d]);
    index[d] = static_cast<std::int64_t>(extent == 0 ? 0 : rest % extent);
    rest = extent == 0 ? 0 : rest / extent;
  }
  throw Error(path.string() + ": tensor '" + name + "' has a non-finite value (" +
              (std::isnan(values[at]) ? "NaN"
               : values[at] > 0       ? "+Inf"
                                      : "-Inf") +
              ") at index " + std::to_string(at) + " " + shape_text(index) +
              "; the weights are corrupt");
}

}  // namespace

Model Model::load(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw Error(folder.string() + ": model folder does not exist");
  Model model;
  model.config_ = load_config(folder / "config.json");
  const fs::path weights_path = folder / "model.safetensors";
  if (!fs::is_regular_file(weights_path, ec)) {
    throw Error(weights_path.string() + ": model.safetensors is missing");
  }
  model.storage_ = std::make_unique<Storage>(weights_path);
  Storage& storage = *model.storage_;
  const io::SafetensorsFile& file = storage.file;
  const Config& config = model.config_;

  // Both layouts: GPT2Model ("h.0.attn...") and GPT2LMHeadModel ("transformer.h.0.attn...").
  const std::string prefix = file.find("transformer.wte.weight") != nullptr ? "transformer." : "";
  const auto C = static_cast<std::int64_t>(config.n_embd);

  auto tensor = [&](const std::string& name, std::vector<std::int64_t> shape) {
    const std::string full = prefix + name;
    const io::TensorInfo* info = file.find(full);
    if (info == nullptr) {
      throw Error(weights_path.string() + ": tensor '" + full + "' is missing (expected shape " +
                  shape_text(shape) + ")");
    }
    if (info->shape != shape) {
      throw Error(weights_path.string() + ": tensor '" + full + "' has shape " +
                  shape_text(info->shape) + ", expected " + shape_text(shape) +
                  " from config.json");
    }
    const auto raw = file.raw(*info);
    if (info->dtype == io::DType::F32 &&
        reinterpret_cast<std::uintptr_t>(raw.data()) % alignof(float) == 0) {
      const std::span<const float> values(reinterpret_cast<const float*>(raw.data()),
                                          info->numel());
      check_finite_weights(values, full, *info, weights_path);
      return values;
    }
    if (info->dtype != io::DType::F32 && info->dtype != io::DType::F16 &&
        info->dtype != io::DType::BF16 && info->dtype != io::DType::F64) {
      throw Error(weights_path.string() + ": tensor '" + full + "' has dtype " +
                  std::string(io::dtype_name(info->dtype)) + ", expected F32, F16 or BF16");
    }
    storage.converted.push_back(file.to_f32(*info));
    check_finite_weights(storage.converted.back(), full, *info, weights_path);
    return std::span<const float>(storage.converted.back());
  };

  const auto V = static_cast<std::int64_t>(config.vocab_size);
  const auto P = static_cast<std::int64_t>(config.n_positions);
  const auto I = static_cast<std::int64_t>(config.n_inner);
  storage.converted.reserve(4 + 12 * static_cast<std::size_t>(config.n_layer));
  model.wte = tensor("wte.weight", {V, C});
  model.wpe = tensor("wpe.weight", {P, C});
  for (int l = 0; l < config.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    Layer layer;
    layer.ln_1_weight = tensor(h + "ln_1.weight", {C});
    layer.ln_1_bias = tensor(h + "ln_1.bias", {C});
    layer.attn_weight = tensor(h + "attn.c_attn.weight", {C, 3 * C});
    layer.attn_bias = tensor(h + "attn.c_attn.bias", {3 * C});
    layer.attn_proj_weight = tensor(h + "attn.c_proj.weight", {C, C});
    layer.attn_proj_bias = tensor(h + "attn.c_proj.bias", {C});
    layer.ln_2_weight = tensor(h + "ln_2.weight", {C});
    layer.ln_2_bias = tensor(h + "ln_2.bias", {C});
    layer.fc_weight = tensor(h + "mlp.c_fc.weight", {C, I});
    layer.fc_bias = tensor(h + "mlp.c_fc.bias", {I});
    layer.fc_proj_weight = tensor(h + "mlp.c_proj.weight", {I, C});
    layer.fc_proj_bias = tensor(h + "mlp.c_proj.bias", {C});
    model.layers.push_back(layer);
  }
  model.ln_f_weight = tensor("ln_f.weight", {C});
  model.ln_f_bias = tensor("ln_f.bias", {C});
  // lm_head.weight (absent when tied) and the attn.bias / attn.masked_bias buffers are not
  // needed for hidden states; a present lm_head must still fit the vocabulary.
  if (const auto* head = file.find("lm_head.weight");
      head != nullptr && head->shape != std::vector<std::int64_t>{V, C}) {
    throw Error(weights_path.string() + ": tensor 'lm_head.weight' has shape " +
                shape_text(head->shape) + ", expected " + shape_text({V, C}));
  }
  return model;
}

const fs::path& Model::weights_path() const { return storage_->file.path(); }

std::size_t Model::parameter_count() const {
  std::size_t count = wte.size() + wpe.size() + ln_f_weight.size() + ln_f_bias.size();
  for (const auto& layer : layers) {
    count += layer.ln_1_weight.size() + layer.ln_1_bias.size() + layer.attn_weight.size() +
             layer.attn_bias.size() + layer.attn_proj_weight.size() + layer.attn_proj_bias.size() +
             layer.ln_2_weight.size() + layer.ln_2_bias.size() + layer.fc_weight.size() +
             layer.fc_bias.size() + layer.fc_proj_weight.size() + layer.fc_proj_bias.size();
  }
  return count;
}

}  // namespace tokmap::model
