// GGUF files (llama.cpp, Ollama, LM Studio): the parser, validated against the file's own bounds,
// and the model loader, which turns GGUF metadata into a Config (through the Hugging Face
// config.json fields, so one set of checks serves both) and llama.cpp's tensor names into the
// Hugging Face names weights.cpp checks.
//
// Layout (GGUF v2/v3, little-endian; https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
//   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count × { string key, u32 type, value },      string = u64 length + bytes (no NUL)
//   tensor_count × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
//   padding to general.alignment (default 32), then the tensor data; each offset is relative to
//   the data start and a multiple of the alignment. ne[0] is the innermost (contiguous) extent.
// Version 1 (u32 counts and lengths) predates 2023-08 and is refused.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "io/io.hpp"
#include "model/weights_internal.hpp"

namespace tokmap::model {

namespace {

using json = nlohmann::json;

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayDepth = 4;             // arrays of arrays nest at most this deep
constexpr std::uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr std::uint64_t kMaxAlignment = 1u << 20;

// ggml's tensor types (ggml.h enum ggml_type) with their block sizes, so that the size of every
// tensor can be checked even when tokmap does not convert its type.
struct GgmlType {
  std::uint32_t id;
  std::string_view name;
  std::uint64_t block_values;
  std::uint64_t block_bytes;
  bool supported;
  WeightType type;
};
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4, true, WeightType::f32},
    {1, "F16", 1, 2, true, WeightType::f16},
    {2, "Q4_0", 32, 18, true, WeightType::q4_0},
    {3, "Q4_1", 32, 20, false, WeightType::f32},
    {6, "Q5_0", 32, 22, false, WeightType::f32},
    {7, "Q5_1", 32, 24, false, WeightType::f32},
    {8, "Q8_0", 32, 34, true, WeightType::q8_0},
    {9, "Q8_1", 32, 36, false, WeightType::f32},
    {10, "Q2_K", 256, 84, false, WeightType::f32},
    {11, "Q3_K", 256, 110, false, WeightType::f32},
    {12, "Q4_K", 256, 144, true, WeightType::q4_k},
    {13, "Q5_K", 256, 176, true, WeightType::q5_k},
    {14, "Q6_K", 256, 210, true, WeightType::q6_k},
    {15, "Q8_K", 256, 292, false, WeightType::f32},
    {16, "IQ2_XXS", 256, 66, false, WeightType::f32},
    {17, "IQ2_XS", 256, 74, false, WeightType::f32},
    {18, "IQ3_XXS", 256, 98, false, WeightType::f32},
    {19, "IQ1_S", 256, 50, false, WeightType::f32},
    {20, "IQ4_NL", 32, 18, false, WeightType::f32},
    {21, "IQ3_S", 256, 110, false, WeightType::f32},
    {22, "IQ2_S", 256, 82, false, WeightType::f32},
    {23, "IQ4_XS", 256, 136, false, WeightType::f32},
    {24, "I8", 1, 1, false, WeightType::f32},
    {25, "I16", 1, 2, false, WeightType::f32},
    {26, "I32", 1, 4, false, WeightType::f32},
    {27, "I64", 1, 8, false, WeightType::f32},
    {28, "F64", 1, 8, true, WeightType::f64},
    {29, "IQ1_M", 256, 56, false, WeightType::f32},
    {30, "BF16", 1, 2, true, WeightType::bf16},
    {34, "TQ1_0", 256, 54, false, WeightType::f32},
    {35, "TQ2_0", 256, 66, false, WeightType::f32},
    {39, "MXFP4", 32, 17, false, WeightType::f32},
};

const GgmlType* find_ggml_type(std::uint32_t id) {
  for (const auto& t : kGgmlTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) return false;
  out = a + b;
  return true;
}

// Reads the header front to back; every read checks the remaining bytes first.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& where)
      : bytes_(bytes), where_(where) {}

  std::uint64_t offset() const { return offset_; }
  std::uint64_t remaining() const { return bytes_.size() - offset_; }

  [[noreturn]] void fail(std::uint64_t at, const std::string& what) const {
    throw Error(where_ + ": " + what + " (at byte offset " + std::to_string(at) + ")");
  }

  template <typename T>
  T scalar(const char* what) {
    if (remaining() < sizeof(T)) {
      fail(offset_, std::string("truncated: ") + what + " needs " + std::to_string(sizeof(T)) +
                        " bytes, the file has " + std::to_string(remaining()) + " left");
    }
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }

  std::string string(const std::string& what) {
    const std::uint64_t at = offset_;
    const auto length = scalar<std::uint64_t>((what + " length").c_str());
    if (length > remaining()) {
      fail(at, what + ": string length " + std::to_string(length) + " exceeds the " +
                   std::to_string(remaining()) + " bytes left in the file");
    }
    std::string text(reinterpret_cast<const char*>(bytes_.data() + offset_), length);
    offset_ += length;
    return text;
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& where_;
  std::uint64_t offset_ = 0;
};

