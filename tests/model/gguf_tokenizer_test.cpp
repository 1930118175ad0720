// The GGUF → tokenizer.json bridge: a GPT-2 vocabulary written as GGUF metadata (as llama.cpp's
// converter does: tokens by id, merges as "left right") tokenizes exactly as the Hugging Face
// tokenizer.json of the same vocabulary; the SentencePiece ("llama") form is checked field by
// field against what transformers' LlamaConverter writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/io.hpp"
#include "model/model.hpp"
#include "support/error_of.hpp"
#include "support/gguf_writer.hpp"
#include "tokenizer/tokenizer.hpp"

namespace tokmap::model {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
using test_support::error_of;
using test_support::GgufWriter;

const fs::path kGpt2 = fs::path(TOKMAP_MODELS_DIR) / "demo-brown-gpt2";

// GGUF metadata of the bundled GPT-2 tokenizer.
GgufWriter gpt2_writer() {
  const json vocab = json::parse(io::read_text_file(kGpt2 / "vocab.json"));
  std::vector<std::string> tokens(vocab.size());
  std::vector<std::int32_t> types(vocab.size(), 1);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    tokens.at(it.value().get<std::size_t>()) = it.key();
    if (it.key() == "<|endoftext|>") types[it.value().get<std::size_t>()] = 3;
  }
  std::vector<std::string> merges;
  const std::string text = io::read_text_file(kGpt2 / "merges.txt");
  for (std::size_t begin = 0; begin < text.size();) {
    auto end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    if (!line.empty() && !line.starts_with("#version")) merges.push_back(line);
    begin = end + 1;
  }
  GgufWriter w;
  w.string("general.architecture", "gpt2");
  w.string("tokenizer.ggml.model", "gpt2");
  w.string("tokenizer.ggml.pre", "gpt-2");
  w.strings("tokenizer.ggml.tokens", tokens);
  w.i32s("tokenizer.ggml.token_type", types);
  w.strings("tokenizer.ggml.merges", merges);
  w.u32("tokenizer.ggml.bos_token_id", 50256);
  w.u32("tokenizer.ggml.eos_token_id", 50256);
  return w;
}

std::string tokenizer_json_of(const GgufWriter& w) {
  const std::string bytes = w.bytes();
  const GgufFile file(std::as_bytes(std::span(bytes)), "t.gguf");
  return gguf_tokenizer_json(file);
}

TEST(GgufTokenizer, Gpt2VocabularyTokenizesLikeItsTokenizerJson) {
  const std::string text = tokenizer_json_of(gpt2_writer());
  const auto from_gguf = tokenizer::Tokenizer::from_tokenizer_json_text(text, "gguf");
  const auto reference = tokenizer::Tokenizer::from_folder(kGpt2);
  EXPECT_EQ(from_gguf.vocab_size(), reference.vocab_size());
  for (const char* sample :
       {"Hello world", " the quick brown fox's 123 jumps!\n\n  over", "naïve café — 東京",
        "<|endoftext|>The end", "   spaces   ", "emoji 🙂 and tabs\t\tx"}) {
    const auto a = from_gguf.encode(sample), b = reference.encode(sample);
    EXPECT_EQ(a.ids, b.ids) << sample;
    EXPECT_EQ(a.offsets, b.offsets) << sample;
    EXPECT_EQ(from_gguf.decode(a.ids), sample);
  }
  const json root = json::parse(text);
  EXPECT_EQ(root["model"]["merges"][0], json::array({"Ġ", "t"}));
  EXPECT_EQ(root["added_tokens"].size(), 1u);
  EXPECT_EQ(root["added_tokens"][0]["content"], "<|endoftext|>");
  EXPECT_EQ(root["added_tokens"][0]["special"], true);
  EXPECT_EQ(root["pre_tokenizer"]["type"], "ByteLevel");
}

