// ggml's quantised blocks (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) converted to float32: hand-built and
// random blocks against values computed by tests/data/model/quant/make_blocks.py (numpy, from
// the block layouts, not from this C++), and packing round trips: integers packed into a block
// come back as d * scale * q - dmin * min.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "io/io.hpp"
#include "model/model.hpp"
#include "support/error_of.hpp"
#include "support/npy.hpp"

namespace tokmap::model {
namespace {

const fs::path kQuant = fs::path(TOKMAP_TEST_DATA) / "model" / "quant";

std::uint16_t f16_bits(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  std::uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

// A tensor of `rows` rows over `bytes`.
Tensor tensor_over(const std::vector<std::byte>& bytes, WeightType type, std::int64_t rows,
                   std::int64_t width) {
  Tensor t;
  t.name = "t";
  t.file = "blocks";
  t.type = type;
  t.shape = {rows, width};
  t.bytes = bytes;
  return t;
}

std::vector<float> convert(const Tensor& t) {
  std::vector<float> out(t.numel());
  tensor_rows_to_f32(t, 0, std::size_t(t.shape[0]), out);
  return out;
}

struct BlockCase {
  const char* name;
  WeightType type;
  std::size_t block_values, block_bytes;
};

class QuantBlocks : public ::testing::TestWithParam<BlockCase> {};

TEST_P(QuantBlocks, MatchTheValuesTheLayoutDescriptionGives) {
  const BlockCase c = GetParam();
  EXPECT_EQ(weight_block_values(c.type), c.block_values);
  EXPECT_EQ(weight_block_bytes(c.type), c.block_bytes);
  const io::MappedFile file(kQuant / (std::string(c.name) + ".bin"));
  const std::vector<std::byte> bytes(file.bytes().begin(), file.bytes().end());
  const auto want = test_support::read_npy_any(kQuant / (std::string(c.name) + ".npy"));
  const std::size_t blocks = bytes.size() / c.block_bytes;
  ASSERT_EQ(bytes.size(), blocks * c.block_bytes);
  ASSERT_EQ(want.data.size(), blocks * c.block_values);
  // As one row per block, and as one long row.
  const Tensor per_block = tensor_over(bytes, c.type, std::int64_t(blocks), c.block_values);
  EXPECT_EQ(convert(per_block), want.data);
  const Tensor one_row = tensor_over(bytes, c.type, 1, std::int64_t(blocks * c.block_values));
  EXPECT_EQ(convert(one_row), want.data);
  // Rows picked out one at a time agree with the whole.
  for (std::size_t r = 0; r < blocks; ++r) {
    std::vector<float> row(c.block_values);
    tensor_rows_to_f32(per_block, r, 1, row);
    EXPECT_TRUE(std::equal(row.begin(), row.end(), want.data.begin() + r * c.block_values));
  }
  // Out-of-range rows are refused.
  std::vector<float> row(c.block_values);
  EXPECT_THROW(tensor_rows_to_f32(per_block, blocks, 1, row), Error);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantBlocks,
                         ::testing::Values(BlockCase{"Q8_0", WeightType::q8_0, 32, 34},
                                           BlockCase{"Q4_0", WeightType::q4_0, 32, 18},
                                           BlockCase{"Q4_K", WeightType::q4_k, 256, 144},
                                           BlockCase{"Q5_K", WeightType::q5_k, 256, 176},
                                           BlockCase{"Q6_K", WeightType::q6_k, 256, 210}),
                         [](const auto& info) { return std::string(info.param.name); });

template <typename T>
void put(std::vector<std::byte>& out, T v) {
  const std::size_t at = out.size();
  out.resize(at + sizeof v);
  std::memcpy(out.data() + at, &v, sizeof v);
}

// The 12 bytes of eight 6-bit scales and mins (the inverse of get_scale_min_k4).
void put_scales(std::vector<std::byte>& out, const int* sc, const int* m) {
  std::uint8_t s[12] = {};
  for (int j = 0; j < 4; ++j) {
    s[j] = std::uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = std::uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = std::uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
  for (auto b : s) put(out, b);
}

float f16_value(float f) { return io::f16_to_f32(f16_bits(f)); }

TEST(QuantRoundTrip, KQuantsReturnThePackedIntegers) {
  std::mt19937 rng(7);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 20; ++trial) {
    const float d = f16_value(std::ldexp(float(uniform(1, 1000)), -uniform(6, 14)));
    const float dmin = f16_value(std::ldexp(float(uniform(1, 1000)), -uniform(6, 14)));
    int sc[8], m[8], q[256], q6[256], sc6[16];
    for (int s = 0; s < 8; ++s) sc[s] = uniform(0, 63), m[s] = uniform(0, 63);
    for (int i = 0; i < 256; ++i) q[i] = uniform(0, 31), q6[i] = uniform(-32, 31);
    for (int s = 0; s < 16; ++s) sc6[s] = uniform(-128, 127);

    // Q4_K: value 64c + l (low nibble, sub-block 2c) / 64c + 32 + l (high nibble, 2c + 1).
    std::vector<std::byte> q4;
    put(q4, f16_bits(d));
    put(q4, f16_bits(dmin));
    put_scales(q4, sc, m);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        put(q4, std::uint8_t((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4)));
      }
    }
    // Q5_K: the same, with bit 4 of the value of sub-block s at bit s of qh[l].
    std::vector<std::byte> q5;
    put(q5, f16_bits(d));
    put(q5, f16_bits(dmin));
    put_scales(q5, sc, m);
    for (int l = 0; l < 32; ++l) {
      int bits = 0;
      for (int s = 0; s < 8; ++s) bits |= ((q[32 * s + l] >> 4) & 1) << s;
      put(q5, std::uint8_t(bits));
    }
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        put(q5, std::uint8_t((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4)));
      }
    }
    // Q6_K: halves of 128; value i of half n: low 4 bits in ql[64n + i % 64] (low nibble for
    // i < 64), high 2 bits at bit 2 * (i / 32) of qh[32n + i % 32]; stored as q + 32.
    std::uint8_t ql[128] = {}, qh[64] = {};
    for (int n = 0; n < 2; ++n) {
      for (int i = 0; i < 128; ++i) {
        const int u = q6[128 * n + i] + 32;
        ql[64 * n + i % 64] |= std::uint8_t((u & 15) << (i < 64 ? 0 : 4));
        qh[32 * n + i % 32] |= std::uint8_t((u >> 4) << (2 * (i / 32)));
      }
    }
    std::vector<std::byte> q6k;
    for (auto b : ql) put(q6k, b);
    for (auto b : qh) put(q6k, b);
    for (int s = 0; s < 16; ++s) put(q6k, std::int8_t(sc6[s]));
    put(q6k, f16_bits(d));