std::uint64_t scalar_size(GgufType type) {
  switch (type) {
    case GgufType::u8:
    case GgufType::i8:
    case GgufType::boolean:
      return 1;
    case GgufType::u16:
    case GgufType::i16:
      return 2;
    case GgufType::u32:
    case GgufType::i32:
    case GgufType::f32:
      return 4;
    case GgufType::u64:
    case GgufType::i64:
    case GgufType::f64:
      return 8;
    default:
      return 0;
  }
}

bool valid_type(std::uint32_t type) { return type <= 12; }

// One scalar of `type` into integer/number; booleans must be 0 or 1.
void read_scalar(Reader& r, GgufType type, const std::string& key, std::int64_t& integer,
                 double& number) {
  const std::uint64_t at = r.offset();
  switch (type) {
    case GgufType::u8:
      integer = r.scalar<std::uint8_t>(key.c_str());
      break;
    case GgufType::i8:
      integer = r.scalar<std::int8_t>(key.c_str());
      break;
    case GgufType::u16:
      integer = r.scalar<std::uint16_t>(key.c_str());
      break;
    case GgufType::i16:
      integer = r.scalar<std::int16_t>(key.c_str());
      break;
    case GgufType::u32:
      integer = r.scalar<std::uint32_t>(key.c_str());
      break;
    case GgufType::i32:
      integer = r.scalar<std::int32_t>(key.c_str());
      break;
    case GgufType::u64: {
      const auto v = r.scalar<std::uint64_t>(key.c_str());
      integer = v > std::uint64_t(std::numeric_limits<std::int64_t>::max())
                    ? std::numeric_limits<std::int64_t>::max()
                    : std::int64_t(v);
      break;
    }
    case GgufType::i64:
      integer = r.scalar<std::int64_t>(key.c_str());
      break;
    case GgufType::boolean: {
      const auto v = r.scalar<std::uint8_t>(key.c_str());
      if (v > 1)
        r.fail(at, "key '" + key + "': bool value " + std::to_string(v) + " is not 0 or 1");
      integer = v;
      break;
    }
    case GgufType::f32:
      number = r.scalar<float>(key.c_str());
      return;
    case GgufType::f64:
      number = r.scalar<double>(key.c_str());
      return;
    default:
      r.fail(at, "key '" + key + "': not a scalar type");
  }
  number = double(integer);
}

void read_value(Reader& r, GgufType type, const std::string& key, GgufValue& value, int depth) {
  value.type = type;
  value.offset = r.offset();
  if (type == GgufType::string) {
    value.string = r.string("key '" + key + "'");
    return;
  }
  if (type != GgufType::array) {
    read_scalar(r, type, key, value.integer, value.number);
    return;
  }
  const std::uint64_t at = r.offset();
  const auto element = r.scalar<std::uint32_t>(("key '" + key + "' array type").c_str());
  if (!valid_type(element)) {
    r.fail(at, "key '" + key + "': array of unknown type " + std::to_string(element));
  }
  value.element_type = GgufType(element);
  const std::uint64_t count_at = r.offset();
  value.count = r.scalar<std::uint64_t>(("key '" + key + "' array length").c_str());
  // Every element takes at least this many bytes, so a length the file cannot hold is refused
  // before anything is allocated.
  const std::uint64_t min_size = value.element_type == GgufType::string ? 8
                                 : value.element_type == GgufType::array
                                     ? 12
                                     : scalar_size(value.element_type);
  std::uint64_t need = 0;
  if (!checked_mul(value.count, min_size, need) || need > r.remaining()) {
    r.fail(count_at, "key '" + key + "': array length " + std::to_string(value.count) +
                         " does not fit in the " + std::to_string(r.remaining()) +
                         " bytes left in the file");
  }
  if (value.element_type == GgufType::array) {
    if (depth + 1 >= kMaxArrayDepth) {
      r.fail(at, "key '" + key + "': arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    }
    GgufValue inner;
    for (std::uint64_t i = 0; i < value.count; ++i) {
      read_value(r, GgufType::array, key, inner, depth + 1);
    }
    return;
  }
  if (value.element_type == GgufType::string) {
    value.strings.reserve(value.count);
    for (std::uint64_t i = 0; i < value.count; ++i) {
      value.strings.push_back(r.string("key '" + key + "' element " + std::to_string(i)));
    }
    return;
  }
  const bool floats = value.element_type == GgufType::f32 || value.element_type == GgufType::f64;
  (floats ? value.numbers.reserve(value.count) : value.integers.reserve(value.count));
  for (std::uint64_t i = 0; i < value.count; ++i) {
    std::int64_t integer = 0;
    double number = 0;
    read_scalar(r, value.element_type, key, integer, number);
    if (floats) {
      value.numbers.push_back(number);
    } else {
      value.integers.push_back(integer);
    }
  }
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                "i32", "f32", "bool", "string", "array",
                                                "u64", "i64", "f64"};
  const auto index = static_cast<std::uint32_t>(type);
  return index < std::size(kNames) ? kNames[index] : "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::u8:
    case GgufType::i8:
    case GgufType::u16:
    case GgufType::i16:
    case GgufType::u32:
    case GgufType::i32:
    case GgufType::u64:
    case GgufType::i64:
      return true;
    default:
      return false;
  }
}

GgufFile::GgufFile(const fs::path& path)
    : file_(std::make_unique<io::MappedFile>(path)), bytes_(file_->bytes()), where_(path.string()) {
  parse();
}

