// Every tokenizer of tests/data/tokenizer/golden against Hugging Face `tokenizers` 0.23.2: the
// ids of 1,359 texts with and without special tokens, the decoded text, and the byte spans.
#include <algorithm>

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
