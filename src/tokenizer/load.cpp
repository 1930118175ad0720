// Loading a tokenizer from vocab.json + merges.txt or from a Hugging Face tokenizer.json.
// Every input is untrusted: anything unexpected becomes a one-line tokmap::Error naming the file
// and what is wrong, never a crash or a silently different tokenizer.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "io/io.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace tokmap::tokenizer {

using detail::quote_for_message;
using nlohmann::json;

namespace {

std::uint64_t next_instance_id() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

[[noreturn]] void fail(std::string_view file, const std::string& what) {
  throw Error(std::string(file) + ": " + what);
}

// The two big containers of a tokenizer file: tens of thousands of vocabulary members and
// merges. parse_json() hands them over as they are parsed instead of building them into the
// document (a std::map of 50,257 entries costs more than the whole rest of loading).
struct BulkPaths {
  std::vector<std::string> vocab;   // keys leading to the vocabulary object ({} = the root)
  std::vector<std::string> merges;  // keys leading to the merges array (empty: none)
};
struct BulkContents {
  std::vector<std::pair<std::string, json>> vocab_members;
  std::vector<json> merge_elements;
};

json parse_json(std::string_view text, std::string_view file, const BulkPaths& bulk,
                BulkContents& contents) {
  // Keys from the root to the element being parsed: path[d - 1] is the last key at depth d.
  std::vector<std::string> path;
  const auto under = [&](const std::vector<std::string>& prefix) {
    return std::equal(prefix.begin(), prefix.end(), path.begin());
  };
  const std::size_t vocab_depth = bulk.vocab.size() + 1;    // depth of its members
  const std::size_t merges_depth = bulk.merges.size() + 1;  // depth of its elements
  const auto in_vocab = [&](int depth) {
    return std::size_t(depth) == vocab_depth && path.size() == vocab_depth && under(bulk.vocab);
  };
  const auto in_merges = [&](int depth) {
    return !bulk.merges.empty() && std::size_t(depth) == merges_depth &&
           path.size() == bulk.merges.size() && under(bulk.merges);
  };
  // nlohmann calls this for every event; returning false keeps the element out of the
  // document (for a key: the member is never inserted, but its value is still reported).
  const json::parser_callback_t take_bulk = [&](int depth, json::parse_event_t event,
                                                json& parsed) {
    using Event = json::parse_event_t;
    switch (event) {
      case Event::key:
        path.resize(std::size_t(depth));
        path.back() = parsed.get<std::string>();
        return !in_vocab(depth);
      case Event::value:
        if (in_vocab(depth)) {
          contents.vocab_members.emplace_back(path.back(), std::move(parsed));
          return false;
        }
        if (in_merges(depth)) {
          contents.merge_elements.push_back(std::move(parsed));
          return false;
        }
        return true;
      case Event::object_start:
      case Event::array_start:
        if (in_vocab(depth)) {
          // Not an id: remember only what it is (the message names the type), skip its content.
          contents.vocab_members.emplace_back(
              path.back(), event == Event::object_start ? json::object() : json::array());
          return false;
        }
        return true;  // merges' ["left", "right"] pairs are taken whole when they end
      case Event::object_end:
      case Event::array_end:
        if (in_merges(depth)) {
          contents.merge_elements.push_back(std::move(parsed));
          return false;
        }
        return true;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), take_bulk);
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1,
    // ..."; the excerpt it quotes may hold raw bytes of the file, so make it printable.
    std::string_view message = e.what();
    if (const auto bracket = message.find("] ");
        message.starts_with("[") && bracket != message.npos) {
      message.remove_prefix(bracket + 2);
    }
    fail(file, "not valid JSON: " + detail::display_bytes(message.substr(0, 300)));
  }
}

std::string_view type_name(const json& value) { return value.type_name(); }

// One vocabulary entry as read from a file, before validation.
struct VocabEntry {
  std::string token;
  std::int64_t id;
};

struct MergeEntry {
  std::string left;
  std::string right;
  std::string where;  // "line 12" or "merge 11", for messages
};

std::vector<VocabEntry> read_vocab_object(const json& vocab,
                                          std::vector<std::pair<std::string, json>> members,
                                          std::string_view file, std::string_view what) {
  if (!vocab.is_object()) {
    fail(file, std::string(what) + " must be a JSON object of token -> id, found " +
                   std::string(type_name(vocab)));
  }
  for (const auto& [token, id] : vocab.items()) members.emplace_back(token, id);
  std::vector<VocabEntry> entries;
  entries.reserve(members.size());
  for (auto& [token, id] : members) {
    if (!id.is_number_integer()) {
      fail(file, "token " + quote_for_message(token) + " has a non-integer id (" +
                     std::string(type_name(id)) + ")");
    }
    std::int64_t value;
    if (id.is_number_unsigned()) {
      const auto unsigned_value = id.get<std::uint64_t>();
      value = unsigned_value > std::uint64_t(INT64_MAX) ? INT64_MAX : std::int64_t(unsigned_value);
    } else {
      value = id.get<std::int64_t>();
    }
    entries.push_back({std::move(token), value});
  }
  return entries;
}

// Splits merges.txt into entries; line numbers count from 1 like an editor's.
std::vector<MergeEntry> read_merges_text(std::string_view text, std::string_view file) {
  std::vector<MergeEntry> merges;
  merges.reserve(text.size() / 8);
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == text.npos ? text.size() : newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty() || (line_number == 1 && line.starts_with("#version"))) continue;
    const std::size_t space = line.find(' ');
    if (space == line.npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != line.npos) {
      fail(file, "line " + std::to_string(line_number) +
                     ": expected two tokens separated by one space, found " +
                     quote_for_message(line));
    }
    merges.push_back({std::string(line.substr(0, space)), std::string(line.substr(space + 1)),
                      "line " + std::to_string(line_number)});
  }
  return merges;
}

