// Loading a tokenizer from vocab.json + merges.txt or from a Hugging Face tokenizer.json.
// Every input is untrusted: anything unexpected becomes a one-line tokmap::Error naming the file
// and what is wrong, never a crash or a silently different tokenizer.
#include <algorithm>
#include <atomic>
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

struct AddedToken {
  std::string content;
  std::int64_t id;
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

// Checks and assembles everything; the names are only for messages.
std::shared_ptr<const Tokenizer::Impl> build(std::vector<VocabEntry> vocab,
                                             std::string_view vocab_file,
                                             const std::vector<MergeEntry>& merges,
                                             std::string_view merges_file,
                                             std::vector<AddedToken> added,
                                             std::string_view added_file) {
  auto impl = std::make_shared<Tokenizer::Impl>();
  if (vocab.empty()) fail(vocab_file, "the vocabulary is empty");

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
  std::vector<std::string> added_content;
  for (const AddedToken& token : added) {
    if (token.content.empty()) fail(added_file, "an added token has empty content");
    const auto it = vocab_id.find(token.content);
    if (it != vocab_id.end()) {
      if (it->second != token.id) {
        fail(added_file, "added token " + quote_for_message(token.content) + " has id " +
                             std::to_string(token.id) + " but the vocabulary gives it " +
                             std::to_string(it->second));
      }
    } else {
      vocab.push_back({token.content, token.id});
      vocab_id.emplace(vocab.back().token, token.id);
    }
    added_content.push_back(token.content);
  }
  vocab_id.clear();  // its keys may point into moved strings below

  const std::size_t count = vocab.size();
  if (count > std::size_t(INT32_MAX)) fail(vocab_file, "too many tokens");
  impl->token_strings.assign(count, {});
  impl->token_bytes.assign(count, {});
  impl->token_length.assign(count, 0);
  std::vector<bool> seen(count, false);
  // A set, not a scan: a hostile file may list tens of thousands of added tokens.
  const std::unordered_set<std::string_view> added_set(added_content.begin(), added_content.end());
  const auto is_added = [&](std::string_view token) { return added_set.contains(token); };
  for (VocabEntry& entry : vocab) {
    if (entry.id < 0 || std::uint64_t(entry.id) >= count) {
      fail(vocab_file, "token " + quote_for_message(entry.token) + " has id " +
                           std::to_string(entry.id) + ", outside 0.." + std::to_string(count - 1) +
                           " (ids must number the " + std::to_string(count) + " tokens)");
    }
    const auto id = std::size_t(entry.id);
    if (seen[id]) {
      fail(vocab_file, "id " + std::to_string(id) + " is given to both " +
                           quote_for_message(impl->token_strings[id]) + " and " +
                           quote_for_message(entry.token));
    }
    seen[id] = true;
    if (entry.token.empty()) fail(vocab_file, "token with id " + std::to_string(id) + " is empty");
    std::string bytes;
    if (is_added(entry.token)) {
      bytes = entry.token;  // added tokens are matched literally, not in byte-level form
    } else if (!detail::symbols_to_bytes(entry.token, bytes)) {
      fail(vocab_file, "token " + quote_for_message(entry.token) + " (id " + std::to_string(id) +
                           ") is not in GPT-2 byte-level form");
    }
    impl->token_length[id] = std::uint32_t(bytes.size());
    impl->token_bytes[id] = std::move(bytes);
    impl->token_strings[id] = std::move(entry.token);
  }

  std::unordered_map<std::string_view, std::int32_t> id_of;
  id_of.reserve(count);
  for (std::size_t id = 0; id < count; ++id) {
    id_of.emplace(impl->token_strings[id], std::int32_t(id));
  }
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
    impl->byte_token[byte] = it->second;
  }

  if (merges.size() >= detail::MergeTable::kMaxMerges) {
    fail(merges_file, "too many merges (" + std::to_string(merges.size()) + ", at most " +
                          std::to_string(detail::MergeTable::kMaxMerges - 1) + ")");
  }
  impl->merges.reserve(merges.size());
  std::string merged;
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
    merged = merge.left + merge.right;
    const auto result = id_of.find(merged);
    if (result == id_of.end()) {
      fail(merges_file, merge.where + ": merged token " + quote_for_message(merged) +
                            " is not in the vocabulary");
    }
    impl->merges.insert(left->second, right->second,
                        {std::uint32_t(rank), std::int32_t(result->second)});
  }

  for (const std::string& content : added_content) {
    impl->special_tokens.push_back({content, id_of.at(content)});
  }
  return impl;
}

