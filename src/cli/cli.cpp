#include "cli/cli.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "core/error.hpp"
#include "io/io.hpp"

namespace tokmap::cli {

void warn(const CommonOptions& common, std::string_view message) {
  if (!common.quiet) std::cerr << "tokmap: warning: " << message << '\n';
}

void info(const CommonOptions& common, std::string_view message) {
  if (!common.quiet) std::cerr << "tokmap: " << message << '\n';
}

Progress::Progress(const CommonOptions& common, std::string label, std::size_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(!common.quiet && isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(std::size_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < std::chrono::seconds(1)) return;
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
  last_draw_ = now;
  drawn_ = true;
  const double fraction = total_ == 0 ? 1.0 : static_cast<double>(done) / total_;
  const int width = 30;
  const int filled = static_cast<int>(fraction * width);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %zu/%zu %.1fs", label_.c_str(), filled,
               "##############################", width - filled, "",
               static_cast<int>(fraction * 100), done, total_, elapsed);
  std::fflush(stderr);
}

void Progress::finish() {
  if (drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
  enabled_ = false;
}

void add_common_flags(CLI::App& command, CommonOptions& common) {
  command.add_flag("-q,--quiet", common.quiet, "No progress bar, warnings or summaries on stderr");
}

namespace {

void on_signal(int signal) {
  io::remove_pending_temp_files();
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

}  // namespace

int run(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  CLI::App app{
      "tokmap: how a language model sees text. Tokenize with GPT-2's BPE, capture every\n"
      "layer's token embeddings, and map them with t-SNE."};
  app.name("tokmap");
  app.set_version_flag("--version", "tokmap 0.1.0");
  app.require_subcommand(1);
  add_tokenize_command(app);
  add_embed_command(app);
  add_tsne_command(app);
  add_viz_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const Error& e) {
    std::cerr << "tokmap: error: " << e.what() << '\n';
    return e.kind() == ErrorKind::usage ? 2 : 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "tokmap: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tokmap: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace tokmap::cli