// Hugging Face writes merges either as "left right" strings (older files) or as
// ["left", "right"] pairs (tokenizers >= 0.20).
std::vector<MergeEntry> read_merges_array(const json& merges, std::vector<json> elements,
                                          std::string_view file) {
  if (!merges.is_array()) {
    fail(file, "model.merges must be an array, found " + std::string(type_name(merges)));
  }
  for (const json& merge : merges) elements.push_back(merge);
  std::vector<MergeEntry> entries;
  entries.reserve(elements.size());
  std::size_t index = 0;
  for (const json& merge : elements) {
    const std::string where = "merge " + std::to_string(index++);
    if (merge.is_string()) {
      const auto& line = merge.get_ref<const std::string&>();
      const std::size_t space = line.find(' ');
      if (space == line.npos || space == 0 || space + 1 == line.size() ||
          line.find(' ', space + 1) != line.npos) {
        fail(file, "model.merges " + where +
                       ": expected two tokens separated by one space, found " +
                       quote_for_message(line));
      }
      entries.push_back({line.substr(0, space), line.substr(space + 1), where});
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string() && !merge[0].get_ref<const std::string&>().empty() &&
               !merge[1].get_ref<const std::string&>().empty()) {
      entries.push_back({merge[0].get<std::string>(), merge[1].get<std::string>(), where});
    } else {
      fail(file, "model.merges " + where +
                     ": expected \"left right\" or [\"left\", \"right\"], found " +
                     quote_for_message(merge.dump(-1, ' ', true)));
    }
  }
  return entries;
}

const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string shown(const json& value) {
  if (value.is_string()) return quote_for_message(value.get_ref<const std::string&>(), 60);
  return quote_for_message(value.dump(-1, ' ', true), 60);
}

struct RawAdded {
  detail::AddedToken token;
  std::int64_t id;
};

// Reads the pipeline parts of a tokenizer.json into `impl`; `file` names it in messages.
class PipelineReader {
 public:
  PipelineReader(std::string_view file, Tokenizer::Impl& impl) : file_(file), impl_(impl) {}

  [[noreturn]] void unsupported(const std::string& component, const json& type,
                                const std::string& path) const {
    fail(file_,
         "unsupported " + component + " type " + shown(type) + " at JSON path " + path + ".type");
  }
  [[noreturn]] void bad(const std::string& path, const std::string& what) const {
    fail(file_, path + ": " + what);
  }

  const json& object_at(const json& value, const std::string& path) const {
    if (!value.is_object()) bad(path, "expected an object, found " + shown(value));
    return value;
  }
  std::string type_of(const json& value, const std::string& path) const {
    const json* type = member(object_at(value, path), "type");
    if (!type || !type->is_string()) bad(path, "no \"type\"");
    return type->get<std::string>();
  }
  bool boolean(const json& object, const char* key, bool fallback, const std::string& path) const {
    const json* value = member(object, key);
    if (!value || value->is_null()) return fallback;
    if (!value->is_boolean())
      bad(path + "." + key, "expected true or false, found " + shown(*value));
    return value->get<bool>();
  }
  std::string string(const json& object, const char* key, const std::string& path,
                     const char* fallback = nullptr) const {
    const json* value = member(object, key);
    if ((!value || value->is_null()) && fallback) return fallback;
    if (!value || !value->is_string()) {
      bad(path + "." + key, "expected a string, found " + (value ? shown(*value) : "nothing"));
    }
    return value->get<std::string>();
  }
  std::size_t count(const json& object, const char* key, std::size_t fallback,
                    const std::string& path) const {
    const json* value = member(object, key);
    if (!value || value->is_null()) return fallback;
    if (!value->is_number_unsigned()) bad(path + "." + key, "expected a whole number");
    return value->get<std::size_t>();
  }
  std::shared_ptr<const detail::Regex> pattern(const json& object, const std::string& path) const {
    const std::string where = path + ".pattern";
    const json* value = member(object, "pattern");
    if (!value || !value->is_object() || value->size() != 1) {
      bad(where, "expected {\"String\": ...} or {\"Regex\": ...}");
    }
    if (const json* s = member(*value, "String"); s && s->is_string()) {
      return detail::Regex::literal(s->get<std::string>());
    }
    if (const json* r = member(*value, "Regex"); r && r->is_string()) {
      try {
        return std::make_shared<const detail::Regex>(r->get<std::string>());
      } catch (const Error& e) {
        bad(where, e.what());
      }
    }
    bad(where, "expected {\"String\": ...} or {\"Regex\": ...}, found " + shown(*value));
  }
  detail::SplitBehavior behavior(const json& object, const std::string& path,
                                 detail::SplitBehavior fallback) const {
    const json* value = member(object, "behavior");
    if (!value || value->is_null()) return fallback;
    using B = detail::SplitBehavior;
    if (value->is_string()) {
      const std::string name = value->get<std::string>();
      if (name == "Removed") return B::kRemoved;
      if (name == "Isolated") return B::kIsolated;
      if (name == "MergedWithPrevious") return B::kMergedWithPrevious;
      if (name == "MergedWithNext") return B::kMergedWithNext;
      if (name == "Contiguous") return B::kContiguous;
    }
    bad(path + ".behavior", "unsupported split behavior " + shown(*value));
  }
  std::string one_character(const json& object, const char* key, const std::string& path,
                            const char* fallback) const {
    std::string value = string(object, key, path, fallback);
    std::size_t length = 0;
    if (value.empty() || detail::valid_sequence_length(value, 0) != value.size()) {
      bad(path + "." + key, "expected one character, found " + quote_for_message(value));
    }
    (void)length;
    return value;
  }