    const auto v4 = convert(tensor_over(q4, WeightType::q4_k, 1, 256));
    const auto v5 = convert(tensor_over(q5, WeightType::q5_k, 1, 256));
    const auto v6 = convert(tensor_over(q6k, WeightType::q6_k, 1, 256));
    for (int i = 0; i < 256; ++i) {
      const int s = i / 32;
      EXPECT_FLOAT_EQ(v4[i], d * float(sc[s]) * float(q[i] & 15) - dmin * float(m[s])) << i;
      EXPECT_FLOAT_EQ(v5[i], d * float(sc[s]) * float(q[i]) - dmin * float(m[s])) << i;
      EXPECT_FLOAT_EQ(v6[i], d * float(sc6[i / 16]) * float(q6[i])) << i;
    }
  }
}

TEST(QuantRoundTrip, Q8AndQ4QuantisationErrorIsWithinHalfAStep) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int trial = 0; trial < 50; ++trial) {
    float x[32];
    for (float& v : x) v = normal(rng) * float(trial + 1);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    // Q8_0 as ggml quantises it: d = amax / 127, q = round(x / d).
    const float d8 = amax / 127.0f;
    std::vector<std::byte> b8;
    put(b8, f16_bits(d8));
    for (float v : x) put(b8, std::int8_t(std::lround(v / d8)));
    const auto y8 = convert(tensor_over(b8, WeightType::q8_0, 1, 32));
    const float step8 = f16_value(d8);
    for (int i = 0; i < 32; ++i) EXPECT_LE(std::fabs(y8[i] - x[i]), 0.5f * step8 + 1e-3f * amax);
    // Q4_0 with 15 symmetric levels: d = amax / 7, q = round(x / d) + 8 in 1..15.
    const float d4 = amax / 7.0f;
    std::vector<std::byte> b4;
    put(b4, f16_bits(d4));
    for (int j = 0; j < 16; ++j) {
      const int lo = int(std::lround(x[j] / d4)) + 8, hi = int(std::lround(x[j + 16] / d4)) + 8;
      put(b4, std::uint8_t(lo | (hi << 4)));
    }
    const auto y4 = convert(tensor_over(b4, WeightType::q4_0, 1, 32));
    const float step4 = f16_value(d4);
    for (int i = 0; i < 32; ++i) EXPECT_LE(std::fabs(y4[i] - x[i]), 0.5f * step4 + 1e-3f * amax);
  }
}

