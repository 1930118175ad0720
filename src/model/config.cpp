// config.json → Config for every supported architecture. Field names and defaults follow the
// Hugging Face configuration classes; where transformers has a default that depends on the
// version, the one of the released checkpoints' config files is used.
#include <cmath>

#include "io/io.hpp"
#include "io/json.hpp"
#include "model/model.hpp"

namespace tokmap::model {

namespace {

using json = nlohmann::json;

constexpr std::pair<std::string_view, Architecture> kArchitectures[] = {
    {"gpt2", Architecture::gpt2},
    {"llama", Architecture::llama},
    {"mistral", Architecture::mistral},
    {"qwen2", Architecture::qwen2},
    {"qwen3", Architecture::qwen3},
    {"gemma", Architecture::gemma},
    {"gemma2", Architecture::gemma2},
    {"gemma3_text", Architecture::gemma3_text},
    {"phi3", Architecture::phi3},
    {"gpt_neox", Architecture::gpt_neox},
    {"bert", Architecture::bert},
    {"roberta", Architecture::roberta},
    {"distilbert", Architecture::distilbert},
};

std::string supported_list() {
  std::string names;
  for (const auto& [name, _] : kArchitectures)
    names += (names.empty() ? "" : ", ") + std::string(name);
  return names;
}

// Reads fields of one JSON object, naming the file in every error.
struct Fields {
  const json& root;
  const std::string& where;

  const json* find(const char* key) const {
    const auto it = root.find(key);
    return it == root.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(const char* key) const { return find(key) != nullptr; }

  int positive_int(const char* key, int fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer() || value->get<std::int64_t>() <= 0 ||
        value->get<std::int64_t>() > (1 << 24)) {
      throw Error(where + ": '" + key + "' must be a positive integer below 2^24, found " +
                  value->dump());
    }
    return value->get<int>();
  }
  // A size the architecture cannot do without: no GPT-2 default makes sense for it.
  int required_int(const char* key, const std::string& model_type) const {
    if (!has(key)) {
      throw Error(where + ": model_type '" + model_type + "' needs '" + key +
                  "' (a positive integer), which is missing");
    }
    return positive_int(key, 0);
  }
  int non_negative_int(const char* key, int fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number_integer() || value->get<std::int64_t>() < 0 ||
        value->get<std::int64_t>() > (1 << 24)) {
      throw Error(where + ": '" + key + "' must be a non-negative integer below 2^24, found " +
                  value->dump());
    }
    return value->get<int>();
  }
  bool boolean(const char* key, bool fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) throw Error(where + ": '" + key + "' must be true or false");
    return value->get<bool>();
  }
  double number(const char* key, double fallback, double low, double high) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number() || !(value->get<double>() > low) || !(value->get<double>() <= high)) {
      throw Error(where + ": '" + key + "' must be a number in (" + json(low).dump() + ", " +
                  json(high).dump() + "], found " + value->dump());
    }
    return value->get<double>();
  }
  std::string string(const char* key, std::string fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) throw Error(where + ": '" + key + "' must be a string");
    return value->get<std::string>();
  }
};

Activation parse_activation(const std::string& name, const char* key, const std::string& where) {
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return Activation::gelu_new;
  }
  if (name == "gelu") return Activation::gelu;
  if (name == "relu") return Activation::relu;
  if (name == "silu" || name == "swish") return Activation::silu;
  throw Error(where + ": " + key + " '" + name +
              "' is not supported (expected gelu, gelu_new, gelu_pytorch_tanh, silu or relu)");
}