  void normalizer(const json& value, const std::string& path) {
    if (value.is_null()) return;
    const std::string type = type_of(value, path);
    using K = detail::NormalizerKind;
    detail::Normalizer n{};
    if (type == "Sequence") {
      const json* list = member(value, "normalizers");
      if (!list || !list->is_array()) bad(path + ".normalizers", "expected an array");
      for (std::size_t i = 0; i < list->size(); ++i) {
        normalizer((*list)[i], path + ".normalizers[" + std::to_string(i) + "]");
      }
      return;
    } else if (type == "NFC") {
      n.kind = K::kNfc;
    } else if (type == "NFD") {
      n.kind = K::kNfd;
    } else if (type == "NFKC") {
      n.kind = K::kNfkc;
    } else if (type == "NFKD") {
      n.kind = K::kNfkd;
    } else if (type == "Lowercase") {
      n.kind = K::kLowercase;
    } else if (type == "StripAccents") {
      n.kind = K::kStripAccents;
    } else if (type == "Strip") {
      n.kind = K::kStrip;
      n.strip_left = boolean(value, "strip_left", true, path);
      n.strip_right = boolean(value, "strip_right", true, path);
    } else if (type == "Replace") {
      n.kind = K::kReplace;
      n.pattern = pattern(value, path);
      n.content = string(value, "content", path);
    } else if (type == "Prepend") {
      n.kind = K::kPrepend;
      n.content = string(value, "prepend", path);
    } else if (type == "BertNormalizer") {
      n.kind = K::kBert;
      n.clean_text = boolean(value, "clean_text", true, path);
      n.handle_chinese_chars = boolean(value, "handle_chinese_chars", true, path);
      n.lowercase = boolean(value, "lowercase", true, path);
      n.strip_accents = boolean(value, "strip_accents", n.lowercase, path);
    } else {
      unsupported("normalizer", value.at("type"), path);
    }
    impl_.normalizers.push_back(std::move(n));
  }

  void pre_tokenizer(const json& value, const std::string& path) {
    if (value.is_null()) return;
    const std::string type = type_of(value, path);
    using K = detail::PreTokenizerKind;
    detail::PreTokenizer p{};
    if (type == "Sequence") {
      const json* list = member(value, "pretokenizers");
      if (!list || !list->is_array()) bad(path + ".pretokenizers", "expected an array");
      for (std::size_t i = 0; i < list->size(); ++i) {
        pre_tokenizer((*list)[i], path + ".pretokenizers[" + std::to_string(i) + "]");
      }
      return;
    } else if (type == "ByteLevel") {
      p.kind = K::kByteLevel;
      p.add_prefix_space = boolean(value, "add_prefix_space", true, path);
      if (boolean(value, "use_regex", true, path)) p.pattern = gpt2_regex();
      byte_level_ = true;
    } else if (type == "Split") {
      p.kind = K::kSplit;
      p.pattern = pattern(value, path);
      p.behavior = behavior(value, path, detail::SplitBehavior::kIsolated);
      p.invert = boolean(value, "invert", false, path);
    } else if (type == "Metaspace") {
      p.kind = K::kMetaspace;
      p.replacement = one_character(value, "replacement", path, "\xE2\x96\x81");
      using P = detail::PreTokenizer::Prepend;
      if (const json* scheme = member(value, "prepend_scheme"); scheme && !scheme->is_null()) {
        const std::string name = scheme->is_string() ? scheme->get<std::string>() : "";
        if (name == "always") {
          p.prepend = P::kAlways;
        } else if (name == "first") {
          p.prepend = P::kFirst;
        } else if (name == "never") {
          p.prepend = P::kNever;
        } else {
          bad(path + ".prepend_scheme", "expected always, first or never, found " + shown(*scheme));
        }
      } else {
        p.prepend = boolean(value, "add_prefix_space", true, path) ? P::kAlways : P::kNever;
      }
      p.split = boolean(value, "split", true, path);
    } else if (type == "Whitespace") {
      p.kind = K::kWhitespace;
      static const auto whitespace = std::make_shared<const detail::Regex>(
          "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+"
          "|[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\s]+");
      p.pattern = whitespace;
      p.behavior = detail::SplitBehavior::kRemoved;
      p.invert = true;
    } else if (type == "WhitespaceSplit") {
      p.kind = K::kWhitespaceSplit;
      p.behavior = detail::SplitBehavior::kRemoved;
    } else if (type == "Punctuation") {
      p.kind = K::kPunctuation;
      p.behavior = behavior(value, path, detail::SplitBehavior::kIsolated);
    } else if (type == "Digits") {
      p.kind = K::kDigits;
      p.individual_digits = boolean(value, "individual_digits", false, path);
      p.behavior = p.individual_digits ? detail::SplitBehavior::kIsolated
                                       : detail::SplitBehavior::kContiguous;
    } else if (type == "BertPreTokenizer") {
      p.kind = K::kBert;
    } else if (type == "CharDelimiterSplit") {
      p.kind = K::kCharDelimiter;
      p.replacement = one_character(value, "delimiter", path, nullptr);
      p.behavior = detail::SplitBehavior::kRemoved;
    } else {
      unsupported("pre_tokenizer", value.at("type"), path);
    }
    impl_.pre_tokenizers.push_back(std::move(p));
  }

