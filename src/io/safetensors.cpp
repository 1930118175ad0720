#include <algorithm>
#include <cstring>
#include <limits>

#include "io/io.hpp"
#include "io/json.hpp"

namespace tokmap::io {

namespace {

using json = nlohmann::json;

// The safetensors reference implementation refuses headers above 100 MB; so do we.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeEntry* find_dtype(std::string_view name) {
  for (const auto& entry : kDTypes) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

template <typename T>
T load_le(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

}  // namespace

std::string_view dtype_name(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  return "?";
}

std::size_t dtype_size(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry.size;
  }
  return 0;
}

std::uint64_t TensorInfo::numel() const {
  std::uint64_t count = 1;
  for (const auto dim : shape) count *= static_cast<std::uint64_t>(dim);
  return count;
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : file_(path) {
  const std::string where = path.string();
  const auto bytes = file_.bytes();
  if (bytes.size() < 8) {
    throw Error(where + ": not a safetensors file: " + std::to_string(bytes.size()) +
                " bytes, shorter than the 8-byte header length");
  }
  const auto header_length = load_le<std::uint64_t>(bytes.data());
  if (header_length > bytes.size() - 8) {
    throw Error(where + ": truncated or corrupt: header length " + std::to_string(header_length) +
                " at offset 0 goes beyond the end of the file (" + std::to_string(bytes.size()) +
                " bytes)");
  }
  if (header_length > kMaxHeaderBytes) {
    throw Error(where + ": header length " + std::to_string(header_length) +
                " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  }
  data_offset_ = 8 + header_length;
  const std::uint64_t data_size = bytes.size() - data_offset_;
  const std::string_view header_text(reinterpret_cast<const char*>(bytes.data()) + 8,
                                     header_length);

  const json header = parse_json(
      header_text, where + ": header (offset 8, " + std::to_string(header_length) + " bytes)");
  if (!header.is_object()) throw Error(where + ": header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw Error(where + ": __metadata__ is not a JSON object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          throw Error(where + ": __metadata__ value '" + m.key() + "' is not a string");
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string context = where + ": tensor '" + name + "'";
    if (!entry.is_object()) throw Error(context + ": entry is not a JSON object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      throw Error(context + ": missing or non-string 'dtype'");
    }
    if (shape_it == entry.end() || !shape_it->is_array()) {
      throw Error(context + ": missing or non-array 'shape'");
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      throw Error(context + ": 'data_offsets' must be an array [begin, end]");
    }
    const auto* dtype = find_dtype(dtype_it->get_ref<const std::string&>());
    if (dtype == nullptr) {
      throw Error(context + ": unknown dtype '" + dtype_it->get<std::string>() +
                  "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
    }
    TensorInfo tensor;
    tensor.name = name;
    tensor.dtype = dtype->dtype;
    std::uint64_t expected_bytes = dtype->size;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned() && !(dim.is_number_integer() && dim.get<std::int64_t>() >= 0)) {
        throw Error(context + ": shape has a value that is not a non-negative integer");
      }
      const std::uint64_t value = dim.get<std::uint64_t>();
      if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (value != 0 && expected_bytes > std::numeric_limits<std::uint64_t>::max() / value)) {
        throw Error(context + ": shape overflows 64 bits");
      }
      expected_bytes *= value;
      tensor.shape.push_back(static_cast<std::int64_t>(value));
    }
    for (const auto& offset : *offsets_it) {
      if (!offset.is_number_unsigned() &&
          !(offset.is_number_integer() && offset.get<std::int64_t>() >= 0)) {
        throw Error(context + ": data_offsets must be non-negative integers");
      }
    }
    tensor.begin = (*offsets_it)[0].get<std::uint64_t>();
    tensor.end = (*offsets_it)[1].get<std::uint64_t>();
    if (tensor.end < tensor.begin) {
      throw Error(context + ": data_offsets [" + std::to_string(tensor.begin) + ", " +
                  std::to_string(tensor.end) + "] end before they begin");
    }
    if (tensor.end > data_size) {
      throw Error(context + ": data_offsets [" + std::to_string(tensor.begin) + ", " +
                  std::to_string(tensor.end) + "] beyond the data section (" +
                  std::to_string(data_size) + " bytes at file offset " +
                  std::to_string(data_offset_) + "); file truncated?");
    }
    if (tensor.end - tensor.begin != expected_bytes) {
      throw Error(context + ": " + std::string(dtype->name) + " " + shape_text(tensor.shape) +
                  " needs " + std::to_string(expected_bytes) + " bytes but data_offsets span " +
                  std::to_string(tensor.end - tensor.begin));
    }
    tensors_.push_back(std::move(tensor));
  }

  std::vector<const TensorInfo*> by_offset;
  for (const auto& tensor : tensors_) by_offset.push_back(&tensor);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& previous = *by_offset[i - 1];
    const TensorInfo& current = *by_offset[i];
    if (current.begin < previous.end) {
      throw Error(where + ": tensors '" + previous.name + "' and '" + current.name +
                  "' overlap (data offsets " + std::to_string(previous.begin) + "-" +
                  std::to_string(previous.end) + " and " + std::to_string(current.begin) + "-" +
                  std::to_string(current.end) + ")");
    }
  }
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  for (const auto& tensor : tensors_) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

const TensorInfo& SafetensorsFile::get(std::string_view name) const {
  if (const auto* tensor = find(name)) return *tensor;
  throw Error(path().string() + ": tensor '" + std::string(name) + "' is missing");
}

std::span<const std::byte> SafetensorsFile::raw(const TensorInfo& tensor) const {
  return file_.bytes().subspan(data_offset_ + tensor.begin, tensor.end - tensor.begin);
}

void SafetensorsFile::to_f32(const TensorInfo& tensor, std::span<float> out) const {
  const std::uint64_t count = tensor.numel();
  if (out.size() != count) {
    throw Error(path().string() + ": tensor '" + tensor.name + "': output holds " +
                std::to_string(out.size()) + " values, tensor has " + std::to_string(count));
  }
  const std::byte* src = raw(tensor).data();
  switch (tensor.dtype) {
    case DType::F32:
      if (count > 0) std::memcpy(out.data(), src, count * sizeof(float));
      return;
    case DType::F64:
      for (std::uint64_t i = 0; i < count; ++i) {
        out[i] = static_cast<float>(load_le<double>(src + 8 * i));
      }
      return;
    case DType::F16:
      for (std::uint64_t i = 0; i < count; ++i)
        out[i] = f16_to_f32(load_le<std::uint16_t>(src + 2 * i));
      return;
    case DType::BF16:
      for (std::uint64_t i = 0; i < count; ++i)
        out[i] = bf16_to_f32(load_le<std::uint16_t>(src + 2 * i));
      return;
    default:
      throw Error(path().string() + ": tensor '" + tensor.name + "' has dtype " +
                  std::string(dtype_name(tensor.dtype)) + "; expected F32, F16, BF16 or F64");
  }
}

std::vector<float> SafetensorsFile::to_f32(const TensorInfo& tensor) const {
  if (tensor.numel() * sizeof(float) > max_input_bytes()) {
    throw Error(path().string() + ": tensor '" + tensor.name + "' would need " +
                std::to_string(tensor.numel() * sizeof(float)) +
                " bytes as float32, above the limit of " + std::to_string(max_input_bytes()) +
                " (set TOKMAP_MAX_BYTES to raise it)");
  }
  std::vector<float> out(tensor.numel());
  to_f32(tensor, out);
  return out;
}

std::vector<std::int64_t> SafetensorsFile::to_i64(const TensorInfo& tensor) const {
  const std::uint64_t count = tensor.numel();
  const std::byte* src = raw(tensor).data();
  std::vector<std::int64_t> out(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    switch (tensor.dtype) {
      case DType::I64:
        out[i] = load_le<std::int64_t>(src + 8 * i);
        break;
      case DType::I32:
        out[i] = load_le<std::int32_t>(src + 4 * i);
        break;
      case DType::I16:
        out[i] = load_le<std::int16_t>(src + 2 * i);
        break;
      case DType::I8:
        out[i] = load_le<std::int8_t>(src + i);
        break;
      case DType::U8:
        out[i] = load_le<std::uint8_t>(src + i);
        break;
      default:
        throw Error(path().string() + ": tensor '" + tensor.name + "' has dtype " +
                    std::string(dtype_name(tensor.dtype)) + "; expected an integer dtype");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

SafetensorsWriter::SafetensorsWriter(fs::path path) : path_(std::move(path)) {}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

void SafetensorsWriter::declare(std::string name, DType dtype, std::vector<std::int64_t> shape) {
  TensorInfo tensor;
  tensor.name = std::move(name);
  tensor.dtype = dtype;
  tensor.shape = std::move(shape);
  tensor.begin = tensors_.empty() ? 0 : tensors_.back().end;
  tensor.end = tensor.begin + tensor.numel() * dtype_size(dtype);
  tensors_.push_back(std::move(tensor));
}

void SafetensorsWriter::begin() {
  json header = json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  for (const auto& tensor : tensors_) {
    header[tensor.name] = {{"dtype", dtype_name(tensor.dtype)},
                           {"shape", tensor.shape},
                           {"data_offsets", {tensor.begin, tensor.end}}};
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::uint64_t length = text.size();
  data_offset_ = 8 + length;
  file_ = std::make_unique<AtomicFile>(path_);
  std::byte prefix[8];
  std::memcpy(prefix, &length, 8);
  file_->write(std::span<const std::byte>(prefix, 8));
  file_->write(text);
  file_->resize(data_offset_ + (tensors_.empty() ? 0 : tensors_.back().end));
}

void SafetensorsWriter::write(std::string_view name, std::uint64_t element_offset,
                              std::span<const std::byte> data) {
  for (const auto& tensor : tensors_) {
    if (tensor.name != name) continue;
    const std::uint64_t byte_offset = element_offset * dtype_size(tensor.dtype);
    if (byte_offset + data.size() > tensor.end - tensor.begin) {
      throw Error(path_.string() + ": write past the end of tensor '" + tensor.name + "'");
    }
    file_->pwrite(data_offset_ + tensor.begin + byte_offset, data);
    return;
  }
  throw Error(path_.string() + ": tensor '" + std::string(name) + "' was not declared");
}

void SafetensorsWriter::write(std::string_view name, std::uint64_t element_offset,
                              std::span<const float> data) {
  check_dtype(name, DType::F32);
  write(name, element_offset, std::as_bytes(data));
}

void SafetensorsWriter::write(std::string_view name, std::uint64_t element_offset,
                              std::span<const std::int64_t> data) {
  check_dtype(name, DType::I64);
  write(name, element_offset, std::as_bytes(data));
}

// Typed writes must match the declared dtype: float values in an I64 tensor would be silent
// garbage in the file.
void SafetensorsWriter::check_dtype(std::string_view name, DType dtype) const {
  for (const auto& tensor : tensors_) {
    if (tensor.name == name && tensor.dtype != dtype) {
      throw Error(path_.string() + ": tensor '" + tensor.name + "' is " +
                  std::string(dtype_name(tensor.dtype)) + ", cannot write " +
                  std::string(dtype_name(dtype)) + " values into it");
    }
  }
}

void SafetensorsWriter::commit() { file_->commit(); }

}  // namespace tokmap::io
