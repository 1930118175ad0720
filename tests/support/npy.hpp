#pragma once
// A float32/float64 .npy reader of any rank for tests (io::read_npy reads 2-D matrices only).
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tokmap::test_support {

struct NdArray {
  std::vector<std::size_t> shape;
  std::vector<float> data;  // row-major
};

inline NdArray read_npy_any(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    throw std::runtime_error(path.string() + ": not a .npy file");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length =
        static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_start = 10;
  } else {
    std::uint32_t n;
    std::memcpy(&n, bytes.data() + 8, 4);
    header_length = n;
    header_start = 12;
  }
  const std::string header = bytes.substr(header_start, header_length);
  const bool f8 = header.find("'<f8'") != std::string::npos;
  if (!f8 && header.find("'<f4'") == std::string::npos) {
    throw std::runtime_error(path.string() + ": expected <f4 or <f8");
  }
  if (header.find("'fortran_order': False") == std::string::npos) {
    throw std::runtime_error(path.string() + ": expected C order");
  }
  NdArray array;
  const std::size_t open = header.find('(', header.find("'shape'"));
  const std::size_t close = header.find(')', open);
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  std::string item;
  std::size_t count = 1;
  while (std::getline(dims, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    array.shape.push_back(std::stoul(item));
    count *= array.shape.back();
  }
  const char* data = bytes.data() + header_start + header_length;
  if (bytes.size() < header_start + header_length + count * (f8 ? 8 : 4)) {
    throw std::runtime_error(path.string() + ": truncated");
  }
  array.data.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (f8) {
      double v;
      std::memcpy(&v, data + 8 * i, 8);
      array.data[i] = static_cast<float>(v);
    } else {
      std::memcpy(&array.data[i], data + 4 * i, 4);
    }
  }
  return array;
}

}  // namespace tokmap::test_support
