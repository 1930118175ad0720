// tokmap serve on arbitrary request bytes: one server (bundled model, tight limits) on a
// loopback port for the whole run; each input is sent as raw bytes on a fresh connection. The
// server must answer or close, never crash, and still answer a health check afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "serve/serve.hpp"

namespace {

int port = 0;

void start_server() {
  static std::unique_ptr<tokmap::serve::Server> server;
  tokmap::serve::ServeOptions options;
  options.port = 0;
  options.resolve.bundled_dirs = {std::filesystem::path(TOKMAP_FUZZ_MODEL_DIR).parent_path()};
  options.atlases = {std::filesystem::path(TOKMAP_FUZZ_MODEL_DIR).parent_path().parent_path() /
                     "samples" / "austen.tokmap-atlas"};
  options.read_timeout_seconds = 0.2;
  options.keep_alive_seconds = 0;  // each connection ends after its answer
  options.max_text_bytes = 300;
  options.max_iterations = 30;
  options.job_seconds = 2;
  options.threads = 1;
  server = std::make_unique<tokmap::serve::Server>(options);
  port = server->bind();
  std::thread([] { server->run(); }).detach();
}

// Sends bytes and reads until the server closes (after its answer, or after the read timeout
// for an incomplete request); returns what came back. (No half-close: cpp-httplib takes a
// half-closed connection for a gone client and does not answer.)
std::string exchange(const std::uint8_t* data, std::size_t size) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) std::abort();
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < size) {
    const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string reply;
  char buffer[4096];
  for (;;) {
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool started = (start_server(), true);
  (void)started;
  exchange(data, size);
  static int count = 0;
  if (++count % 64 == 0) {
    const std::string health =
        "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    const std::string reply =
        exchange(reinterpret_cast<const std::uint8_t*>(health.data()), health.size());
    if (reply.rfind("HTTP/1.1 200", 0) != 0) {  // the server stopped serving
      std::fprintf(stderr, "fuzz_serve: health check answered: %.300s\n", reply.c_str());
      std::abort();
    }
  }
  return 0;
}
