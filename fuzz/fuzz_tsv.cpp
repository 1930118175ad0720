// TSV/CSV reader on arbitrary bytes (the first byte picks the delimiter).
#include "fuzz/fuzz_support.hpp"
#include "io/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto path = tokmap::fuzz::scratch_file(".tsv");
  if (size == 0) return 0;
  const char delimiter = (data[0] & 1) ? ',' : '\t';
  tokmap::fuzz::write_input(path, data + 1, size - 1);
  try {
    const auto matrix = tokmap::io::read_delimited(path, delimiter);
    if (matrix.data.size() != matrix.rows * matrix.cols) std::abort();
  } catch (const tokmap::Error&) {
  }
  return 0;
}
