#include "cli/inputs.hpp"

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io/io.hpp"

namespace tokmap::cli {

void add_text_input_flags(CLI::App& command, TextInputOptions& options) {
  auto* text =
      command.add_option("-t,--text", options.texts, "Text to process (repeat for several texts)");
  auto* file = command.add_option(
      "-f,--file", options.file,
      "File with one text per line (blank lines skipped); F.jsonl: one JSON object per line, "
      "its \"text\" field");
  text->excludes(file);
  auto* ids = command.add_option(
      "--ids", options.ids,
      "Token ids of one text, comma-separated (repeat for several texts): runs models without a "
      "tokenizer and replays exact inputs");
  ids->excludes(text);
  ids->excludes(file);
  command
      .add_flag("--whole-file", options.whole_file,
                "With --file: the whole file, byte for byte, is one text")
      ->needs(file);
  command.add_flag("--lossy", options.lossy,
                   "Replace invalid UTF-8 with U+FFFD (and warn) instead of failing");
}

std::vector<TextSource> read_texts(const TextInputOptions& options, const CommonOptions& common) {
  std::vector<TextSource> texts;
  if (!options.ids.empty()) {
    for (std::size_t i = 0; i < options.ids.size(); ++i) {
      const std::string origin = "--ids " + std::to_string(i + 1);
      if (options.ids[i].find_first_not_of(" ,") == std::string::npos) {
        throw Error(origin + " has no ids", ErrorKind::usage);
      }
      texts.push_back({options.ids[i], origin, true});
    }
    return texts;
  }
  if (!options.texts.empty()) {
    for (std::size_t i = 0; i < options.texts.size(); ++i) {
      const std::string origin = "--text " + std::to_string(i + 1);
      if (options.texts[i].empty()) throw Error(origin + " is empty", ErrorKind::usage);
      texts.push_back({options.texts[i], origin});
    }
    return texts;
  }
  if (options.file.empty()) throw Error("give the input with --text or --file", ErrorKind::usage);
  std::string contents = io::read_text_file(options.file);
  // Some editors start UTF-8 files with a byte-order mark; it is not part of the text.
  if (contents.starts_with("\xEF\xBB\xBF")) {
    contents.erase(0, 3);
    info(common, options.file + ": skipped the UTF-8 byte-order mark at the start of the file");
  }
  if (options.whole_file) {
    if (contents.empty()) throw Error(options.file + ": file is empty");
    texts.push_back({contents, options.file});
    return texts;
  }
  const bool jsonl = options.file.ends_with(".jsonl");
  std::size_t line_number = 0;
  std::string_view rest = contents;
  while (!rest.empty()) {
    const std::size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t\r\f\v") == std::string_view::npos) continue;
    std::string origin = options.file + " line " + std::to_string(line_number);
    if (!jsonl) {
      texts.push_back({std::string(line), std::move(origin)});
      continue;
    }
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(origin + ": not a JSON object (a .jsonl file has one object per line)");
    }
    const auto text = object.is_object() ? object.find("text") : object.end();
    if (!object.is_object() || text == object.end() || !text->is_string()) {
      throw Error(origin + ": expected a JSON object with a string \"text\"");
    }
    if (text->get_ref<const std::string&>().empty()) throw Error(origin + ": \"text\" is empty");
    texts.push_back({text->get<std::string>(), std::move(origin)});
  }
  if (texts.empty())
    throw Error(options.file + ": no text (the file is empty or only blank lines)");
  return texts;
}

void add_model_flag(CLI::App& command, std::string& model) {
  command.add_option(
      "-m,--model", model,
      "Model folder (Hugging Face layout, any supported architecture), GGUF file, Ollama model "
      "name (llama3.2:1b; in $OLLAMA_MODELS or ~/.ollama/models), bundled "
      "model name (demo-brown-gpt2, demo-brown-gpt2-small) or "
      "Hugging Face id in the local cache (gpt2, distilgpt2, ...; id@revision "
      "for one snapshot); default: " +
          std::string(model::kDefaultModel));
}

model::ResolveOptions resolve_options() {
  model::ResolveOptions options;
  if (const char* dir = std::getenv("TOKMAP_MODELS_DIR"); dir != nullptr && *dir != '\0') {
    options.bundled_dirs.emplace_back(dir);
  }
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    options.bundled_dirs.push_back(exe.parent_path().parent_path() / "share" / "tokmap" / "models");
  }
  options.bundled_dirs.emplace_back(TOKMAP_SOURCE_MODELS_DIR);
  return options;
}

std::optional<tokenizer::Tokenizer> load_tokenizer(const std::filesystem::path& model_path,
                                                   const std::vector<TextSource>& texts) {
  return explore::load_tokenizer(model_path, !texts.empty() && texts.front().from_ids);
}

std::string display_token(const tokenizer::Tokenizer* tokenizer, std::int32_t id) {
  return explore::display_token(tokenizer, id);
}

explore::Hooks hooks_for(const CommonOptions& common) {
  explore::Hooks hooks;
  hooks.info = [&common](std::string_view message) { info(common, message); };
  hooks.warn = [&common](std::string_view message) { warn(common, message); };
  return hooks;
}

std::vector<EncodedText> encode_texts(const tokenizer::Tokenizer* tokenizer,
                                      const std::vector<TextSource>& texts, bool lossy,
                                      const CommonOptions& common, bool add_special_tokens) {
  std::vector<EncodedText> encoded;
  encoded.reserve(texts.size());
  explore::EncodeOptions options;
  options.lossy = lossy;
  options.add_special_tokens = add_special_tokens;
  const explore::Hooks hooks = hooks_for(common);
  Progress progress(common, "tokenize", texts.size());
  for (const auto& source : texts) {
    progress.update(encoded.size());
    encoded.push_back({explore::encode(tokenizer, source, options, hooks), &source});
  }
  progress.finish();
  return encoded;
}

}  // namespace tokmap::cli