  // Special tokens named by a post-processor: [content, id] pairs or template entries.
  std::int32_t checked_id(const json& id, const std::string& path) const {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
        id.get<std::int64_t>() >= impl_.id_count()) {
      bad(path, "token id " + shown(id) + " is outside the vocabulary (0.." +
                    std::to_string(impl_.id_count() - 1) + ")");
    }
    return id.get<std::int32_t>();
  }
  std::int32_t pair_id(const json& object, const char* key, const std::string& path) const {
    const json* value = member(object, key);
    if (!value || !value->is_array() || value->size() != 2 || !(*value)[0].is_string()) {
      bad(path + "." + key, "expected [\"token\", id]");
    }
    return checked_id((*value)[1], path + "." + key + "[1]");
  }

  void post_processor(const json& value, const std::string& path, std::vector<std::int32_t>& prefix,
                      std::vector<std::int32_t>& suffix) {
    if (value.is_null()) return;
    const std::string type = type_of(value, path);
    if (type == "Sequence") {
      const json* list = member(value, "processors");
      if (!list || !list->is_array()) bad(path + ".processors", "expected an array");
      for (std::size_t i = 0; i < list->size(); ++i) {
        post_processor((*list)[i], path + ".processors[" + std::to_string(i) + "]", prefix, suffix);
      }
    } else if (type == "ByteLevel") {
      // Offsets only.
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      const std::int32_t cls = pair_id(value, "cls", path);
      const std::int32_t sep = pair_id(value, "sep", path);
      prefix.insert(prefix.begin(), cls);
      suffix.push_back(sep);
    } else if (type == "TemplateProcessing") {
      const json* single = member(value, "single");
      if (!single || !single->is_array()) bad(path + ".single", "expected an array");
      const json* specials = member(value, "special_tokens");
      std::vector<std::int32_t> before, after;
      bool seen_sequence = false;
      for (std::size_t i = 0; i < single->size(); ++i) {
        const std::string where = path + ".single[" + std::to_string(i) + "]";
        const json& piece = (*single)[i];
        if (const json* sequence = member(piece, "Sequence")) {
          const json* id = member(*sequence, "id");
          if (!id || *id != "A" || seen_sequence) bad(where, "only one sequence, A, is supported");
          seen_sequence = true;
        } else if (const json* special = member(piece, "SpecialToken")) {
          const json* name = member(*special, "id");
          if (!name || !name->is_string()) bad(where, "expected {\"SpecialToken\": {\"id\": ...}}");
          const json* entry =
              specials ? member(*specials, name->get_ref<const std::string&>().c_str()) : nullptr;
          const json* ids = entry ? member(*entry, "ids") : nullptr;
          if (!ids || !ids->is_array()) {
            bad(where, "special token " + shown(*name) + " is not in " + path + ".special_tokens");
          }
          for (std::size_t k = 0; k < ids->size(); ++k) {
            (seen_sequence ? after : before)
                .push_back(checked_id(
                    (*ids)[k], path + ".special_tokens." + name->get<std::string>() + ".ids"));
          }
        } else {
          bad(where, "expected a Sequence or a SpecialToken, found " + shown(piece));
        }
      }
      if (!seen_sequence) bad(path + ".single", "has no sequence A");
      prefix.insert(prefix.begin(), before.begin(), before.end());
      suffix.insert(suffix.end(), after.begin(), after.end());
    } else {
      unsupported("post_processor", value.at("type"), path);
    }
  }

  void decoder(const json& value, const std::string& path) {
    if (value.is_null()) return;
    impl_.has_decoder = true;
    const std::string type = type_of(value, path);
    DecoderStep d{};
    if (type == "Sequence") {
      const json* list = member(value, "decoders");
      if (!list || !list->is_array()) bad(path + ".decoders", "expected an array");
      for (std::size_t i = 0; i < list->size(); ++i) {
        decoder((*list)[i], path + ".decoders[" + std::to_string(i) + "]");
      }
      return;
    } else if (type == "ByteLevel") {
      d.kind = DecoderKind::kByteLevel;
    } else if (type == "Replace") {
      d.kind = DecoderKind::kReplace;
      const json* p = member(value, "pattern");
      const json* s = p ? member(*p, "String") : nullptr;
      if (!s || !s->is_string()) bad(path + ".pattern", "only {\"String\": ...} is supported");
      d.pattern = s->get<std::string>();
      d.content = string(value, "content", path);
    } else if (type == "ByteFallback") {
      d.kind = DecoderKind::kByteFallback;
    } else if (type == "Fuse") {
      d.kind = DecoderKind::kFuse;
    } else if (type == "Strip") {
      d.kind = DecoderKind::kStrip;
      d.content = one_character(value, "content", path, " ");
      d.start = count(value, "start", 0, path);
      d.stop = count(value, "stop", 0, path);
    } else if (type == "Metaspace") {
      d.kind = DecoderKind::kMetaspace;
      d.content = one_character(value, "replacement", path, "\xE2\x96\x81");
      if (const json* scheme = member(value, "prepend_scheme"); scheme && scheme->is_string()) {
        d.prepend = *scheme != "never";
      } else {
        d.prepend = boolean(value, "add_prefix_space", true, path);
      }
    } else if (type == "WordPiece") {
      d.kind = DecoderKind::kWordPiece;
      d.content = string(value, "prefix", path, "##");
      d.cleanup = boolean(value, "cleanup", true, path);
    } else if (type == "BPEDecoder") {
      d.kind = DecoderKind::kBpe;
      d.content = string(value, "suffix", path, "</w>");
    } else {
      unsupported("decoder", value.at("type"), path);
    }
    impl_.decoders.push_back(std::move(d));
  }

  bool byte_level() const { return byte_level_; }

  static std::shared_ptr<const detail::Regex> gpt2_regex() {
    static const auto regex = std::make_shared<const detail::Regex>(detail::kGpt2Pattern);
    return regex;
  }

 private:
  std::string_view file_;
  Tokenizer::Impl& impl_;
  bool byte_level_ = false;
};

