#pragma once
// The one exception type of the tokmap library. `main` catches it once; nothing in the
// library prints or exits. Messages are one line and name the file/tensor/offset at fault.
#include <stdexcept>
#include <string>

namespace tokmap {

enum class ErrorKind {
  runtime,    // bad input file, I/O failure, numeric failure: exit code 1
  usage,      // bad flag values detected by the library (e.g. --layers out of range): exit code 2
  cancelled,  // the caller asked the work to stop (a server's cancel button, Ctrl-C in Python)
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::runtime)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace tokmap
