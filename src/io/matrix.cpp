#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "io/io.hpp"

namespace tokmap::io {

namespace {

// Finds `'key':` in a .npy header dict and returns the text after the colon.
std::string_view npy_field(std::string_view header, std::string_view key,
                           const std::string& where) {
  const std::string quoted_single = "'" + std::string(key) + "'";
  std::size_t at = header.find(quoted_single);
  if (at == std::string_view::npos) {
    throw Error(where + ": .npy header has no '" + std::string(key) + "' field");
  }
  at = header.find(':', at + quoted_single.size());
  if (at == std::string_view::npos) throw Error(where + ": .npy header is malformed");
  std::string_view rest = header.substr(at + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return rest;
}

std::uint64_t checked_bytes(std::uint64_t rows, std::uint64_t cols, std::uint64_t item,
                            const std::string& where) {
  if (cols != 0 && rows > std::numeric_limits<std::uint64_t>::max() / cols / item) {
    throw Error(where + ": shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
                ") overflows 64 bits");
  }
  return rows * cols * item;
}

void check_allocation(std::uint64_t bytes, const std::string& where) {
  if (bytes > max_input_bytes()) {
    throw Error(where + ": would need " + std::to_string(bytes) + " bytes, above the limit of " +
                std::to_string(max_input_bytes()) + " (set TOKMAP_MAX_BYTES to raise it)");
  }
}

}  // namespace

Matrix read_npy(const fs::path& path) {
  const std::string where = path.string();
  MappedFile file(path);
  const auto bytes = file.bytes();
  const char* base = reinterpret_cast<const char*>(bytes.data());
  if (bytes.size() < 10 || std::memcmp(base, "\x93NUMPY", 6) != 0) {
    throw Error(where + ": not a .npy file (missing the \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(base[6]);
  std::uint64_t header_length = 0;
  std::uint64_t header_start = 0;
  if (major == 1) {
    header_length =
        static_cast<unsigned char>(base[8]) | (static_cast<unsigned char>(base[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(where + ": truncated .npy header");
    std::uint32_t length32;
    std::memcpy(&length32, base + 8, 4);
    header_length = length32;
    header_start = 12;
  } else {
    throw Error(where + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_start + header_length > bytes.size()) {
    throw Error(where + ": .npy header length " + std::to_string(header_length) +
                " goes beyond the end of the file");
  }
  const std::string_view header(base + header_start, header_length);

  const std::string_view descr = npy_field(header, "descr", where);
  std::size_t item_size = 0;
  bool is_double = false;
  if (descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
    item_size = 4;
  } else if (descr.starts_with("'<f8'") || descr.starts_with("'float64'")) {
    item_size = 8;
    is_double = true;
  } else {
    const std::size_t end = descr.find_first_of(",}");
    throw Error(where + ": unsupported dtype " + std::string(descr.substr(0, end)) +
                " (expected little-endian float32 '<f4' or float64 '<f8')");
  }
  if (npy_field(header, "fortran_order", where).starts_with("True")) {
    throw Error(where + ": Fortran-ordered arrays are not supported (save with C order)");
  }
  std::string_view shape = npy_field(header, "shape", where);
  if (shape.empty() || shape.front() != '(') throw Error(where + ": .npy shape is malformed");
  const std::size_t close = shape.find(')');
  if (close == std::string_view::npos) throw Error(where + ": .npy shape is malformed");
  shape = shape.substr(1, close - 1);
  std::vector<std::uint64_t> dims;
  while (!shape.empty()) {
    while (!shape.empty() && (shape.front() == ' ' || shape.front() == ',')) shape.remove_prefix(1);
    if (shape.empty()) break;
    std::uint64_t value = 0;
    const auto [next, error] = std::from_chars(shape.data(), shape.data() + shape.size(), value);
    if (error != std::errc()) throw Error(where + ": .npy shape is malformed");
    dims.push_back(value);
    shape.remove_prefix(static_cast<std::size_t>(next - shape.data()));
    while (!shape.empty() && shape.front() == 'L') shape.remove_prefix(1);
  }
  if (dims.size() != 2) {
    throw Error(where + ": expected a 2-D array (rows, columns), found " +
                std::to_string(dims.size()) + " dimension(s)");
  }
  if (dims[1] == 0 && dims[0] > 0) {
    // (n, 0) holds no data whatever n claims; refuse it rather than carry a huge empty shape.
    throw Error(where + ": the array has " + std::to_string(dims[0]) + " rows but no columns");
  }
  const std::uint64_t data_bytes = checked_bytes(dims[0], dims[1], item_size, where);
  const std::uint64_t data_start = header_start + header_length;
  if (bytes.size() - data_start < data_bytes) {
    throw Error(where + ": truncated: shape (" + std::to_string(dims[0]) + ", " +
                std::to_string(dims[1]) + ") needs " + std::to_string(data_bytes) +
                " data bytes, file has " + std::to_string(bytes.size() - data_start));
  }
  check_allocation(checked_bytes(dims[0], dims[1], sizeof(float), where), where);
  Matrix matrix;
  matrix.rows = dims[0];
  matrix.cols = dims[1];
  matrix.data.resize(matrix.rows * matrix.cols);
  const char* data = base + data_start;
  if (is_double) {
    for (std::size_t i = 0; i < matrix.data.size(); ++i) {
      double value;
      std::memcpy(&value, data + 8 * i, 8);
      matrix.data[i] = static_cast<float>(value);
    }
  } else if (!matrix.data.empty()) {
    std::memcpy(matrix.data.data(), data, matrix.data.size() * sizeof(float));
  }
  return matrix;
}

void write_npy(const fs::path& path, const Matrix& matrix) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(matrix.rows) + ", " + std::to_string(matrix.cols) + "), }";
  // Pad so that magic + length + header + '\n' is a multiple of 64 bytes (NumPy's alignment).
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string prefix = "\x93NUMPY";
  prefix.push_back('\x01');
  prefix.push_back('\x00');
  prefix.push_back(static_cast<char>(header.size() & 0xff));
  prefix.push_back(static_cast<char>(header.size() >> 8));
  AtomicFile file(path);
  file.write(prefix);
  file.write(header);
  file.write(std::as_bytes(std::span<const float>(matrix.data)));
  file.commit();
}

Matrix read_delimited(const fs::path& path, char delimiter) {
  const std::string where = path.string();
  MappedFile file(path);
  std::string_view text = file.text();
  Matrix matrix;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    std::size_t columns = 0;
    while (true) {
      const std::size_t cut = line.find(delimiter);
      std::string_view field = line.substr(0, cut);
      while (!field.empty() && field.front() == ' ') field.remove_prefix(1);
      while (!field.empty() && field.back() == ' ') field.remove_suffix(1);
      float value = 0;
      const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
      if (field.empty() || end != field.data() + field.size() ||
          (error != std::errc() && error != std::errc::result_out_of_range)) {
        throw Error(where + ": line " + std::to_string(line_number) + ", column " +
                    std::to_string(columns + 1) + ": '" + std::string(field.substr(0, 40)) +
                    "' is not a number");
      }
      matrix.data.push_back(value);
      ++columns;
      if (cut == std::string_view::npos) break;
      line.remove_prefix(cut + 1);
    }
    if (matrix.rows == 0) {
      matrix.cols = columns;
    } else if (columns != matrix.cols) {
      throw Error(where + ": line " + std::to_string(line_number) + " has " +
                  std::to_string(columns) + " columns, the first row has " +
                  std::to_string(matrix.cols));
    }
    ++matrix.rows;
  }
  return matrix;
}

void write_delimited(const fs::path& path, const Matrix& matrix, char delimiter) {
  std::string text;
  text.reserve(matrix.rows * matrix.cols * 12);
  char buffer[32];
  for (std::size_t i = 0; i < matrix.rows; ++i) {
    for (std::size_t j = 0; j < matrix.cols; ++j) {
      if (j > 0) text.push_back(delimiter);
      const auto result = std::to_chars(buffer, buffer + sizeof buffer, matrix.row(i)[j]);
      text.append(buffer, result.ptr);
    }
    text.push_back('\n');
  }
  write_file_atomically(path, text);
}

std::size_t first_non_finite(std::span<const float> values) {
  constexpr std::uint32_t kExponent = 0x7f800000u;  // all ones: Inf or NaN
  constexpr std::size_t kBlock = 4096;
  const std::size_t n = values.size();
  for (std::size_t begin = 0; begin < n; begin += kBlock) {
    const std::size_t end = std::min(n, begin + kBlock);
    std::uint32_t bad = 0;
    for (std::size_t i = begin; i < end; ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, &values[i], sizeof bits);
      bad |= static_cast<std::uint32_t>((bits & kExponent) == kExponent);
    }
    if (bad != 0) {
      for (std::size_t i = begin; i < end; ++i) {
        if (!std::isfinite(values[i])) return i;
      }
    }
  }
  return n;
}

void check_finite(const Matrix& matrix, const fs::path& path, std::string_view what) {
  // Walks the data, not rows x cols: a claimed shape never drives the loop.
  const std::size_t at = first_non_finite(matrix.data);
  if (at == matrix.data.size()) return;
  throw Error(path.string() + ": " + (what.empty() ? "" : std::string(what) + ", ") + "row " +
              std::to_string(at / matrix.cols + 1) + ", column " +
              std::to_string(at % matrix.cols + 1) + " is " +
              (std::isnan(matrix.data[at]) ? "NaN" : "infinite") + "; t-SNE needs finite values");
}

}  // namespace tokmap::io