// The text one token stands for on its own, from the decoders that work token by token
// (SentencePiece's "▁" as a space, "<0xE6>" as that byte, WordPiece's "##" dropped).
std::string token_text(const Tokenizer::Impl& impl, const std::string& token) {
  std::string text = token;
  for (const DecoderStep& step : impl.decoders) {
    switch (step.kind) {
      case DecoderKind::kReplace:
      case DecoderKind::kMetaspace: {
        const std::string& from = step.kind == DecoderKind::kReplace ? step.pattern : step.content;
        const std::string to = step.kind == DecoderKind::kReplace ? step.content : " ";
        if (from.empty()) break;
        std::string out;
        for (std::size_t pos = 0;;) {
          const std::size_t hit = text.find(from, pos);
          out.append(text, pos, hit == text.npos ? text.npos : hit - pos);
          if (hit == text.npos) break;
          out += to;
          pos = hit + from.size();
        }
        text = std::move(out);
        break;
      }
      case DecoderKind::kByteFallback:
        if (text.size() == 6 && text.starts_with("<0x") && text.back() == '>' &&
            std::isxdigit(static_cast<unsigned char>(text[3])) &&
            std::isxdigit(static_cast<unsigned char>(text[4]))) {
          text = std::string(1, char(std::stoi(text.substr(3, 2), nullptr, 16)));
        }
        break;
      case DecoderKind::kWordPiece:
        if (text.starts_with(step.content)) text.erase(0, step.content.size());
        break;
      case DecoderKind::kBpe:
        if (!step.content.empty() && text.ends_with(step.content)) {
          text.resize(text.size() - step.content.size());
        }
        break;
      default:
        break;
    }
  }
  return text;
}

struct ModelOptions {
  bool word_piece = false;
  std::string unk_token;  // empty: none
  bool byte_level = true;
};

