#pragma once
// GPT-2 byte-level BPE: loading (vocab.json + merges.txt, or a Hugging Face tokenizer.json),
// encoding with byte spans into the original input, decoding, and display forms of tokens.
//
// Encoding matches Hugging Face `tokenizers` / tiktoken exactly: the text is split around the
// special token "<|endoftext|>", pre-tokenized with GPT-2's regex (PCRE2, real Unicode classes),
// and every piece is merged by BPE ranks. A Tokenizer is cheap to copy (shared, immutable data)
// and encode() may be called from several threads at once.
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
  static Tokenizer from_tokenizer_json(const std::filesystem::path& tokenizer_json);
  // A model folder: tokenizer.json if present, else vocab.json + merges.txt; error lists what was
  // looked for.
  static Tokenizer from_folder(const std::filesystem::path& folder);

  // The same loaders on file contents already in memory (fuzzing, embedded tokenizers). The
  // names only appear in error messages. Any bytes are accepted: bad input throws tokmap::Error.
  static Tokenizer from_vocab_merges_text(std::string_view vocab_json_text,
                                          std::string_view merges_text,
                                          std::string_view vocab_name = "vocab.json",
                                          std::string_view merges_name = "merges.txt");
  static Tokenizer from_tokenizer_json_text(std::string_view tokenizer_json_text,
                                            std::string_view name = "tokenizer.json");

  Encoding encode(std::string_view text, const EncodeOptions& options = {}) const;
  std::string decode(std::span<const std::int32_t> ids) const;  // exact inverse of encode (bytes)
  std::string_view token_string(std::int32_t id) const;         // vocab form, e.g. "Ġthe"
  std::string token_bytes(std::int32_t id) const;               // raw bytes
  // Human form: the bytes as UTF-8 text ("Ġthe" -> " the"); bytes that are not complete UTF-8
  // (a token may hold part of a character) as "<0xE2>"; control characters escaped ("\n",
  // "\t", "\r", others "<0x00>") so one token is always one printable line.
  std::string display(std::int32_t id) const;
  std::size_t vocab_size() const;

  // Id of a special token such as "<|endoftext|>", or -1 if the vocabulary has none.
  std::int32_t special_token_id(std::string_view content) const;

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
