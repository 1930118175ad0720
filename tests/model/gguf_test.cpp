// GGUF files: the six fixture models (GGUF copies written by llama.cpp's conventions) against
// their Hugging Face copies, the PyTorch states and llama.cpp; quantised and narrow copies of
// them; and every kind of malformed file the parser must refuse with a named error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/io.hpp"
#include "model/model.hpp"
#include "support/error_of.hpp"
#include "support/gguf_writer.hpp"
#include "support/model_states.hpp"
#include "support/npy.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::model {
namespace {

using test_support::all_states;
using test_support::relative_error;

using test_support::error_of;
using test_support::GgufTensorCopy;
using test_support::GgufWriter;
using test_support::TempDir;
using ::testing::HasSubstr;

const fs::path kArch = fs::path(TOKMAP_TEST_DATA) / "model" / "arch";

std::vector<std::vector<std::int32_t>> sequences(const std::string& name) {
  const auto inputs = nlohmann::json::parse(io::read_text_file(kArch / name / "inputs.json"));
  return inputs.at("sequences").get<std::vector<std::vector<std::int32_t>>>();
}

// Worst relative error of `a` against `b` over all layers of the fixture's sequences.
double worst_over_layers(const Model& a, const Model& b, const std::string& name) {
  double worst = 0;
  for (const auto& ids : sequences(name)) {
    const auto sa = all_states(a, ids), sb = all_states(b, ids);
    EXPECT_EQ(sa.size(), sb.size());
    for (std::size_t l = 0; l < sa.size() && l < sb.size(); ++l) {
      worst = std::max(worst, relative_error(sa[l], sb[l]));
    }
  }
  return worst;
}

struct Case {
  const char* name;
  Architecture architecture;
  double hf_tolerance;        // GGUF vs the Hugging Face copy, every layer
  double llamacpp_tolerance;  // final states vs llama.cpp (its GELU is an fp16 table)
};

class GgufFixtures : public ::testing::TestWithParam<Case> {};

TEST_P(GgufFixtures, GivesTheStatesOfTheHuggingFaceCopyPyTorchAndLlamaCpp) {
  const Case c = GetParam();
  const fs::path dir = kArch / c.name;
  const Model gguf = Model::load(dir / "model.gguf");
  const Model hf = Model::load(dir / "hf");
  EXPECT_EQ(gguf.config().architecture, c.architecture);
  EXPECT_EQ(gguf.config().n_layer, hf.config().n_layer);
  EXPECT_EQ(gguf.config().rotary_dim, hf.config().rotary_dim);
  EXPECT_EQ(gguf.config().sliding_window, hf.config().sliding_window);
  EXPECT_EQ(gguf.parameter_count(), hf.parameter_count());
  EXPECT_EQ(gguf.weights_path(), dir / "model.gguf");
  const double vs_hf = worst_over_layers(gguf, hf, c.name);
  EXPECT_LE(vs_hf, c.hf_tolerance) << c.name;

  double vs_torch = 0, vs_cpp = 0;
  const auto seqs = sequences(c.name);
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    const auto got = all_states(gguf, seqs[s]);
    const auto torch = test_support::read_npy_any(
        dir / "pytorch" / ("seq" + std::to_string(s) + "_hidden_states.npy"));
    const std::size_t per_layer = got[0].size();
    for (std::size_t l = 0; l < got.size(); ++l) {
      vs_torch =
          std::max(vs_torch,
                   relative_error(got[l], std::span(torch.data).subspan(l * per_layer, per_layer)));
    }
    const auto cpp =
        test_support::read_npy_any(dir / "llamacpp" / ("seq" + std::to_string(s) + ".npy"));
    ASSERT_EQ(cpp.data.size(), per_layer);
    vs_cpp = std::max(vs_cpp, relative_error(got.back(), cpp.data));
  }
  EXPECT_LE(vs_torch, 1e-4) << c.name;
  EXPECT_LE(vs_cpp, c.llamacpp_tolerance) << c.name;
  std::printf("[ agreement ] %s gguf: hf %.2e, pytorch %.2e, llama.cpp %.2e\n", c.name, vs_hf,
              vs_torch, vs_cpp);
}

