// Every tokenizer of tests/data/tokenizer/golden against Hugging Face `tokenizers` 0.23.2: the
// ids of 1,359 texts with and without special tokens, the decoded text, and the byte spans.
#include <algorithm>
#include <atomic>
#include <thread>

#include "pipeline_support.hpp"

namespace tokmap::tokenizer::test {
namespace {

using nlohmann::json;

std::string lossy(const std::string& bytes) {
  // Hugging Face's decode replaces invalid UTF-8 (String::from_utf8_lossy).
  std::string out;
  for (std::size_t pos = 0; pos < bytes.size();) {
    std::size_t length = 1;
    const unsigned char lead = static_cast<unsigned char>(bytes[pos]);
    bool valid = true;
    if (lead >= 0x80) {
      const Tokenizer* none = nullptr;
      (void)none;
      // Reuse the library's validation through whole_characters' contract is overkill here:
      // a small validator is enough for a test.
      const auto cont = [&](std::size_t i) {
        return pos + i < bytes.size() &&
               (static_cast<unsigned char>(bytes[pos + i]) & 0xC0) == 0x80;
      };
      if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        valid = cont(1);
      } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        valid = cont(1) && cont(2);
        if (valid && lead == 0xE0) valid = static_cast<unsigned char>(bytes[pos + 1]) >= 0xA0;
        if (valid && lead == 0xED) valid = static_cast<unsigned char>(bytes[pos + 1]) < 0xA0;
      } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        valid = cont(1) && cont(2) && cont(3);
        if (valid && lead == 0xF0) valid = static_cast<unsigned char>(bytes[pos + 1]) >= 0x90;
        if (valid && lead == 0xF4) valid = static_cast<unsigned char>(bytes[pos + 1]) < 0x90;
      } else {
        valid = false;
      }
    }
    if (valid) {
      out.append(bytes, pos, length);
      pos += length;
    } else {
      out += "\xEF\xBF\xBD";
      // Maximal subpart: the lead byte and the continuation bytes that fit.
      std::size_t skip = 1;
      while (pos + skip < bytes.size() && skip < 3 &&
             (static_cast<unsigned char>(bytes[pos + skip]) & 0xC0) == 0x80 && lead >= 0xC2 &&
             lead <= 0xF4)
        ++skip;
      pos += skip;
    }
  }
  return out;
}

class GoldenPipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenPipeline, IdsDecodeAndSpansMatchHuggingFace) {
  const GoldenCaseFile golden = read_golden(GetParam());
  const Tokenizer tokenizer = load_case(golden.header);
  const auto& all = texts();
  ASSERT_EQ(golden.rows.size(), all.size());
  ASSERT_EQ(all.size(), 1359u);
  std::size_t failures = 0;
  // Cases whose normalizer may turn one character into several.
  const bool changes_text = GetParam() == "qwen3-nfkc-split" || GetParam().starts_with("bert");
  const auto show = [](const std::vector<std::int32_t>& ids) { return json(ids).dump(); };
  for (std::size_t i = 0; i < all.size() && failures < 8; ++i) {
    const std::string& text = all[i];
    const GoldenRow& row = golden.rows[i];
    const Encoding with = tokenizer.encode(text);
    const Encoding plain = tokenizer.encode(text, {.add_special_tokens = false});
    if (with.ids != row.ids || plain.ids != row.plain) {
      ++failures;
      ADD_FAILURE() << GetParam() << " text " << i + 1 << ": " << json(text).dump().substr(0, 200)
                    << "\n  expected " << show(row.plain) << "\n  got      " << show(plain.ids)
                    << "\n  with special: expected " << show(row.ids) << " got " << show(with.ids);
      continue;
    }
    if (row.has_decoded) {
      const std::string decoded = lossy(tokenizer.decode(with.ids));
      if (decoded != row.decoded) {
        ++failures;
        ADD_FAILURE() << GetParam() << " text " << i + 1 << " decode: expected "
                      << json(row.decoded).dump() << "\n  got " << json(decoded).dump();
      }
    }
    // Spans: inside the text and in order (a token may be empty: a prepended "▁", a BOS).
    // They never overlap, except where a normalizer turned one character into several ("ﬁ"
    // -> "fi") and tokens share it.
    ASSERT_EQ(with.offsets.size(), with.ids.size());
    std::size_t previous_begin = 0, previous_end = 0;
    for (std::size_t t = 0; t < with.offsets.size(); ++t) {
      const auto [begin, end] = with.offsets[t];
      if (begin > end || end > text.size() || begin < previous_begin || end < previous_end ||
          (begin < previous_end && !changes_text)) {
        ++failures;
        ADD_FAILURE() << GetParam() << " text " << i + 1 << ": token " << t << " span [" << begin
                      << ", " << end << ") after [" << previous_begin << ", " << previous_end
                      << ")";
        break;
      }
      previous_begin = begin;
      previous_end = end;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTokenizers, GoldenPipeline,
                         ::testing::Values("gpt2", "llama3", "llama2", "qwen3", "gemma3",
                                           "deepseek_v3", "gpt4o", "bert-base-uncased",
                                           "llama2-metaspace", "llama2-metaspace-split",
                                           "bert-whitespace-digits", "bert-punctuation",
                                           "gpt2-roberta", "qwen3-nfkc-split"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace tokmap::tokenizer::test

namespace tokmap::tokenizer::test {
namespace {

using Offsets = std::vector<std::pair<std::size_t, std::size_t>>;

TEST(Spans, ByteFallbackTokensOwnOneByteAndLabelTheirCharacter) {
  const Tokenizer& llama2 = fixture("llama2");
  const std::string text = "a \xF0\x9F\xA4\x96 \xE6\x9C\xA8";  // "a 🤖 木"
  const Encoding encoding = llama2.encode(text);
  ASSERT_EQ(encoding.ids.size(), 9u);
  EXPECT_EQ(encoding.ids[0], 1);  // <s>
  EXPECT_EQ(encoding.offsets[0], (std::pair<std::size_t, std::size_t>{0, 0}));
  for (std::size_t i = 3; i < 7; ++i) {
    EXPECT_EQ(encoding.offsets[i].second - encoding.offsets[i].first, 1u);
    EXPECT_TRUE(llama2.token_string(encoding.ids[i]).starts_with("<0x"));
    EXPECT_EQ(llama2.token_bytes(encoding.ids[i]).size(), 1u);
    EXPECT_EQ(whole_characters(text, encoding.offsets[i].first, encoding.offsets[i].second),
              "\xF0\x9F\xA4\x96");
  }
  EXPECT_EQ(llama2.display(encoding.ids[3]), "<0xF0>");
  EXPECT_EQ(llama2.display(encoding.ids[1]), " a");  // "▁a": the SentencePiece space shown
  EXPECT_EQ(llama2.decode(encoding.ids), "<s> " + text);
  EXPECT_EQ(llama2.decode(std::vector<std::int32_t>(encoding.ids.begin() + 1, encoding.ids.end())),
            text);
  EXPECT_TRUE(llama2.is_added_token(1));
  EXPECT_FALSE(llama2.is_added_token(encoding.ids[1]));
}

TEST(Spans, NormalizedTextMapsBackToTheOriginalBytes) {
  // BERT lowercases and strips accents: "Héllo" (é as one code point, 2 bytes) is "hello".
  const Tokenizer& bert = fixture("bert-base-uncased");
  const std::string text = "H\xC3\xA9llo, World";
  const Encoding encoding = bert.encode(text);
  ASSERT_EQ(encoding.ids.size(), 5u);  // [CLS] hello , world [SEP]
  EXPECT_EQ(bert.token_string(encoding.ids[1]), "hello");
  EXPECT_EQ(encoding.offsets[1], (std::pair<std::size_t, std::size_t>{0, 6}));
  EXPECT_EQ(encoding.offsets[2], (std::pair<std::size_t, std::size_t>{6, 7}));
  EXPECT_EQ(encoding.offsets[3], (std::pair<std::size_t, std::size_t>{8, 13}));
  EXPECT_EQ(encoding.offsets.back(), (std::pair<std::size_t, std::size_t>{13, 13}));  // [SEP]
  // Qwen3 composes "e" + U+0301 (NFC): the token holding "é" spans both original characters.
  const Tokenizer& qwen3 = fixture("qwen3");
  const std::string decomposed = "cafe\xCC\x81";
  const Encoding composed = qwen3.encode(decomposed);
  EXPECT_EQ(composed.offsets.back().second, decomposed.size());
  EXPECT_EQ(qwen3.decode(composed.ids), "caf\xC3\xA9");
}

TEST(Spans, WordPieceDisplayDropsTheContinuationPrefix) {
  const Tokenizer& bert = fixture("bert-base-uncased");
  const Encoding encoding = bert.encode("strawberries", {.add_special_tokens = false});
  ASSERT_EQ(encoding.ids.size(), 2u);
  EXPECT_EQ(bert.token_string(encoding.ids[1]), "##berries");
  EXPECT_EQ(bert.display(encoding.ids[1]), "berries");
  EXPECT_EQ(encoding.offsets, (Offsets{{0, 5}, {5, 12}}));
  EXPECT_EQ(bert.decode(encoding.ids), "strawberries");
}

TEST(SpecialTokens, TextSpecialTokensAndAddedOnes) {
  const Tokenizer& llama3 = fixture("llama3");
  const std::string text = "<|begin_of_text|>Hi";
  const Encoding matched = llama3.encode(text);
  ASSERT_FALSE(matched.ids.empty());
  EXPECT_EQ(matched.ids[0], 128000);
  EXPECT_EQ(matched.offsets[0], (std::pair<std::size_t, std::size_t>{0, 17}));
  const Encoding literal = llama3.encode(text, {.allow_special = false});
  EXPECT_EQ(std::count(literal.ids.begin(), literal.ids.end(), 128000), 0);
  EXPECT_EQ(llama3.decode(literal.ids), text);
  EXPECT_EQ(llama3.special_token_id("<|eot_id|>"), 128009);
  // Gemma's added whitespace tokens show as the spaces they stand for.
  const Tokenizer& gemma3 = fixture("gemma3");
  const Encoding spaces = gemma3.encode("a  x", {.add_special_tokens = false});
  std::string shown;
  for (const auto id : spaces.ids) shown += gemma3.display(id);
  EXPECT_EQ(shown, "a  x");
}

TEST(InvalidUtf8, LossySpansPointIntoTheOriginalForEveryKindOfTokenizer) {
  for (const char* name : {"llama2", "bert-base-uncased", "qwen3", "gemma3"}) {
    SCOPED_TRACE(name);
    const Tokenizer& tokenizer = fixture(name);
    const std::string text = "ab\xFF\xFE cd \xE6\x9C";
    EXPECT_THROW(tokenizer.encode(text), Error);
    const Encoding encoding = tokenizer.encode(text, {.lossy = true});
    EXPECT_EQ(encoding.replaced_bytes, 4u);
    std::size_t previous = 0;
    for (const auto& [begin, end] : encoding.offsets) {
      EXPECT_LE(begin, end);
      EXPECT_LE(end, text.size());
      EXPECT_GE(begin + 1, previous > 0 ? previous : 1);  // in order (shared characters aside)
      previous = begin;
    }
  }
}

TEST(Threads, ConcurrentEncodesOfDifferentTokenizersAgree) {
  const std::vector<std::string>& all = texts();
  std::vector<const Tokenizer*> tokenizers = {&fixture("llama2"), &fixture("llama3"),
                                              &fixture("bert-base-uncased"), &fixture("gpt4o")};
  std::vector<std::vector<std::vector<std::int32_t>>> expected(tokenizers.size());
  for (std::size_t t = 0; t < tokenizers.size(); ++t) {
    for (std::size_t i = 1290; i < all.size(); ++i) {
      expected[t].push_back(tokenizers[t]->encode(all[i]).ids);
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int thread = 0; thread < 4; ++thread) {
    threads.emplace_back([&, thread] {
      for (int round = 0; round < 3; ++round) {
        for (std::size_t k = 0; k < tokenizers.size(); ++k) {
          const std::size_t t = (k + std::size_t(thread)) % tokenizers.size();
          for (std::size_t i = 1290; i < all.size(); ++i) {
            if (tokenizers[t]->encode(all[i]).ids != expected[t][i - 1290]) ++mismatches;
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace tokmap::tokenizer::test
