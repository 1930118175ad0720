// Loaders: a tiny hand-made byte-level vocabulary, every kind of malformed file, file and folder
// handling, and random corruption (only tokmap::Error may come out).
#include <unistd.h>

#include <random>

#include "test_support.hpp"

namespace tokmap::tokenizer::test {
namespace {

using nlohmann::json;

// GPT-2's bytes_to_unicode, written independently of the library.
std::string byte_symbol(int byte) {
  const bool itself = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                      (byte >= 0xAE && byte <= 0xFF);
  int shifted = 0x100;
  for (int b = 0; b < byte; ++b) {
    const bool b_itself =
        (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (!b_itself) ++shifted;
  }
  const int cp = itself ? byte : shifted;
  std::string out;
  if (cp < 0x80) {
    out += char(cp);
  } else {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  }
  return out;
}

// 256 byte tokens (id = byte) plus a few merges.
json tiny_vocab() {
  json vocab = json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[byte_symbol(byte)] = byte;
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["Ġw"] = 259;
  vocab["<|endoftext|>"] = 260;
  return vocab;
}
const std::string kTinyMerges = "#version: 0.2\nh e\nl l\nhe ll\nĠ w\n";

json tiny_tokenizer_json() {
  return json{
      {"version", "1.0"},
      {"added_tokens",
       json::array({{{"id", 260}, {"content", "<|endoftext|>"}, {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", tiny_vocab()},
        {"merges", json::array({json::array({"h", "e"}), json::array({"l", "l"}),
                                json::array({"he", "ll"}), json::array({"Ġ", "w"})})}}}};
}

std::vector<std::string> token_strings(const Tokenizer& tokenizer, std::string_view text) {
  std::vector<std::string> tokens;
  for (const std::int32_t id : tokenizer.encode(text).ids) {
    tokens.emplace_back(tokenizer.token_string(id));
  }
  return tokens;
}

const std::vector<std::string> kHelloWorld = {"hell", "o", "Ġw", "o",
                                              "r",    "l", "d",  "<|endoftext|>"};

TEST(Load, TinyVocabularyFromVocabAndMerges) {
  const Tokenizer tokenizer = Tokenizer::from_vocab_merges_text(tiny_vocab().dump(), kTinyMerges);
  EXPECT_EQ(tokenizer.vocab_size(), 261u);
  EXPECT_EQ(token_strings(tokenizer, "hello world<|endoftext|>"), kHelloWorld);
  EXPECT_EQ(tokenizer.special_token_id("<|endoftext|>"), 260);
}

TEST(Load, TinyVocabularyFromTokenizerJsonInBothMergeFormats) {
  json root = tiny_tokenizer_json();
  EXPECT_EQ(
      token_strings(Tokenizer::from_tokenizer_json_text(root.dump()), "hello world<|endoftext|>"),
      kHelloWorld);
  root["model"]["merges"] = json::array({"h e", "l l", "he ll", "Ġ w"});
  EXPECT_EQ(
      token_strings(Tokenizer::from_tokenizer_json_text(root.dump()), "hello world<|endoftext|>"),
      kHelloWorld);
}

TEST(Load, MergesTolerateCrlfAndMissingVersionLine) {
  const Tokenizer tokenizer =
      Tokenizer::from_vocab_merges_text(tiny_vocab().dump(), "h e\r\nl l\r\nhe ll\r\nĠ w");
  EXPECT_EQ(token_strings(tokenizer, "hello world<|endoftext|>"), kHelloWorld);
}

// Runs `load`, expects a one-line tokmap::Error containing every `parts`.
template <typename Load>
void expect_error(Load load, std::initializer_list<std::string_view> parts) {
  try {
    load();
    ADD_FAILURE() << "expected an error containing " << *parts.begin();
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string_view part : parts) {
      EXPECT_NE(message.find(part), std::string::npos)
          << "message: " << message << "\nwanted: " << part;
    }
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

void expect_vocab_merges_error(const std::string& vocab, const std::string& merges,
                               std::initializer_list<std::string_view> parts) {
  expect_error([&] { Tokenizer::from_vocab_merges_text(vocab, merges, "v.json", "m.txt"); }, parts);
}

TEST(LoadErrors, VocabJson) {
  const std::string merges = kTinyMerges;
  expect_vocab_merges_error("", merges, {"v.json: not valid JSON"});
  expect_vocab_merges_error("{\"a\": 1,", merges, {"v.json: not valid JSON", "line 1"});
  expect_vocab_merges_error("\xff\xfe{}", merges, {"v.json: not valid JSON"});
  expect_vocab_merges_error("[1, 2]", merges, {"v.json", "must be a JSON object", "array"});
  expect_vocab_merges_error("{}", merges, {"v.json", "vocabulary is empty"});

  json vocab = tiny_vocab();
  vocab["he"] = "256";
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "\"he\"", "non-integer id"});
  vocab["he"] = json::array({256});
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "\"he\"", "non-integer id (array)"});
  vocab["he"] = {{"id", 256}};
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "\"he\"", "non-integer id (object)"});
  vocab["he"] = nullptr;
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "\"he\"", "non-integer id (null)"});
  vocab["he"] = 2.5;
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "non-integer id"});
  vocab["he"] = 99999;
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "\"he\"", "99999", "outside 0..260"});
  vocab["he"] = -1;
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "outside"});
  vocab["he"] = 18446744073709551615ull;
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "outside"});
  vocab["he"] = 257;  // same as "ll"; 256 is now unused
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "id 257 is given to both"});

  vocab = tiny_vocab();
  vocab.erase(byte_symbol('\n'));
  vocab["<|endoftext|>"] = 10;  // keeps the ids dense
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "no token for byte 0x0a (\"Ċ\")"});

  vocab = tiny_vocab();
  vocab["h中"] = 261;  // 中 is not one of the 256 byte symbols (é would be: it is byte 0xE9)
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "\"h中\"", "byte-level form"});
  // A key given twice (JSON allows it; a vocabulary must not).
  std::string twice = tiny_vocab().dump();
  twice.insert(1, "\"ll\": 261, ");
  expect_vocab_merges_error(twice, merges, {"v.json", "token \"ll\" appears twice"});

  vocab = tiny_vocab();
  vocab[""] = 261;
  expect_vocab_merges_error(vocab.dump(), merges, {"v.json", "empty"});
}

