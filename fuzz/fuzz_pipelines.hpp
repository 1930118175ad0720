#pragma once
// Small tokenizer.json pipelines for the pipeline fuzz targets: one of each kind of model,
// normalizer, pre-tokenizer, post-processor and decoder (fuzz/make_corpus.py writes the same
// ones as seeds for fuzz_pipeline_json).
#include <cstdio>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace tokmap::fuzz {

inline std::string sentencepiece_vocab() {
  std::string vocab = "\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2";
  for (int byte = 0; byte < 256; ++byte) {
    char entry[32];
    std::snprintf(entry, sizeof entry, ", \"<0x%02X>\": %d", byte, 3 + byte);
    vocab += entry;
  }
  vocab +=
      ", \"\xE2\x96\x81\": 259, \"a\": 260, \"b\": 261, \"c\": 262, \"\xE2\x96\x81"
      "a\": 263, "
      "\"ab\": 264, \"\xE2\x96\x81"
      "ab\": 265, \"\xC3\xA9\": 266";
  return "{" + vocab + "}";
}

// Llama 2 style: Prepend + Replace, BPE with byte fallback, BOS template.
inline std::string llama_style_json(const std::string& pre_tokenizer = "null",
                                    const std::string& normalizer =
                                        "{\"type\": \"Sequence\", \"normalizers\": ["
                                        "{\"type\": \"Prepend\", \"prepend\": \"\xE2\x96\x81\"},"
                                        "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"},"
                                        " \"content\": \"\xE2\x96\x81\"}]}") {
  return "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
         "{\"id\": 1, \"content\": \"<s>\", \"special\": true},"
         "{\"id\": 2, \"content\": \"</s>\", \"special\": true, \"lstrip\": true, \"rstrip\": "
         "true}],"
         "\"normalizer\": " +
         normalizer + ", \"pre_tokenizer\": " + pre_tokenizer +
         ", \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": ["
         "{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", "
         "\"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], "
         "\"tokens\": [\"<s>\"]}}},"
         "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", "
         "\"pattern\": "
         "{\"String\": \"\xE2\x96\x81\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, "
         "{\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": "
         "0}]},"
         "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, "
         "\"byte_fallback\": true, \"vocab\": " +
         sentencepiece_vocab() +
         ", \"merges\": [[\"\xE2\x96\x81\", \"a\"], [\"a\", \"b\"], [\"\xE2\x96\x81"
         "a\", \"b\"]]}}";
}

inline std::string metaspace_json() {
  return llama_style_json(
      "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": "
      "true}, {\"type\": \"Metaspace\", \"replacement\": \"\xE2\x96\x81\", \"prepend_scheme\": "
      "\"first\", \"split\": true}]}",
      "{\"type\": \"NFKC\"}");
}

inline std::string wordpiece_json() {
  return "{\"added_tokens\": [{\"id\": 0, \"content\": \"[UNK]\", \"special\": true},"
         "{\"id\": 1, \"content\": \"[CLS]\", \"special\": true},"
         "{\"id\": 2, \"content\": \"[SEP]\", \"special\": true},"
         "{\"id\": 9, \"content\": \"hello\", \"special\": false, \"single_word\": true, "
         "\"normalized\": true}],"
         "\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true},"
         "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
         "\"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 2], \"cls\": "
         "[\"[CLS]\", 1]},"
         "\"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true},"
         "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", "
         "\"max_input_chars_per_word\": 20, \"vocab\": {\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, "
         "\"a\": 3, \"##b\": 4, \"ab\": 5, \"##c\": 6, \",\": 7, \"e\": 8, \"hello\": 9}}}";
}

inline std::string split_json() {
  return llama_style_json(
      "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
      "\"\\\\s+|\\\\p{N}{1,3}\"}, \"behavior\": \"MergedWithPrevious\", \"invert\": false}, "
      "{\"type\": \"Punctuation\", \"behavior\": \"Contiguous\"}, {\"type\": \"Whitespace\"}]}",
      "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFD\"}, {\"type\": "
      "\"StripAccents\"}, {\"type\": \"Lowercase\"}, {\"type\": \"Strip\"}]}");
}

inline const std::vector<tokenizer::Tokenizer>& pipelines() {
  static const std::vector<tokenizer::Tokenizer> loaded = [] {
    std::vector<tokenizer::Tokenizer> result;
    for (const std::string& json :
         {llama_style_json(), metaspace_json(), wordpiece_json(), split_json()}) {
      result.push_back(tokenizer::Tokenizer::from_tokenizer_json_text(json));
    }
    return result;
  }();
  return loaded;
}

// Spans inside the text with non-decreasing begins; traps otherwise. (Ends may step back where a
// normalizer expanded one character, "⒁" -> "(14)", and a pre-tokenizer put a "▁" before a
// piece of it: that "▁" has an empty span at the character's start.)
inline void check_spans(std::string_view text, const tokenizer::Encoding& encoding) {
  if (encoding.offsets.size() != encoding.ids.size()) __builtin_trap();
  std::size_t begin_before = 0;
  for (const auto& [begin, end] : encoding.offsets) {
    if (begin > end || end > text.size() || begin < begin_before) __builtin_trap();
    begin_before = begin;
  }
}

}  // namespace tokmap::fuzz