// Checks and assembles the vocabulary, merges and added tokens; the names are only for messages.
void build_vocabulary(Tokenizer::Impl& impl, std::vector<VocabEntry> vocab,
                      std::string_view vocab_file, const std::vector<MergeEntry>& merges,
                      std::string_view merges_file, std::vector<RawAdded> added,
                      std::string_view added_file) {
  if (vocab.empty()) fail(vocab_file, "the vocabulary is empty");
  const std::size_t model_count = vocab.size();

  // Added tokens are part of the vocabulary; those not already in it take the next ids.
  // Reserved up front so that push_back below never moves the strings vocab_id views.
  vocab.reserve(vocab.size() + added.size());
  std::unordered_map<std::string_view, std::int64_t> vocab_id;
  vocab_id.reserve(vocab.size() + added.size());
  for (const VocabEntry& entry : vocab) {
    if (!vocab_id.emplace(entry.token, entry.id).second) {
      fail(vocab_file, "token " + quote_for_message(entry.token) + " appears twice");
    }
  }
  std::unordered_map<std::string_view, std::size_t> added_index;
  for (std::size_t i = 0; i < added.size(); ++i) {
    const RawAdded& token = added[i];
    if (token.token.content.empty()) fail(added_file, "an added token has empty content");
    const auto it = vocab_id.find(token.token.content);
    if (it != vocab_id.end()) {
      if (it->second != token.id) {
        fail(added_file, "added token " + quote_for_message(token.token.content) + " has id " +
                             std::to_string(token.id) + " but the vocabulary gives it " +
                             std::to_string(it->second));
      }
    } else {
      vocab.push_back({token.token.content, token.id});
      vocab_id.emplace(vocab.back().token, token.id);
    }
  }
  vocab_id.clear();  // its keys may point into moved strings below

  // Ids may leave a few numbers unused (GPT-4o's file skips 200000..200017), but not so many
  // that a hostile file could make the tables huge.
  constexpr std::int64_t kMaxUnused = 65536;
  std::int64_t max_id = -1;
  for (std::size_t k = 0; k < vocab.size(); ++k) {
    const std::int64_t id = vocab[k].id;
    if (id >= 0 && id < std::int64_t(vocab.size()) + kMaxUnused) max_id = std::max(max_id, id);
  }
  const std::size_t count = std::max(vocab.size(), std::size_t(max_id + 1));
  if (count > std::size_t(INT32_MAX)) fail(vocab_file, "too many tokens");
  impl.token_strings.assign(count, {});
  impl.token_bytes.assign(count, {});
  impl.token_length.assign(count, 0);
  impl.is_added.assign(count, false);
  std::vector<bool> seen(count, false);
  std::unordered_set<std::string> added_set;
  std::unordered_set<std::string> special_set;
  for (const RawAdded& token : added) {
    added_set.insert(token.token.content);
    if (token.token.special) special_set.insert(token.token.content);
  }
  for (std::size_t k = 0; k < vocab.size(); ++k) {
    VocabEntry& entry = vocab[k];
    const bool from_added = k >= model_count || added_set.contains(entry.token);
    if (entry.id < 0 || std::uint64_t(entry.id) >= count) {
      if (k < model_count) {
        fail(vocab_file, "token " + quote_for_message(entry.token) + " has id " +
                             std::to_string(entry.id) + ", outside 0.." +
                             std::to_string(count - 1) + " (ids must number the " +
                             std::to_string(count) + " tokens, leaving at most " +
                             std::to_string(kMaxUnused) + " unused)");
      }
      fail(added_file,
           "added token " + quote_for_message(entry.token) + " has id " + std::to_string(entry.id) +
               ", outside 0.." + std::to_string(vocab.size() + kMaxUnused - 1) +
               " (added tokens may leave at most " + std::to_string(kMaxUnused) + " ids unused)");
    }
    const auto id = std::size_t(entry.id);
    if (seen[id]) {
      fail(k >= model_count ? added_file : vocab_file,
           "id " + std::to_string(id) + " is given to both " +
               quote_for_message(impl.token_strings[id]) + " and " +
               quote_for_message(entry.token));
    }
    seen[id] = true;
    if (entry.token.empty()) fail(vocab_file, "token with id " + std::to_string(id) + " is empty");
    std::string bytes;
    if (from_added) {
      // Added tokens are matched literally. A special one shows as it is written; a normal one
      // as the decoder would write it (Gemma's "▁▁" is two spaces).
      impl.is_added[id] = true;
      if (special_set.contains(entry.token)) {
        bytes = entry.token;
      } else if (impl.byte_level) {
        if (!detail::symbols_to_bytes(entry.token, bytes)) bytes = entry.token;
      } else {
        bytes = token_text(impl, entry.token);
      }
    } else if (!impl.byte_level) {
      bytes = token_text(impl, entry.token);
    } else if (!detail::symbols_to_bytes(entry.token, bytes)) {
      fail(vocab_file, "token " + quote_for_message(entry.token) + " (id " + std::to_string(id) +
                           ") is not in GPT-2 byte-level form");
    }
    impl.token_length[id] = std::uint32_t(bytes.size());
    impl.token_bytes[id] = std::move(bytes);
    impl.token_strings[id] = std::move(entry.token);
    if (k < model_count) {
      if (impl.byte_level) {
        if (impl.ignore_merges) impl.bytes_vocab.emplace(impl.token_bytes[id], std::int32_t(id));
      } else {
        impl.vocab.emplace(impl.token_strings[id], std::int32_t(id));
      }
    }
  }

  std::unordered_map<std::string_view, std::int32_t> id_of;
  id_of.reserve(count);
  for (std::size_t id = 0; id < count; ++id) {
    id_of.emplace(impl.token_strings[id], std::int32_t(id));
  }
  impl.byte_token.fill(-1);
  impl.fallback_token.fill(-1);
  if (impl.byte_level) {
    const auto& symbols = detail::byte_to_symbol();
    for (int byte = 0; byte < 256; ++byte) {
      const auto it = id_of.find(symbols[byte]);
      if (it == id_of.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", byte);
        fail(vocab_file, std::string("no token for byte ") + hex + " (" +
                             quote_for_message(symbols[byte]) +
                             "); a byte-level vocabulary needs all 256 bytes");
      }
      impl.byte_token[byte] = it->second;
    }
  }
  if (impl.byte_fallback) {
    for (int byte = 0; byte < 256; ++byte) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", byte);
      if (const auto it = impl.vocab.find(std::string_view(name)); it != impl.vocab.end()) {
        impl.fallback_token[byte] = it->second;
      }
    }
  }

  if (merges.size() >= detail::MergeTable::kMaxMerges) {
    fail(merges_file, "too many merges (" + std::to_string(merges.size()) + ", at most " +
                          std::to_string(detail::MergeTable::kMaxMerges - 1) + ")");
  }
  impl.merges.reserve(merges.size());
  std::string merged;
  const std::string& prefix = impl.continuing_subword_prefix;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const MergeEntry& merge = merges[rank];
    const auto left = id_of.find(merge.left);
    const auto right = id_of.find(merge.right);
    for (const auto& [it, token] : {std::pair{left, &merge.left}, std::pair{right, &merge.right}}) {
      if (it == id_of.end()) {
        fail(merges_file,
             merge.where + ": token " + quote_for_message(*token) + " is not in the vocabulary");
      }
    }
    merged = merge.left;
    if (!prefix.empty() && merge.right.starts_with(prefix)) {
      merged.append(merge.right, prefix.size());
    } else {
      merged += merge.right;
    }
    const auto result = id_of.find(merged);
    if (result == id_of.end()) {
      fail(merges_file, merge.where + ": merged token " + quote_for_message(merged) +
                            " is not in the vocabulary");
    }
    impl.merges.insert(left->second, right->second,
                       {std::uint32_t(rank), std::int32_t(result->second)});
  }

  for (RawAdded& token : added) {
    token.token.id = std::int32_t(token.id);
    impl.special_tokens.push_back({token.token.content, token.token.id});
    impl.added.push_back(std::move(token.token));
  }
}

// The pattern a normalized added token is matched with: its content through the normalizers.
std::string normalized_content(const Tokenizer::Impl& impl, const std::string& content) {
  detail::Aligned text;
  text.text = content;
  for (const detail::Normalizer& n : impl.normalizers) text = n.apply(std::move(text));
  return std::string(text.text);
}

void build_added_matchers(Tokenizer::Impl& impl) {
  std::vector<std::size_t> raw_index, normalized_index;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (std::size_t i = 0; i < impl.added.size(); ++i) {
    const detail::AddedToken& token = impl.added[i];
    if (token.normalized && !impl.normalizers.empty()) {
      normalized_index.push_back(i);
      normalized_patterns.push_back(normalized_content(impl, token.content));
    } else {
      raw_index.push_back(i);
      raw_patterns.push_back(token.content);
    }
  }
  impl.added_raw.build(&impl.added, std::move(raw_index), std::move(raw_patterns));
  impl.added_normalized.build(&impl.added, std::move(normalized_index),
                              std::move(normalized_patterns));
}

