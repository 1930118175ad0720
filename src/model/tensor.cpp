// Tensor types and their conversion to float32: plain floats, and ggml's quantised blocks
// (layouts as in ggml-common.h / ggml-quants.c of llama.cpp: block_q8_0, block_q4_0,
// block_q4_K, block_q5_K, block_q6_K).
#include <cmath>
#include <cstring>

#include "io/io.hpp"
#include "model/weights_internal.hpp"

namespace tokmap::model {

namespace {

struct TypeEntry {
  WeightType type;
  std::string_view name;
  std::size_t block_values;
  std::size_t block_bytes;
};
constexpr TypeEntry kTypes[] = {
    {WeightType::f32, "F32", 1, 4},       {WeightType::f16, "F16", 1, 2},
    {WeightType::bf16, "BF16", 1, 2},     {WeightType::f64, "F64", 1, 8},
    {WeightType::q8_0, "Q8_0", 32, 34},   {WeightType::q4_0, "Q4_0", 32, 18},
    {WeightType::q4_k, "Q4_K", 256, 144}, {WeightType::q5_k, "Q5_K", 256, 176},
    {WeightType::q6_k, "Q6_K", 256, 210},
};

const TypeEntry& entry(WeightType type) {
  for (const auto& e : kTypes) {
    if (e.type == type) return e;
  }
  return kTypes[0];
}

std::uint16_t u16(const std::byte* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float f16(const std::byte* p) { return io::f16_to_f32(u16(p)); }

void dequant_q8_0(const std::byte* block, float* out) {
  const float d = f16(block);
  const auto* qs = reinterpret_cast<const std::int8_t*>(block + 2);
  for (int i = 0; i < 32; ++i) out[i] = d * float(qs[i]);
}

void dequant_q4_0(const std::byte* block, float* out) {
  const float d = f16(block);
  const auto* qs = reinterpret_cast<const std::uint8_t*>(block + 2);
  for (int j = 0; j < 16; ++j) {
    out[j] = d * float(int(qs[j] & 0x0F) - 8);
    out[j + 16] = d * float(int(qs[j] >> 4) - 8);
  }
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K super-block (get_scale_min_k4).
void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& scale, std::uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// block_q4_K: f16 d, f16 dmin, u8 scales[12], u8 qs[128].
void dequant_q4_k(const std::byte* block, float* out) {
  const float d = f16(block), dmin = f16(block + 2);
  const auto* scales = reinterpret_cast<const std::uint8_t*>(block + 4);
  const auto* q = reinterpret_cast<const std::uint8_t*>(block + 16);
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
    std::uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *out++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *out++ = d2 * float(q[l] >> 4) - m2;
  }
}

// block_q5_K: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128].
void dequant_q5_k(const std::byte* block, float* out) {
  const float d = f16(block), dmin = f16(block + 2);
  const auto* scales = reinterpret_cast<const std::uint8_t*>(block + 4);
  const auto* qh = reinterpret_cast<const std::uint8_t*>(block + 16);
  const auto* ql = reinterpret_cast<const std::uint8_t*>(block + 48);
  std::uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    std::uint8_t sc, m;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *out++ = d1 * float((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *out++ = d2 * float((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// block_q6_K: u8 ql[128], u8 qh[64], i8 scales[16], f16 d.
void dequant_q6_k(const std::byte* block, float* out) {
  const auto* ql = reinterpret_cast<const std::uint8_t*>(block);
  const auto* qh = reinterpret_cast<const std::uint8_t*>(block + 128);
  const auto* sc = reinterpret_cast<const std::int8_t*>(block + 192);
  const float d = f16(block + 208);
  for (int n = 0; n < 256; n += 128, out += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * float(sc[is + 0]) * float(q1);
      out[l + 32] = d * float(sc[is + 2]) * float(q2);
      out[l + 64] = d * float(sc[is + 4]) * float(q3);
      out[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

// Converts `count` values starting at a block boundary.
void convert(WeightType type, const std::byte* src, std::size_t count, float* out) {
  switch (type) {
    case WeightType::f32:
      std::memcpy(out, src, count * 4);
      return;
    case WeightType::f16:
#if defined(__F16C__) && defined(__FLT16_MAX__)  // clang 14 has no _Float16 on x86
      // The hardware conversion (vcvtph2ps) is exact, like io::f16_to_f32, and vectorises.
      for (std::size_t i = 0; i < count; ++i) {
        _Float16 h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = static_cast<float>(h);
      }
#else
      for (std::size_t i = 0; i < count; ++i) out[i] = io::f16_to_f32(u16(src + 2 * i));
#endif
      return;
    case WeightType::bf16:
      // bf16 is the top half of a float32 (io::bf16_to_f32), written inline so it vectorises.
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint32_t bits = std::uint32_t(u16(src + 2 * i)) << 16;
        std::memcpy(out + i, &bits, 4);
      }
      return;
    case WeightType::f64:
      for (std::size_t i = 0; i < count; ++i) {
        double v;
        std::memcpy(&v, src + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      return;
    default:
      break;
  }
  const TypeEntry& e = entry(type);
  for (std::size_t b = 0; b < count / e.block_values; ++b) {
    const std::byte* block = src + b * e.block_bytes;
    float* y = out + b * e.block_values;
    switch (type) {
      case WeightType::q8_0:
        dequant_q8_0(block, y);
        break;
      case WeightType::q4_0:
        dequant_q4_0(block, y);
        break;
      case WeightType::q4_k:
        dequant_q4_k(block, y);
        break;
      case WeightType::q5_k:
        dequant_q5_k(block, y);
        break;
      case WeightType::q6_k:
        dequant_q6_k(block, y);
        break;
      default:
        break;
    }
  }
}

}  // namespace

std::string_view weight_type_name(WeightType type) { return entry(type).name; }
std::size_t weight_block_values(WeightType type) { return entry(type).block_values; }
std::size_t weight_block_bytes(WeightType type) { return entry(type).block_bytes; }

void tensor_rows_to_f32(const Tensor& tensor, std::size_t row_begin, std::size_t row_count,
                        std::span<float> out) {
  const std::size_t row = tensor.shape.empty() ? 1 : std::size_t(tensor.shape.back());
  const std::size_t rows = row == 0 ? 0 : tensor.numel() / row;
  const TypeEntry& e = entry(tensor.type);
  const std::size_t row_bytes = row / e.block_values * e.block_bytes;
  if (row_begin + row_count > rows || out.size() != row_count * row ||
      tensor.bytes.size() < rows * row_bytes) {
    throw Error(tensor.file + ": tensor '" + tensor.name + "': rows " + std::to_string(row_begin) +
                "+" + std::to_string(row_count) + " out of range or output of the wrong size");
  }
  convert(tensor.type, tensor.bytes.data() + row_begin * row_bytes, row_count * row, out.data());
  if (tensor.type == WeightType::f32) return;  // checked on load
  const std::size_t at = io::first_non_finite(out);
  if (at != out.size()) {
    const std::size_t index = row_begin * row + at;
    throw Error(tensor.file + ": tensor '" + tensor.name + "' has a non-finite value (" +
                (std::isnan(out[at]) ? "NaN"
                 : out[at] > 0       ? "+Inf"
                                     : "-Inf") +
                ") at index " + std::to_string(index) + " (row " + std::to_string(index / row) +
                "); the weights are corrupt");
  }
}

void tensor_element_to_f32(const Tensor& tensor, std::size_t index, float& value) {
  const TypeEntry& e = entry(tensor.type);
  if (e.block_values != 1) {
    value = NAN;
    return;
  }
  convert(tensor.type, tensor.bytes.data() + index * e.block_bytes, 1, &value);
}

void unpermute_rope_rows(std::vector<float>& values, const Tensor& tensor) {
  // llama.cpp's convert_hf_to_gguf permute(): w.reshape(heads, 2, rows / heads / 2, ...)
  // .swapaxes(1, 2): GGUF row 2i (+1) of a head is Hugging Face row i (+ half).
  const std::size_t rows = std::size_t(tensor.shape.front());
  const std::size_t width = tensor.shape.size() > 1 ? values.size() / rows : 1;
  const std::size_t heads = std::size_t(tensor.unpermute_heads);
  const std::size_t per_head = rows / heads, half = per_head / 2;
  const std::vector<float> source = values;
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t i = 0; i < half; ++i) {
      for (int pair = 0; pair < 2; ++pair) {
        const std::size_t hf_row = h * per_head + std::size_t(pair) * half + i;
        const std::size_t gguf_row = h * per_head + 2 * i + std::size_t(pair);
        std::copy_n(source.data() + gguf_row * width, width, values.data() + hf_row * width);
      }
    }
  }
}

}  // namespace tokmap::model