GgufFile::GgufFile(std::span<const std::byte> bytes, std::string where)
    : bytes_(bytes), where_(std::move(where)) {
  parse();
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufFile::TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::span<const std::byte> GgufFile::data(const TensorInfo& tensor) const {
  return bytes_.subspan(tensor.data_offset, tensor.size);
}

void GgufFile::parse() {
  Reader r(bytes_, where_);
  if (bytes_.size() < 4 || r.scalar<std::uint32_t>("magic") != kMagic) {
    throw Error(where_ + ": not a GGUF file (it does not start with \"GGUF\")");
  }
  version_ = r.scalar<std::uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    const bool swapped = version_ == 0x02000000u || version_ == 0x03000000u;
    r.fail(
        4,
        "GGUF version " + std::to_string(version_) + " is not supported (tokmap reads 2 and 3" +
            (swapped ? "; this looks like a big-endian file, which tokmap does not read)" : ")"));
  }
  const std::uint64_t tensor_count_at = r.offset();
  const auto tensor_count = r.scalar<std::uint64_t>("tensor count");
  const std::uint64_t kv_count_at = r.offset();
  const auto kv_count = r.scalar<std::uint64_t>("metadata count");
  // The smallest key/value entry: an empty key (8), its type (4), a one-byte value.
  std::uint64_t need = 0;
  if (!checked_mul(kv_count, 13, need) || need > r.remaining()) {
    r.fail(kv_count_at, "metadata count " + std::to_string(kv_count) +
                            " does not fit in the file (" + std::to_string(bytes_.size()) +
                            " bytes)");
  }
  metadata_.reserve(kv_count);
  std::set<std::string> keys;
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    const std::uint64_t at = r.offset();
    std::string key = r.string("metadata key " + std::to_string(i));
    if (!keys.insert(key).second) r.fail(at, "metadata key '" + key + "' appears twice");
    const std::uint64_t type_at = r.offset();
    const auto type = r.scalar<std::uint32_t>(("key '" + key + "' type").c_str());
    if (!valid_type(type)) {
      r.fail(type_at, "key '" + key + "' has unknown value type " + std::to_string(type));
    }
    GgufValue value;
    read_value(r, GgufType(type), key, value, 0);
    metadata_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->integer <= 0 || a->integer > std::int64_t(kMaxAlignment) ||
        (a->integer & (a->integer - 1)) != 0) {
      r.fail(a->offset, "general.alignment must be a power of two up to " +
                            std::to_string(kMaxAlignment) + ", found " +
                            (a->is_integer() ? std::to_string(a->integer)
                                             : std::string(gguf_type_name(a->type))));
    }
    alignment_ = std::uint64_t(a->integer);
  }

  // The smallest tensor entry: empty name (8), n_dims (4), one dim (8), type (4), offset (8).
  if (!checked_mul(tensor_count, 32, need) || need > r.remaining()) {
    r.fail(tensor_count_at, "tensor count " + std::to_string(tensor_count) +
                                " does not fit in the file (" + std::to_string(bytes_.size()) +
                                " bytes)");
  }
  tensors_.reserve(tensor_count);
  std::set<std::string> names;
  std::vector<std::uint64_t> offsets;  // relative, checked once the data start is known
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo t;
    t.info_offset = r.offset();
    t.name = r.string("tensor " + std::to_string(i) + " name");
    const std::string what = "tensor '" + t.name + "'";
    if (!names.insert(t.name).second) r.fail(t.info_offset, what + " appears twice");
    const std::uint64_t dims_at = r.offset();
    const auto n_dims = r.scalar<std::uint32_t>((what + " dimension count").c_str());
    if (n_dims == 0 || n_dims > kMaxDims) {
      r.fail(dims_at, what + ": " + std::to_string(n_dims) + " dimensions (expected 1 to " +
                          std::to_string(kMaxDims) + ")");
    }
    std::uint64_t numel = 1;
    std::vector<std::uint64_t> ne(n_dims);
    for (auto& n : ne) {
      const std::uint64_t at = r.offset();
      n = r.scalar<std::uint64_t>((what + " dimension").c_str());
      if (n == 0 || n > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ||
          !checked_mul(numel, n, numel) ||
          numel > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
        r.fail(at, what + ": dimension " + std::to_string(n) +
                       (n == 0 ? " is zero" : " makes the element count overflow"));
      }
    }
    t.shape.assign(ne.rbegin(), ne.rend());
    const std::uint64_t type_at = r.offset();
    t.ggml_type = r.scalar<std::uint32_t>((what + " type").c_str());
    const GgmlType* type = find_ggml_type(t.ggml_type);
    if (type == nullptr) {
      r.fail(type_at, what + " has unknown ggml type " + std::to_string(t.ggml_type));
    }
    t.type_name = type->name;
    t.supported = type->supported;
    t.type = type->type;
    if (ne[0] % type->block_values != 0) {
      r.fail(dims_at, what + " of type " + std::string(type->name) + " has rows of " +
                          std::to_string(ne[0]) + " values, not a multiple of its block size " +
                          std::to_string(type->block_values));
    }
    if (!checked_mul(numel / type->block_values, type->block_bytes, t.size)) {
      r.fail(dims_at, what + ": byte size overflows");
    }
    const std::uint64_t offset_at = r.offset();
    const auto offset = r.scalar<std::uint64_t>((what + " offset").c_str());
    if (offset % alignment_ != 0) {
      r.fail(offset_at, what + ": data offset " + std::to_string(offset) +
                            " is not a multiple of the alignment " + std::to_string(alignment_));
    }
    offsets.push_back(offset);
    tensors_.push_back(std::move(t));
  }

  // Data start: the end of the header rounded up to the alignment.
  const std::uint64_t header_end = r.offset();
  data_start_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (data_start_ > bytes_.size() && !tensors_.empty()) {
    r.fail(header_end, "truncated: the tensor data (from byte " + std::to_string(data_start_) +
                           ") starts beyond the end of the file (" + std::to_string(bytes_.size()) +
                           " bytes)");
  }
  const std::uint64_t data_size = bytes_.size() > data_start_ ? bytes_.size() - data_start_ : 0;
  std::vector<std::pair<std::uint64_t, std::size_t>> order;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    TensorInfo& t = tensors_[i];
    std::uint64_t end = 0;
    if (!checked_add(offsets[i], t.size, end) || end > data_size) {
      r.fail(t.info_offset, "tensor '" + t.name + "': data [" + std::to_string(offsets[i]) + ", +" +
                                std::to_string(t.size) + ") relative to the data start (byte " +
                                std::to_string(data_start_) +
                                ") goes beyond the end of the file (" +
                                std::to_string(bytes_.size()) + " bytes)");
    }
    t.data_offset = data_start_ + offsets[i];
    order.emplace_back(offsets[i], i);
  }
  // Tensors may not overlap (a corrupt table could otherwise alias one tensor's data as another).
  std::sort(order.begin(), order.end());
  for (std::size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& before = tensors_[order[k - 1].second];
    const TensorInfo& t = tensors_[order[k].second];
    if (order[k - 1].first + before.size > order[k].first) {
      r.fail(t.info_offset, "tensor '" + t.name + "' overlaps tensor '" + before.name + "'");
    }
  }
}