// The same weights in F32: identical states, except Gemma 2, whose GGUF norms hold 1 + w
// (rounded to float32) where Hugging Face adds the 1 at run time.
INSTANTIATE_TEST_SUITE_P(Fixtures, GgufFixtures,
                         ::testing::Values(Case{"llama", Architecture::llama, 0, 1e-4},
                                           Case{"qwen2", Architecture::qwen2, 0, 1e-4},
                                           Case{"phi3", Architecture::phi3, 0, 1e-4},
                                           Case{"gemma2", Architecture::gemma2, 1e-6, 1e-3},
                                           Case{"gptneox", Architecture::gpt_neox, 0, 1e-3},
                                           Case{"bert", Architecture::bert, 0, 1e-3}),
                         [](const auto& info) { return std::string(info.param.name); });

// The made architectures (tests/data/model/arch-made, GGUF copies written by
// make_llamacpp_references.py there with llama.cpp's conventions): the GGUF and safetensors
// copies of the same weights give the same states in every layer, and the GGUF copy gives
// llama.cpp's final states. Where llama.cpp's semantics differ from the Hugging Face model's,
// only the tokens both define alike are compared: Mistral's first sliding_window tokens (llama.cpp
// runs it as llama, without a window) and RoBERTa's texts without a padding id inside (llama.cpp
// numbers positions 0..n-1).
struct MadeCase {
  const char* name;
  Architecture architecture;
  double hf_tolerance;
  double llamacpp_tolerance;
  std::size_t rows = 0;       // compare the first `rows` tokens only (0: all)
  int skip_sequence = -1;     // a sequence the GGUF copy need not agree on
  int cut_position_rows = 0;  // RoBERTa: the GGUF position table starts at pad_token_id + 1
};

class MadeGguf : public ::testing::TestWithParam<MadeCase> {};

TEST_P(MadeGguf, GivesTheStatesOfTheSafetensorsCopyAndLlamaCpp) {
  const MadeCase c = GetParam();
  const fs::path dir = fs::path(TOKMAP_TEST_DATA) / "model" / "arch-made" / c.name;
  const Model gguf = Model::load(dir / "model.gguf");
  const Model hf = Model::load(dir / "hf");
  EXPECT_EQ(gguf.config().architecture, c.architecture);
  EXPECT_EQ(gguf.config().n_layer, hf.config().n_layer);
  EXPECT_EQ(gguf.config().rotary_dim, hf.config().rotary_dim);
  EXPECT_EQ(gguf.parameter_count() + std::size_t(c.cut_position_rows) * gguf.config().n_embd,
            hf.parameter_count());
  const auto inputs = nlohmann::json::parse(io::read_text_file(dir / "inputs.json"));
  const auto seqs = inputs.at("sequences").get<std::vector<std::vector<std::int32_t>>>();
  const std::size_t C = gguf.config().n_embd;
  double vs_hf = 0, vs_cpp = 0;
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    if (int(s) == c.skip_sequence) continue;
    const std::size_t rows = c.rows == 0 ? seqs[s].size() : std::min(c.rows, seqs[s].size());
    const auto a = all_states(gguf, seqs[s]), b = all_states(hf, seqs[s]);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t l = 0; l < a.size(); ++l) {
      vs_hf = std::max(
          vs_hf, relative_error(std::span(a[l]).first(rows * C), std::span(b[l]).first(rows * C)));
    }
    const auto cpp =
        test_support::read_npy_any(dir / "llamacpp" / ("seq" + std::to_string(s) + ".npy"));
    ASSERT_EQ(cpp.data.size(), rows * C) << c.name << " seq " << s;
    vs_cpp = std::max(vs_cpp, relative_error(std::span(a.back()).first(rows * C), cpp.data));
  }
  EXPECT_LE(vs_hf, c.hf_tolerance) << c.name;
  EXPECT_LE(vs_cpp, c.llamacpp_tolerance) << c.name;
  std::printf("[ agreement ] %s gguf: safetensors %.2e, llama.cpp %.2e\n", c.name, vs_hf, vs_cpp);
}

