// The tokenizer of a GGUF file as a Hugging Face tokenizer.json (text), so that the tokenizer
// module reads one format only. GGUF keeps a vocabulary in its metadata:
//   tokenizer.ggml.model        "gpt2" (byte-level BPE) or "llama" (SentencePiece)
//   tokenizer.ggml.tokens       [string] by id
//   tokenizer.ggml.merges       [string "left right"] by rank (gpt2)
//   tokenizer.ggml.scores       [f32] by id (llama: the piece's log probability)
//   tokenizer.ggml.token_type   [i32] by id: 1 normal, 2 unknown, 3 control, 4 user-defined,
//                               5 unused, 6 byte (<0xNN>)
//   tokenizer.ggml.pre          gpt2's pre-tokenizer ("gpt-2", "llama-bpe", "qwen2", ...)
//   tokenizer.ggml.{bos,eos,unknown}_token_id, add_bos_token, add_eos_token, add_space_prefix
// The JSON follows what transformers' convert_slow_tokenizer writes for the same vocabulary
// (GPT2Converter; LlamaConverter with legacy=False) and llama.cpp's conventions for the
// defaults (SentencePiece vocabularies add BOS and a space prefix unless told otherwise).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "model/model.hpp"

namespace tokmap::model {

namespace {

using json = nlohmann::json;

// The pre-tokenizer regexes of llama.cpp's named BPE pre-tokenizers (llama-vocab.cpp), as the
// models' own tokenizer.json files write them.
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Vocabulary {
  const GgufFile& file;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    const GgufValue* v = file.find(key);
    throw Error(file.where() + ": metadata '" + key + "' " + what +
                (v != nullptr ? " (at byte offset " + std::to_string(v->offset) + ")" : ""));
  }
  const GgufValue* array(const std::string& key, GgufType element, std::size_t size,
                         bool required) const {
    const GgufValue* v = file.find(key);
    if (v == nullptr) {
      if (required) fail(key, "is missing (needed for the tokenizer)");
      return nullptr;
    }
    const bool integer_elements = element == GgufType::i32;
    const bool ok = v->type == GgufType::array &&
                    (integer_elements ? !v->integers.empty() || v->count == 0
                     : element == GgufType::f32
                         ? v->element_type == GgufType::f32 || v->element_type == GgufType::f64
                         : v->element_type == element);
    if (!ok) fail(key, "must be an array of " + std::string(gguf_type_name(element)));
    if (size != 0 && v->count != size) {
      fail(key, "has " + std::to_string(v->count) + " entries, tokenizer.ggml.tokens has " +
                    std::to_string(size));
    }
    return v;
  }
  std::int64_t id(const std::string& key, std::int64_t fallback, std::size_t vocab) const {
    const GgufValue* v = file.find(key);
    if (v == nullptr) return fallback;
    if (!v->is_integer() || v->integer < -1 || v->integer >= std::int64_t(vocab)) {
      fail(key, "must be a token id below " + std::to_string(vocab));
    }
    return v->integer;
  }
  bool flag(const std::string& key, bool fallback) const {
    const GgufValue* v = file.find(key);
    if (v == nullptr) return fallback;
    if (v->type != GgufType::boolean) fail(key, "must be a bool");
    return v->integer != 0;
  }
};

json added_token(std::int64_t id, const std::string& content, bool special) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

// BOS/EOS around every text, as TemplateProcessing writes it; null when neither is added.
json template_processor(const std::vector<std::string>& tokens, std::int64_t bos, bool add_bos,
                        std::int64_t eos, bool add_eos) {
  add_bos = add_bos && bos >= 0;
  add_eos = add_eos && eos >= 0;
  if (!add_bos && !add_eos) return nullptr;
  json single = json::array(), pair = json::array(), special = json::object();
  auto token = [&](std::int64_t id, int type_id) {
    return json{{"SpecialToken", {{"id", tokens[std::size_t(id)]}, {"type_id", type_id}}}};
  };
  for (int part = 0; part < 2; ++part) {
    json& seq = part == 0 ? single : pair;
    for (int side = 0; side <= part; ++side) {
      if (add_bos) seq.push_back(token(bos, side));
      seq.push_back({{"Sequence", {{"id", side == 0 ? "A" : "B"}, {"type_id", side}}}});
      if (add_eos) seq.push_back(token(eos, side));
    }
  }
  for (const auto& [add, id] : {std::pair{add_bos, bos}, std::pair{add_eos, eos}}) {
    if (!add) continue;
    const std::string& content = tokens[std::size_t(id)];
    special[content] = {{"id", content}, {"ids", {id}}, {"tokens", {content}}};
  }
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", special}};
}

// GGUF strings are UTF-8 by the format's definition; a JSON text cannot hold anything else.
bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80         ? 1
                          : (c >> 5) == 6  ? 2
                          : (c >> 4) == 14 ? 3
                          : (c >> 3) == 30 ? 4
                                           : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const std::uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Byte offsets of the UTF-8 character boundaries inside `s` (excluding 0 and size).
std::vector<std::size_t> char_boundaries(const std::string& s) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) cuts.push_back(i);
  }
  return cuts;
}