TEST(LoadErrors, MergesTxt) {
  const std::string vocab = tiny_vocab().dump();
  expect_vocab_merges_error(vocab, "#version: 0.2\nh e\nll\n",
                            {"m.txt: line 3", "two tokens", "\"ll\""});
  expect_vocab_merges_error(vocab, "h e f\n", {"m.txt: line 1", "two tokens"});
  expect_vocab_merges_error(vocab, "h  e\n", {"m.txt: line 1", "two tokens"});
  expect_vocab_merges_error(vocab, " h\n", {"m.txt: line 1", "two tokens"});
  expect_vocab_merges_error(vocab, "h e\nhe xyz\n",
                            {"m.txt: line 2", "token \"xyz\" is not in the vocabulary"});
  expect_vocab_merges_error(vocab, "h e\nl o\n",
                            {"m.txt: line 2", "merged token \"lo\" is not in the vocabulary"});
  expect_vocab_merges_error(vocab, "h e\n\xff\xfe e\n", {"m.txt: line 2", "<0xFF><0xFE>"});
  // The byte-level version line is only special on line 1.
  expect_vocab_merges_error(vocab, "h e\n#version: 0.2\n", {"m.txt: line 2"});
}

void expect_tokenizer_json_error(const json& root, std::initializer_list<std::string_view> parts) {
  const std::string text = root.dump();
  expect_error([&] { Tokenizer::from_tokenizer_json_text(text, "t.json"); }, parts);
}

