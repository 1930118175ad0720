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

  std::string out;
  for (const auto& item : encoded) {
    const auto& encoding = item.encoding;
    if (options.json) {
      nlohmann::json object;
      object["ids"] = encoding.ids;
      auto& tokens = object["tokens"] = nlohmann::json::array();
      auto& display = object["display"] = nlohmann::json::array();
      for (const auto id : encoding.ids) {
        tokens.push_back(std::string(tokenizer.token_string(id)));
        display.push_back(tokenizer.display(id));
      }
      object["offsets"] = encoding.offsets;
      out += object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += '\n';
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
