#include "io/io.hpp"
#include "io/json.hpp"
#include "model/model.hpp"

namespace tokmap::model {

namespace {

using json = nlohmann::json;

int positive_int(const json& root, const char* key, int fallback, const std::string& where) {
  const auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<std::int64_t>() <= 0 ||
      it->get<std::int64_t>() > (1 << 24)) {
    throw Error(where + ": '" + key + "' must be a positive integer below 2^24, found " +
                it->dump());
  }
  return it->get<int>();
}

bool boolean(const json& root, const char* key, bool fallback, const std::string& where) {
  const auto it = root.find(key);
  if (it == root.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw Error(where + ": '" + key + "' must be true or false");
  return it->get<bool>();
}

}  // namespace

Config parse_config(std::string_view json_text, const std::string& where) {
  const json root = io::parse_json(json_text, where);
  if (!root.is_object()) throw Error(where + ": expected a JSON object");

  if (const auto type = root.find("model_type"); type != root.end() && type->is_string()) {
    const auto& name = type->get_ref<const std::string&>();
    if (name != "gpt2") {
      throw Error(where + ": model_type '" + name +
                  "' is not supported (tokmap runs GPT-2-family models: model_type 'gpt2')");
    }
  }
  Config config;
  config.n_layer = positive_int(root, "n_layer", config.n_layer, where);
  config.n_head = positive_int(root, "n_head", config.n_head, where);
  config.n_embd = positive_int(root, "n_embd", config.n_embd, where);
  config.n_positions = positive_int(root, "n_positions", config.n_positions, where);
  config.vocab_size = positive_int(root, "vocab_size", config.vocab_size, where);
  config.n_inner = positive_int(root, "n_inner", 4 * config.n_embd, where);
  config.scale_attn_weights = boolean(root, "scale_attn_weights", true, where);
  config.scale_attn_by_inverse_layer_idx =
      boolean(root, "scale_attn_by_inverse_layer_idx", false, where);
  if (const auto eps = root.find("layer_norm_epsilon"); eps != root.end() && !eps->is_null()) {
    if (!eps->is_number() || eps->get<double>() <= 0 || eps->get<double>() > 1) {
      throw Error(where + ": 'layer_norm_epsilon' must be a number in (0, 1]");
    }
    config.layer_norm_epsilon = eps->get<float>();
  }
  if (const auto act = root.find("activation_function"); act != root.end() && !act->is_null()) {
    const std::string name = act->is_string() ? act->get<std::string>() : act->dump();
    if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
      config.activation = Activation::gelu_new;
    } else if (name == "gelu") {
      config.activation = Activation::gelu;
    } else if (name == "relu") {
      config.activation = Activation::relu;
    } else {
      throw Error(where + ": activation_function '" + name +
                  "' is not supported (expected gelu_new, gelu or relu)");
    }
  }
  if (config.n_embd % config.n_head != 0) {
    throw Error(where + ": n_embd (" + std::to_string(config.n_embd) +
                ") is not divisible by n_head (" + std::to_string(config.n_head) + ")");
  }
  return config;
}

Config load_config(const fs::path& config_json) {
  std::error_code ec;
  if (!fs::exists(config_json, ec)) {
    throw Error(config_json.string() + ": config.json is missing");
  }
  return parse_config(io::read_text_file(config_json), config_json.string());
}

}  // namespace tokmap::model
