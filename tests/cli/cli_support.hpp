#pragma once
// Running the tokmap binary from tests: exit code, stdout, stderr, and temp folders.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace tokmap::cli_test {

namespace fs = std::filesystem;

inline const fs::path kData = TOKMAP_TEST_DATA;
inline const fs::path kModels = TOKMAP_MODELS_DIR;

using tokmap::test_support::TempDir;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string quote(const std::string& arg) {
  std::string quoted = "'";
  for (const char c : arg) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

inline std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline Result run_tokmap(const std::vector<std::string>& args,
                         const std::string& environment = "") {
  static TempDir io_dir;
  std::string command = environment + " " + quote(TOKMAP_BINARY);
  for (const auto& arg : args) command += " " + quote(arg);
  command += " >" + quote((io_dir / "out").string()) + " 2>" + quote((io_dir / "err").string()) +
             " </dev/null";
  const int status = std::system(command.c_str());
  Result result;
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = slurp(io_dir / "out");
  result.err = slurp(io_dir / "err");
  return result;
}

inline void write(const fs::path& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

// One line on stderr starting with "tokmap: error:", containing `what`.
inline void expect_error(const Result& r, int code, const std::string& what) {
  EXPECT_EQ(r.code, code) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("tokmap: error: "));
  EXPECT_THAT(r.err, ::testing::HasSubstr(what));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace tokmap::cli_test
