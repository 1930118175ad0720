#pragma once
// Shared pieces of the commands that read texts and models (internal to src/cli).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "explore/explore.hpp"
#include "model/model.hpp"
#include "tokenizer/tokenizer.hpp"

namespace tokmap::cli {

struct TextInputOptions {
  std::vector<std::string> texts;  // --text, repeatable
  std::string file;                // --file (F.jsonl: one JSON object a line, its "text")
  bool whole_file = false;         // --whole-file: the file, byte for byte, is one text
  bool lossy = false;              // --lossy: replace invalid UTF-8 with U+FFFD
  std::vector<std::string> ids;    // --ids 1,2,3, repeatable: token ids, no tokenizer needed
};

// A text with where it came from ("--text 2", "notes.txt line 7"), or a list of token ids.
using TextSource = explore::Text;

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
// replacements are reported as one warning per text. Texts from --ids are taken as they are
// (each id's offsets are its digits in the list), with or without a tokenizer.
std::vector<EncodedText> encode_texts(const tokenizer::Tokenizer* tokenizer,
                                      const std::vector<TextSource>& texts, bool lossy,
                                      const CommonOptions& common, bool add_special_tokens = true);
inline std::vector<EncodedText> encode_texts(const tokenizer::Tokenizer& tokenizer,
                                             const std::vector<TextSource>& texts, bool lossy,
                                             const CommonOptions& common,
                                             bool add_special_tokens = true) {
  return encode_texts(&tokenizer, texts, lossy, common, add_special_tokens);
}

// The model's tokenizer; none when the texts come from --ids and the model has no tokenizer
// (fixture models, bare GGUF files). Without --ids a missing tokenizer is an error that says
// how to give ids instead.
std::optional<tokenizer::Tokenizer> load_tokenizer(const std::filesystem::path& model_path,
                                                   const std::vector<TextSource>& texts);

// Hooks that print the engine's notes and warnings as this command's (silenced by --quiet).
// Progress is left out: commands draw their own bars.
explore::Hooks hooks_for(const CommonOptions& common);

// How a token is shown: the tokenizer's display form, else "#<id>".
std::string display_token(const tokenizer::Tokenizer* tokenizer, std::int32_t id);

}  // namespace tokmap::cli