TEST(GgufTokenizer, Gpt2PreTokenizersByName) {
  auto pre_of = [](const std::string& pre) {
    GgufWriter w;
    w.string("tokenizer.ggml.model", "gpt2");
    w.string("tokenizer.ggml.pre", pre);
    w.strings("tokenizer.ggml.tokens", {"a", "b", "ab"});
    w.strings("tokenizer.ggml.merges", {"a b"});
    return json::parse(tokenizer_json_of(w))["pre_tokenizer"];
  };
  const json llama3 = pre_of("llama-bpe");
  EXPECT_EQ(llama3["type"], "Sequence");
  EXPECT_EQ(llama3["pretokenizers"][0]["type"], "Split");
  EXPECT_THAT(llama3["pretokenizers"][0]["pattern"]["Regex"].get<std::string>(),
              HasSubstr(R"(\p{N}{1,3})"));
  EXPECT_EQ(llama3["pretokenizers"][1]["use_regex"], false);
  EXPECT_THAT(pre_of("qwen2")["pretokenizers"][0]["pattern"]["Regex"].get<std::string>(),
              HasSubstr(R"(|\p{N}|)"));
  EXPECT_EQ(pre_of("smollm")["pretokenizers"][0]["type"], "Digits");
  EXPECT_THAT(error_of([&] { pre_of("deepseek-coder"); }),
              HasSubstr("metadata 'tokenizer.ggml.pre' is 'deepseek-coder'; tokmap knows"));
}

// A small SentencePiece vocabulary in llama.cpp's layout.
GgufWriter llama_writer() {
  GgufWriter w;
  w.string("tokenizer.ggml.model", "llama");
  w.strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x41>", "\u2581", "t", "h", "e",
                                      "\u2581t", "he", "\u2581the", "th", "<tool>"});
  w.f32s("tokenizer.ggml.scores", {0, 0, 0, 0, -5, -6, -7, -8, -1, -2, -1.5f, -3, 0});
  w.i32s("tokenizer.ggml.token_type", {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1, 4});
  w.u32("tokenizer.ggml.bos_token_id", 1);
  w.u32("tokenizer.ggml.eos_token_id", 2);
  w.u32("tokenizer.ggml.unknown_token_id", 0);
  return w;
}

TEST(GgufTokenizer, LlamaVocabularyBecomesSentencePieceStyleBpe) {
  const std::string text = tokenizer_json_of(llama_writer());
  const json root = json::parse(text);
  const json& model = root["model"];
  EXPECT_EQ(model["type"], "BPE");
  EXPECT_EQ(model["byte_fallback"], true);
  EXPECT_EQ(model["fuse_unk"], true);
  EXPECT_EQ(model["unk_token"], "<unk>");
  EXPECT_EQ(model["vocab"].size(), 13u);
  EXPECT_EQ(model["vocab"]["\u2581the"], 10);
  // generate_merges: every split into two vocabulary pieces, by the merged piece's score.
  EXPECT_EQ(model["merges"], json::parse(R"([["▁", "t"], ["▁t", "he"], ["h", "e"], ["t", "h"]])"));
  EXPECT_EQ(root["pre_tokenizer"],
            json::parse(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
                            "split": false})"));
  EXPECT_EQ(root["normalizer"], nullptr);
  EXPECT_EQ(root["decoder"]["decoders"].size(), 4u);
  EXPECT_EQ(root["decoder"]["decoders"][1]["type"], "ByteFallback");
  EXPECT_EQ(root["decoder"]["decoders"][3],
            json::parse(R"({"type": "Strip", "content": " ", "start": 1, "stop": 0})"));
  // BOS is added by default (llama.cpp's default for SentencePiece vocabularies), EOS is not.
  const json& post = root["post_processor"];
  EXPECT_EQ(post["type"], "TemplateProcessing");
  EXPECT_EQ(post["single"][0]["SpecialToken"]["id"], "<s>");
  EXPECT_EQ(post["single"].size(), 2u);
  EXPECT_EQ(post["special_tokens"]["<s>"]["ids"], json::array({1}));
  // Unknown and control tokens are special added tokens; user-defined ones are added, not
  // special; byte tokens stay in the vocabulary.
  std::vector<std::string> added;
  for (const auto& t : root["added_tokens"]) {
    added.push_back(t["content"].get<std::string>() + (t["special"] == true ? "*" : ""));
  }
  EXPECT_EQ(added, (std::vector<std::string>{"<unk>*", "<s>*", "</s>*", "<tool>"}));

  // The tokenizer of this branch reads byte-level BPE only; once it reads any tokenizer.json
  // the same text must tokenize as SentencePiece does.
  try {
    const auto tok = tokenizer::Tokenizer::from_tokenizer_json_text(text, "gguf");
    const auto encoding = tok.encode("the the");
    EXPECT_EQ(encoding.ids, (std::vector<std::int32_t>{1, 10, 10}));
  } catch (const Error& e) {
    std::printf("[ note ] the SentencePiece form is not loadable by this tokenizer yet: %s\n",
                e.what());
  }
}

