// Every architecture against references we did not write: tiny random models of six
// architectures (tests/data/model/arch, from shared/fixtures/arch) with the per-layer states of
// a float64 PyTorch re-implementation of the Hugging Face forward passes and the final states
// llama.cpp computes from GGUF copies of the same weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/io.hpp"
#include "model/model.hpp"
#include "support/model_states.hpp"
#include "support/npy.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::model {
namespace {

using test_support::all_states;
using test_support::relative_error;

const fs::path kArch = fs::path(TOKMAP_TEST_DATA) / "model" / "arch";

std::vector<std::vector<std::int32_t>> sequences(const fs::path& dir) {
  const auto inputs = nlohmann::json::parse(io::read_text_file(dir / "inputs.json"));
  return inputs.at("sequences").get<std::vector<std::vector<std::int32_t>>>();
}

struct Agreement {
  double pytorch = 0;   // worst over layers and sequences
  double llamacpp = 0;  // last layer
};

// llamacpp_rows: when not 0, llama.cpp's states are references for the first that many tokens
// of each text only (Mistral's sliding window, which llama.cpp does not apply).
Agreement compare(const fs::path& dir, const fs::path& model_path, bool with_llamacpp = true,
                  std::size_t llamacpp_rows = 0) {
  const Model model = Model::load(model_path);
  Agreement worst;
  const auto seqs = sequences(dir);
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    const auto got = all_states(model, seqs[s]);
    const auto torch = test_support::read_npy_any(
        dir / "pytorch" / ("seq" + std::to_string(s) + "_hidden_states.npy"));
    EXPECT_EQ(torch.shape.size(), 3u);
    EXPECT_EQ(torch.shape[0], got.size());
    const std::size_t per_layer = got[0].size();
    for (std::size_t l = 0; l < got.size(); ++l) {
      const double e =
          relative_error(got[l], std::span(torch.data).subspan(l * per_layer, per_layer));
      worst.pytorch = std::max(worst.pytorch, e);
      EXPECT_LE(e, 1e-4) << dir.filename() << " seq " << s << " layer " << l;
    }
    if (!with_llamacpp) continue;
    const auto cpp =
        test_support::read_npy_any(dir / "llamacpp" / ("seq" + std::to_string(s) + ".npy"));
    const std::size_t C = model.config().n_embd;
    const std::size_t rows =
        llamacpp_rows == 0 ? seqs[s].size() : std::min(seqs[s].size(), llamacpp_rows);
    EXPECT_EQ(cpp.data.size(), rows * C) << dir.filename() << " seq " << s;
    if (cpp.data.size() != rows * C) continue;
    worst.llamacpp =
        std::max(worst.llamacpp, relative_error(std::span(got.back()).first(rows * C), cpp.data));
  }
  return worst;
}

struct Case {
  const char* name;
  const char* model_type;
  double llamacpp_tolerance;  // llama.cpp's GELU is an fp16 table of the tanh form
};

class Architectures : public ::testing::TestWithParam<Case> {};

