#include <charconv>

#include "core/error.hpp"
#include "explore/explore.hpp"

namespace tokmap::explore {

void throw_cancelled() { throw Error("cancelled", ErrorKind::cancelled); }

void Hooks::check_cancelled() const {
  if (cancelled && cancelled()) throw_cancelled();
}

namespace {

// "464, 314,182" → ids with the byte span of each number in the list.
tokenizer::Encoding parse_id_list(const Text& source) {
  tokenizer::Encoding encoding;
  const std::string& text = source.text;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ',' || text[i] == ' ') {
      ++i;
      continue;
    }
    const std::size_t begin = i;
    while (i < text.size() && text[i] != ',' && text[i] != ' ') ++i;
    const std::string item = text.substr(begin, i - begin);
    std::int32_t id = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (error != std::errc() || end != item.data() + item.size() || id < 0) {
      throw Error(source.origin + ": '" + item + "' is not a token id (a non-negative integer)",
                  ErrorKind::usage);
    }
    encoding.ids.push_back(id);
    encoding.offsets.emplace_back(begin, i);
  }
  return encoding;
}

}  // namespace

std::optional<tokenizer::Tokenizer> load_tokenizer(const fs::path& model_path, bool optional) {
  std::error_code ec;
  if (!fs::is_directory(model_path, ec)) {
    // A GGUF file carries its vocabulary in its metadata.
    if (model::is_gguf_file(model_path)) {
      try {
        const model::GgufFile file(model_path);
        return tokenizer::Tokenizer::from_tokenizer_json_text(
            model::gguf_tokenizer_json(file), model_path.string() + " (GGUF tokenizer metadata)");
      } catch (const Error& e) {
        if (optional) return std::nullopt;
        throw Error(std::string(e.what()) +
                    "; to run a model without a tokenizer give token ids with --ids 1,2,3");
      }
    }
    if (optional) return std::nullopt;
  }
  try {
    return tokenizer::Tokenizer::from_folder(model_path);
  } catch (const Error& e) {
    if (optional) return std::nullopt;
    throw Error(std::string(e.what()) +
                "; to run a model without a tokenizer give token ids with --ids 1,2,3");
  }
}

std::string display_token(const tokenizer::Tokenizer* tokenizer, std::int32_t id) {
  if (tokenizer != nullptr && id < static_cast<std::int32_t>(tokenizer->vocab_size())) {
    return tokenizer->display(id);
  }
  return "#" + std::to_string(id);
}

tokenizer::Encoding encode(const tokenizer::Tokenizer* tokenizer, const Text& text,
                           const EncodeOptions& options, const Hooks& hooks) {
  if (text.from_ids) return parse_id_list(text);
  if (tokenizer == nullptr) {
    throw Error(text.origin + ": the model has no tokenizer; give token ids with --ids 1,2,3");
  }
  tokenizer::EncodeOptions encode_options;
  encode_options.lossy = options.lossy;
  encode_options.add_special_tokens = options.add_special_tokens;
  tokenizer::Encoding encoding;
  try {
    encoding = tokenizer->encode(text.text, encode_options);
  } catch (const Error& e) {
    throw Error(text.origin + ": " + e.what(), e.kind());
  }
  if (encoding.replaced_bytes > 0) {
    hooks.warning(text.origin + ": replaced " + std::to_string(encoding.replaced_bytes) +
                  " invalid UTF-8 byte(s) with U+FFFD");
  }
  return encoding;
}

Engine::Engine(model::ResolveOptions resolve) : resolve_(std::move(resolve)) {}

const LoadedModel& Engine::load(const std::string& spec, bool ids_only) {
  std::lock_guard lock(mutex_);
  if (auto it = models_.find(spec); it != models_.end()) {
    // Loaded for ids before: a text request needs the tokenizer, and says why it is missing.
    if (!ids_only && !it->second->tokenizer) {
      it->second->tokenizer = load_tokenizer(it->second->location, false);
    }
    return *it->second;
  }
  const auto location = model::resolve_model(spec, resolve_);
  auto tokenizer = load_tokenizer(location.folder, ids_only);
  auto loaded = std::make_unique<LoadedModel>(LoadedModel{
      location.name, location.folder, model::Model::load(location.folder), std::move(tokenizer)});
  return *models_.emplace(spec, std::move(loaded)).first->second;
}

}  // namespace tokmap::explore
