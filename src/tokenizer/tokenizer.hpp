#pragma once
// Tokenizers of language models: a Hugging Face tokenizer.json (byte-level BPE as in GPT-2,
// Llama 3, Qwen, DeepSeek, GPT-4o; SentencePiece-style BPE with byte fallback as in Llama 2 and
// Gemma; WordPiece as in BERT) or GPT-2's vocab.json + merges.txt. Encoding with byte spans into
// the original input, decoding, and display forms of tokens.
//
// Encoding matches Hugging Face `tokenizers` exactly: added tokens are cut out first, the rest is
// normalized, pre-tokenized (regexes on PCRE2 with real Unicode classes), and each piece goes
// through the model; the post-processor adds BOS/CLS/SEP. A component the library does not know
// is an error at load time ("unsupported pre_tokenizer type X at JSON path Y"), never a silently
// different tokenization. A Tokenizer is cheap to copy (shared, immutable data) and encode() may
// be called from several threads at once.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace tokmap::tokenizer {

struct EncodeOptions {
  bool lossy = false;         // replace invalid UTF-8 by U+FFFD instead of throwing
  bool allow_special = true;  // "<|endoftext|>" -> 50256; false: encode it as plain text
  // The tokens the post-processor adds (BOS, [CLS] ... [SEP]), as Hugging Face's
  // add_special_tokens; they get empty spans (at the start, or at the end of the text).
  bool add_special_tokens = true;
};

struct Encoding {
  std::vector<std::int32_t> ids;
  std::vector<std::pair<std::size_t, std::size_t>>
      offsets;                     // byte [begin, end) in the ORIGINAL input
  std::size_t replaced_bytes = 0;  // lossy mode: how many invalid bytes were replaced (CLI warns)
};

class Tokenizer {
 public:
  static Tokenizer from_vocab_merges(const std::filesystem::path& vocab_json,
                                     const std::filesystem::path& merges_txt);
  // A tokenizer_config.json beside it is read too (add_bos_token / add_eos_token).
  static Tokenizer from_tokenizer_json(const std::filesystem::path& tokenizer_json);
  // A model folder: tokenizer.json if present, else vocab.json + merges.txt; error lists what was
  // looked for.
  static Tokenizer from_folder(const std::filesystem::path& folder);
  // A tokenizer.json file or a folder (from_folder).
  static Tokenizer from_path(const std::filesystem::path& path);

  // The same loaders on file contents already in memory (fuzzing, embedded tokenizers). The
  // names only appear in error messages. Any bytes are accepted: bad input throws tokmap::Error.
  static Tokenizer from_vocab_merges_text(std::string_view vocab_json_text,
                                          std::string_view merges_text,
                                          std::string_view vocab_name = "vocab.json",
                                          std::string_view merges_name = "merges.txt");
  // tokenizer_config_text: the contents of tokenizer_config.json, or empty.
  static Tokenizer from_tokenizer_json_text(
      std::string_view tokenizer_json_text, std::string_view name = "tokenizer.json",
      std::string_view tokenizer_config_text = {},
      std::string_view tokenizer_config_name = "tokenizer_config.json");

  Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;
  // The text of `ids` as Hugging Face's decode (its decoders; special tokens kept) gives it,
  // except that bytes are returned as they are (Hugging Face replaces invalid UTF-8 by U+FFFD).
  // For byte-level BPE the exact inverse of encode.
  std::string decode(std::span<const std::int32_t> ids) const;
  std::string_view token_string(std::int32_t id) const;  // vocab form: "Ġthe", "▁the", "##ing"
  // The text a token stands for: raw bytes for byte-level BPE (" the"), "▁" as a space and
  // "<0xE6>" as that byte for SentencePiece-style BPE, "##" dropped for WordPiece; an added
  // token's content.
  std::string token_bytes(std::int32_t id) const;
  // Human form: the bytes as UTF-8 text ("Ġthe" -> " the"); bytes that are not complete UTF-8
  // (a token may hold part of a character) as "<0xE2>"; control characters escaped ("\n",
  // "\t", "\r", others "<0x00>") so one token is always one printable line.
  std::string display(std::int32_t id) const;
  std::size_t vocab_size() const;

  // Id of a special (added) token such as "<|endoftext|>", or -1 if the vocabulary has none.
  std::int32_t special_token_id(std::string_view content) const;
  // Whether `id` is an added token (special or not: matched literally, not by the model).
  bool is_added_token(std::int32_t id) const;

  struct Impl;  // defined in tokenizer_impl.hpp

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// A readable label for a token whose byte span [begin, end) of `text` cuts UTF-8 characters
// (its display form is then "<0xE6><0x9D>"): the display form of the whole characters the span
// overlaps ("木"), when the neighbouring bytes of `text` complete them; empty when the span
// already holds whole characters or the text does not complete them.
std::string whole_characters(std::string_view text, std::size_t begin, std::size_t end);

}  // namespace tokmap::tokenizer