// GPT-2's vocab.json has "<|endoftext|>" as its last entry; it must be matched as a special
// token even though no tokenizer.json declares it.
std::vector<AddedToken> implicit_special_tokens(const std::vector<VocabEntry>& vocab) {
  std::vector<AddedToken> special;
  for (const VocabEntry& entry : vocab) {
    if (entry.token == "<|endoftext|>") special.push_back({entry.token, entry.id});
  }
  return special;
}

const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

void check_supported(const json& root, std::string_view file) {
  const json& model = root.at("model");
  if (const json* type = member(model, "type"); type && *type != "BPE") {
    fail(file, "model type " + quote_for_message(type->dump(-1, ' ', true)) +
                   " is not supported; only byte-level BPE (GPT-2 style) is");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const json* value = member(model, key);
        value && !value->is_null() &&
        !(value->is_string() && value->get_ref<const std::string&>().empty())) {
      fail(file, std::string("model.") + key + " is not supported");
    }
  }
  if (const json* normalizer = member(root, "normalizer"); normalizer && !normalizer->is_null()) {
    fail(file, "a normalizer is not supported (GPT-2 has none), found " +
                   quote_for_message(normalizer->dump(-1, ' ', true), 60));
  }
  const json* pre = member(root, "pre_tokenizer");
  const bool byte_level = pre && pre->is_object() && pre->value("type", json()) == "ByteLevel";
  if (!byte_level) {
    fail(file, "pre_tokenizer must be ByteLevel (GPT-2 style), found " +
                   quote_for_message(pre ? pre->dump(-1, ' ', true) : "nothing", 60));
  }
  if (pre->value("add_prefix_space", json(false)) != false ||
      pre->value("use_regex", json(true)) != true) {
    fail(file, "pre_tokenizer ByteLevel must have add_prefix_space false and use_regex true");
  }
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
  std::vector<AddedToken> special = implicit_special_tokens(entries);
  return Tokenizer(
      build(std::move(entries), vocab_name, merges, merges_name, std::move(special), vocab_name));
}

Tokenizer Tokenizer::from_tokenizer_json_text(std::string_view text, std::string_view name) {
  BulkContents bulk;
  const json root =
      parse_json(text, name, BulkPaths{{"model", "vocab"}, {"model", "merges"}}, bulk);
  if (!root.is_object())
    fail(name, "expected a JSON object, found " + std::string(type_name(root)));
  const json* model = member(root, "model");
  if (!model || !model->is_object()) fail(name, "no \"model\" object");
  check_supported(root, name);
  const json* vocab = member(*model, "vocab");
  if (!vocab) fail(name, "model.vocab is missing");
  std::vector<VocabEntry> entries =
      read_vocab_object(*vocab, std::move(bulk.vocab_members), name, "model.vocab");
  const json* merges_json = member(*model, "merges");
  if (!merges_json) fail(name, "model.merges is missing");
  const std::vector<MergeEntry> merges =
      read_merges_array(*merges_json, std::move(bulk.merge_elements), name);

  std::vector<AddedToken> added;
  if (const json* list = member(root, "added_tokens"); list && !list->is_null()) {
    if (!list->is_array()) fail(name, "added_tokens must be an array");
    for (const json& token : *list) {
      const json* id = token.is_object() ? member(token, "id") : nullptr;
      const json* content = token.is_object() ? member(token, "content") : nullptr;
      if (!id || !id->is_number_integer() || !content || !content->is_string()) {
        fail(name, "each added token needs an integer \"id\" and a string \"content\", found " +
                       quote_for_message(token.dump(-1, ' ', true), 60));
      }
      const std::int64_t value =
          id->is_number_unsigned() && id->get<std::uint64_t>() > std::uint64_t(INT64_MAX)
              ? INT64_MAX
              : id->get<std::int64_t>();
      added.push_back({content->get<std::string>(), value});
    }
  }
  return Tokenizer(build(std::move(entries), name, merges, name, std::move(added), name));
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
  return from_tokenizer_json_text(file.text(), tokenizer_json.string());
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