// rope_scaling: null, or {"rope_type" (or "type"): default | linear | llama3 | dynamic, ...}.
Rope parse_rope(const Fields& f, double theta) {
  Rope rope;
  rope.theta = theta;
  const json* scaling = f.find("rope_scaling");
  if (scaling == nullptr) return rope;
  if (!scaling->is_object()) throw Error(f.where + ": 'rope_scaling' must be an object or null");
  const Fields s{*scaling, f.where};
  const std::string type = s.string("rope_type", s.string("type", "default"));
  if (type == "default") return rope;
  if (type == "dynamic") {
    // Dynamic NTK scaling only changes positions beyond max_position_embeddings, which tokmap
    // never reaches (longer texts run in windows).
    return rope;
  }
  rope.factor = s.number("factor", 1.0, 0.0, 1e6);
  if (type == "linear") {
    rope.scaling = Rope::Scaling::linear;
    return rope;
  }
  if (type == "llama3") {
    rope.scaling = Rope::Scaling::llama3;
    rope.low_freq_factor = s.number("low_freq_factor", 1.0, 0.0, 1e6);
    rope.high_freq_factor = s.number("high_freq_factor", 4.0, 0.0, 1e6);
    rope.original_max_positions = s.positive_int("original_max_position_embeddings", 8192);
    if (!(rope.high_freq_factor > rope.low_freq_factor)) {
      throw Error(f.where + ": rope_scaling high_freq_factor must exceed low_freq_factor");
    }
    return rope;
  }
  throw Error(f.where + ": rope_scaling type '" + type +
              "' is not supported (tokmap supports default, linear, llama3 and dynamic)");
}

// layer_types ["sliding_attention", "full_attention", ...] when the config lists them.
bool parse_layer_types(const Fields& f, Config& config, int window) {
  const json* types = f.find("layer_types");
  if (types == nullptr) return false;
  if (!types->is_array() || types->size() != std::size_t(config.n_layer)) {
    throw Error(f.where + ": 'layer_types' must list one type per layer (" +
                std::to_string(config.n_layer) + ")");
  }
  for (std::size_t l = 0; l < types->size(); ++l) {
    const json& type = (*types)[l];
    if (type == "full_attention") {
      config.sliding_window[l] = 0;
    } else if (type == "sliding_attention") {
      if (window <= 0) {
        throw Error(f.where + ": layer_types marks layer " + std::to_string(l) +
                    " sliding_attention but 'sliding_window' is not set");
      }
      config.sliding_window[l] = window;
    } else {
      throw Error(f.where + ": layer_types entry " + type.dump() +
                  " is not supported (expected full_attention or sliding_attention)");
    }
  }
  return true;
}

void parse_gpt2(const Fields& f, Config& config) {
  config.n_layer = f.positive_int("n_layer", config.n_layer);
  config.n_head = f.positive_int("n_head", config.n_head);
  config.n_embd = f.positive_int("n_embd", config.n_embd);
  config.n_positions = f.positive_int("n_positions", config.n_positions);
  config.vocab_size = f.positive_int("vocab_size", config.vocab_size);
  config.n_inner = f.positive_int("n_inner", 4 * config.n_embd);
  config.scale_attn_weights = f.boolean("scale_attn_weights", true);
  config.scale_attn_by_inverse_layer_idx = f.boolean("scale_attn_by_inverse_layer_idx", false);
  if (const json* eps = f.find("layer_norm_epsilon")) {
    if (!eps->is_number() || eps->get<double>() <= 0 || eps->get<double>() > 1) {
      throw Error(f.where + ": 'layer_norm_epsilon' must be a number in (0, 1]");
    }
    config.layer_norm_epsilon = eps->get<float>();
  }
  if (const json* act = f.find("activation_function")) {
    const std::string name = act->is_string() ? act->get<std::string>() : act->dump();
    if (name == "silu" || name == "swish") {
      throw Error(f.where + ": activation_function '" + name +
                  "' is not supported (expected gelu_new, gelu or relu)");
    }
    try {
      config.activation = parse_activation(name, "activation_function", f.where);
    } catch (const Error&) {
      throw Error(f.where + ": activation_function '" + name +
                  "' is not supported (expected gelu_new, gelu or relu)");
    }
  }
  if (config.n_embd % config.n_head != 0) {
    throw Error(f.where + ": n_embd (" + std::to_string(config.n_embd) +
                ") is not divisible by n_head (" + std::to_string(config.n_head) + ")");
  }
  config.n_kv_head = config.n_head;
  config.head_dim = config.n_embd / config.n_head;
  config.sliding_window.assign(config.n_layer, 0);
  config.position_table_rows = config.n_positions;
}

