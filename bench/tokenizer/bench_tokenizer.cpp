// Throughput of one tokmap tokenizer on a corpus file, in the same two shapes that
// bench_gpt3_encoder.js and bench_peers.mjs measure: (a) every line encoded on its own, (b) the
// whole file as one string, plus prefixes of (b) to show that the cost is linear in the input,
// and (c) single pathological pieces (a megabyte run of spaces, a megabyte "word").
// Single-threaded.
//
// usage: bench_tokenizer TOKENIZER CORPUS_FILE [--repeat N]
//   TOKENIZER: a model folder (tokenizer.json, or vocab.json + merges.txt) or a tokenizer.json
// Prints one "key value..." line per measurement (read by run.sh).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw tokmap::Error(path.string() + ": cannot open");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    lines.push_back(text.substr(0, newline));
    text.remove_prefix(newline == text.npos ? text.size() : newline + 1);
  }
  return lines;
}

// A prefix of about `bytes`, cut at a line end so that the same prefix is easy to take in JS.
std::string_view prefix_at_line(std::string_view text, std::size_t bytes) {
  if (bytes >= text.size()) return text;
  const auto newline = text.find('\n', bytes);
  return text.substr(0, newline == text.npos ? text.size() : newline + 1);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::cerr << "usage: bench_tokenizer TOKENIZER CORPUS_FILE [--repeat N]\n";
    return 2;
  }
  const std::filesystem::path folder = argv[1];
  int repeat = 5;
  if (argc >= 5 && std::string(argv[3]) == "--repeat") repeat = std::max(1, std::atoi(argv[4]));
  const std::string corpus = read_file(argv[2]);
  const auto lines = split_lines(corpus);
  const double megabytes = double(corpus.size()) / 1e6;

  auto start = Clock::now();
  if (std::filesystem::exists(folder / "vocab.json") &&
      std::filesystem::exists(folder / "merges.txt")) {
    const auto from_files = tokmap::tokenizer::Tokenizer::from_vocab_merges(folder / "vocab.json",
                                                                            folder / "merges.txt");
    std::printf("load vocab+merges seconds %.4f\n", seconds_since(start));
    (void)from_files;
  }
  start = Clock::now();
  const auto tokenizer = tokmap::tokenizer::Tokenizer::from_path(folder);
  std::printf("load tokenizer.json seconds %.4f\n", seconds_since(start));
  // The peers are measured without the tokens a post-processor adds.
  tokmap::tokenizer::EncodeOptions options;
  options.add_special_tokens = false;

  // (a) many short lines. The first pass starts with an empty word cache (this tokenizer has
  // not encoded anything yet); later passes show the warm steady state.
  std::size_t tokens = 0;
  double first = 0, best = 1e30;
  for (int pass = 0; pass < repeat; ++pass) {
    tokens = 0;
    start = Clock::now();
    for (const std::string_view line : lines) tokens += tokenizer.encode(line, options).ids.size();
    const double elapsed = seconds_since(start);
    if (pass == 0) first = elapsed;
    best = std::min(best, elapsed);
  }
  std::printf("lines count %zu bytes %zu tokens %zu cold_mb_s %.2f warm_mb_s %.2f\n", lines.size(),
              corpus.size(), tokens, megabytes / first, megabytes / best);

  // (b) the whole corpus as one string, and prefixes of it (linear scaling).
  for (const double size_mb : {0.125, 0.25, 0.5, 1.0, 2.0, 1e9}) {
    const std::string_view text = prefix_at_line(corpus, std::size_t(size_mb * 1e6));
    double elapsed_best = 1e30;
    std::size_t count = 0;
    for (int pass = 0; pass < repeat; ++pass) {
      start = Clock::now();
      count = tokenizer.encode(text, options).ids.size();
      elapsed_best = std::min(elapsed_best, seconds_since(start));
    }
    std::printf("whole bytes %zu tokens %zu seconds %.4f mb_s %.2f\n", text.size(), count,
                elapsed_best, double(text.size()) / 1e6 / elapsed_best);
    if (text.size() == corpus.size()) break;
  }

  // (c) pathological single pieces: a run of spaces and one giant "word". Linear (spaces) and
  // O(n log n) (the word's BPE) rather than quadratic: 4x the input should cost about 4x.
  for (const char fill : {' ', 'a'}) {
    for (const std::size_t size : {std::size_t{1} << 20, std::size_t{4} << 20}) {
      const std::string text(size, fill);
      start = Clock::now();
      const std::size_t count = tokenizer.encode(text, options).ids.size();
      const double elapsed = seconds_since(start);
      std::printf("pathological %s bytes %zu tokens %zu seconds %.4f mb_s %.2f\n",
                  fill == ' ' ? "spaces" : "one_word", size, count, elapsed,
                  double(size) / 1e6 / elapsed);
    }
  }
  return 0;
} catch (const std::exception& error) {
  std::cerr << "bench_tokenizer: " << error.what() << "\n";
  return 1;
}
