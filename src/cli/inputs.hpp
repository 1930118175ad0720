#pragma once
// Shared pieces of the commands that read texts and models (internal to src/cli).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "model/model.hpp"
#include "tokenizer/tokenizer.hpp"

namespace tokmap::cli {

struct TextInputOptions {
  std::vector<std::string> texts;  // --text, repeatable
  std::string file;                // --file (F.jsonl: one JSON object a line, its "text")
  bool whole_file = false;         // --whole-file: the file, byte for byte, is one text
  bool lossy = false;              // --lossy: replace invalid UTF-8 with U+FFFD
};

struct TextSource {
  std::string text;
  std::string origin;  // "--text 2", "notes.txt line 7": used in error messages
};

void add_text_input_flags(CLI::App& command, TextInputOptions& options);
// The texts to process, in order. Errors: no input, empty --text, a file with no text, a
// .jsonl line that is not an object with a string "text". A UTF-8 byte-order mark at the start
// of --file is skipped, with one note on stderr.
std::vector<TextSource> read_texts(const TextInputOptions& options, const CommonOptions& common);

void add_model_flag(CLI::App& command, std::string& model);
// Where bundled models live: $TOKMAP_MODELS_DIR, <exe>/../share/tokmap/models, the source tree.
model::ResolveOptions resolve_options();

struct EncodedText {
  tokenizer::Encoding encoding;
  const TextSource* source = nullptr;
};
// Encodes every text; errors (invalid UTF-8) are prefixed with the text's origin; lossy
// replacements are reported as one warning per text.
std::vector<EncodedText> encode_texts(const tokenizer::Tokenizer& tokenizer,
                                      const std::vector<TextSource>& texts, bool lossy,
                                      const CommonOptions& common, bool add_special_tokens = true);

}  // namespace tokmap::cli
