#pragma once
// Shared helpers of the tokenizer tests: the bundled GPT-2 tokenizer, loaded once per process,
// and the golden cases.
//
// tests/data/tokenizer_golden.jsonl is a copy of shared/fixtures/tokenizer_golden.jsonl: 1,290
// strings with the ids and token strings Hugging Face `tokenizers` 0.23 produces for GPT-2
// (tiktoken agreed on every one).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace tokmap::tokenizer::test {

inline std::filesystem::path gpt2_folder() {
  return std::filesystem::path(TOKMAP_MODELS_DIR) / "demo-brown-gpt2";
}

inline const Tokenizer& gpt2_from_vocab_merges() {
  static const Tokenizer tokenizer =
      Tokenizer::from_vocab_merges(gpt2_folder() / "vocab.json", gpt2_folder() / "merges.txt");
  return tokenizer;
}

inline const Tokenizer& gpt2_from_tokenizer_json() {
  static const Tokenizer tokenizer =
      Tokenizer::from_tokenizer_json(gpt2_folder() / "tokenizer.json");
  return tokenizer;
}

struct GoldenCase {
  std::size_t line;
  std::string text;
  std::vector<std::int32_t> ids;
  std::vector<std::string> tokens;
};

inline const std::vector<GoldenCase>& golden_cases() {
  static const std::vector<GoldenCase> cases = [] {
    std::vector<GoldenCase> result;
    std::ifstream in(std::filesystem::path(TOKMAP_TEST_DATA) / "tokenizer_golden.jsonl");
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (line.empty()) continue;
      const auto row = nlohmann::json::parse(line);
      result.push_back({number, row.at("text").get<std::string>(),
                        row.at("ids").get<std::vector<std::int32_t>>(),
                        row.at("tokens").get<std::vector<std::string>>()});
    }
    return result;
  }();
  return cases;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace tokmap::tokenizer::test
