#pragma once
// A minimal GGUF v3 writer for tests: metadata of the common types and tensors given as raw bytes
// in ggml's layout (shape outermost first, as tokmap's Tensor has it; written as ne[] reversed).
// `copy_gguf` rewrites an existing file tensor by tensor.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "model/model.hpp"

namespace tokmap::test_support {

class GgufWriter {
 public:
  std::uint32_t version = 3;
  std::uint64_t alignment = 32;

  void u32(const std::string& key, std::uint32_t v) { scalar(key, 4, &v, 4); }
  void i32(const std::string& key, std::int32_t v) { scalar(key, 5, &v, 4); }
  void f32(const std::string& key, float v) { scalar(key, 6, &v, 4); }
  void boolean(const std::string& key, bool v) {
    const std::uint8_t b = v ? 1 : 0;
    scalar(key, 7, &b, 1);
  }
  void string(const std::string& key, const std::string& v) {
    key_header(key, 8);
    put_string(meta_, v);
  }
  void strings(const std::string& key, const std::vector<std::string>& v) {
    key_header(key, 9);
    put(meta_, std::uint32_t(8));
    put(meta_, std::uint64_t(v.size()));
    for (const auto& s : v) put_string(meta_, s);
  }
  void f32s(const std::string& key, const std::vector<float>& v) {
    array(key, 6, v.data(), 4, v.size());
  }
  void i32s(const std::string& key, const std::vector<std::int32_t>& v) {
    array(key, 5, v.data(), 4, v.size());
  }
  // Copies a metadata value of any type from a parsed file (arrays of arrays excepted).
  void value(const std::string& key, const model::GgufValue& v) {
    using T = model::GgufType;
    switch (v.type) {
      case T::string:
        return string(key, v.string);
      case T::f32:
        return f32(key, float(v.number));
      case T::boolean:
        return boolean(key, v.integer != 0);
      case T::array:
        if (v.element_type == T::string) return strings(key, v.strings);
        if (v.element_type == T::f32) return f32s(key, {v.numbers.begin(), v.numbers.end()});
        return i32s(key, {v.integers.begin(), v.integers.end()});
      case T::i32:
        return i32(key, std::int32_t(v.integer));
      default:
        return u32(key, std::uint32_t(v.integer));
    }
  }

  void tensor(const std::string& name, std::vector<std::int64_t> shape, std::uint32_t ggml_type,
              const void* data, std::size_t size) {
    tensors_.push_back(
        {name, std::move(shape), ggml_type, std::string(static_cast<const char*>(data), size)});
  }

  std::string bytes() const {
    std::string out;
    put(out, std::uint32_t(0x46554747));
    put(out, version);
    put(out, std::uint64_t(tensors_.size()));
    put(out, std::uint64_t(count_));
    out += meta_;
    std::uint64_t offset = 0;
    std::vector<std::uint64_t> offsets;
    for (const auto& t : tensors_) {
      put_string(out, t.name);
      put(out, std::uint32_t(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put(out, std::uint64_t(*it));
      put(out, t.type);
      put(out, offset);
      offsets.push_back(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
    const std::size_t start = out.size();
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      out.resize(start + offsets[i], '\0');
      out += tensors_[i].data;
    }
    return out;
  }

  void write(const std::filesystem::path& path) const {
    std::ofstream(path, std::ios::binary) << bytes();
  }

 private:
  struct Entry {
    std::string name;
    std::vector<std::int64_t> shape;
    std::uint32_t type;
    std::string data;
  };
  template <typename T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void put_string(std::string& out, const std::string& s) {
    put(out, std::uint64_t(s.size()));
    out += s;
  }
  void key_header(const std::string& key, std::uint32_t type) {
    put_string(meta_, key);
    put(meta_, type);
    ++count_;
  }
  void scalar(const std::string& key, std::uint32_t type, const void* v, std::size_t n) {
    key_header(key, type);
    meta_.append(static_cast<const char*>(v), n);
  }
  void array(const std::string& key, std::uint32_t type, const void* v, std::size_t size,
             std::size_t n) {
    key_header(key, 9);
    put(meta_, type);
    put(meta_, std::uint64_t(n));
    meta_.append(static_cast<const char*>(v), size * n);
  }
  std::string meta_;
  std::size_t count_ = 0;
  std::vector<Entry> tensors_;
};

// One tensor of a file being copied: its name, shape, type and bytes, which `rewrite` may change.
struct GgufTensorCopy {
  std::string name;
  std::vector<std::int64_t> shape;
  std::uint32_t ggml_type;
  std::string data;
};

// Copies `source` to `target`, passing every tensor through `rewrite`, and every metadata key
// through `keep` (false drops it).
inline void copy_gguf(const std::filesystem::path& source, const std::filesystem::path& target,
                      const std::function<void(GgufTensorCopy&)>& rewrite,
                      const std::function<bool(const std::string&)>& keep = {}) {
  const model::GgufFile file(source);
  GgufWriter w;
  for (const auto& [key, value] : file.metadata()) {
    if (keep && !keep(key)) continue;
    if (key == "general.alignment") continue;
    w.value(key, value);
  }
  for (const auto& t : file.tensors()) {
    const auto bytes = file.data(t);
    GgufTensorCopy copy{t.name, t.shape, t.ggml_type,
                        std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
    rewrite(copy);
    w.tensor(copy.name, copy.shape, copy.ggml_type, copy.data.data(), copy.data.size());
  }
  w.write(target);
}

}  // namespace tokmap::test_support
