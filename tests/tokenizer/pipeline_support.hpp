#pragma once
// The tokenizers of released models (tests/data/tokenizer): their files, installed by
// scripts/tokenizer-fixtures.sh into tests/data/tokenizer/node_modules/.tokmap (the build does
// this; the licences do not clearly allow committing them), and the golden ids Hugging Face
// `tokenizers` 0.23.2 gives (tests/data/tokenizer/golden/*.jsonl, made by make_golden.mjs).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "tokenizer/tokenizer.hpp"

namespace tokmap::tokenizer::test {

inline std::filesystem::path tokenizer_data() {
  return std::filesystem::path(TOKMAP_TEST_DATA) / "tokenizer";
}

// The folder of one fixture ("llama3", "bert-base-uncased", ..., or "gpt2" for the bundled
// model). Fails loudly when the setup has not run: these tests never skip.
inline std::filesystem::path fixture_folder(const std::string& base) {
  if (base == "gpt2") return gpt2_folder();
  const auto folder = tokenizer_data() / "node_modules" / ".tokmap" / base;
  if (!std::filesystem::exists(folder / "tokenizer.json")) {
    throw std::runtime_error(folder.string() +
                             "/tokenizer.json is missing: run scripts/tokenizer-fixtures.sh "
                             "(the CMake build runs it for tokenizer_test)");
  }
  return folder;
}

struct GoldenRow {
  std::vector<std::int32_t> ids;    // with special tokens
  std::vector<std::int32_t> plain;  // without
  bool has_decoded = false;
  std::string decoded;
};

struct GoldenCaseFile {
  nlohmann::json header;
  std::vector<GoldenRow> rows;
};

inline std::vector<std::string> all_texts() {
  std::vector<std::string> texts;
  for (const GoldenCase& golden : golden_cases()) texts.push_back(golden.text);
  std::ifstream in(tokenizer_data() / "texts.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return texts;
}

inline const std::vector<std::string>& texts() {
  static const std::vector<std::string> cached = all_texts();
  return cached;
}

inline GoldenCaseFile read_golden(const std::string& name) {
  GoldenCaseFile file;
  std::ifstream in(tokenizer_data() / "golden" / (name + ".jsonl"));
  if (!in) throw std::runtime_error("no golden file for " + name);
  std::string line;
  std::getline(in, line);
  file.header = nlohmann::json::parse(line);
  const auto prefix = file.header.at("prefix").get<std::vector<std::int32_t>>();
  const auto suffix = file.header.at("suffix").get<std::vector<std::int32_t>>();
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line);
    GoldenRow golden;
    golden.plain = row.at("plain").get<std::vector<std::int32_t>>();
    if (row.contains("ids")) {
      golden.ids = row.at("ids").get<std::vector<std::int32_t>>();
    } else {
      golden.ids = prefix;
      golden.ids.insert(golden.ids.end(), golden.plain.begin(), golden.plain.end());
      golden.ids.insert(golden.ids.end(), suffix.begin(), suffix.end());
    }
    if (row.contains("decoded")) {
      golden.has_decoded = true;
      golden.decoded = row.at("decoded").get<std::string>();
    }
    file.rows.push_back(std::move(golden));
  }
  return file;
}

// A golden case's tokenizer: its fixture's tokenizer.json with the case's JSON merge patch, and
// the fixture's tokenizer_config.json.
inline Tokenizer load_case(const nlohmann::json& header) {
  const auto folder = fixture_folder(header.at("base").get<std::string>());
  std::string text = read_file(folder / "tokenizer.json");
  if (!header.at("patch").is_null()) {
    nlohmann::json json = nlohmann::json::parse(text);
    json.merge_patch(header.at("patch"));
    text = json.dump();
  }
  std::string config;
  if (std::filesystem::exists(folder / "tokenizer_config.json")) {
    config = read_file(folder / "tokenizer_config.json");
  }
  return Tokenizer::from_tokenizer_json_text(text, (folder / "tokenizer.json").string(), config);
}

// The real tokenizers, loaded once per process.
inline const Tokenizer& fixture(const std::string& base) {
  static std::map<std::string, Tokenizer> loaded;
  auto it = loaded.find(base);
  if (it == loaded.end()) {
    it = loaded.emplace(base, Tokenizer::from_folder(fixture_folder(base))).first;
  }
  return it->second;
}

}  // namespace tokmap::tokenizer::test
