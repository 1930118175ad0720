// The tokmap binary end to end: the tokenize/embed contracts, exit codes, and every bad input
// of the foundation issue (one-line error, exit 1 or 2, no output file left behind).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_support.hpp"
#include "io/io.hpp"

namespace {

using namespace tokmap::cli_test;
using ::testing::HasSubstr;
using json = nlohmann::json;

// --- tokenize --------------------------------------------------------------------------------

TEST(Tokenize, JsonMatchesTheGoldenCasesOnePerLine) {
  TempDir dir;
  std::ifstream golden(kData / "tokenizer_golden.jsonl");
  std::vector<json> cases;
  std::string line, lines;
  while (std::getline(golden, line) && cases.size() < 200) {
    json c = json::parse(line);
    const std::string text = c["text"];
    // One text per line: keep the cases that are a single non-blank line.
    if (text.empty() || text.find_first_of("\n\r") != std::string::npos ||
        text.find_first_not_of(" \t\f\v") == std::string::npos) {
      continue;
    }
    cases.push_back(c);
    lines += text + "\n";
  }
  ASSERT_GT(cases.size(), 50u);
  write(dir / "texts.txt", lines);
  const Result r = run_tokmap({"tokenize", "--json", "--file", (dir / "texts.txt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream out(r.out);
  std::size_t i = 0;
  while (std::getline(out, line)) {
    ASSERT_LT(i, cases.size());
    const json got = json::parse(line);
    EXPECT_EQ(got["ids"], cases[i]["ids"]) << cases[i]["text"];
    EXPECT_EQ(got["tokens"], cases[i]["tokens"]) << cases[i]["text"];
    const std::string text = cases[i]["text"];
    std::size_t expected_begin = 0;
    for (const auto& offset : got["offsets"]) {
      EXPECT_EQ(offset[0].get<std::size_t>(), expected_begin);
      expected_begin = offset[1].get<std::size_t>();
    }
    EXPECT_EQ(expected_begin, text.size());
    ++i;
  }
  EXPECT_EQ(i, cases.size());
}

TEST(Tokenize, WholeFileIsOneTextByteForByte) {
  TempDir dir;
  write(dir / "t.txt", "Line one.\n\nLine two.\n");
  const Result r =
      run_tokmap({"tokenize", "--json", "--whole-file", "--file", (dir / "t.txt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  const json got = json::parse(r.out);
  EXPECT_EQ(got["offsets"].back()[1], 21);
  const Result lines = run_tokmap({"tokenize", "--json", "--file", (dir / "t.txt").string()});
  EXPECT_EQ(std::count(lines.out.begin(), lines.out.end(), '\n'), 2);  // blank line skipped
}

TEST(Tokenize, HumanReadableOutputShowsDisplayForms) {
  const Result r = run_tokmap({"tokenize", "--text", "Hello world"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[ world]"));
}

TEST(Tokenize, InvalidUtf8FailsWithTheOffsetOrIsReplacedWithLossy) {
  TempDir dir;
  write(dir / "bad.txt",
        "fine line\nabc\xff"
        "def\n");
  const Result r = run_tokmap({"tokenize", "--file", (dir / "bad.txt").string()});
  expect_error(r, 1, "bad.txt line 2");
  EXPECT_THAT(r.err, HasSubstr("byte 3"));
  const Result lossy =
      run_tokmap({"tokenize", "--json", "--lossy", "--file", (dir / "bad.txt").string()});
  EXPECT_EQ(lossy.code, 0) << lossy.err;
  EXPECT_THAT(lossy.err, HasSubstr("warning"));
}

// --- embed -----------------------------------------------------------------------------------

TEST(Embed, WritesTheContractTensorsAndMatchesHuggingFace) {
  TempDir dir;
  const std::string text = "The bank of the river was muddy.";  // reference case 1
  const Result r = run_tokmap({"embed", "--text", text, "--text", "Hello", "--layers", "0,3,6",
                               "--out", (dir / "e.safetensors").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("9 tokens"));
  const tokmap::io::SafetensorsFile file(dir / "e.safetensors");
  const auto& hidden = file.get("hidden_states");
  EXPECT_EQ(hidden.shape, (std::vector<std::int64_t>{3, 9, 128}));
  EXPECT_EQ(file.to_i64(file.get("text_index")),
            (std::vector<std::int64_t>{0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(file.to_i64(file.get("position")),
            (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 0}));
  EXPECT_EQ(json::parse(file.metadata().at("layers")), json::parse("[0, 3, 6]"));
  EXPECT_EQ(file.metadata().at("model"), "demo-brown-gpt2");
  EXPECT_EQ(json::parse(file.metadata().at("tokens"))[1], " bank");
  EXPECT_EQ(json::parse(file.metadata().at("texts")), json::array({text, "Hello"}));

  const tokmap::io::SafetensorsFile reference(kData / "demo-brown-gpt2" /
                                              "reference_hidden_states.safetensors");
  EXPECT_EQ(file.to_i64(file.get("input_ids"))[3],
            reference.to_i64(reference.get("case1.input_ids"))[3]);
  const auto want = reference.to_f32(reference.get("case1.hidden_states"));  // (7, 8, 128)
  const auto got = file.to_f32(hidden);                                      // (3, 9, 128)
  const int layers[] = {0, 3, 6};
  for (int i = 0; i < 3; ++i) {
    double max_error = 0, max_ref = 0;
    for (int t = 0; t < 8; ++t) {
      for (int c = 0; c < 128; ++c) {
        const float w = want[(layers[i] * 8 + t) * 128 + c];
        max_error = std::max(max_error, double(std::fabs(got[(i * 9 + t) * 128 + c] - w)));
        max_ref = std::max(max_ref, double(std::fabs(w)));
      }
    }
    EXPECT_LE(max_error / max_ref, 1e-4) << "layer " << layers[i];
  }
}

TEST(Embed, LongTextsRunInWindowsWithTheGivenStride) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 120; ++i) text += "The bank of the river was muddy. ";  // > 512 tokens
  write(dir / "long.txt", text);
  const Result r =
      run_tokmap({"embed", "--whole-file", "--file", (dir / "long.txt").string(), "--window-stride",
                  "128", "--layers", "last", "--quiet", "--out", (dir / "e.safetensors").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const tokmap::io::SafetensorsFile file(dir / "e.safetensors");
  const auto n = file.get("position").shape[0];
  EXPECT_GT(n, 512);
  EXPECT_EQ(file.to_i64(file.get("position")).back(), n - 1);  // positions within the text
  for (const float v : file.to_f32(file.get("hidden_states"))) ASSERT_TRUE(std::isfinite(v));
}

TEST(Embed, FindsTheSmallBundledModelByName) {
  TempDir dir;
  const Result r =
      run_tokmap({"embed", "--model", "demo-brown-gpt2-small", "--text", "Hi there", "--layers",
                  "last", "--out", (dir / "e.safetensors").string(), "--quiet"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const tokmap::io::SafetensorsFile file(dir / "e.safetensors");
  EXPECT_EQ(file.get("hidden_states").shape, (std::vector<std::int64_t>{1, 2, 64}));
}

// --- exit codes and bad input ----------------------------------------------------------------

TEST(Commands, HelpAndUsageErrors) {
  for (const char* command : {"tokenize", "embed"}) {
    const Result help = run_tokmap({command, "--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_THAT(help.out, HasSubstr("--model"));
    EXPECT_THAT(help.out, HasSubstr("--quiet"));
  }
  EXPECT_EQ(run_tokmap({"--help"}).code, 0);
  EXPECT_EQ(run_tokmap({}).code, 2);
  EXPECT_EQ(run_tokmap({"tokenize", "--no-such-flag"}).code, 2);
  EXPECT_EQ(run_tokmap({"embed", "--text", "x"}).code, 2);  // --out is required
  EXPECT_EQ(run_tokmap({"tokenize"}).code, 2);              // no input
}

// A model folder in `dir` made of the tiny model and the GPT-2 tokenizer files.
fs::path tiny_model(const TempDir& dir) {
  const fs::path folder = dir / "model";
  fs::create_directory(folder);
  for (const char* name : {"config.json", "model.safetensors"}) {
    fs::copy_file(kData / "tiny-gpt2-base-f32" / name, folder / name);
  }
  for (const char* name : {"vocab.json", "merges.txt"}) {
    fs::copy_file(kModels / "demo-brown-gpt2" / name, folder / name);
  }
  return folder;
}

struct BadCase {
  const char* name;
  std::function<void(const fs::path& model)> corrupt;
  int code;
  std::string message;
};

void replace_header(const fs::path& weights, const std::string& header, std::size_t data_bytes) {
  std::ofstream out(weights, std::ios::binary | std::ios::trunc);
  const std::uint64_t length = header.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header << std::string(data_bytes, '\0');
}

TEST(Embed, EveryBadModelFileGivesOneLineAndNoOutput) {
  const std::vector<BadCase> cases = {
      {"missing config", [](const fs::path& m) { fs::remove(m / "config.json"); }, 1,
       "config.json"},
      {"config not json", [](const fs::path& m) { write(m / "config.json", "{\"n_layer\": "); }, 1,
       "config.json: not valid JSON"},
      {"weights missing", [](const fs::path& m) { fs::remove(m / "model.safetensors"); }, 1,
       "model.safetensors is missing"},
      {"weights truncated",
       [](const fs::path& m) { fs::resize_file(m / "model.safetensors", 100000); }, 1,
       "beyond the data section"},
      {"header length beyond file",
       [](const fs::path& m) { fs::resize_file(m / "model.safetensors", 1000); }, 1,
       "goes beyond the end of the file"},
      {"header not json",
       [](const fs::path& m) { replace_header(m / "model.safetensors", "{\"wte.weight\": ", 0); },
       1, "not valid JSON"},
      {"offsets out of bounds",
       [](const fs::path& m) {
         replace_header(m / "model.safetensors",
                        R"({"wte.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                        4);
       },
       1, "beyond the data section"},
      {"overlapping",
       [](const fs::path& m) {
         replace_header(
             m / "model.safetensors",
             R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
             12);
       },
       1, "overlap"},
      {"unknown dtype",
       [](const fs::path& m) {
         replace_header(m / "model.safetensors",
                        R"({"wte.weight": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}})",
                        8);
       },
       1, "unknown dtype 'Q4'"},
      {"missing tensor",
       [](const fs::path& m) {
         replace_header(m / "model.safetensors",
                        R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8);
       },
       1, "tensor 'wte.weight' is missing"},
      {"wrong shape",
       [](const fs::path& m) {
         replace_header(m / "model.safetensors",
                        R"({"wte.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                        8);
       },
       1, "'wte.weight' has shape [2], expected [50257, 32]"},
      {"vocab missing", [](const fs::path& m) { fs::remove(m / "vocab.json"); }, 1, "vocab.json"},
      {"merges missing", [](const fs::path& m) { fs::remove(m / "merges.txt"); }, 1, "merges.txt"},
      {"vocab malformed", [](const fs::path& m) { write(m / "vocab.json", "[\"not an object\"]"); },
       1, "vocab.json"},
      {"merges malformed",
       [](const fs::path& m) { write(m / "merges.txt", "#version: 0.2\nĠ t\nonlyonetoken\n"); }, 1,
       "merges.txt"},
  };
  for (const auto& bad : cases) {
    TempDir dir;
    const fs::path model = tiny_model(dir);
    bad.corrupt(model);
    const fs::path out = dir / "out";
    fs::create_directory(out);
    const Result r = run_tokmap({"embed", "--model", model.string(), "--text", "The bank.", "--out",
                                 (out / "e.safetensors").string()});
    SCOPED_TRACE(bad.name);
    expect_error(r, bad.code, bad.message);
    EXPECT_TRUE(fs::is_empty(out)) << "output left behind";
  }
}

TEST(Embed, BadArgumentsGiveOneLineAndNoOutput) {
  TempDir dir;
  const fs::path out = dir / "e.safetensors";
  expect_error(run_tokmap({"embed", "--model", (dir / "nope").string(), "--text", "x", "--out",
                           out.string()}),
               1, "does not exist");
  expect_error(run_tokmap({"embed", "--text", "", "--out", out.string()}), 2, "--text 1 is empty");
  write(dir / "blank.txt", "\n  \n");
  expect_error(run_tokmap({"embed", "--file", (dir / "blank.txt").string(), "--out", out.string()}),
               1, "no text");
  expect_error(
      run_tokmap({"embed", "--file", (dir / "missing.txt").string(), "--out", out.string()}), 1,
      "missing.txt: cannot open");
  expect_error(run_tokmap({"embed", "--text", "caf\xc3", "--out", out.string()}), 1,
               "invalid UTF-8 at byte 3");
  expect_error(run_tokmap({"embed", "--text", "x", "--layers", "7", "--out", out.string()}), 2,
               "layer 7 is out of range");
  expect_error(run_tokmap({"embed", "--text", "x", "--layers", "2,zz", "--out", out.string()}), 2,
               "'zz' is not a layer number");
  expect_error(
      run_tokmap({"embed", "--text", "x", "--out", (dir / "no-folder" / "e.safetensors").string()}),
      1, "does not exist");
  fs::create_directory(dir / "readonly");
  fs::permissions(dir / "readonly", fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() != 0) {  // root ignores permissions
    expect_error(run_tokmap({"embed", "--text", "x", "--out",
                             (dir / "readonly" / "e.safetensors").string()}),
                 1, "cannot write");
  }
  expect_error(run_tokmap({"embed", "--text", "x", "--out", dir.path().string()}), 1,
               "is a folder");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(dir.file_count(), 2u);  // blank.txt, readonly/, nothing else
}

TEST(Embed, ExistingOutputIsReplacedWholeOrLeftAlone) {
  TempDir dir;
  const fs::path out = dir / "e.safetensors";
  write(out, "precious");
  expect_error(run_tokmap({"embed", "--text", "x", "--layers", "99", "--out", out.string()}), 2,
               "out of range");
  EXPECT_EQ(slurp(out), "precious");
  ASSERT_EQ(run_tokmap({"embed", "--text", "x", "--out", out.string(), "--quiet"}).code, 0);
  EXPECT_NO_THROW(tokmap::io::SafetensorsFile{out});
  EXPECT_EQ(dir.file_count(), 1u);
}

TEST(Embed, ModelNotFoundListsPlacesAndHowToGetGpt2) {
  const Result r = run_tokmap({"tokenize", "--model", "gpt2-xl", "--text", "x"});
  expect_error(r, 1, "huggingface-cli download gpt2-xl");
  EXPECT_THAT(r.err, HasSubstr("models--openai-community--gpt2-xl"));
}

TEST(Embed, InterruptedRunLeavesNoPartialOutput) {
  TempDir dir;
  // A text long enough that the forward pass is still running when SIGINT arrives.
  std::string text;
  for (int i = 0; i < 4000; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  write(dir / "long.txt", text);
  const fs::path out = dir / "out";
  fs::create_directory(out);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::freopen("/dev/null", "w", stderr);
    ::execl(TOKMAP_BINARY, "tokmap", "embed", "--whole-file", "--file", (dir / "long.txt").c_str(),
            "--out", (out / "e.safetensors").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the temporary output exists, i.e. the run is in the middle of writing.
  bool started = false;
  for (int i = 0; i < 2000 && !started; ++i) {
    started = !fs::is_empty(out);
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(child, SIGINT);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(started);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "status " << status;
  EXPECT_TRUE(fs::is_empty(out)) << "partial output left behind";
}

TEST(Embed, AllocationLimitIsNamedWithHowToRaiseIt) {
  TempDir dir;
  // The bundled model's float16 token embedding needs 25.7 MB as float32.
  const Result r = run_tokmap({"embed", "--text", "x", "--out", (dir / "e.safetensors").string()},
                              "TOKMAP_MAX_BYTES=1000000");
  expect_error(r, 1, "above the limit of 1000000 (set TOKMAP_MAX_BYTES to raise it)");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

// --- issue #10: what a user expects of the command line ----------------------------------------

TEST(Commands, EveryErrorIsOneLineWithReadableRanges) {
  TempDir dir;
  const std::string out = (dir / "r").string();
  const auto viz = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"viz", "--text", "The bank of the river.", "--out", out};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_tokmap(args);
  };
  // CLI11's own errors: one line, prefixed, pointing at the command's help.
  Result r = run_tokmap({"tokenize", "--no-such-flag"});
  expect_error(r, 2, "--no-such-flag");
  EXPECT_THAT(r.err, HasSubstr("see 'tokmap tokenize --help'"));
  r = run_tokmap({"tsne", "--input", "a.tsv", "--out", "b.tsv", "--sed", "3"});
  expect_error(r, 2, "did you mean --seed?");
  expect_error(run_tokmap({"embed", "--text", "x"}), 2, "--out is required");
  // Ranges read as words, never as a 300-digit number; --seed -1 is not 18446744073709551615.
  for (const auto& [flags, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--seeds", "0"}, "--seeds: must be at least 1, got 0"},
           {{"--iterations", "0"}, "--iterations: must be at least 1, got 0"},
           {{"--iterations", "99999999999"}, "--iterations: must be at most 2147483647"},
           {{"--seed", "-1"}, "--seed: must be at least 0, got -1"},
           {{"--threads", "-2"}, "--threads: must be at least 0, got -2"},
           {{"--seeds", "two"}, "--seeds: 'two' is not a whole number"}}) {
    r = viz(flags);
    SCOPED_TRACE(flags[0]);
    expect_error(r, 2, message);
    EXPECT_LT(r.err.size(), 200u) << r.err;
  }
  expect_error(run_tokmap({"embed", "--text", "x", "--window-stride", "-1", "--out", out}), 2,
               "--window-stride: must be at least 0, got -1");
  EXPECT_EQ(dir.file_count(), 0u);
}

TEST(Commands, HelpCommandSuggestionsAndExamples) {
  // tokmap alone: the help on stdout, one error line on stderr.
  Result r = run_tokmap({});
  EXPECT_THAT(r.out, HasSubstr("viz"));
  expect_error(r, 2, "give a command");
  r = run_tokmap({"help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("tokenize"));
  EXPECT_THAT(r.out, HasSubstr("tokmap help viz"));
  r = run_tokmap({"help", "viz"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--from-report"));
  expect_error(run_tokmap({"vis", "--text", "x"}), 2, "unknown command 'vis'; did you mean 'viz'?");
  expect_error(run_tokmap({"help", "tsen"}), 2, "did you mean 'tsne'?");
  for (const char* command : {"tokenize", "embed", "tsne", "viz", "help"}) {
    SCOPED_TRACE(command);
    r = run_tokmap({command, "--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("Example"));
    EXPECT_THAT(r.out, HasSubstr(std::string("tokmap ") + command));
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("{false}")));
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("{true}")));
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("179769")));  // no double-max ranges
    EXPECT_EQ(r.out, run_tokmap({"help", command}).out);
  }
}

TEST(Tokenize, ByteOrderMarkIsSkippedAndReportedOnce) {
  TempDir dir;
  write(dir / "bom.txt", "\xEF\xBB\xBFHello world\nSecond line\n");
  write(dir / "plain.txt", "Hello world\nSecond line\n");
  Result r = run_tokmap({"tokenize", "--json", "--file", (dir / "bom.txt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, run_tokmap({"tokenize", "--json", "--file", (dir / "plain.txt").string()}).out);
  EXPECT_THAT(r.err, HasSubstr("bom.txt: skipped the UTF-8 byte-order mark"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = run_tokmap(
      {"tokenize", "--json", "--whole-file", "--file", (dir / "bom.txt").string(), "--quiet"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["tokens"][0], "Hello");
  EXPECT_EQ(r.err, "");
}

TEST(Embed, NonFiniteWeightsAreNamedAndNothingIsWritten) {
  TempDir dir;
  const fs::path model = tiny_model(dir);
  {
    // A NaN at [1, 2] of wpe.weight (64 x 32), patched into the file in place.
    const tokmap::io::SafetensorsFile file(model / "model.safetensors");
    const auto& info = file.get("wpe.weight");
    std::uint64_t header = 0;
    std::ifstream(model / "model.safetensors", std::ios::binary)
        .read(reinterpret_cast<char*>(&header), 8);
    const std::uint64_t at = 8 + header + info.begin + (1 * 32 + 2) * 4;
    std::fstream patch(model / "model.safetensors",
                       std::ios::binary | std::ios::in | std::ios::out);
    patch.seekp(static_cast<std::streamoff>(at));
    const float nan = std::nanf("");
    patch.write(reinterpret_cast<const char*>(&nan), 4);
  }
  const fs::path out = dir / "out";
  fs::create_directory(out);
  const Result r = run_tokmap({"embed", "--model", model.string(), "--text", "The bank.", "--out",
                               (out / "e.safetensors").string()});
  expect_error(
      r, 1,
      "model.safetensors: tensor 'wpe.weight' has a non-finite value (NaN) at index 34 [1, 2]");
  EXPECT_TRUE(fs::is_empty(out));
}

// --- token ids -------------------------------------------------------------------------------

TEST(Embed, IdsReplayATokenizedTextExactly) {
  TempDir dir;
  const std::string text = "The bank of the river was muddy.";
  const Result tokens = run_tokmap({"tokenize", "--json", "--text", text});
  ASSERT_EQ(tokens.code, 0) << tokens.err;
  std::string ids;
  const json parsed = json::parse(tokens.out);
  for (const auto& id : parsed["ids"]) {
    ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
  }
  ASSERT_FALSE(ids.empty()) << tokens.out;
  const Result from_text = run_tokmap(
      {"embed", "--text", text, "--quiet", "--out", (dir / "text.safetensors").string()});
  const Result from_ids =
      run_tokmap({"embed", "--ids", ids, "--quiet", "--out", (dir / "ids.safetensors").string()});
  ASSERT_EQ(from_text.code, 0) << from_text.err;
  ASSERT_EQ(from_ids.code, 0) << from_ids.err;
  const tokmap::io::SafetensorsFile a(dir / "text.safetensors"), b(dir / "ids.safetensors");
  EXPECT_EQ(a.to_f32(a.get("hidden_states")), b.to_f32(b.get("hidden_states")));
  EXPECT_EQ(a.to_i64(a.get("input_ids")), b.to_i64(b.get("input_ids")));
  // With a tokenizer the tokens keep their display forms.
  EXPECT_EQ(json::parse(b.metadata().at("tokens"))[1], " bank");
}

TEST(Embed, IdsRunAModelWithoutATokenizer) {
  TempDir dir;
  const fs::path model = kData / "model" / "arch" / "llama" / "hf";  // no tokenizer files
  const Result no_ids = run_tokmap({"embed", "--model", model.string(), "--text", "hello", "--out",
                                    (dir / "e.safetensors").string()});
  EXPECT_EQ(no_ids.code, 1);
  EXPECT_THAT(no_ids.err, HasSubstr("no tokenizer"));
  EXPECT_THAT(no_ids.err, HasSubstr("--ids 1,2,3"));
  EXPECT_FALSE(fs::exists(dir / "e.safetensors"));

  const Result r =
      run_tokmap({"embed", "--model", model.string(), "--ids", "464,314,182", "--ids", "52, 308",
                  "--layers", "last", "--out", (dir / "e.safetensors").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const tokmap::io::SafetensorsFile file(dir / "e.safetensors");
  EXPECT_EQ(file.to_i64(file.get("input_ids")),
            (std::vector<std::int64_t>{464, 314, 182, 52, 308}));
  EXPECT_EQ(json::parse(file.metadata().at("tokens"))[0], "#464");
  EXPECT_EQ(file.get("hidden_states").shape, (std::vector<std::int64_t>{1, 5, 64}));

  for (const char* bad : {"1,x", "-3", ",,"}) {
    const Result e = run_tokmap({"embed", "--model", model.string(), "--ids", bad, "--out",
                                 (dir / "bad.safetensors").string()});
    EXPECT_EQ(e.code, 2) << bad << ": " << e.err;
  }
  const Result outside = run_tokmap({"embed", "--model", model.string(), "--ids", "512", "--out",
                                     (dir / "bad.safetensors").string()});
  EXPECT_EQ(outside.code, 1);
  EXPECT_THAT(outside.err, HasSubstr("outside the vocabulary"));
}

TEST(Embed, GgufFilesAndOllamaNamesGiveTheStatesOfTheHuggingFaceCopy) {
  TempDir dir;
  const fs::path arch = kData / "model" / "arch" / "llama";
  // A fake Ollama store holding the fixture's GGUF copy.
  const fs::path store = dir / "ollama";
  const std::string digest(64, 'e');
  fs::create_directories(store / "blobs");
  fs::create_directories(store / "manifests/registry.ollama.ai/library/tiny");
  fs::copy_file(arch / "model.gguf", store / "blobs" / ("sha256-" + digest));
  tokmap::io::write_file_atomically(store / "manifests/registry.ollama.ai/library/tiny/latest",
                                    json{{"layers",
                                          {{{"mediaType", "application/vnd.ollama.image.model"},
                                            {"digest", "sha256:" + digest}}}}}
                                        .dump());
  std::vector<std::vector<float>> states;
  for (const auto& [model, env] :
       {std::pair<std::string, std::string>{(arch / "hf").string(), ""},
        {(arch / "model.gguf").string(), ""},
        {"tiny", "OLLAMA_MODELS=" + store.string() + " HF_HUB_CACHE=" + (dir / "hf").string()}}) {
    const fs::path out = dir / ("e" + std::to_string(states.size()) + ".safetensors");
    const Result r = run_tokmap(
        {"embed", "--model", model, "--ids", "464,314,182,197", "--quiet", "--out", out.string()},
        env);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    const tokmap::io::SafetensorsFile file(out);
    states.push_back(file.to_f32(file.get("hidden_states")));
  }
  EXPECT_EQ(states[0], states[1]);
  EXPECT_EQ(states[0], states[2]);
  // The fixture's placeholder vocabulary is SentencePiece-style; since the tokenizer reads
  // Hugging Face tokenizer.json pipelines (issue #11), text is tokenized from the GGUF metadata.
  const Result text = run_tokmap({"embed", "--model", (arch / "model.gguf").string(), "--text",
                                  "hello", "--out", (dir / "t.safetensors").string()});
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.err, HasSubstr("1 text(s)"));
}

}  // namespace