TEST(LoadErrors, TokenizerJson) {
  expect_error([] { Tokenizer::from_tokenizer_json_text("{\"model\": ", "t.json"); },
               {"t.json: not valid JSON"});
  expect_tokenizer_json_error(json::array(), {"t.json", "expected a JSON object"});
  expect_tokenizer_json_error(json::object(), {"t.json", "no \"model\" object"});

  // Issue #11: WordPiece, normalizers and every pre-tokenizer of current models are supported
  // now; what is not names the component and its JSON path.
  json root = tiny_tokenizer_json();
  root["model"]["type"] = "WordPiece";
  expect_tokenizer_json_error(root, {"t.json", "ByteLevel pre-tokenizer with a WordPiece"});
  root["pre_tokenizer"] = nullptr;
  expect_tokenizer_json_error(root, {"t.json", "model.unk_token", "WordPiece model needs one"});
  root["model"]["unk_token"] = "<unk>";
  expect_tokenizer_json_error(root, {"t.json", "unk_token \"<unk>\" is not in the vocabulary"});
  root = tiny_tokenizer_json();
  root["model"]["type"] = "Unigram";
  expect_tokenizer_json_error(
      root, {"t.json", "unsupported model type \"Unigram\" at JSON path model.type"});
  root = tiny_tokenizer_json();
  root["model"]["dropout"] = 0.1;
  expect_tokenizer_json_error(root, {"t.json", "model.dropout", "not supported"});

  root = tiny_tokenizer_json();
  root["model"].erase("vocab");
  expect_tokenizer_json_error(root, {"t.json", "model.vocab is missing"});
  root = tiny_tokenizer_json();
  root["model"]["vocab"] = json::array({1, 2});
  expect_tokenizer_json_error(root, {"t.json", "model.vocab must be a JSON object"});
  root = tiny_tokenizer_json();
  root["model"].erase("merges");
  expect_tokenizer_json_error(root, {"t.json", "model.merges is missing"});
  root = tiny_tokenizer_json();
  root["model"]["merges"] = "h e";
  expect_tokenizer_json_error(root, {"t.json", "model.merges must be an array"});
  root["model"]["merges"] = json::array({json::array({"h", "e"}), 7});
  expect_tokenizer_json_error(root, {"t.json", "merge 1", "expected"});
  root["model"]["merges"] = json::array({json::object({{"h", "e"}})});
  expect_tokenizer_json_error(root, {"t.json", "merge 0", "expected"});
  root["model"]["merges"] = json::array({json::array({"h", json::array({"e"})})});
  expect_tokenizer_json_error(root, {"t.json", "merge 0", "expected"});
  root["model"]["merges"] = json::array({json::array({"h", "e", "x"})});
  expect_tokenizer_json_error(root, {"t.json", "merge 0"});
  root["model"]["merges"] = json::array({json::array({"h", "q"})});
  expect_tokenizer_json_error(root, {"t.json", "merge 0", "merged token \"hq\""});
  root["model"]["merges"] = json::array({"h e", "he zz"});
  expect_tokenizer_json_error(root, {"t.json", "merge 1", "token \"zz\""});

  root = tiny_tokenizer_json();
  root["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers", json::array({{{"type", "NFC"}}, {{"type", "Precompiled"}}})}};
  expect_tokenizer_json_error(root, {"t.json",
                                     "unsupported normalizer type \"Precompiled\" at JSON path "
                                     "normalizer.normalizers[1].type"});
  root = tiny_tokenizer_json();
  root["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", json::array({{{"type", "Digits"}}, {{"type", "UnicodeScripts"}}})}};
  expect_tokenizer_json_error(root,
                              {"t.json",
                               "unsupported pre_tokenizer type \"UnicodeScripts\" at JSON path "
                               "pre_tokenizer.pretokenizers[1].type"});
  root = tiny_tokenizer_json();
  root["post_processor"] = {{"type", "Mystery"}};
  expect_tokenizer_json_error(
      root,
      {"t.json", "unsupported post_processor type \"Mystery\" at JSON path post_processor.type"});
  root = tiny_tokenizer_json();
  root["decoder"] = {{"type", "Sequence"}, {"decoders", json::array({{{"type", "CTC"}}})}};
  expect_tokenizer_json_error(
      root, {"t.json", "unsupported decoder type \"CTC\" at JSON path decoder.decoders[0].type"});
  root = tiny_tokenizer_json();
  root["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_tokenizer_json_error(root, {"t.json", "pre_tokenizer.pattern", "malformed regex"});
  root["pre_tokenizer"]["pattern"] = {{"Regex", "a"}};
  root["pre_tokenizer"]["behavior"] = "Sideways";
  expect_tokenizer_json_error(root, {"t.json", "pre_tokenizer.behavior", "\"Sideways\""});
  root = tiny_tokenizer_json();
  root["pre_tokenizer"]["add_prefix_space"] = "yes";
  expect_tokenizer_json_error(root, {"t.json", "pre_tokenizer.add_prefix_space", "true or false"});
  root = tiny_tokenizer_json();
  root["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", "[a-"}}}, {"content", "x"}};
  expect_tokenizer_json_error(root, {"t.json", "normalizer.pattern", "malformed regex"});
  root = tiny_tokenizer_json();
  root["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {9999}}}}}}};
  expect_tokenizer_json_error(
      root, {"t.json", "post_processor.special_tokens.<s>.ids", "outside the vocabulary"});

  root = tiny_tokenizer_json();
  root["added_tokens"][0]["id"] = 5;
  expect_tokenizer_json_error(root, {"t.json", "added token \"<|endoftext|>\" has id 5", "260"});
  root = tiny_tokenizer_json();
  root["added_tokens"][0].erase("id");
  expect_tokenizer_json_error(root, {"t.json", "integer \"id\""});
  root = tiny_tokenizer_json();
  root["added_tokens"] = 3;
  expect_tokenizer_json_error(root, {"t.json", "added_tokens must be an array"});
  root = tiny_tokenizer_json();
  root["added_tokens"].push_back({{"id", 1000000}, {"content", "<|pad|>"}});
  expect_tokenizer_json_error(root,
                              {"t.json", "added token \"<|pad|>\" has id 1000000", "outside 0.."});
  root = tiny_tokenizer_json();
  root["added_tokens"].push_back({{"id", -3}, {"content", "<|pad|>"}});
  expect_tokenizer_json_error(root, {"t.json", "\"<|pad|>\" has id -3", "outside 0.."});
  root = tiny_tokenizer_json();
  root["added_tokens"].push_back({{"id", 258}, {"content", "<|pad|>"}});
  expect_tokenizer_json_error(root, {"t.json", "id 258 is given to both"});
}