// Llama and its descendants: RMSNorm, RoPE, gated MLP, grouped-query attention.
void parse_llama_family(const Fields& f, Config& config) {
  const std::string& type = config.model_type;
  const Architecture arch = config.architecture;
  const bool gemma = arch == Architecture::gemma || arch == Architecture::gemma2 ||
                     arch == Architecture::gemma3_text;
  config.n_embd = f.required_int("hidden_size", type);
  config.n_layer = f.required_int("num_hidden_layers", type);
  config.n_head = f.required_int("num_attention_heads", type);
  config.n_inner = f.required_int("intermediate_size", type);
  config.vocab_size = f.required_int("vocab_size", type);
  config.n_positions = f.positive_int("max_position_embeddings", 2048);
  config.n_kv_head = f.positive_int("num_key_value_heads", config.n_head);
  if (!f.has("head_dim") && config.n_embd % config.n_head != 0) {
    throw Error(f.where + ": hidden_size (" + std::to_string(config.n_embd) +
                ") is not divisible by num_attention_heads (" + std::to_string(config.n_head) +
                ") and there is no head_dim");
  }
  config.head_dim = f.positive_int("head_dim", config.n_embd / config.n_head);
  if (config.n_head % config.n_kv_head != 0) {
    throw Error(f.where + ": num_attention_heads (" + std::to_string(config.n_head) +
                ") is not a multiple of num_key_value_heads (" + std::to_string(config.n_kv_head) +
                ")");
  }
  config.layer_norm_epsilon = float(f.number("rms_norm_eps", 1e-6, 0.0, 1.0));
  config.norm = NormKind::rms_norm;
  config.learned_positions = false;
  config.gated_mlp = true;
  // Gemma's MLP is the tanh GELU whatever hidden_act says (transformers overrides an exact
  // "gelu" in the first Gemma configs); hidden_activation, where present, names it.
  const std::string act_key =
      gemma && f.has("hidden_activation") ? "hidden_activation" : "hidden_act";
  const std::string act_name = f.string(act_key.c_str(), gemma ? "gelu_pytorch_tanh" : "silu");
  config.activation = parse_activation(act_name, act_key.c_str(), f.where);
  if (arch == Architecture::gemma && act_key == "hidden_act")
    config.activation = Activation::gelu_new;

  const bool attention_bias = f.boolean("attention_bias", false);
  config.qkv_bias = attention_bias || arch == Architecture::qwen2;  // Qwen2 always has them
  config.out_bias = attention_bias;
  config.mlp_bias = f.boolean("mlp_bias", false);
  if (arch == Architecture::phi3 && (attention_bias || config.mlp_bias)) {
    throw Error(f.where + ": phi3 with attention_bias or mlp_bias is not supported");
  }

  const double partial = f.number("partial_rotary_factor", 1.0, 0.0, 1.0);
  config.rotary_dim = int(config.head_dim * partial);
  config.rotary_dim -= config.rotary_dim % 2;
  if (config.rotary_dim <= 0)
    throw Error(f.where + ": partial_rotary_factor leaves no rotary dimensions");
  config.rope = parse_rope(f, f.number("rope_theta", 10000.0, 0.0, 1e12));
  config.rope_local = config.rope;

  int window = 0;
  config.sliding_window.assign(config.n_layer, 0);
  switch (arch) {
    case Architecture::mistral:
    case Architecture::phi3:
      window = f.non_negative_int("sliding_window", 0);
      if (!parse_layer_types(f, config, window))
        config.sliding_window.assign(config.n_layer, window);
      break;
    case Architecture::qwen2:
    case Architecture::qwen3:
      window = f.non_negative_int("sliding_window", 0);
      if (!parse_layer_types(f, config, window) && f.boolean("use_sliding_window", false)) {
        const int first = f.non_negative_int("max_window_layers", config.n_layer);
        for (int l = first; l < config.n_layer; ++l) config.sliding_window[l] = window;
      }
      break;
    case Architecture::gemma2:
      window = f.positive_int("sliding_window", 4096);
      if (!parse_layer_types(f, config, window)) {
        for (int l = 0; l < config.n_layer; l += 2) config.sliding_window[l] = window;
      }
      break;
    case Architecture::gemma3_text:
      window = f.positive_int("sliding_window", 4096);
      if (!parse_layer_types(f, config, window)) {
        const int pattern = f.positive_int("sliding_window_pattern", 6);
        for (int l = 0; l < config.n_layer; ++l) {
          if ((l + 1) % pattern != 0) config.sliding_window[l] = window;
        }
      }
      break;
    default:
      parse_layer_types(f, config, f.non_negative_int("sliding_window", 0));
      break;
  }

  if (gemma) {
    config.norm_adds_one = true;
    config.embedding_scale = std::sqrt(float(config.n_embd));
  }
  if (arch == Architecture::gemma2 || arch == Architecture::gemma3_text) {
    config.sandwich_norms = true;
    config.attention_scale =
        float(1.0 / std::sqrt(f.number("query_pre_attn_scalar", config.head_dim, 0.0, 1e9)));
  }
  if (arch == Architecture::gemma2) {
    // Absent: transformers' default 50; null: no soft-capping.
    config.attn_logit_softcapping = f.root.contains("attn_logit_softcapping")
                                        ? float(f.number("attn_logit_softcapping", 0.0, 0.0, 1e9))
                                        : 50.0f;
    config.final_logit_softcapping = f.root.contains("final_logit_softcapping")
                                         ? float(f.number("final_logit_softcapping", 0.0, 0.0, 1e9))
                                         : 30.0f;
  } else if (arch == Architecture::gemma3_text) {
    config.attn_logit_softcapping = float(f.number("attn_logit_softcapping", 0.0, -1.0, 1e9));
    config.final_logit_softcapping = float(f.number("final_logit_softcapping", 0.0, -1.0, 1e9));
    // Sliding layers use their own base and no scaling (transformers' rotary_emb_local).
    config.rope_local = Rope{};
    config.rope_local.theta = f.number("rope_local_base_freq", 10000.0, 0.0, 1e12);
  }
  if (arch == Architecture::qwen3 || arch == Architecture::gemma3_text) config.qk_norm = true;
}