bool is_gguf_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  const io::MappedFile file(path);
  const auto bytes = file.bytes();
  return bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0;
}

// ---------------------------------------------------------------------------------------------
// GGUF → Config and tensor names

namespace {

// Reads the metadata of one architecture, naming GGUF's own keys in errors.
struct Meta {
  const GgufFile& file;
  std::string arch;

  const GgufValue* find(const std::string& suffix) const { return file.find(arch + "." + suffix); }
  [[noreturn]] void fail(const GgufValue* v, const std::string& key,
                         const std::string& what) const {
    throw Error(file.where() + ": metadata '" + key + "' " + what +
                (v != nullptr ? " (at byte offset " + std::to_string(v->offset) + ")" : ""));
  }
  std::int64_t integer(const std::string& suffix, std::int64_t fallback, std::int64_t min,
                       std::int64_t max, bool required) const {
    const std::string key = arch + "." + suffix;
    const GgufValue* v = file.find(key);
    if (v == nullptr) {
      if (required) fail(nullptr, key, "is missing (needed for architecture " + arch + ")");
      return fallback;
    }
    if (v->type == GgufType::array) {
      // Per-layer values (OpenELM-style) are supported only when all layers agree.
      if (v->integers.empty()) fail(v, key, "is an empty or non-integer array");
      if (std::adjacent_find(v->integers.begin(), v->integers.end(), std::not_equal_to<>()) !=
          v->integers.end()) {
        fail(v, key, "differs between layers, which tokmap does not support");
      }
      return check_range(v, key, v->integers.front(), min, max);
    }
    if (!v->is_integer())
      fail(v, key, "must be an integer, found " + std::string(gguf_type_name(v->type)));
    return check_range(v, key, v->integer, min, max);
  }
  std::int64_t check_range(const GgufValue* v, const std::string& key, std::int64_t value,
                           std::int64_t min, std::int64_t max) const {
    if (value < min || value > max) {
      fail(v, key,
           "is " + std::to_string(value) + ", expected " + std::to_string(min) + ".." +
               std::to_string(max));
    }
    return value;
  }
  double number(const std::string& suffix, double fallback, double min, double max) const {
    const std::string key = arch + "." + suffix;
    const GgufValue* v = file.find(key);
    if (v == nullptr) return fallback;
    if (!v->is_float() && !v->is_integer()) fail(v, key, "must be a number");
    if (!std::isfinite(v->number) || v->number < min || v->number > max) {
      fail(v, key, "is " + std::to_string(v->number) + ", out of range");
    }
    return v->number;
  }
  bool boolean(const std::string& suffix, bool fallback) const {
    const std::string key = arch + "." + suffix;
    const GgufValue* v = file.find(key);
    if (v == nullptr) return fallback;
    if (v->type != GgufType::boolean) fail(v, key, "must be a bool");
    return v->integer != 0;
  }
  std::string string(const std::string& suffix, const std::string& fallback) const {
    const std::string key = arch + "." + suffix;
    const GgufValue* v = file.find(key);
    if (v == nullptr) return fallback;
    if (v->type != GgufType::string) fail(v, key, "must be a string");
    return v->string;
  }
};

// llama.cpp architecture names → Hugging Face model_type.
constexpr std::pair<std::string_view, std::string_view> kGgufArchitectures[] = {
    {"llama", "llama"},        {"qwen2", "qwen2"},      {"qwen3", "qwen3"},
    {"phi3", "phi3"},          {"gemma", "gemma"},      {"gemma2", "gemma2"},
    {"gemma3", "gemma3_text"}, {"gptneox", "gpt_neox"}, {"bert", "bert"},
};

// How a llama.cpp tensor name becomes a Hugging Face one: "blk.N." + `gguf` → `hf` with N in
// place of {}, or a whole name when `block` is false.
struct NameRule {
  bool block;
  std::string_view gguf;
  std::string_view hf;
};

constexpr NameRule kLlamaNames[] = {
    {false, "token_embd.weight", "model.embed_tokens.weight"},
    {false, "output_norm.weight", "model.norm.weight"},
    {false, "output.weight", "lm_head.weight"},
    {true, "attn_norm.weight", "input_layernorm.weight"},
    {true, "attn_q.weight", "self_attn.q_proj.weight"},
    {true, "attn_k.weight", "self_attn.k_proj.weight"},
    {true, "attn_v.weight", "self_attn.v_proj.weight"},
    {true, "attn_q.bias", "self_attn.q_proj.bias"},
    {true, "attn_k.bias", "self_attn.k_proj.bias"},
    {true, "attn_v.bias", "self_attn.v_proj.bias"},
    {true, "attn_qkv.weight", "self_attn.qkv_proj.weight"},
    {true, "attn_q_norm.weight", "self_attn.q_norm.weight"},
    {true, "attn_k_norm.weight", "self_attn.k_norm.weight"},
    {true, "attn_output.weight", "self_attn.o_proj.weight"},
    {true, "attn_output.bias", "self_attn.o_proj.bias"},
    {true, "ffn_gate.weight", "mlp.gate_proj.weight"},
    {true, "ffn_up.weight", "mlp.up_proj.weight"},
    {true, "ffn_down.weight", "mlp.down_proj.weight"},
    {true, "ffn_gate.bias", "mlp.gate_proj.bias"},
    {true, "ffn_up.bias", "mlp.up_proj.bias"},
    {true, "ffn_down.bias", "mlp.down_proj.bias"},
};
// Norm names that depend on the architecture's block arrangement.
constexpr NameRule kPlainNorms[] = {
    {true, "ffn_norm.weight", "post_attention_layernorm.weight"},
};
constexpr NameRule kSandwichNorms[] = {
    {true, "post_attention_norm.weight", "post_attention_layernorm.weight"},
    {true, "ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {true, "post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
};
// Phi-3 fuses gate and up into ffn_up.
constexpr NameRule kPhi3Names[] = {
    {true, "ffn_up.weight", "mlp.gate_up_proj.weight"},
};
constexpr NameRule kNeoxNames[] = {
    {false, "token_embd.weight", "gpt_neox.embed_in.weight"},
    {false, "output_norm.weight", "gpt_neox.final_layer_norm.weight"},
    {false, "output_norm.bias", "gpt_neox.final_layer_norm.bias"},
    {false, "output.weight", "embed_out.weight"},
    {true, "attn_norm.weight", "input_layernorm.weight"},
    {true, "attn_norm.bias", "input_layernorm.bias"},
    {true, "attn_qkv.weight", "attention.query_key_value.weight"},
    {true, "attn_qkv.bias", "attention.query_key_value.bias"},
    {true, "attn_output.weight", "attention.dense.weight"},
    {true, "attn_output.bias", "attention.dense.bias"},
    {true, "ffn_norm.weight", "post_attention_layernorm.weight"},
    {true, "ffn_norm.bias", "post_attention_layernorm.bias"},
    {true, "ffn_up.weight", "mlp.dense_h_to_4h.weight"},
    {true, "ffn_up.bias", "mlp.dense_h_to_4h.bias"},
    {true, "ffn_down.weight", "mlp.dense_4h_to_h.weight"},
    {true, "ffn_down.bias", "mlp.dense_4h_to_h.bias"},
};
constexpr NameRule kBertNames[] = {
    {false, "token_embd.weight", "bert.embeddings.word_embeddings.weight"},
    {false, "position_embd.weight", "bert.embeddings.position_embeddings.weight"},
    {false, "token_types.weight", "bert.embeddings.token_type_embeddings.weight"},
    {false, "token_embd_norm.weight", "bert.embeddings.LayerNorm.weight"},
    {false, "token_embd_norm.bias", "bert.embeddings.LayerNorm.bias"},
    {true, "attn_q.weight", "attention.self.query.weight"},
    {true, "attn_q.bias", "attention.self.query.bias"},
    {true, "attn_k.weight", "attention.self.key.weight"},
    {true, "attn_k.bias", "attention.self.key.bias"},
    {true, "attn_v.weight", "attention.self.value.weight"},
    {true, "attn_v.bias", "attention.self.value.bias"},
    {true, "attn_output.weight", "attention.output.dense.weight"},
    {true, "attn_output.bias", "attention.output.dense.bias"},
    {true, "attn_output_norm.weight", "attention.output.LayerNorm.weight"},
    {true, "attn_output_norm.bias", "attention.output.LayerNorm.bias"},
    {true, "ffn_up.weight", "intermediate.dense.weight"},
    {true, "ffn_up.bias", "intermediate.dense.bias"},
    {true, "ffn_down.weight", "output.dense.weight"},
    {true, "ffn_down.bias", "output.dense.bias"},
    {true, "layer_output_norm.weight", "output.LayerNorm.weight"},
    {true, "layer_output_norm.bias", "output.LayerNorm.bias"},
};

struct NameMap {
  std::vector<NameRule> rules;
  std::string block_prefix;  // Hugging Face prefix of block N, with {} for N

  // The Hugging Face name of a GGUF tensor, or empty when tokmap has no use for it.
  std::string to_hf(const std::string& name) const {
    std::string rest = name;
    std::string layer;
    if (name.starts_with("blk.")) {
      const auto dot = name.find('.', 4);
      if (dot == std::string::npos || dot == 4) return {};
      layer = name.substr(4, dot - 4);
      if (!std::all_of(layer.begin(), layer.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
          layer.size() > 6 || (layer.size() > 1 && layer[0] == '0')) {
        return {};
      }
      rest = name.substr(dot + 1);
    }
    // Later rules override earlier ones (architecture-specific names come last).
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
      if (it->block != !layer.empty() || it->gguf != rest) continue;
      if (!it->block) return std::string(it->hf);
      std::string prefix = block_prefix;
      prefix.replace(prefix.find("{}"), 2, layer);
      return prefix + std::string(it->hf);
    }
    return {};
  }
  // The GGUF name of a Hugging Face one (for messages about missing tensors).
  std::string to_gguf(const std::string& hf) const {
    for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
      if (!it->block) {
        if (it->hf == hf) return std::string(it->gguf);
        continue;
      }
      const auto open = block_prefix.find("{}");
      const std::string head = block_prefix.substr(0, open), tail = block_prefix.substr(open + 2);
      if (!hf.starts_with(head) || !hf.ends_with(it->hf)) continue;
      const std::string middle = hf.substr(head.size(), hf.size() - head.size() - it->hf.size());
      if (middle.size() <= tail.size() || !middle.ends_with(tail)) continue;
      return "blk." + middle.substr(0, middle.size() - tail.size()) + "." + std::string(it->gguf);
    }
    return hf;
  }
};

template <std::size_t N>
void add_rules(NameMap& map, const NameRule (&rules)[N]) {
  map.rules.insert(map.rules.end(), std::begin(rules), std::end(rules));
}

NameMap name_map(Architecture arch, bool sandwich) {
  NameMap map;
  switch (arch) {
    case Architecture::gpt_neox:
      add_rules(map, kNeoxNames);
      map.block_prefix = "gpt_neox.layers.{}.";
      break;
    case Architecture::bert:
      add_rules(map, kBertNames);
      map.block_prefix = "bert.encoder.layer.{}.";
      break;
    default:
      add_rules(map, kLlamaNames);
      if (sandwich) {
        add_rules(map, kSandwichNorms);
      } else {
        add_rules(map, kPlainNorms);
      }
      if (arch == Architecture::phi3) add_rules(map, kPhi3Names);
      map.block_prefix = "model.layers.{}.";
      break;
  }
  return map;
}

// The Hugging Face config.json fields of a GGUF file's metadata; parse_config checks them.
json config_fields(const Meta& m, const std::string& model_type, const GgufFile& file) {
  json c;
  c["model_type"] = model_type;
  const std::int64_t kMax = 1 << 24;
  const auto n_embd = m.integer("embedding_length", 0, 1, kMax, true);
  const auto n_layer = m.integer("block_count", 0, 1, 1 << 16, true);
  const auto n_head = m.integer("attention.head_count", 0, 1, 1 << 16, true);
  const auto n_kv_head = m.integer("attention.head_count_kv", n_head, 1, 1 << 16, false);
  const auto n_inner = m.integer("feed_forward_length", 0, 1, kMax, true);
  const auto context = m.integer("context_length", 2048, 1, std::int64_t(1) << 30, false);
  // vocab_size is often absent: the embedding's rows are the vocabulary.
  std::int64_t vocab = 0;
  if (const auto* embd = file.find_tensor("token_embd.weight"); embd && embd->shape.size() == 2) {
    vocab = embd->shape[0];
  }
  vocab = m.integer("vocab_size", vocab, 1, std::int64_t(1) << 31, vocab == 0);
  c["hidden_size"] = n_embd;
  c["num_hidden_layers"] = n_layer;
  c["num_attention_heads"] = n_head;
  c["intermediate_size"] = n_inner;
  c["vocab_size"] = vocab;
  c["max_position_embeddings"] = context;
  c["num_key_value_heads"] = n_kv_head;

  const std::string arch = m.arch;
  if (arch == "gptneox") {
    c["layer_norm_eps"] = m.number("attention.layer_norm_epsilon", 1e-5, 0.0, 1.0);
    c["hidden_act"] = "gelu";
    c["use_parallel_residual"] = m.boolean("use_parallel_residual", true);
    c["attention_bias"] = file.find_tensor("blk.0.attn_qkv.bias") != nullptr;
    c["rotary_emb_base"] = m.number("rope.freq_base", 10000.0, 0.0, 1e12);
    c["rotary_pct"] = 1.0;  // rotary_dim is set from rope.dimension_count afterwards
    return c;
  }
  if (arch == "bert") {
    c["layer_norm_eps"] = m.number("attention.layer_norm_epsilon", 1e-12, 0.0, 1.0);
    c["hidden_act"] = "gelu";
    if (const GgufValue* v = file.find("tokenizer.ggml.token_type_count")) {
      if (!v->is_integer() || v->integer < 1 || v->integer > (1 << 16)) {
        m.fail(v, "tokenizer.ggml.token_type_count", "must be an integer in 1..65536");
      }
      c["type_vocab_size"] = v->integer;
    }
    if (m.boolean("attention.causal", false)) {
      m.fail(m.find("attention.causal"), arch + ".attention.causal",
             "is true; tokmap runs BERT as a bidirectional encoder");
    }
    return c;
  }
  // The Llama family.
  c["rms_norm_eps"] = m.number("attention.layer_norm_rms_epsilon", 1e-6, 0.0, 1.0);
  c["rope_theta"] = m.number("rope.freq_base", 10000.0, 0.0, 1e12);
  const auto key_length = m.integer("attention.key_length", 0, 0, 1 << 16, false);
  const auto value_length = m.integer("attention.value_length", key_length, 0, 1 << 16, false);
  if (key_length != value_length) {
    m.fail(m.find("attention.value_length"), arch + ".attention.value_length",
           "differs from attention.key_length, which tokmap does not support");
  }
  if (key_length > 0) c["head_dim"] = key_length;
  const bool has_bias = file.find_tensor("blk.0.attn_output.bias") != nullptr ||
                        (arch != "qwen2" && file.find_tensor("blk.0.attn_q.bias") != nullptr);
  c["attention_bias"] = has_bias;
  c["mlp_bias"] = file.find_tensor("blk.0.ffn_down.bias") != nullptr;
  const std::string scaling = m.string("rope.scaling.type", "none");
  if (scaling == "linear") {
    c["rope_scaling"] = {{"rope_type", "linear"},
                         {"factor", m.number("rope.scaling.factor", 1.0, 0.0, 1e6)}};
  } else if (scaling != "none") {
    m.fail(m.find("rope.scaling.type"), arch + ".rope.scaling.type",
           "is '" + scaling + "'; tokmap supports none and linear (and llama3 through rope_freqs)");
  }
  if (arch == "gemma" || arch == "gemma2") c["hidden_activation"] = "gelu_pytorch_tanh";
  if (arch == "gemma2") {
    const auto window =
        m.integer("attention.sliding_window", 4096, 1, std::int64_t(1) << 30, false);
    c["sliding_window"] = window;
    const auto pattern = m.integer("attention.sliding_window_pattern", 2, 1, 1 << 16, false);
    json types = json::array();
    for (std::int64_t l = 0; l < n_layer; ++l) {
      types.push_back(l % pattern < pattern - 1 ? "sliding_attention" : "full_attention");
    }
    c["layer_types"] = types;
    c["attn_logit_softcapping"] = m.number("attn_logit_softcapping", 0.0, 0.0, 1e9);
    // llama.cpp scales queries by 1/sqrt(key_length), except Gemma 2 27B (46 blocks), whose
    // query_pre_attn_scalar is hidden_size / heads.
    const std::int64_t head = key_length > 0 ? key_length : n_embd / n_head;
    c["query_pre_attn_scalar"] = n_layer == 46 ? n_embd / n_head : head;
  }
  if (arch == "gemma3") {
    c["hidden_activation"] = "gelu_pytorch_tanh";
    // As llama.cpp reads them: no window (or 0) means every layer attends fully; otherwise
    // layer l slides unless l % pattern == pattern - 1 (pattern 6 when absent).
    const auto window = m.integer("attention.sliding_window", 0, 0, std::int64_t(1) << 30, false);
    const auto pattern = m.integer("attention.sliding_window_pattern", 6, 1, 1 << 16, false);
    json types = json::array();
    for (std::int64_t l = 0; l < n_layer; ++l) {
      types.push_back(window > 0 && l % pattern < pattern - 1 ? "sliding_attention"
                                                              : "full_attention");
    }
    c["layer_types"] = types;
    c["sliding_window"] = window > 0 ? window : context;
    c["rope_local_base_freq"] = m.number("rope.freq_base_swa", 10000.0, 0.0, 1e12);
    // llama.cpp scales queries by 1/sqrt(key_length), except Gemma 3 27B (62 blocks):
    // 1/sqrt(hidden_size / heads).
    const std::int64_t head = key_length > 0 ? key_length : n_embd / n_head;
    c["query_pre_attn_scalar"] = n_layer == 62 ? n_embd / n_head : head;
  }
  if (arch == "phi3" || arch == "qwen2" || arch == "qwen3") {
    // llama.cpp runs these without a sliding window (phi3 writes 0 or its training window).
    c["sliding_window"] = nullptr;
  }
  return c;
}

}  // namespace