// Identical states where the GGUF file holds the same float32 values; Gemma's GGUF norms hold
// 1 + w (rounded to float32), Gemma 3's q_norm also the query scale (see its meta.json: 9.7e-7),
// and llama3 rope scaling comes from rope_freqs.weight in float32 instead of the config's numbers.
INSTANTIATE_TEST_SUITE_P(
    Made, MadeGguf,
    ::testing::Values(MadeCase{"mistral", Architecture::llama, 0, 1e-4, 8},
                      MadeCase{"qwen3", Architecture::qwen3, 0, 1e-4},
                      MadeCase{"gemma", Architecture::gemma, 1e-6, 1e-3},
                      MadeCase{"gemma3_text", Architecture::gemma3_text, 2e-6, 1e-3},
                      MadeCase{"llama3rope", Architecture::llama, 1e-6, 1e-4},
                      MadeCase{"roberta", Architecture::bert, 0, 1e-3, 0, 1, 2},
                      MadeCase{"distilbert", Architecture::bert, 0, 1e-3}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Gguf, ReadsTheFixtureHeader) {
  const GgufFile file(kArch / "llama" / "model.gguf");
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_start() % 32, 0u);
  ASSERT_NE(file.find("general.architecture"), nullptr);
  EXPECT_EQ(file.find("general.architecture")->string, "llama");
  EXPECT_EQ(file.find("llama.block_count")->integer, 3);
  EXPECT_EQ(file.find("tokenizer.ggml.tokens")->strings.size(), 512u);
  EXPECT_FLOAT_EQ(float(file.find("llama.attention.layer_norm_rms_epsilon")->number), 1e-5f);
  const auto* q = file.find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<std::int64_t>{64, 64}));
  EXPECT_EQ(q->type_name, "F32");
  const auto* k = file.find_tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k->shape, (std::vector<std::int64_t>{32, 64}));  // (out, in): ne[] reversed
  EXPECT_EQ(k->size, 32u * 64 * 4);
  EXPECT_TRUE(is_gguf_file(kArch / "llama" / "model.gguf"));
  EXPECT_FALSE(is_gguf_file(kArch / "llama" / "hf" / "model.safetensors"));
}

// ---------------------------------------------------------------------------------------------
// Narrow and quantised copies of the llama fixture

std::uint16_t f32_to_f16(float f) {
  // Round to nearest even through the hardware conversion of _Float16.
  const _Float16 h = static_cast<_Float16>(f);
  std::uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

std::vector<float> floats_of(const std::string& data) {
  std::vector<float> v(data.size() / 4);
  std::memcpy(v.data(), data.data(), data.size());
  return v;
}

std::string bytes_of(const void* p, std::size_t n) {
  return std::string(static_cast<const char*>(p), n);
}

// ggml's reference quantisers (quantize_row_q8_0_ref / quantize_row_q4_0_ref), one block.
void quantize_q8_0(const float* x, std::string& out) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
  const std::uint16_t dh = f32_to_f16(d);
  out += bytes_of(&dh, 2);
  for (int i = 0; i < 32; ++i) {
    const auto q = static_cast<std::int8_t>(std::lround(x[i] * id));
    out += bytes_of(&q, 1);
  }
}

