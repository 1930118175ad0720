#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/inputs.hpp"

namespace tokmap::cli {

namespace {

struct TokenizeOptions {
  CommonOptions common;
  TextInputOptions input;
  std::string model;
  std::string tokenizer;  // --tokenizer: a tokenizer.json or a folder holding one
  bool no_special_tokens = false;
  bool json = false;
};

void run_tokenize(const TokenizeOptions& options) {
  const auto texts = read_texts(options.input, options.common);
  const auto tokenizer = !options.tokenizer.empty()
                             ? tokenizer::Tokenizer::from_path(options.tokenizer)
                             : tokenizer::Tokenizer::from_folder(
                                   model::resolve_model(options.model, resolve_options()).folder);
  const auto encoded = encode_texts(tokenizer, texts, options.input.lossy, options.common,
                                    !options.no_special_tokens);

  // Each id's JSON strings are made once: a long text repeats its tokens constantly.
  std::vector<std::string> token_json, display_json;
  const auto json_string = [](const std::string& text) {
    return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  const auto cached = [&](std::vector<std::string>& cache, std::int32_t id, bool display) {
    if (cache.empty()) cache.resize(tokenizer.vocab_size());
    std::string& entry = cache[std::size_t(id)];
    if (entry.empty()) {
      entry =
          json_string(display ? tokenizer.display(id) : std::string(tokenizer.token_string(id)));
    }
    return std::string_view(entry);
  };
  std::string out;
  char number[48];
  for (const auto& item : encoded) {
    const auto& encoding = item.encoding;
    if (options.json) {
      // {"display", "ids", "offsets", "tokens"}: the keys in the order nlohmann wrote them.
      out += "{\"display\":[";
      for (std::size_t i = 0; i < encoding.ids.size(); ++i) {
        if (i) out += ',';
        out += cached(display_json, encoding.ids[i], true);
      }
      out += "],\"ids\":[";
      for (std::size_t i = 0; i < encoding.ids.size(); ++i) {
        const int length = std::snprintf(number, sizeof number, i ? ",%d" : "%d", encoding.ids[i]);
        out.append(number, std::size_t(length));
      }
      out += "],\"offsets\":[";
      for (std::size_t i = 0; i < encoding.offsets.size(); ++i) {
        const int length = std::snprintf(number, sizeof number, i ? ",[%zu,%zu]" : "[%zu,%zu]",
                                         encoding.offsets[i].first, encoding.offsets[i].second);
        out.append(number, std::size_t(length));
      }
      out += "],\"tokens\":[";
      for (std::size_t i = 0; i < encoding.ids.size(); ++i) {
        if (i) out += ',';
        out += cached(token_json, encoding.ids[i], false);
      }
      out += "]}\n";
    } else {
      out += item.source->origin + ": " + std::to_string(encoding.ids.size()) + " tokens\n";
      for (std::size_t i = 0; i < encoding.ids.size(); ++i) {
        out += "  " + std::to_string(i) + "\t" + std::to_string(encoding.ids[i]) + "\t[" +
               tokenizer.display(encoding.ids[i]) + "]\t" +
               std::to_string(encoding.offsets[i].first) + "-" +
               std::to_string(encoding.offsets[i].second) + "\n";
      }
    }
  }
  std::cout << out << std::flush;
  if (!std::cout) throw Error("cannot write to standard output");
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  auto* command = app.add_subcommand(
      "tokenize",
      "Split text into the tokens of a model's tokenizer, with byte offsets (no weights needed)");
  add_model_flag(*command, options->model);
  command
      ->add_option("--tokenizer", options->tokenizer,
                   "A Hugging Face tokenizer.json, or a folder holding one (and its "
                   "tokenizer_config.json), instead of --model")
      ->excludes("--model");
  command->add_flag("--no-special-tokens", options->no_special_tokens,
                    "Leave out the tokens the tokenizer adds around every text (BOS, [CLS] ... "
                    "[SEP]); special tokens written in the text are still found");
  add_text_input_flags(*command, options->input);
  command->add_flag("--json", options->json,
                    "One JSON object per text and line: {\"ids\", \"tokens\" (vocabulary strings), "
                    "\"display\" (readable forms), \"offsets\" ([begin, end) bytes)}");
  add_common_flags(*command, options->common);
  command->footer(
      "Examples:\n"
      "  tokmap tokenize --text \"The bank of the river.\"\n"
      "  tokmap tokenize --json --file notes.txt\n"
      "  tokmap tokenize --tokenizer path/to/tokenizer.json --file texts.jsonl --json");
  command->callback([options] { run_tokenize(*options); });
}

}  // namespace tokmap::cli