void parse_gpt_neox(const Fields& f, Config& config) {
  const std::string& type = config.model_type;
  config.n_embd = f.required_int("hidden_size", type);
  config.n_layer = f.required_int("num_hidden_layers", type);
  config.n_head = f.required_int("num_attention_heads", type);
  config.n_inner = f.required_int("intermediate_size", type);
  config.vocab_size = f.required_int("vocab_size", type);
  config.n_positions = f.positive_int("max_position_embeddings", 2048);
  if (config.n_embd % config.n_head != 0) {
    throw Error(f.where + ": hidden_size is not divisible by num_attention_heads");
  }
  config.n_kv_head = config.n_head;
  config.head_dim = config.n_embd / config.n_head;
  config.layer_norm_epsilon = float(f.number("layer_norm_eps", 1e-5, 0.0, 1.0));
  config.activation = parse_activation(f.string("hidden_act", "gelu"), "hidden_act", f.where);
  config.residual =
      f.boolean("use_parallel_residual", true) ? Residual::parallel : Residual::pre_norm;
  const bool bias = f.boolean("attention_bias", true);
  config.qkv_bias = config.out_bias = bias;
  config.mlp_bias = true;
  config.learned_positions = false;
  config.rotary_dim = int(config.head_dim * f.number("rotary_pct", 0.25, 0.0, 1.0));
  config.rotary_dim -= config.rotary_dim % 2;
  config.rope = parse_rope(f, f.number("rotary_emb_base", 10000.0, 0.0, 1e12));
  config.rope_local = config.rope;
  config.sliding_window.assign(config.n_layer, 0);
}

