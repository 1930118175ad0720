#pragma once
// `tokmap serve`: the exploration engine behind a local HTTP server (cpp-httplib), for the live
// page and for scripts. The API, the limits and the security model are in docs/SERVE.md.
//
// Shape: HTTP threads parse and check requests and never compute; computing requests become jobs
// in one bounded queue run by one worker (a job uses every core, so two at once only contend).
// A synchronous route (POST /api/v1/map, /place) waits for its job; the job routes let the page
// stream progress (server-sent events) and cancel. Models and atlases are loaded once, at start;
// a request names them by name only, never by path.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/model.hpp"

namespace tokmap::serve {

struct ServeOptions {
  std::vector<std::string> models;  // --model specs, loaded at start; empty = the bundled model
  std::vector<std::filesystem::path> atlases;  // named by file stem in requests
  std::string host = "127.0.0.1";
  int port = 8765;    // 0: any free port (tests)
  std::string token;  // required on every request when not empty; see make_token()
  // Host names accepted besides loopback's and `host` itself (a name the server is reached by).
  std::vector<std::string> allowed_hosts;
  // Limits (413 when a request exceeds them, 503 when the queue is full or time runs out).
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_text_bytes = 100'000;  // all texts of one request together
  std::size_t max_texts = 200;
  int max_iterations = 2000;
  double job_seconds = 300;          // a job still running after this is cancelled
  std::size_t max_queue = 32;        // queued + running jobs
  std::size_t kept_jobs = 32;        // finished jobs whose results stay available
  double read_timeout_seconds = 10;  // a connection that sends nothing for this long is closed
  // An idle kept-alive connection is closed after this. httplib answers a request that stalls
  // mid-header with a 400 and then waits this long on the connection, so a stalled client holds
  // a connection thread for read_timeout_seconds + keep_alive_seconds; keep it short.
  int keep_alive_seconds = 2;
  int http_threads = 48;  // connections served at once
  int threads = 0;        // compute threads, 0 = every core
  model::ResolveOptions resolve;
};

// A random access token (32 hex digits from the OS's entropy source).
std::string make_token();
// Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host);

class Server {
 public:
  // Loads every model and atlas (throws tokmap::Error naming the one at fault).
  explicit Server(ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket (throws when the address is taken); returns the port.
  int bind();
  // Serves until stop(); returns after the worker has finished or cancelled every job. The
  // destructor stops a server that is still running and waits for run() to return.
  void run();
  // From any thread (not from a signal handler): cancels the jobs and stops serving.
  void stop();
  // The page's address, with the token when there is one.
  std::string url() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tokmap::serve