TEST_P(Architectures, HuggingFaceFolderMatchesPyTorchAndLlamaCpp) {
  const Case c = GetParam();
  const fs::path dir = kArch / c.name;
  EXPECT_EQ(load_config(dir / "hf" / "config.json").model_type, c.model_type);
  const Agreement a = compare(dir, dir / "hf");
  EXPECT_LE(a.llamacpp, c.llamacpp_tolerance) << c.name;
  std::printf("[ agreement ] %s hf: pytorch %.2e, llama.cpp %.2e\n", c.name, a.pytorch, a.llamacpp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Architectures,
                         ::testing::Values(Case{"llama", "llama", 1e-4},
                                           Case{"qwen2", "qwen2", 1e-4}, Case{"phi3", "phi3", 1e-4},
                                           Case{"gemma2", "gemma2", 1e-3},
                                           Case{"gptneox", "gpt_neox", 1e-3},
                                           Case{"bert", "bert", 1e-3}),
                         [](const auto& info) { return std::string(info.param.name); });

// The architectures the fixtures lack, against tests/data/model/arch-made: tiny random models
// with the per-layer states of a float64 PyTorch re-implementation (make_references.py there,
// which first reproduces the six fixtures' independent states to 5e-8; the same developer wrote
// it and the C++) and the final states llama.cpp computes from GGUF copies of the same weights
// (make_llamacpp_references.py there; llamacpp/meta.json says how, and where llama.cpp's
// semantics needed a reparameterised copy).
struct MadeCase {
  const char* name;
  const char* model_type;
  double llamacpp_tolerance;      // llama.cpp's GELU is an fp16 table of the tanh form
  std::size_t llamacpp_rows = 0;  // see compare()
};

class MadeArchitectures : public ::testing::TestWithParam<MadeCase> {};

TEST_P(MadeArchitectures, HuggingFaceFolderMatchesPyTorchAndLlamaCpp) {
  const MadeCase c = GetParam();
  const fs::path dir = fs::path(TOKMAP_TEST_DATA) / "model" / "arch-made" / c.name;
  EXPECT_EQ(load_config(dir / "hf" / "config.json").model_type, c.model_type);
  const Agreement a = compare(dir, dir / "hf", true, c.llamacpp_rows);
  EXPECT_LE(a.llamacpp, c.llamacpp_tolerance) << c.name;
  std::printf("[ agreement ] %s hf: pytorch %.2e, llama.cpp %.2e\n", c.name, a.pytorch, a.llamacpp);
}

INSTANTIATE_TEST_SUITE_P(Made, MadeArchitectures,
                         ::testing::Values(MadeCase{"mistral", "mistral", 1e-4, 8},
                                           MadeCase{"qwen3", "qwen3", 1e-4},
                                           MadeCase{"gemma", "gemma", 1e-3},
                                           MadeCase{"gemma3_text", "gemma3_text", 1e-3},
                                           MadeCase{"llama3rope", "llama", 1e-4},
                                           MadeCase{"roberta", "roberta", 1e-3},
                                           MadeCase{"distilbert", "distilbert", 1e-3}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Architectures, ResultsDoNotDependOnTheThreadCount) {
  for (const char* name : {"llama", "gemma2", "bert"}) {
    const Model model = Model::load(kArch / name / "hf");
    const auto ids = sequences(kArch / name)[2];
    ForwardOptions one, three;
    one.threads = 1;
    three.threads = 3;
    EXPECT_EQ(all_states(model, ids, one), all_states(model, ids, three)) << name;
  }
}

// Copies the llama fixture's config and writes its tensors through `write`.
template <typename Write>
fs::path rewritten_llama(const test_support::TempDir& dir, Write&& write) {
  const fs::path source = kArch / "llama" / "hf";
  fs::copy_file(source / "config.json", dir.path() / "config.json");
  const io::SafetensorsFile file(source / "model.safetensors");
  write(file);
  return dir.path();
}

TEST(Weights, ShardedCheckpointsGiveTheSameStates) {
  test_support::TempDir dir;
  const fs::path folder = rewritten_llama(dir, [&](const io::SafetensorsFile& file) {
    io::SafetensorsWriter a(dir.path() / "model-00001-of-00002.safetensors"),
        b(dir.path() / "model-00002-of-00002.safetensors");
    nlohmann::json map = nlohmann::json::object();
    std::size_t i = 0;
    for (const auto& t : file.tensors()) {
      (i++ % 2 == 0 ? a : b).declare(t.name, t.dtype, t.shape);
      map[t.name] =
          i % 2 == 1 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    a.begin();
    b.begin();
    i = 0;
    for (const auto& t : file.tensors()) (i++ % 2 == 0 ? a : b).write(t.name, 0, file.raw(t));
    a.commit();
    b.commit();
    io::write_file_atomically(dir.path() / "model.safetensors.index.json",
                              nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump());
  });
  const Model sharded = Model::load(folder);
  const Model single = Model::load(kArch / "llama" / "hf");
  const auto ids = sequences(kArch / "llama")[1];
  EXPECT_EQ(all_states(sharded, ids), all_states(single, ids));

  // An index that puts a tensor in the wrong shard is named.
  auto index = nlohmann::json::parse(io::read_text_file(folder / "model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] =
      index["weight_map"]["model.norm.weight"] == "model-00001-of-00002.safetensors"
          ? "model-00002-of-00002.safetensors"
          : "model-00001-of-00002.safetensors";
  io::write_file_atomically(folder / "model.safetensors.index.json", index.dump());
  try {
    Model::load(folder);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight_map puts tensor 'model.norm.weight'"),
              std::string::npos)
        << e.what();
  }
  index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  io::write_file_atomically(folder / "model.safetensors.index.json", index.dump());
  EXPECT_THROW(Model::load(folder), Error);
}

// BF16 weights stay BF16 in the mapped file and are converted per layer; the states equal those
// of an F32 file holding the same (rounded) values. (F16 is covered by the bundled F16 models.)
TEST(Weights, Bf16StaysInItsTypeAndConvertsExactly) {
  test_support::TempDir narrow_dir, wide_dir;
  auto write = [](const fs::path& path, bool narrow, const io::SafetensorsFile& file) {
    io::SafetensorsWriter writer(path);
    for (const auto& t : file.tensors()) {
      writer.declare(t.name, narrow ? io::DType::BF16 : io::DType::F32, t.shape);
    }
    writer.begin();
    for (const auto& t : file.tensors()) {
      const auto values = file.to_f32(t);
      std::vector<std::uint16_t> bf16(values.size());
      std::vector<float> rounded(values.size());
      for (std::size_t i = 0; i < values.size(); ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, &values[i], 4);
        bf16[i] = std::uint16_t(bits >> 16);  // truncation: a valid bf16 value
        rounded[i] = io::bf16_to_f32(bf16[i]);
      }
      if (narrow) {
        writer.write(t.name, 0, std::as_bytes(std::span(bf16)));
      } else {
        writer.write(t.name, 0, std::span<const float>(rounded));
      }
    }
    writer.commit();
  };
  const fs::path narrow = rewritten_llama(narrow_dir, [&](const io::SafetensorsFile& f) {
    write(narrow_dir.path() / "model.safetensors", true, f);
  });
  const fs::path wide = rewritten_llama(wide_dir, [&](const io::SafetensorsFile& f) {
    write(wide_dir.path() / "model.safetensors", false, f);
  });
  const Model a = Model::load(narrow), b = Model::load(wide);
  EXPECT_EQ(a.token_embedding.type, WeightType::bf16);
  EXPECT_EQ(a.layers[0].q.type, WeightType::bf16);
  const auto ids = sequences(kArch / "llama")[2];
  EXPECT_EQ(all_states(a, ids), all_states(b, ids));
}

}  // namespace
}  // namespace tokmap::model