void parse_encoder(const Fields& f, Config& config) {
  const std::string& type = config.model_type;
  const bool distil = config.architecture == Architecture::distilbert;
  config.n_embd = f.required_int(distil ? "dim" : "hidden_size", type);
  config.n_layer = f.required_int(distil ? "n_layers" : "num_hidden_layers", type);
  config.n_head = f.required_int(distil ? "n_heads" : "num_attention_heads", type);
  config.n_inner = f.required_int(distil ? "hidden_dim" : "intermediate_size", type);
  config.vocab_size = f.required_int("vocab_size", type);
  config.n_positions = f.positive_int("max_position_embeddings", 512);
  if (config.n_embd % config.n_head != 0) {
    throw Error(f.where + ": the hidden size is not divisible by the number of heads");
  }
  config.n_kv_head = config.n_head;
  config.head_dim = config.n_embd / config.n_head;
  config.layer_norm_epsilon = distil ? 1e-12f : float(f.number("layer_norm_eps", 1e-12, 0.0, 1.0));
  config.activation = parse_activation(f.string(distil ? "activation" : "hidden_act", "gelu"),
                                       distil ? "activation" : "hidden_act", f.where);
  config.causal = false;
  config.residual = Residual::post_norm;
  config.final_norm = false;
  config.embedding_norm = true;
  config.learned_positions = true;
  config.type_vocab_size = distil ? 0 : f.positive_int("type_vocab_size", 2);
  if (!distil) {
    const std::string position_type = f.string("position_embedding_type", "absolute");
    if (position_type != "absolute") {
      throw Error(f.where + ": position_embedding_type '" + position_type +
                  "' is not supported (tokmap supports absolute)");
    }
  }
  if (config.architecture == Architecture::roberta) {
    // Positions start after the padding index: max_position_embeddings - padding_idx - 1
    // tokens fit (514 → 512 for roberta-base).
    config.padding_idx = f.non_negative_int("pad_token_id", 1);
    if (config.n_positions <= config.padding_idx + 1) {
      throw Error(f.where + ": max_position_embeddings must exceed pad_token_id + 1");
    }
  }
  config.position_table_rows = config.n_positions;
  if (config.padding_idx >= 0) config.n_positions -= config.padding_idx + 1;
  config.sliding_window.assign(config.n_layer, 0);
}

}  // namespace

std::string_view architecture_name(Architecture architecture) {
  for (const auto& [name, value] : kArchitectures) {
    if (value == architecture) return name;
  }
  return "?";
}

Config parse_config(std::string_view json_text, const std::string& where) {
  const json root = io::parse_json(json_text, where);
  if (!root.is_object()) throw Error(where + ": expected a JSON object");
  const Fields f{root, where};

  Config config;
  if (const auto type = root.find("model_type"); type != root.end() && type->is_string()) {
    config.model_type = type->get<std::string>();
    bool known = false;
    for (const auto& [name, value] : kArchitectures) {
      if (name == config.model_type) {
        config.architecture = value;
        known = true;
      }
    }
    if (!known) {
      throw Error(where + ": model_type '" + config.model_type +
                  "' is not supported (tokmap runs: " + supported_list() + ")");
    }
  }
  switch (config.architecture) {
    case Architecture::gpt2:
      parse_gpt2(f, config);
      break;
    case Architecture::gpt_neox:
      parse_gpt_neox(f, config);
      break;
    case Architecture::bert:
    case Architecture::roberta:
    case Architecture::distilbert:
      parse_encoder(f, config);
      break;
    default:
      parse_llama_family(f, config);
      break;
  }
  if (config.attention_scale == 0)
    config.attention_scale = 1.0f / std::sqrt(float(config.head_dim));
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