Model load_gguf(const fs::path& path) {
  auto storage = std::make_unique<ModelStorage>();
  storage->path = path;
  storage->gguf = std::make_unique<GgufFile>(path);
  const GgufFile& file = *storage->gguf;
  const std::string& where = file.where();

  const GgufValue* arch_value = file.find("general.architecture");
  if (arch_value == nullptr || arch_value->type != GgufType::string) {
    throw Error(where + ": metadata 'general.architecture' is missing or not a string");
  }
  const std::string arch = arch_value->string;
  std::string model_type;
  std::string names;
  for (const auto& [gguf_name, hf_name] : kGgufArchitectures) {
    if (gguf_name == arch) model_type = hf_name;
    names += (names.empty() ? "" : ", ") + std::string(gguf_name);
  }
  if (model_type.empty()) {
    throw Error(where + ": GGUF architecture '" + arch +
                "' (general.architecture, at byte offset " + std::to_string(arch_value->offset) +
                ") is not supported (tokmap reads: " + names + ")");
  }
  const Meta meta{file, arch};
  const std::string config_where = where + " (GGUF metadata)";
  Config config = parse_config(config_fields(meta, model_type, file).dump(), config_where);
  // llama.cpp's bert takes token types as optional (DistilBERT GGUFs have none): type 0 adds 0.
  if (config.architecture == Architecture::bert &&
      file.find_tensor("token_types.weight") == nullptr) {
    config.type_vocab_size = 0;
  }

  // What the Hugging Face fields cannot say.
  const auto rotary =
      meta.integer("rope.dimension_count", config.head_dim, 2, config.head_dim, false);
  if (config.learned_positions == false) {
    if (rotary % 2 != 0) {
      meta.fail(meta.find("rope.dimension_count"), arch + ".rope.dimension_count", "must be even");
    }
    config.rotary_dim = int(rotary);
  }
  // llama.cpp's converter stores Gemma's RMSNorm weights as 1 + w.
  config.norm_adds_one = false;

  NameMap map = name_map(config.architecture, config.sandwich_norms);
  TensorTable& table = storage->table;
  table.where = where;
  table.config_name = "the GGUF metadata";
  table.supported_types = "F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K";
  table.describe = [map](const std::string& hf) { return map.to_gguf(hf); };
  for (const auto& info : file.tensors()) {
    if (info.name == "rope_freqs.weight") {
      // llama3 rope scaling as llama.cpp's converter writes it: one divisor per frequency.
      if (info.shape.size() != 1 || info.shape[0] != config.rotary_dim / 2 || info.ggml_type != 0) {
        throw Error(where + ": tensor 'rope_freqs.weight' (at byte offset " +
                    std::to_string(info.info_offset) + ") must be F32 of shape [" +
                    std::to_string(config.rotary_dim / 2) + "], found " +
                    std::string(info.type_name) + " " + shape_text(info.shape));
      }
      const auto bytes = file.data(info);
      for (std::int64_t i = 0; i < info.shape[0]; ++i) {
        float f;
        std::memcpy(&f, bytes.data() + 4 * i, 4);
        if (!std::isfinite(f) || f <= 0) {
          throw Error(where + ": tensor 'rope_freqs.weight' value " + std::to_string(i) +
                      " is not a positive number");
        }
        config.rope.freq_factors.push_back(f);
      }
      config.rope_local.freq_factors = config.rope.freq_factors;
      continue;
    }
    const std::string hf = map.to_hf(info.name);
    if (hf.empty()) continue;
    Tensor tensor;
    tensor.name = info.name;
    tensor.file = where;
    tensor.shape = info.shape;
    tensor.type = info.type;
    tensor.bytes = info.supported ? file.data(info) : std::span<const std::byte>{};
    table.unsupported_dtype[info.name] = info.supported ? "" : std::string(info.type_name);
    table.tensors[hf] = std::move(tensor);
  }
  // llama.cpp's converter permutes Llama's q and k rows per head to Meta's interleaved RoPE
  // order; the forward pass pairs dimensions as Hugging Face does, so they are put back.
  if (config.architecture == Architecture::llama) {
    for (int l = 0; l < config.n_layer; ++l) {
      const std::string h = "model.layers." + std::to_string(l) + ".self_attn.";
      for (const auto& [name, heads] : {std::pair{h + "q_proj.weight", config.n_head},
                                        std::pair{h + "k_proj.weight", config.n_kv_head},
                                        std::pair{h + "q_proj.bias", config.n_head},
                                        std::pair{h + "k_proj.bias", config.n_kv_head}}) {
        const auto it = table.tensors.find(name);
        if (it == table.tensors.end()) continue;
        if (it->second.shape.empty() || it->second.shape[0] % (2 * std::int64_t(heads)) != 0) {
          throw Error(where + ": tensor '" + it->second.name + "' has " +
                      shape_text(it->second.shape) + " rows, not a whole number of heads");
        }
        it->second.unpermute_heads = heads;
      }
    }
  }

  ModelBuilder builder(config, table);
  builder.build();
  // llama.cpp's converter regroups GPT-NeoX's per-head query_key_value into [q | k | v].
  builder.model.qkv_per_head = false;
  return builder.release(std::move(storage));
}

}  // namespace tokmap::model
