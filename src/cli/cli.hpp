#pragma once
// The command-line layer: flags, commands, progress bars and exit codes — nothing else.
// Each command lives in its own <name>_command.cpp and registers itself with add_*_command().
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace tokmap::cli {

// Options every command has.
struct CommonOptions {
  bool quiet = false;
};

// Messages on stderr ("tokmap: warning: ..."), silenced by --quiet (errors are never silenced).
void warn(const CommonOptions& common, std::string_view message);
void info(const CommonOptions& common, std::string_view message);

// A progress bar on stderr, shown only when stderr is a terminal, --quiet is off and the work
// has already taken more than a second. update() is cheap enough to call per item.
class Progress {
 public:
  Progress(const CommonOptions& common, std::string label, std::size_t total);
  ~Progress();
  void update(std::size_t done);
  void finish();

 private:
  std::string label_;
  std::size_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

void add_common_flags(CLI::App& command, CommonOptions& common);

// A whole-number check with a readable message ("must be at least 1, got 0"). CLI11's own
// ranges print the limits of double as 300-digit numbers, and an unsigned option would take
// "-1" as 18446744073709551615.
CLI::Validator whole_number(long long minimum,
                            unsigned long long maximum = std::numeric_limits<int>::max());

// The closest of `candidates` to `word` (edit distance at most 2, or a prefix), or empty.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

// Shell quoting for commands printed back to the user ('it'\''s'); plain words stay bare.
std::string shell_quote(std::string_view word);
// Splits a command line into words the way a POSIX shell does for quotes and backslashes
// (no expansions); throws Error for an unterminated quote.
std::vector<std::string> shell_split(std::string_view line);

// Command registration (each defined in its own file).
void add_tokenize_command(CLI::App& app);
void add_embed_command(CLI::App& app);
void add_tsne_command(CLI::App& app);
void add_viz_command(CLI::App& app);
void add_atlas_command(CLI::App& app);
void add_serve_command(CLI::App& app);

// Parses and runs one command line (argv[0] is the program). Returns the exit code: 0, 1 for
// runtime errors, 2 for usage errors; every error is one line "tokmap: error: ..." on stderr.
int run(int argc, char** argv);
int run(const std::vector<std::string>& args);  // args without the program name

}  // namespace tokmap::cli
