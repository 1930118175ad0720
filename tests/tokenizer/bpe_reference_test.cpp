// The fast BPE (direct scan for short pieces, heap for long ones) against a transcription of
// OpenAI's encoder.py `bpe()` on the real GPT-2 merges, for pieces of every length around the
// switch-over and for long ones.
#include <map>
#include <random>
#include <sstream>

#include "test_support.hpp"

namespace tokmap::tokenizer::test {
namespace {

class ReferenceBpe {
 public:
  explicit ReferenceBpe(const std::string& merges_text) {
    std::istringstream in(merges_text);
    std::string line;
    int rank = 0;
    while (std::getline(in, line)) {
      if (line.empty() || line.starts_with("#version")) continue;
      const auto space = line.find(' ');
      ranks_[{line.substr(0, space), line.substr(space + 1)}] = rank++;
    }
  }

  // encoder.py: find the lowest-ranked adjacent pair, merge every occurrence of it left to
  // right, repeat.
  std::vector<std::string> bpe(std::vector<std::string> word) const {
    while (word.size() > 1) {
      int best_rank = INT32_MAX;
      std::pair<std::string, std::string> best;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = ranks_.find({word[i], word[i + 1]});
        if (it != ranks_.end() && it->second < best_rank) {
          best_rank = it->second;
          best = it->first;
        }
      }
      if (best_rank == INT32_MAX) break;
      std::vector<std::string> merged;
      for (std::size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == best.first && word[i + 1] == best.second) {
          merged.push_back(best.first + best.second);
          i += 2;
        } else {
          merged.push_back(word[i]);
          i += 1;
        }
      }
      word = std::move(merged);
    }
    return word;
  }

 private:
  std::map<std::pair<std::string, std::string>, int> ranks_;
};

TEST(BpeReference, RandomPiecesOfEveryLengthMatchEncoderPy) {
  const Tokenizer& tokenizer = gpt2_from_vocab_merges();
  const ReferenceBpe reference(read_file(gpt2_folder() / "merges.txt"));
  std::mt19937 random(2024);
  // Letters with English-like frequencies make many merges apply; a few alphabets stress
  // repeats ("aaaa") and ties.
  const std::vector<std::string> alphabets = {"etaoinshrdlcumwfgypbvkjxqz", "eeettaaoinnss", "ab",
                                              "a"};
  std::size_t checked = 0;
  for (std::size_t length = 2; length <= 300; length += (length < 120 ? 1 : 37)) {
    for (const std::string& alphabet : alphabets) {
      std::string piece(length, ' ');
      for (char& c : piece) c = alphabet[random() % alphabet.size()];
      // One piece for the pre-tokenizer: letters only.
      const Encoding encoding = tokenizer.encode(piece);
      std::vector<std::string> got;
      for (const std::int32_t id : encoding.ids) got.emplace_back(tokenizer.token_string(id));
      std::vector<std::string> symbols;
      for (const char c : piece) symbols.emplace_back(1, c);  // ASCII letters are their own symbols
      ASSERT_EQ(got, reference.bpe(symbols)) << "piece " << piece;
      ++checked;
    }
  }
  EXPECT_GT(checked, 400u);
}

}  // namespace
}  // namespace tokmap::tokenizer::test