// transformers rebuilds the post-processor of Llama/Gemma-style tokenizers from
// tokenizer_config.json's add_bos_token / add_eos_token (bos? $A eos?); so does tokmap, for
// every tokenizer whose config sets either.
void apply_config(Tokenizer::Impl& impl, std::string_view config_text, std::string_view name) {
  if (config_text.empty()) return;
  json config;
  try {
    config = json::parse(config_text.begin(), config_text.end());
  } catch (const json::exception&) {
    fail(name, "not valid JSON");
  }
  if (!config.is_object()) fail(name, "expected a JSON object");
  const json* add_bos = member(config, "add_bos_token");
  const json* add_eos = member(config, "add_eos_token");
  if ((!add_bos || add_bos->is_null()) && (!add_eos || add_eos->is_null())) return;
  const auto flag = [&](const json* value, const char* key) {
    if (!value || value->is_null()) return false;
    if (!value->is_boolean()) fail(name, std::string(key) + " must be true or false");
    return value->get<bool>();
  };
  const auto token_id = [&](const char* key) {
    const json* token = member(config, key);
    std::string content;
    if (token && token->is_string()) {
      content = token->get<std::string>();
    } else if (token && token->is_object() && member(*token, "content") &&
               member(*token, "content")->is_string()) {
      content = member(*token, "content")->get<std::string>();
    } else {
      fail(name, std::string("add_") + key + " is true but " + key + " is not a token");
    }
    for (std::size_t id = 0; id < impl.token_strings.size(); ++id) {
      if (impl.token_strings[id] == content) return std::int32_t(id);
    }
    fail(name, std::string(key) + " " + quote_for_message(content) + " is not in the vocabulary");
  };
  impl.prefix_ids.clear();
  impl.suffix_ids.clear();
  if (flag(add_bos, "add_bos_token")) impl.prefix_ids.push_back(token_id("bos_token"));
  if (flag(add_eos, "add_eos_token")) impl.suffix_ids.push_back(token_id("eos_token"));
}

std::string read_optional(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) return {};
  const io::MappedFile file(path);
  return std::string(file.text());
}

}  // namespace

Tokenizer::Impl::Impl() : instance_id(next_instance_id()) {}

