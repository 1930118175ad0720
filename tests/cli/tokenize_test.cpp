// tokmap tokenize --tokenizer (issue #11): any Hugging Face tokenizer.json, texts from a .jsonl
// file, with and without the special tokens the tokenizer adds, against the golden ids of
// Hugging Face `tokenizers` (tests/data/tokenizer/golden).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_support.hpp"

namespace {

using namespace tokmap::cli_test;
using ::testing::HasSubstr;
using json = nlohmann::json;

fs::path fixture(const std::string& name) {
  const fs::path folder = kData / "tokenizer" / "node_modules" / ".tokmap" / name;
  if (!fs::exists(folder / "tokenizer.json")) {
    ADD_FAILURE() << folder << " is missing: run scripts/tokenizer-fixtures.sh";
  }
  return folder;
}

// The golden rows of `name` for the texts of tests/data/tokenizer/texts.jsonl (they follow the
// 1,290 GPT-2 cases in the golden files).
std::vector<json> golden_rows(const std::string& name) {
  std::ifstream in(kData / "tokenizer" / "golden" / (name + ".jsonl"));
  std::string line;
  std::getline(in, line);
  const json header = json::parse(line);
  std::vector<json> rows;
  while (std::getline(in, line)) rows.push_back(json::parse(line));
  rows.erase(rows.begin(), rows.begin() + 1290);
  for (json& row : rows) {
    if (!row.contains("ids")) {
      json ids = header["prefix"];
      for (const auto& id : row["plain"]) ids.push_back(id);
      for (const auto& id : header["suffix"]) ids.push_back(id);
      row["ids"] = ids;
    }
  }
  return rows;
}

std::vector<json> lines_of(const std::string& out) {
  std::vector<json> objects;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) objects.push_back(json::parse(line));
  return objects;
}

TEST(TokenizeTokenizer, JsonlTextsInOrderMatchHuggingFaceWithAndWithoutSpecialTokens) {
  const std::string texts = (kData / "tokenizer" / "texts.jsonl").string();
  for (const std::string name : {"llama2", "llama3", "bert-base-uncased"}) {
    SCOPED_TRACE(name);
    const std::vector<json> golden = golden_rows(name);
    // A folder (tokenizer.json + tokenizer_config.json) and the file itself.
    const Result with = run_tokmap(
        {"tokenize", "--tokenizer", fixture(name).string(), "--file", texts, "--json", "--quiet"});
    ASSERT_EQ(with.code, 0) << with.err;
    const Result plain =
        run_tokmap({"tokenize", "--tokenizer", (fixture(name) / "tokenizer.json").string(),
                    "--file", texts, "--json", "--no-special-tokens", "--quiet"});
    ASSERT_EQ(plain.code, 0) << plain.err;
    const auto with_lines = lines_of(with.out);
    const auto plain_lines = lines_of(plain.out);
    ASSERT_EQ(with_lines.size(), golden.size());
    ASSERT_EQ(plain_lines.size(), golden.size());
    for (std::size_t i = 0; i < golden.size(); ++i) {
      EXPECT_EQ(plain_lines[i]["ids"], golden[i]["plain"]) << "text " << i + 1;
      if (name != "llama3") {  // llama3's tokenizer_config.json sets neither add_bos nor add_eos
        EXPECT_EQ(with_lines[i]["ids"], golden[i]["ids"]) << "text " << i + 1;
      }
      EXPECT_EQ(with_lines[i]["offsets"].size(), with_lines[i]["ids"].size());
      EXPECT_EQ(with_lines[i]["display"].size(), with_lines[i]["ids"].size());
    }
  }
}

TEST(TokenizeTokenizer, DisplayShowsSentencePieceSpacesAndSpans) {
  const Result r = run_tokmap(
      {"tokenize", "--tokenizer", fixture("llama2").string(), "--text", "Hello world", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json got = json::parse(r.out);
  EXPECT_EQ(got["tokens"], json({"<s>", "\u2581Hello", "\u2581world"}));
  EXPECT_EQ(got["display"], json({"<s>", " Hello", " world"}));
  EXPECT_EQ(got["offsets"], json({{0, 0}, {0, 5}, {5, 11}}));
}

TEST(TokenizeTokenizer, BadInputIsOneLineNamingTheProblem) {
  TempDir dir;
  expect_error(run_tokmap({"tokenize", "--tokenizer", (dir / "absent").string(), "--text", "x"}), 1,
               "no such file or folder");
  expect_error(run_tokmap({"tokenize", "--tokenizer", dir.path().string(), "--text", "x"}), 1,
               "looked for tokenizer.json");
  expect_error(
      run_tokmap({"tokenize", "--tokenizer", "x", "--model", "demo-brown-gpt2", "--text", "x"}), 2,
      "excludes");
  json broken = json::parse(slurp(kModels / "demo-brown-gpt2" / "tokenizer.json"));
  broken["pre_tokenizer"] = {{"type", "UnicodeScripts"}};
  write(dir / "tokenizer.json", broken.dump());
  expect_error(
      run_tokmap({"tokenize", "--tokenizer", (dir / "tokenizer.json").string(), "--text", "x"}), 1,
      "unsupported pre_tokenizer type \"UnicodeScripts\" at JSON path pre_tokenizer.type");

  write(dir / "texts.jsonl", "{\"text\": \"fine\"}\n[1, 2]\n");
  expect_error(run_tokmap({"tokenize", "--file", (dir / "texts.jsonl").string()}), 1,
               "texts.jsonl line 2: expected a JSON object with a string \"text\"");
  write(dir / "texts.jsonl", "{\"text\": \"fine\"}\n{oops\n");
  expect_error(run_tokmap({"tokenize", "--file", (dir / "texts.jsonl").string()}), 1,
               "texts.jsonl line 2: not a JSON object");
  write(dir / "texts.jsonl", "{\"text\": \"\"}\n");
  expect_error(run_tokmap({"tokenize", "--file", (dir / "texts.jsonl").string()}), 1,
               "\"text\" is empty");
}

TEST(TokenizeTokenizer, EmbedReadsJsonlToo) {
  TempDir dir;
  write(dir / "texts.jsonl",
        "{\"text\": \"The bank of the river.\", \"id\": 7}\n\n{\"text\": \"Hi\"}\n");
  write(dir / "texts.txt", "The bank of the river.\nHi\n");
  const Result a = run_tokmap({"tokenize", "--json", "--file", (dir / "texts.jsonl").string()});
  const Result b = run_tokmap({"tokenize", "--json", "--file", (dir / "texts.txt").string()});
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  const Result embed = run_tokmap({"embed", "--file", (dir / "texts.jsonl").string(), "--out",
                                   (dir / "states").string(), "--quiet"});
  EXPECT_EQ(embed.code, 0) << embed.err;
}

}  // namespace
