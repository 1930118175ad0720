#pragma once
// The command-line layer: flags, commands, progress bars and exit codes — nothing else.
// Each command lives in its own <name>_command.cpp and registers itself with add_*_command().
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

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

// Command registration (each defined in its own file).
void add_tokenize_command(CLI::App& app);
void add_embed_command(CLI::App& app);
void add_tsne_command(CLI::App& app);
void add_viz_command(CLI::App& app);

int run(int argc, char** argv);

}  // namespace tokmap::cli