TEST(GgufTokenizer, LlamaOptionsAndBadMetadata) {
  GgufWriter w = llama_writer();
  w.boolean("tokenizer.ggml.add_space_prefix", false);
  w.boolean("tokenizer.ggml.add_bos_token", false);
  w.boolean("tokenizer.ggml.add_eos_token", true);
  const json root = json::parse(tokenizer_json_of(w));
  EXPECT_EQ(root["pre_tokenizer"]["prepend_scheme"], "never");
  EXPECT_EQ(root["decoder"]["decoders"].size(), 3u);
  EXPECT_EQ(root["post_processor"]["single"][1]["SpecialToken"]["id"], "</s>");

  GgufWriter none;
  none.string("general.architecture", "llama");
  EXPECT_THAT(error_of([&] { tokenizer_json_of(none); }),
              HasSubstr("t.gguf: metadata 'tokenizer.ggml.model' is missing or not a string"));
  GgufWriter bert;
  bert.string("tokenizer.ggml.model", "bert");
  EXPECT_THAT(error_of([&] { tokenizer_json_of(bert); }),
              HasSubstr("is 'bert'; tokmap reads GGUF vocabularies of type gpt2 and llama"));
  GgufWriter short_scores;
  short_scores.string("tokenizer.ggml.model", "llama");
  short_scores.strings("tokenizer.ggml.tokens", {"a", "b"});
  short_scores.f32s("tokenizer.ggml.scores", {0});
  EXPECT_THAT(error_of([&] { tokenizer_json_of(short_scores); }),
              HasSubstr("'tokenizer.ggml.scores' has 1 entries, tokenizer.ggml.tokens has 2"));
  GgufWriter bad_merge;
  bad_merge.string("tokenizer.ggml.model", "gpt2");
  bad_merge.strings("tokenizer.ggml.tokens", {"a", "b"});
  bad_merge.strings("tokenizer.ggml.merges", {"ab"});
  EXPECT_THAT(
      error_of([&] { tokenizer_json_of(bad_merge); }),
      HasSubstr("'tokenizer.ggml.merges' entry 0 is not two tokens separated by one space"));
  for (const std::string bad : {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf"}) {
    GgufWriter w8;
    w8.string("tokenizer.ggml.model", "gpt2");
    w8.strings("tokenizer.ggml.tokens", {"a", bad});
    w8.strings("tokenizer.ggml.merges", {});
    EXPECT_THAT(error_of([&] { tokenizer_json_of(w8); }),
                HasSubstr("'tokenizer.ggml.tokens' entry 1 is not valid UTF-8"));
  }
  GgufWriter bad_id = llama_writer();
  bad_id.u32("tokenizer.ggml.pad_token_id", 99);  // ignored
  bad_id.u32("tokenizer.ggml.bos_token_id", 99);  // a second key of the same name
  EXPECT_NE(error_of([&] { tokenizer_json_of(bad_id); }), "(no error)");
}

// The fixture GGUFs have placeholder vocabularies ("llama" type, 512 pieces, all scores 0).
TEST(GgufTokenizer, FixtureVocabularyConverts) {
  const GgufFile file(fs::path(TOKMAP_TEST_DATA) / "model" / "arch" / "llama" / "model.gguf");
  const json root = json::parse(gguf_tokenizer_json(file));
  EXPECT_EQ(root["model"]["vocab"].size(), 512u);
  EXPECT_EQ(root["pre_tokenizer"]["type"], "Metaspace");
  EXPECT_EQ(root["post_processor"], nullptr);  // add_bos_token false in the fixture
}

}  // namespace
}  // namespace tokmap::model