// transformers' generate_merges (convert_slow_tokenizer.py): every split of every piece into
// two pieces of the vocabulary, ordered by (id of left, id of right) within a piece, then all
// of them by the piece's score, highest first (a stable sort).
json sentencepiece_merges(const std::vector<std::string>& tokens, const std::vector<double>& scores,
                          const std::unordered_map<std::string, std::int64_t>& ids) {
  struct Merge {
    std::int64_t left, right;
    double score;
  };
  std::vector<Merge> merges;
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    const std::string& piece = tokens[id];
    if (ids.at(piece) != std::int64_t(id)) continue;  // a duplicate string: the first id wins
    std::vector<Merge> local;
    for (const std::size_t cut : char_boundaries(piece)) {
      const auto left = ids.find(piece.substr(0, cut));
      const auto right = ids.find(piece.substr(cut));
      if (left != ids.end() && right != ids.end()) {
        local.push_back({left->second, right->second, scores[id]});
      }
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(),
                   [](const Merge& a, const Merge& b) { return a.score > b.score; });
  json out = json::array();
  for (const Merge& m : merges) {
    out.push_back({tokens[std::size_t(m.left)], tokens[std::size_t(m.right)]});
  }
  return out;
}

}  // namespace

std::string gguf_tokenizer_json(const GgufFile& file) {
  const Vocabulary v{file};
  const GgufValue* model = file.find("tokenizer.ggml.model");
  if (model == nullptr || model->type != GgufType::string) {
    v.fail("tokenizer.ggml.model", "is missing or not a string: the file has no tokenizer");
  }
  const std::string kind = model->string;
  if (kind != "gpt2" && kind != "llama") {
    v.fail("tokenizer.ggml.model",
           "is '" + kind + "'; tokmap reads GGUF vocabularies of type gpt2 and llama");
  }
  const auto& tokens = v.array("tokenizer.ggml.tokens", GgufType::string, 0, true)->strings;
  const std::size_t n = tokens.size();
  if (n == 0) v.fail("tokenizer.ggml.tokens", "is empty");
  std::vector<std::int64_t> types(n, 1);
  if (const GgufValue* t = v.array("tokenizer.ggml.token_type", GgufType::i32, n, false)) {
    types = t->integers;
  }
  std::unordered_map<std::string, std::int64_t> ids;
  json vocab = json::object();
  for (std::size_t i = 0; i < n; ++i) {
    if (!valid_utf8(tokens[i])) {
      v.fail("tokenizer.ggml.tokens", "entry " + std::to_string(i) + " is not valid UTF-8");
    }
    if (ids.emplace(tokens[i], std::int64_t(i)).second) vocab[tokens[i]] = i;
  }
  const bool llama = kind == "llama";
  const std::int64_t bos = v.id("tokenizer.ggml.bos_token_id", llama ? 1 : -1, n);
  const std::int64_t eos = v.id("tokenizer.ggml.eos_token_id", llama ? 2 : -1, n);
  const std::int64_t unk = v.id("tokenizer.ggml.unknown_token_id", llama ? 0 : -1, n);
  const bool add_bos = v.flag("tokenizer.ggml.add_bos_token", llama);
  const bool add_eos = v.flag("tokenizer.ggml.add_eos_token", false);

  json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  json added = json::array();
  for (std::size_t i = 0; i < n; ++i) {
    // Control and unknown tokens are special; user-defined ones are matched whole too.
    if (types[i] == 2 || types[i] == 3 || types[i] == 4) {
      added.push_back(added_token(std::int64_t(i), tokens[i], types[i] != 4));
    }
  }
  root["added_tokens"] = added;
  root["normalizer"] = nullptr;

  json bpe = {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", unk >= 0 ? json(tokens[std::size_t(unk)]) : json(nullptr)},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", llama},
              {"byte_fallback", llama},
              {"ignore_merges", false},
              {"vocab", vocab}};
  const json processor = template_processor(tokens, bos, add_bos, eos, add_eos);

  if (!llama) {
    json merges = json::array();
    const GgufValue* m = v.array("tokenizer.ggml.merges", GgufType::string, 0, true);
    for (std::size_t i = 0; i < m->strings.size(); ++i) {
      const std::string& merge = m->strings[i];
      const auto space = merge.find(' ');
      if (!valid_utf8(merge) || space == std::string::npos || space == 0 ||
          space + 1 == merge.size() || merge.find(' ', space + 1) != std::string::npos) {
        v.fail("tokenizer.ggml.merges", "entry " + std::to_string(i) +
                                            " is not two tokens separated by one space (in UTF-8)");
      }
      merges.push_back({merge.substr(0, space), merge.substr(space + 1)});
    }
    bpe["merges"] = merges;
    const json byte_level = {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", true},
                             {"use_regex", true}};
    const GgufValue* pre_value = file.find("tokenizer.ggml.pre");
    std::string pre =
        pre_value != nullptr && pre_value->type == GgufType::string ? pre_value->string : "gpt-2";
    if (!valid_utf8(pre)) pre = "(not UTF-8)";
    auto split = [&](std::string_view regex) {
      json no_regex = byte_level;
      no_regex["use_regex"] = false;
      return json{{"type", "Sequence"},
                  {"pretokenizers",
                   {{{"type", "Split"},
                     {"pattern", {{"Regex", regex}}},
                     {"behavior", "Isolated"},
                     {"invert", false}},
                    no_regex}}};
    };
    if (pre == "gpt-2" || pre == "default" || pre == "gpt2") {
      root["pre_tokenizer"] = byte_level;
    } else if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
      root["pre_tokenizer"] = split(kLlama3Regex);
    } else if (pre == "qwen2") {
      root["pre_tokenizer"] = split(kQwen2Regex);
    } else if (pre == "smollm") {
      root["pre_tokenizer"] = {
          {"type", "Sequence"},
          {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
    } else {
      v.fail("tokenizer.ggml.pre", "is '" + pre +
                                       "'; tokmap knows the pre-tokenizers gpt-2, llama-bpe, "
                                       "qwen2 and smollm (give a tokenizer.json, or --ids)");
    }
    json byte_post = {{"type", "ByteLevel"},
                      {"add_prefix_space", true},
                      {"trim_offsets", false},
                      {"use_regex", true}};
    root["post_processor"] =
        processor.is_null() ? byte_post
                            : json{{"type", "Sequence"}, {"processors", {byte_post, processor}}};
    root["decoder"] = {{"type", "ByteLevel"},
                       {"add_prefix_space", true},
                       {"trim_offsets", true},
                       {"use_regex", true}};
  } else {
    const auto& scores = v.array("tokenizer.ggml.scores", GgufType::f32, n, true)->numbers;
    bpe["merges"] = sentencepiece_merges(tokens, scores, ids);
    const bool prefix = v.flag("tokenizer.ggml.add_space_prefix", true);
    root["pre_tokenizer"] = {{"type", "Metaspace"},
                             {"replacement", "\u2581"},
                             {"prepend_scheme", prefix ? "first" : "never"},
                             {"split", false}};
    root["post_processor"] = processor;
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (prefix)
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    root["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  }
  root["model"] = bpe;
  return root.dump();
}

}  // namespace tokmap::model