TEST(Load, AddedTokenIdsMayLeaveNumbersUnused) {
  // GPT-4o's tokenizer.json numbers its vocabulary 0..199999 and <|endofprompt|> 200018.
  json root = tiny_tokenizer_json();
  root["added_tokens"].push_back({{"id", 400}, {"content", "<|pad|>"}, {"special", true}});
  const Tokenizer tokenizer = Tokenizer::from_tokenizer_json_text(root.dump());
  EXPECT_EQ(tokenizer.vocab_size(), 401u);
  EXPECT_EQ(tokenizer.encode("he<|pad|>").ids, (std::vector<std::int32_t>{256, 400}));
  EXPECT_EQ(tokenizer.token_string(300), "");
}

TEST(Load, AddedTokensOutsideTheModelVocabularyExtendIt) {
  json root = tiny_tokenizer_json();
  root["added_tokens"].push_back({{"id", 261}, {"content", "<|pad|>"}, {"special", true}});
  const Tokenizer tokenizer = Tokenizer::from_tokenizer_json_text(root.dump());
  EXPECT_EQ(tokenizer.vocab_size(), 262u);
  const Encoding encoding = tokenizer.encode("hello<|pad|>");
  EXPECT_EQ(encoding.ids.back(), 261);
  EXPECT_EQ(encoding.offsets.back(), (std::pair<std::size_t, std::size_t>{5, 12}));
  EXPECT_EQ(tokenizer.token_bytes(261), "<|pad|>");
}