void quantize_q4_0(const float* x, std::string& out) {
  float amax = 0, max = 0;
  for (int i = 0; i < 32; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  const float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
  const std::uint16_t dh = f32_to_f16(d);
  out += bytes_of(&dh, 2);
  for (int j = 0; j < 16; ++j) {
    const auto lo = std::min(15, int(x[j] * id + 8.5f));
    const auto hi = std::min(15, int(x[j + 16] * id + 8.5f));
    const auto byte = static_cast<std::uint8_t>(lo | (hi << 4));
    out += bytes_of(&byte, 1);
  }
}

// Rewrites every 2-D F32 tensor of `source` with `convert` (ggml type `type`) into `narrow`, and
// the values it holds after the round trip as F32 into `wide`.
template <typename Convert>
void narrow_and_wide(const fs::path& source, const fs::path& narrow, const fs::path& wide,
                     std::uint32_t type, Convert convert) {
  test_support::copy_gguf(source, narrow, [&](GgufTensorCopy& t) {
    if (t.shape.size() == 2) {
      t.data = convert(floats_of(t.data));
      t.ggml_type = type;
    }
  });
  const GgufFile converted(narrow);
  test_support::copy_gguf(source, wide, [&](GgufTensorCopy& t) {
    if (t.shape.size() != 2) return;
    Tensor tensor;
    const auto* info = converted.find_tensor(t.name);
    tensor.name = t.name;
    tensor.shape = info->shape;
    tensor.type = info->type;
    tensor.bytes = converted.data(*info);
    std::vector<float> values(tensor.numel());
    tensor_rows_to_f32(tensor, 0, std::size_t(tensor.shape[0]), values);
    t.data = bytes_of(values.data(), values.size() * 4);
  });
}

std::string to_q8_0(const std::vector<float>& x) {
  std::string out;
  for (std::size_t b = 0; b < x.size(); b += 32) quantize_q8_0(x.data() + b, out);
  return out;
}
std::string to_q4_0(const std::vector<float>& x) {
  std::string out;
  for (std::size_t b = 0; b < x.size(); b += 32) quantize_q4_0(x.data() + b, out);
  return out;
}
std::string to_f16(const std::vector<float>& x) {
  std::vector<std::uint16_t> h(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) h[i] = f32_to_f16(x[i]);
  return bytes_of(h.data(), h.size() * 2);
}
std::string to_bf16(const std::vector<float>& x) {
  std::vector<std::uint16_t> h(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    h[i] = std::uint16_t(bits >> 16);
  }
  return bytes_of(h.data(), h.size() * 2);
}

struct NarrowCase {
  const char* name;
  std::uint32_t ggml_type;
  WeightType type;
  std::string (*convert)(const std::vector<float>&);
  double tolerance;  // against the F32 original, every layer
};

class GgufNarrow : public ::testing::TestWithParam<NarrowCase> {};

// A quantised or 16-bit file stays in its type, converts per layer, gives exactly the states of
// an F32 file holding the converted values (for llama also after the Q/K row un-permutation),
// and stays close to the original.
TEST_P(GgufNarrow, ConvertsPerLayerExactlyAndStaysCloseToF32) {
  const NarrowCase c = GetParam();
  for (const char* name : {"llama", "qwen2"}) {
    TempDir dir;
    const fs::path source = kArch / name / "model.gguf";
    narrow_and_wide(source, dir / "narrow.gguf", dir / "wide.gguf", c.ggml_type, c.convert);
    const Model narrow = Model::load(dir / "narrow.gguf");
    const Model wide = Model::load(dir / "wide.gguf");
    const Model original = Model::load(source);
    EXPECT_EQ(narrow.layers[0].q.type, c.type);
    EXPECT_EQ(narrow.token_embedding.type, c.type);
    const auto ids = sequences(name)[1];
    EXPECT_EQ(all_states(narrow, ids), all_states(wide, ids)) << name;
    const double error = worst_over_layers(narrow, original, name);
    EXPECT_LE(error, c.tolerance) << name;
    std::printf("[ agreement ] %s %s vs F32: %.2e\n", name, c.name, error);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GgufNarrow,
                         ::testing::Values(NarrowCase{"F16", 1, WeightType::f16, to_f16, 1e-3},
                                           NarrowCase{"BF16", 30, WeightType::bf16, to_bf16, 2e-2},
                                           NarrowCase{"Q8_0", 8, WeightType::q8_0, to_q8_0, 5e-2},
                                           NarrowCase{"Q4_0", 2, WeightType::q4_0, to_q4_0, 0.5}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Gguf, UnsupportedTypesAreNamedWhenAWeightNeedsThem) {
  TempDir dir;
  // Q4_1: 32 values in 20 bytes (f16 d, f16 m, 16 bytes of nibbles).
  test_support::copy_gguf(kArch / "llama" / "model.gguf", dir / "q41.gguf", [](GgufTensorCopy& t) {
    if (t.name != "blk.1.ffn_up.weight") return;
    t.data.assign(std::size_t(t.shape[0] * t.shape[1] / 32 * 20), '\0');
    t.ggml_type = 3;
  });
  EXPECT_THAT(error_of([&] { Model::load(dir / "q41.gguf"); }),
              HasSubstr("tensor 'blk.1.ffn_up.weight' has dtype Q4_1, expected F32, F16, BF16, "
                        "Q8_0, Q4_0, Q4_K, Q5_K or Q6_K"));
}

TEST(Gguf, MissingAndMisshapenTensorsAreNamedInLlamaCppTerms) {
  TempDir dir;
  test_support::copy_gguf(kArch / "llama" / "model.gguf", dir / "m.gguf", [](GgufTensorCopy& t) {
    if (t.name == "blk.2.ffn_gate.weight") t.name = "blk.2.ffn_gat.weight";
  });
  EXPECT_THAT(error_of([&] { Model::load(dir / "m.gguf"); }),
              HasSubstr("tensor 'blk.2.ffn_gate.weight' is missing (expected shape [192, 64])"));
  test_support::copy_gguf(kArch / "llama" / "model.gguf", dir / "s.gguf", [](GgufTensorCopy& t) {
    if (t.name == "output_norm.weight") {
      t.shape = {32};
      t.data.resize(128);
    }
  });
  EXPECT_THAT(error_of([&] { Model::load(dir / "s.gguf"); }),
              HasSubstr("tensor 'output_norm.weight' has shape [32], expected [64] from the GGUF "
                        "metadata"));
}

TEST(Gguf, MetadataIsCheckedNamingItsKey) {
  TempDir dir;
  auto without = [&](const std::string& key) {
    const fs::path path = dir / "k.gguf";
    test_support::copy_gguf(
        kArch / "llama" / "model.gguf", path, [](GgufTensorCopy&) {},
        [&](const std::string& k) { return k != key; });
    return error_of([&] { Model::load(path); });
  };
  EXPECT_THAT(without("llama.block_count"),
              HasSubstr("metadata 'llama.block_count' is missing (needed for architecture llama)"));
  EXPECT_THAT(without("general.architecture"), HasSubstr("'general.architecture' is missing"));
  // An architecture tokmap does not run.
  {
    GgufWriter w;
    w.string("general.architecture", "mamba");
    w.write(dir / "mamba.gguf");
  }
  EXPECT_THAT(error_of([&] { Model::load(dir / "mamba.gguf"); }),
              HasSubstr("GGUF architecture 'mamba' (general.architecture, at byte offset 56) is "
                        "not supported (tokmap reads: llama, qwen2"));
  // A value of the wrong type, and one out of range.
  {
    const GgufFile src(kArch / "llama" / "model.gguf");
    GgufWriter w;
    for (const auto& [key, value] : src.metadata()) {
      if (key == "general.alignment") continue;
      if (key == "llama.attention.head_count") {
        w.string(key, "four");
      } else {
        w.value(key, value);
      }
    }
    w.write(dir / "t.gguf");
  }
  EXPECT_THAT(error_of([&] { Model::load(dir / "t.gguf"); }),
              HasSubstr("metadata 'llama.attention.head_count' must be an integer, found string "
                        "(at byte offset"));
}

TEST(Gguf, Llama3RopeFrequencyFactorsDivideTheInverseFrequencies) {
  TempDir dir;
  const GgufFile src(kArch / "llama" / "model.gguf");
  GgufWriter w;
  for (const auto& [key, value] : src.metadata()) {
    if (key != "general.alignment") w.value(key, value);
  }
  const std::vector<float> factors{1, 1, 2, 4, 8, 8, 8, 8};  // rotary_dim 16 → 8 values
  w.tensor("rope_freqs.weight", {8}, 0, factors.data(), factors.size() * 4);
  for (const auto& t : src.tensors()) {
    const auto bytes = src.data(t);
    w.tensor(t.name, t.shape, t.ggml_type, bytes.data(), bytes.size());
  }
  w.write(dir / "r.gguf");
  const Model model = Model::load(dir / "r.gguf");
  ASSERT_EQ(model.config().rope.freq_factors.size(), 8u);
  const auto plain = kernels::rope_inverse_frequencies(Rope{}, 16);
  const auto scaled = kernels::rope_inverse_frequencies(model.config().rope, 16);
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(scaled[i], plain[i] / factors[i]);
  // Positions 0 only see no rotation: a one-token text is unchanged; longer ones differ.
  const Model original = Model::load(kArch / "llama" / "model.gguf");
  EXPECT_EQ(all_states(model, {5}), all_states(original, {5}));
  EXPECT_NE(all_states(model, {5, 6, 7}), all_states(original, {5, 6, 7}));
}

// ---------------------------------------------------------------------------------------------
// Malformed files

std::string small_file() {
  GgufWriter w;
  w.string("general.architecture", "llama");
  w.u32("llama.block_count", 1);
  w.strings("tokenizer.ggml.tokens", {"a", "bc", ""});
  w.f32s("tokenizer.ggml.scores", {0.5f, -1.0f, 2.0f});
  w.boolean("flag", true);
  const std::vector<float> a(8, 1.0f), b(64, 2.0f);
  w.tensor("a", {2, 4}, 0, a.data(), a.size() * 4);
  w.tensor("b", {64}, 0, b.data(), b.size() * 4);
  return w.bytes();
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { GgufFile(std::as_bytes(std::span(bytes)), "f.gguf"); });
}

template <typename T>
void poke(std::string& bytes, std::size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof value);
}

TEST(GgufParser, ReadsWhatTheWriterWrote) {
  const std::string bytes = small_file();
  const GgufFile file(std::as_bytes(std::span(bytes)), "f.gguf");
  EXPECT_EQ(file.metadata().size(), 5u);
  EXPECT_EQ(file.find("tokenizer.ggml.tokens")->strings, (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(file.find("tokenizer.ggml.scores")->numbers, (std::vector<double>{0.5, -1.0, 2.0}));
  EXPECT_EQ(file.find("flag")->integer, 1);
  ASSERT_EQ(file.tensors().size(), 2u);
  EXPECT_EQ(file.tensors()[0].shape, (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(file.tensors()[1].data_offset, file.data_start() + 32);
  float v;
  std::memcpy(&v, file.data(file.tensors()[1]).data(), 4);
  EXPECT_EQ(v, 2.0f);
  // Version 2 has the same layout.
  std::string v2 = bytes;
  poke<std::uint32_t>(v2, 4, 2);
  EXPECT_EQ(GgufFile(std::as_bytes(std::span(v2)), "v2").version(), 2u);
}

TEST(GgufParser, EveryTruncationIsAnErrorNamingTheFile) {
  const std::string bytes = small_file();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::string cut = bytes.substr(0, n);
    const std::string message = parse_error(cut);
    EXPECT_THAT(message, HasSubstr("f.gguf: ")) << n;
    EXPECT_NE(message, "(no error)") << n;
  }
}

TEST(GgufParser, RefusesBadHeadersNamingKeyTensorAndOffset) {
  const std::string good = small_file();
  // Offsets in small_file(): magic 0, version 4, tensor count 8, kv count 16, first key at 24.
  std::string b = good;
  b[0] = 'X';
  EXPECT_THAT(parse_error(b), HasSubstr("not a GGUF file"));
  b = good;
  poke<std::uint32_t>(b, 4, 1);
  EXPECT_THAT(
      parse_error(b),
      HasSubstr("GGUF version 1 is not supported (tokmap reads 2 and 3) (at byte offset 4)"));
  poke<std::uint32_t>(b, 4, 0x03000000u);
  EXPECT_THAT(parse_error(b), HasSubstr("big-endian"));
  b = good;
  poke<std::uint64_t>(b, 16, std::uint64_t(1) << 62);
  EXPECT_THAT(parse_error(b), HasSubstr("metadata count 4611686018427387904 does not fit in the "
                                        "file (" +
                                        std::to_string(good.size()) +
                                        " bytes) (at "
                                        "byte offset 16)"));
  b = good;
  poke<std::uint64_t>(b, 8, ~std::uint64_t(0));
  EXPECT_THAT(parse_error(b), HasSubstr("tensor count 18446744073709551615 does not fit"));
  b = good;
  poke<std::uint64_t>(b, 24, ~std::uint64_t(0) - 3);  // first key's length
  EXPECT_THAT(parse_error(b), HasSubstr("metadata key 0: string length 18446744073709551612 "
                                        "exceeds the"));
  // The first key, "general.architecture" (20 bytes), ends at 52; its type at 52.
  b = good;
  poke<std::uint32_t>(b, 52, 13);
  EXPECT_THAT(
      parse_error(b),
      HasSubstr("key 'general.architecture' has unknown value type 13 (at byte offset 52)"));
  // The tokens array: find it and corrupt its length.
  const std::size_t tokens = good.find("tokenizer.ggml.tokens") + 21;
  b = good;
  poke<std::uint64_t>(b, tokens + 8, std::uint64_t(1) << 61);
  EXPECT_THAT(parse_error(b), HasSubstr("key 'tokenizer.ggml.tokens': array length "
                                        "2305843009213693952 does not fit in the"));
  b = good;
  poke<std::uint32_t>(b, tokens + 4, 99);
  EXPECT_THAT(parse_error(b), HasSubstr("array of unknown type 99"));
  // A bool that is neither 0 nor 1.
  b = good;
  b[good.find("flag") + 4 + 4] = 7;
  EXPECT_THAT(parse_error(b), HasSubstr("key 'flag': bool value 7 is not 0 or 1"));
  // A duplicate key, and a duplicate tensor.
  GgufWriter twice;
  twice.u32("k", 1);
  twice.u32("k", 2);
  EXPECT_THAT(parse_error(twice.bytes()),
              HasSubstr("metadata key 'k' appears twice (at byte offset 41)"));
  GgufWriter tensors;
  const float x = 1;
  tensors.tensor("t", {1}, 0, &x, 4);
  tensors.tensor("t", {1}, 0, &x, 4);
  EXPECT_THAT(parse_error(tensors.bytes()), HasSubstr("tensor 't' appears twice"));
}

TEST(GgufParser, RefusesBadTensorEntries) {
  const std::string good = small_file();
  // Tensor "a": name length at `at`, name, n_dims, ne[0], ne[1], type, offset.
  const std::size_t at = good.rfind(std::string("\x01\0\0\0\0\0\0\0a\x02\0\0\0", 13));
  ASSERT_NE(at, std::string::npos);
  const std::size_t dims = at + 9, ne0 = dims + 4, ne1 = ne0 + 8, type = ne1 + 8, offset = type + 4;
  std::string b = good;
  poke<std::uint32_t>(b, dims, 5);
  EXPECT_THAT(parse_error(b),
              HasSubstr("tensor 'a': 5 dimensions (expected 1 to 4) (at byte offset " +
                        std::to_string(dims) + ")"));
  b = good;
  poke<std::uint64_t>(b, ne0, 0);
  EXPECT_THAT(parse_error(b), HasSubstr("tensor 'a': dimension 0 is zero"));
  b = good;
  poke<std::uint64_t>(b, ne0, std::uint64_t(1) << 40);
  poke<std::uint64_t>(b, ne1, std::uint64_t(1) << 40);
  EXPECT_THAT(parse_error(b), HasSubstr("makes the element count overflow"));
  b = good;
  poke<std::uint32_t>(b, type, 77);
  EXPECT_THAT(parse_error(b), HasSubstr("tensor 'a' has unknown ggml type 77 (at byte offset " +
                                        std::to_string(type) + ")"));
  b = good;
  poke<std::uint32_t>(b, type, 8);  // Q8_0 needs rows of 32
  EXPECT_THAT(parse_error(b), HasSubstr("tensor 'a' of type Q8_0 has rows of 4 values, not a "
                                        "multiple of its block size 32"));
  b = good;
  poke<std::uint64_t>(b, offset, 8);
  EXPECT_THAT(parse_error(b), HasSubstr("tensor 'a': data offset 8 is not a multiple of the "
                                        "alignment 32"));
  b = good;
  poke<std::uint64_t>(b, offset, 32);  // onto b
  EXPECT_THAT(parse_error(b), HasSubstr("overlaps tensor"));
  b = good;
  poke<std::uint64_t>(b, offset, std::uint64_t(1) << 40);
  EXPECT_THAT(parse_error(b), HasSubstr("tensor 'a': data [1099511627776, +32) relative to the "
                                        "data start"));
  b = good;
  poke<std::uint64_t>(b, offset, ~std::uint64_t(31));  // offset + size overflows
  EXPECT_THAT(parse_error(b), HasSubstr("goes beyond the end of the file"));
  // Bad alignments.
  for (std::uint32_t alignment : {0u, 3u, 1u << 21}) {
    GgufWriter w;
    w.u32("general.alignment", alignment);
    EXPECT_THAT(parse_error(w.bytes()), HasSubstr("general.alignment must be a power of two"))
        << alignment;
  }
  GgufWriter w;
  w.string("general.alignment", "32");
  EXPECT_THAT(parse_error(w.bytes()), HasSubstr("general.alignment must be a power of two up to "
                                                "1048576, found string"));
}

TEST(GgufParser, ModelFilesThatAreNotGgufSaySo) {
  TempDir dir;
  io::write_file_atomically(dir / "x.bin", "PK\x03\x04 not a model");
  EXPECT_THAT(error_of([&] { Model::load(dir / "x.bin"); }),
              HasSubstr("x.bin: not a GGUF file (it does not start with \"GGUF\")"));
}

}  // namespace
}  // namespace tokmap::model

namespace tokmap::model {
namespace {

// ---------------------------------------------------------------------------------------------
// The Ollama store

struct FakeOllama {
  TempDir dir;
  fs::path store = dir / "models";
  std::string digest = std::string(64, 'a');

  fs::path blob() const { return store / "blobs" / ("sha256-" + digest); }
  void manifest(const std::string& relative, const std::vector<nlohmann::json>& layers) {
    const fs::path path = store / "manifests" / relative;
    fs::create_directories(path.parent_path());
    io::write_file_atomically(
        path, nlohmann::json{{"schemaVersion", 2},
                             {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                             {"layers", nlohmann::json(layers)}}
                  .dump());
  }
  nlohmann::json model_layer() const {
    return {{"mediaType", "application/vnd.ollama.image.model"},
            {"digest", "sha256:" + digest},
            {"size", fs::file_size(blob())}};
  }
  FakeOllama() {
    fs::create_directories(store / "blobs");
    fs::copy_file(kArch / "llama" / "model.gguf", blob());
    const nlohmann::json license = {{"mediaType", "application/vnd.ollama.image.license"},
                                    {"digest", "sha256:" + std::string(64, 'b')},
                                    {"size", 10}};
    manifest("registry.ollama.ai/library/tiny/latest", {license, model_layer()});
    manifest("registry.ollama.ai/library/tiny/q8", {model_layer()});
    manifest("registry.ollama.ai/someone/tiny/v1", {model_layer()});
    manifest("example.com/team/tiny/latest", {model_layer()});
  }
  ResolveOptions options() const {
    ResolveOptions o;
    o.hf_cache = dir / "no-hf-cache";
    o.ollama_models = store;
    return o;
  }
};

TEST(Ollama, FindsModelsByNameTagNamespaceAndHost) {
  FakeOllama ollama;
  for (const char* name :
       {"tiny", "tiny:latest", "tiny:q8", "someone/tiny:v1", "example.com/team/tiny"}) {
    const ModelLocation location = resolve_model(name, ollama.options());
    EXPECT_EQ(location.folder, ollama.blob()) << name;
    EXPECT_EQ(location.name, name);
  }
  // The blob is the model: the same states as the fixture file.
  const Model model = Model::load(resolve_model("tiny", ollama.options()).folder);
  const Model fixture = Model::load(kArch / "llama" / "model.gguf");
  const auto ids = sequences("llama")[0];
  EXPECT_EQ(all_states(model, ids), all_states(fixture, ids));
}

TEST(Ollama, UsesOllamaModelsFromTheEnvironment) {
  FakeOllama ollama;
  ResolveOptions options = ollama.options();
  options.ollama_models.clear();
  const char* old = std::getenv("OLLAMA_MODELS");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("OLLAMA_MODELS", ollama.store.c_str(), 1);
  EXPECT_EQ(default_ollama_models(), ollama.store);
  EXPECT_EQ(resolve_model("tiny:q8", options).folder, ollama.blob());
  if (old != nullptr) {
    ::setenv("OLLAMA_MODELS", saved.c_str(), 1);
  } else {
    ::unsetenv("OLLAMA_MODELS");
  }
}

TEST(Ollama, BadManifestsAreNamed) {
  FakeOllama ollama;
  const std::string not_found = error_of([&] { resolve_model("tiny:nope", ollama.options()); });
  EXPECT_THAT(not_found, HasSubstr("model 'tiny:nope' not found; looked in: "));
  EXPECT_THAT(not_found, HasSubstr("manifests/registry.ollama.ai/library/tiny/nope (Ollama)"));
  EXPECT_THAT(not_found, HasSubstr("ollama pull tiny:nope"));
  // Names that are not store paths are never looked up.
  for (const char* name : {"x/../tiny", "a/b/c/d", "tiny:..", "ti ny"}) {
    EXPECT_THAT(error_of([&] { resolve_model(name, ollama.options()); }), HasSubstr("not found"))
        << name;
  }
  auto layer = ollama.model_layer();
  layer["digest"] = "sha256:xyz";
  ollama.manifest("registry.ollama.ai/library/bad/digest", {layer});
  EXPECT_THAT(error_of([&] { resolve_model("bad:digest", ollama.options()); }),
              HasSubstr("digest must be sha256:<64 hex digits>, found 'sha256:xyz'"));
  layer = ollama.model_layer();
  layer["digest"] = "sha256:" + std::string(64, 'c');
  ollama.manifest("registry.ollama.ai/library/bad/missing", {layer});
  EXPECT_THAT(error_of([&] { resolve_model("bad:missing", ollama.options()); }),
              HasSubstr("sha256-cccc"));
  layer = ollama.model_layer();
  layer["size"] = 12;
  ollama.manifest("registry.ollama.ai/library/bad/size", {layer});
  EXPECT_THAT(error_of([&] { resolve_model("bad:size", ollama.options()); }),
              HasSubstr("bytes, the manifest says 12"));
  ollama.manifest("registry.ollama.ai/library/bad/nomodel", {});
  EXPECT_THAT(error_of([&] { resolve_model("bad:nomodel", ollama.options()); }),
              HasSubstr("no layer of mediaType application/vnd.ollama.image.model"));
  io::write_file_atomically(ollama.store / "manifests/registry.ollama.ai/library/bad/json", "{");
  EXPECT_THAT(error_of([&] { resolve_model("bad:json", ollama.options()); }),
              HasSubstr("manifests/registry.ollama.ai/library/bad/json"));
}

}  // namespace
}  // namespace tokmap::model
