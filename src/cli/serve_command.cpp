// tokmap serve: flags over serve::Server, the address printed, SIGINT/SIGTERM for a clean stop.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/cli.hpp"
#include "cli/inputs.hpp"
#include "core/error.hpp"
#include "serve/serve.hpp"

extern char** environ;

namespace tokmap::cli {

namespace {

struct ServeFlags {
  CommonOptions common;
  serve::ServeOptions options;
  std::vector<std::string> atlases;
  bool open = false;
};

// The signal handler only writes a byte (async-signal-safe); a thread waiting on the pipe stops
// the server from a normal context.
int signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  const char byte = 1;
  const int saved = errno;
  [[maybe_unused]] const auto n = ::write(signal_pipe[1], &byte, 1);
  errno = saved;
}

void open_browser(const std::string& url) {
  const char* argv[] = {"xdg-open", url.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "xdg-open", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    std::cerr << "tokmap: could not start a browser (xdg-open); open the address above\n";
  }
}

void run_serve(ServeFlags& flags) {
  auto& options = flags.options;
  options.resolve = resolve_options();
  for (const auto& a : flags.atlases) options.atlases.emplace_back(a);
  const bool loopback = serve::is_loopback(options.host);
  if (!loopback) options.token = serve::make_token();
  if (!flags.common.quiet) std::cerr << "tokmap: loading models and atlases...\n";
  serve::Server server(options);
  server.bind();

  if (::pipe(signal_pipe) != 0) throw Error("serve: cannot create a pipe for signals");
  ::fcntl(signal_pipe[1], F_SETFL, O_NONBLOCK);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  std::thread watcher([&server] {
    char byte = 0;
    while (::read(signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    server.stop();
  });

  const std::string url = server.url();
  // The address goes to stdout (scripts read it); everything else to stderr.
  std::cout << url << std::endl;
  if (!flags.common.quiet) {
    std::cerr << "tokmap: serving on " << url
              << (loopback ? " (this machine only)"
                           : " (reachable from other machines: keep the token secret)")
              << "; Ctrl-C stops\n";
  }
  if (flags.open) open_browser(url);
  server.run();
  // run() returned: stopped by a signal, or the listener failed; wake the watcher either way.
  on_stop_signal(0);
  watcher.join();
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::close(signal_pipe[0]);
  ::close(signal_pipe[1]);
  if (!flags.common.quiet) std::cerr << "tokmap: stopped\n";
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  auto& o = flags->options;
  auto* command = app.add_subcommand(
      "serve", "Live exploration in the browser: a local server that keeps the models loaded");
  command->add_option("-m,--model", o.models,
                      "Model(s) to load (as viz takes them; repeat for several). Requests name "
                      "them by name. Default: " +
                          std::string(model::kDefaultModel));
  command->add_option("--atlas", flags->atlases,
                      "NAME.tokmap-atlas to place texts into (repeat for several); requests name "
                      "it by NAME");
  command
      ->add_option("--host", o.host,
                   "Address to listen on; anything but loopback requires the access token "
                   "printed at start")
      ->capture_default_str();
  command->add_option("--port", o.port, "Port (0: any free one)")
      ->capture_default_str()
      ->check(whole_number(0, 65535));
  command->add_option("--allow-host", o.allowed_hosts,
                      "Another host name the server may be reached by (Host/Origin checks)");
  command->add_flag("--open", flags->open, "Open the page in the default browser");
  command->add_option("--threads", o.threads, "Compute threads (default: all cores)")
      ->check(whole_number(0));
  command->add_option("--max-body", o.max_body_bytes, "Largest request body, bytes")
      ->capture_default_str()
      ->check(whole_number(1024, 1ull << 30));
  command->add_option("--max-text", o.max_text_bytes, "Most text bytes per request")
      ->capture_default_str()
      ->check(whole_number(1, 1ull << 30));
  command->add_option("--job-seconds", o.job_seconds, "Time limit of one request's work")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--max-queue", o.max_queue, "Requests queued or running at once (503 above)")
      ->capture_default_str()
      ->check(whole_number(1, 10000));
  add_common_flags(*command, flags->common);
  command->footer(
      "Examples:\n"
      "  tokmap serve --atlas samples/austen.tokmap-atlas --open\n"
      "  tokmap serve --model gpt2 --model demo-brown-gpt2 --port 9000\n"
      "API and security model: docs/SERVE.md");
  command->callback([flags] { run_serve(*flags); });
}

}  // namespace tokmap::cli