class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tokmap-tok-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempFolder() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, const std::string& contents) const {
    std::ofstream(path_ / name, std::ios::binary) << contents;
  }

 private:
  std::filesystem::path path_;
};

TEST(LoadFiles, MissingFilesAndFolders) {
  const TempFolder folder;
  expect_error(
      [&] { Tokenizer::from_vocab_merges(folder.path() / "nope.json", folder.path() / "m.txt"); },
      {"nope.json", "cannot open"});
  expect_error([&] { Tokenizer::from_tokenizer_json(folder.path()); }, {"is a folder"});
  expect_error([&] { Tokenizer::from_folder(folder.path() / "absent"); },
               {"absent", "not a folder"});
  expect_error([&] { Tokenizer::from_folder(folder.path()); },
               {folder.path().string(), "looked for tokenizer.json, or vocab.json + merges.txt"});
  folder.write("vocab.json", tiny_vocab().dump());
  expect_error([&] { Tokenizer::from_folder(folder.path()); },
               {"found vocab.json but not merges.txt"});
  folder.write("merges.txt", kTinyMerges);
  EXPECT_EQ(token_strings(Tokenizer::from_folder(folder.path()), "hello world<|endoftext|>"),
            kHelloWorld);
  // tokenizer.json wins when present, and its errors name it.
  folder.write("tokenizer.json", "{oops");
  expect_error([&] { Tokenizer::from_folder(folder.path()); },
               {(folder.path() / "tokenizer.json").string(), "not valid JSON"});
}

TEST(LoadFiles, RealFilesLoadTheSameVocabulary) {
  const Tokenizer& a = gpt2_from_vocab_merges();
  const Tokenizer& b = gpt2_from_tokenizer_json();
  ASSERT_EQ(a.vocab_size(), b.vocab_size());
  for (std::int32_t id = 0; id < std::int32_t(a.vocab_size()); ++id) {
    ASSERT_EQ(a.token_string(id), b.token_string(id));
    ASSERT_EQ(a.token_bytes(id), b.token_bytes(id));
  }
}

// Random corruption of valid files: a loader either succeeds (and then encodes and decodes
// consistently) or throws tokmap::Error; never anything else. The fuzz target does this at scale.
TEST(LoadFuzz, CorruptedFilesOnlyEverThrowError) {
  std::mt19937 random(12345);
  const std::string vocab = tiny_vocab().dump();
  const std::string tokenizer_json = tiny_tokenizer_json().dump();
  const auto corrupt = [&](std::string text) {
    const int edits = 1 + int(random() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t pos = random() % text.size();
      switch (random() % 4) {
        case 0:
          text[pos] = char(random() % 256);
          break;
        case 1:
          text.erase(pos, 1 + random() % 8);
          break;
        case 2:
          text.insert(pos, text.substr(random() % text.size(), 1 + random() % 16));
          break;
        default:
          text.resize(pos);
          break;
      }
    }
    return text;
  };
  int loaded = 0;
  for (int round = 0; round < 600; ++round) {
    std::optional<Tokenizer> tokenizer;
    try {
      if (round % 3 == 0) {
        tokenizer = Tokenizer::from_tokenizer_json_text(corrupt(tokenizer_json));
      } else if (round % 3 == 1) {
        tokenizer = Tokenizer::from_vocab_merges_text(corrupt(vocab), kTinyMerges);
      } else {
        tokenizer = Tokenizer::from_vocab_merges_text(vocab, corrupt(kTinyMerges));
      }
    } catch (const Error&) {
      continue;
    }
    ++loaded;
    std::string text = corrupt("hello world, <|endoftext|> hell\xC3\xA9 llama");
    const Encoding encoding = tokenizer->encode(text, {.lossy = true});
    if (encoding.replaced_bytes == 0) {
      EXPECT_EQ(tokenizer->decode(encoding.ids), text);
    }
  }
  EXPECT_GT(loaded, 0);
}

}  // namespace
}  // namespace tokmap::tokenizer::test
