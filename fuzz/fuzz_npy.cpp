// .npy reader on arbitrary bytes.
#include "fuzz/fuzz_support.hpp"
#include "io/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = tokmap::fuzz::scratch_file(".npy");
  tokmap::fuzz::write_input(path, data, size);
  try {
    const auto matrix = tokmap::io::read_npy(path);
    if (matrix.data.size() != matrix.rows * matrix.cols) std::abort();
    tokmap::io::check_finite(matrix, path);
  } catch (const tokmap::Error&) {
  }
  return 0;
}