TEST(QuantRoundTrip, NonFiniteScalesAreNamed) {
  std::vector<std::byte> b;
  put(b, std::uint16_t(0x7C00));  // +Inf
  for (int i = 0; i < 32; ++i) put(b, std::int8_t(1));
  const Tensor t = tensor_over(b, WeightType::q8_0, 1, 32);
  EXPECT_NE(test_support::error_of([&] { convert(t); }).find("tensor 't' has a non-finite value"),
            std::string::npos);
}

// Large tensors are converted by several threads; the values are those of the one-thread
// conversion, and a corrupt value is named the same way.
TEST(WeightBuffersThreads, ConvertLargeTensorsIdenticallyOnAnyThreadCount) {
  const std::int64_t rows = 1000, width = 1024;  // above the 2^18 values one thread converts
  for (const WeightType type : {WeightType::bf16, WeightType::f16, WeightType::q8_0}) {
    std::vector<std::byte> bytes;
    std::mt19937 rng(5);
    if (type == WeightType::q8_0) {
      for (std::int64_t b = 0; b < rows * width / 32; ++b) {
        put(bytes, f16_bits(float(b % 7 + 1) / 64.0f));
        for (int i = 0; i < 32; ++i) put(bytes, std::int8_t(rng() % 256 - 128));
      }
    } else {
      for (std::int64_t i = 0; i < rows * width; ++i) {
        const float f = std::ldexp(float(rng() % 2001) - 1000.0f, -10);
        put(bytes, type == WeightType::f16 ? f16_bits(f)
                                           : std::uint16_t(std::bit_cast<std::uint32_t>(f) >> 16));
      }
    }
    const Tensor t = tensor_over(bytes, type, rows, width);
    const std::vector<float> reference = convert(t);
    for (const int threads : {1, 2, 3, 7}) {
      WeightBuffers buffers;
      buffers.set_threads(threads);
      const auto got = buffers.f32(t);
      EXPECT_TRUE(std::equal(got.begin(), got.end(), reference.begin(), reference.end()))
          << weight_type_name(type) << " " << threads;
    }
    if (type == WeightType::f16) {
      std::vector<std::byte> bad = bytes;
      const std::uint16_t inf = 0x7C00;
      std::memcpy(bad.data() + 2 * (700 * width + 3), &inf, 2);
      const Tensor tb = tensor_over(bad, type, rows, width);
      WeightBuffers buffers;
      buffers.set_threads(4);
      EXPECT_NE(test_support::error_of([&] { buffers.f32(tb); }).find("(row 700)"),
                std::string::npos);
    }
  }
}

}  // namespace
}  // namespace tokmap::model