void Tokenizer::Impl::check_id(std::int32_t id) const {
  if (id < 0 || id >= id_count()) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                std::to_string(id_count() - 1) + ")");
  }
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_vocab_merges_text(std::string_view vocab_json_text,
                                            std::string_view merges_text,
                                            std::string_view vocab_name,
                                            std::string_view merges_name) {
  BulkContents bulk;
  const json vocab = parse_json(vocab_json_text, vocab_name, BulkPaths{}, bulk);
  std::vector<VocabEntry> entries =
      read_vocab_object(vocab, std::move(bulk.vocab_members), vocab_name, "the vocabulary");
  const std::vector<MergeEntry> merges = read_merges_text(merges_text, merges_name);
  // GPT-2's vocab.json has "<|endoftext|>" as its last entry; it must be matched as a special
  // token even though no tokenizer.json declares it.
  std::vector<RawAdded> special;
  for (const VocabEntry& entry : entries) {
    if (entry.token == "<|endoftext|>") {
      detail::AddedToken token;
      token.content = entry.token;
      token.special = true;
      special.push_back({token, entry.id});
    }
  }
  auto impl = std::make_shared<Impl>();
  impl->name = vocab_name;
  detail::PreTokenizer byte_level{};
  byte_level.kind = detail::PreTokenizerKind::kByteLevel;
  byte_level.pattern = PipelineReader::gpt2_regex();
  impl->pre_tokenizers.push_back(byte_level);
  DecoderStep byte_level_decoder{};
  byte_level_decoder.kind = DecoderKind::kByteLevel;
  impl->decoders.push_back(byte_level_decoder);
  impl->has_decoder = true;
  build_vocabulary(*impl, std::move(entries), vocab_name, merges, merges_name, std::move(special),
                   vocab_name);
  build_added_matchers(*impl);
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_tokenizer_json_text(std::string_view text, std::string_view name,
                                              std::string_view config_text,
                                              std::string_view config_name) {
  BulkContents bulk;
  const json root =
      parse_json(text, name, BulkPaths{{"model", "vocab"}, {"model", "merges"}}, bulk);
  if (!root.is_object())
    fail(name, "expected a JSON object, found " + std::string(type_name(root)));
  const json* model = member(root, "model");
  if (!model || !model->is_object()) fail(name, "no \"model\" object");

  auto impl = std::make_shared<Impl>();
  impl->name = name;
  PipelineReader reader(name, *impl);
  if (const json* n = member(root, "normalizer")) reader.normalizer(*n, "normalizer");
  if (const json* p = member(root, "pre_tokenizer")) reader.pre_tokenizer(*p, "pre_tokenizer");
  if (const json* d = member(root, "decoder")) reader.decoder(*d, "decoder");

  std::string type = "BPE";
  if (const json* t = member(*model, "type"); t && !t->is_null()) {
    if (!t->is_string() || (*t != "BPE" && *t != "WordPiece")) {
      reader.unsupported("model", *t, "model");
    }
    type = t->get<std::string>();
  }
  impl->model = type == "WordPiece" ? ModelKind::kWordPiece : ModelKind::kBpe;
  impl->byte_level = impl->model == ModelKind::kBpe && reader.byte_level();
  if (impl->model == ModelKind::kWordPiece && reader.byte_level()) {
    fail(name, "a ByteLevel pre-tokenizer with a WordPiece model is not supported");
  }
  std::string unk_token;
  if (const json* unk = member(*model, "unk_token"); unk && !unk->is_null()) {
    if (!unk->is_string()) fail(name, "model.unk_token must be a string");
    unk_token = unk->get<std::string>();
  }
  const auto affix = [&](const char* key) {
    const json* value = member(*model, key);
    if (!value || value->is_null()) return std::string();
    if (!value->is_string()) fail(name, std::string("model.") + key + " must be a string");
    return value->get<std::string>();
  };
  impl->continuing_subword_prefix = affix("continuing_subword_prefix");
  std::vector<MergeEntry> merges;
  if (impl->model == ModelKind::kBpe) {
    impl->end_of_word_suffix = affix("end_of_word_suffix");
    impl->fuse_unk = reader.boolean(*model, "fuse_unk", false, "model");
    impl->byte_fallback = reader.boolean(*model, "byte_fallback", false, "model");
    impl->ignore_merges = reader.boolean(*model, "ignore_merges", false, "model");
    if (const json* dropout = member(*model, "dropout");
        dropout && !dropout->is_null() && !(dropout->is_number() && dropout->get<double>() == 0)) {
      fail(name, "model.dropout " + shown(*dropout) + " is not supported (it makes BPE random)");
    }
    if (impl->byte_level &&
        (!impl->continuing_subword_prefix.empty() || !impl->end_of_word_suffix.empty())) {
      fail(name,
           "model.continuing_subword_prefix / end_of_word_suffix with a ByteLevel "
           "pre-tokenizer are not supported");
    }
    const json* merges_json = member(*model, "merges");
    if (!merges_json) fail(name, "model.merges is missing");
    merges = read_merges_array(*merges_json, std::move(bulk.merge_elements), name);
  } else {
    if (impl->continuing_subword_prefix.empty() && !member(*model, "continuing_subword_prefix")) {
      impl->continuing_subword_prefix = "##";
    }
    impl->max_input_chars_per_word = reader.count(*model, "max_input_chars_per_word", 100, "model");
    if (unk_token.empty()) fail(name, "model.unk_token: a WordPiece model needs one");
  }
  const json* vocab = member(*model, "vocab");
  if (!vocab) fail(name, "model.vocab is missing");
  std::vector<VocabEntry> entries =
      read_vocab_object(*vocab, std::move(bulk.vocab_members), name, "model.vocab");

  std::vector<RawAdded> added;
  if (const json* list = member(root, "added_tokens"); list && !list->is_null()) {
    if (!list->is_array()) fail(name, "added_tokens must be an array");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json& token = (*list)[i];
      const json* id = member(token, "id");
      const json* content = member(token, "content");
      if (!id || !id->is_number_integer() || !content || !content->is_string()) {
        fail(name, "each added token needs an integer \"id\" and a string \"content\", found " +
                       quote_for_message(token.dump(-1, ' ', true), 60));
      }
      const std::int64_t value =
          id->is_number_unsigned() && id->get<std::uint64_t>() > std::uint64_t(INT64_MAX)
              ? INT64_MAX
              : id->get<std::int64_t>();
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      detail::AddedToken parsed;
      parsed.content = content->get<std::string>();
      parsed.special = reader.boolean(token, "special", false, path);
      parsed.lstrip = reader.boolean(token, "lstrip", false, path);
      parsed.rstrip = reader.boolean(token, "rstrip", false, path);
      parsed.single_word = reader.boolean(token, "single_word", false, path);
      parsed.normalized = reader.boolean(token, "normalized", !parsed.special, path);
      added.push_back({std::move(parsed), value});
    }
  }
  build_vocabulary(*impl, std::move(entries), name, merges, name, std::move(added), name);
  if (!unk_token.empty()) {
    const auto it = std::find(impl->token_strings.begin(), impl->token_strings.end(), unk_token);
    if (it == impl->token_strings.end()) {
      fail(name, "model.unk_token " + quote_for_message(unk_token) + " is not in the vocabulary");
    }
    impl->unk_id = std::int32_t(it - impl->token_strings.begin());
  }
  if (const json* post = member(root, "post_processor")) {
    reader.post_processor(*post, "post_processor", impl->prefix_ids, impl->suffix_ids);
  }
  apply_config(*impl, config_text, config_name);
  build_added_matchers(*impl);
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_vocab_merges(const std::filesystem::path& vocab_json,
                                       const std::filesystem::path& merges_txt) {
  const io::MappedFile vocab(vocab_json);
  const io::MappedFile merges(merges_txt);
  return from_vocab_merges_text(vocab.text(), merges.text(), vocab_json.string(),
                                merges_txt.string());
}

Tokenizer Tokenizer::from_tokenizer_json(const std::filesystem::path& tokenizer_json) {
  const io::MappedFile file(tokenizer_json);
  const std::filesystem::path config = tokenizer_json.parent_path() / "tokenizer_config.json";
  return from_tokenizer_json_text(file.text(), tokenizer_json.string(), read_optional(config),
                                  config.string());
}

Tokenizer Tokenizer::from_path(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return from_folder(path);
  if (!std::filesystem::exists(path, error)) {
    throw Error(path.string() +
                ": no such file or folder (expected a tokenizer.json or a folder "
                "holding one)");
  }
  return from_tokenizer_json(path);
}

Tokenizer Tokenizer::from_folder(const std::filesystem::path& folder) {
  std::error_code error;
  if (!std::filesystem::is_directory(folder, error)) {
    throw Error(folder.string() + ": not a folder (looked for a tokenizer in it)");
  }
  const auto tokenizer_json = folder / "tokenizer.json";
  const auto vocab_json = folder / "vocab.json";
  const auto merges_txt = folder / "merges.txt";
  if (std::filesystem::exists(tokenizer_json, error)) return from_tokenizer_json(tokenizer_json);
  const bool has_vocab = std::filesystem::exists(vocab_json, error);
  const bool has_merges = std::filesystem::exists(merges_txt, error);
  if (has_vocab && has_merges) return from_vocab_merges(vocab_json, merges_txt);
  std::string found = has_vocab    ? " (found vocab.json but not merges.txt)"
                      : has_merges ? " (found merges.txt but not vocab.json)"
                                   : "";
  throw Error(folder.string() +
              ": no tokenizer: looked for tokenizer.json, or vocab.json + "
              "merges.txt" +
              found);
}

}  // namespace tokmap::tokenizer
