// Config parsing, model resolution and weight validation, including every bad-input case.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "io/io.hpp"
#include "model/model.hpp"
#include "support/error_of.hpp"
#include "support/temp_dir.hpp"

namespace tokmap::model {
namespace {

using ::testing::HasSubstr;
const fs::path kData = TOKMAP_TEST_DATA;
const fs::path kModels = TOKMAP_MODELS_DIR;

using tokmap::test_support::TempDir;

void write(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

using tokmap::test_support::error_of;

TEST(Config, FillsGpt2DefaultsAndIgnoresUnknownFields) {
  const Config config =
      parse_config(R"({"n_embd": 64, "n_head": 4, "future_field": [1, 2]})", "c.json");
  EXPECT_EQ(config.n_layer, 12);
  EXPECT_EQ(config.n_embd, 64);
  EXPECT_EQ(config.n_inner, 256);  // 4 * n_embd when absent
  EXPECT_FLOAT_EQ(config.layer_norm_epsilon, 1e-5f);
  EXPECT_EQ(config.activation, Activation::gelu_new);
  EXPECT_EQ(parse_config(R"({"n_inner": null})", "c").n_inner, 4 * 768);
  EXPECT_EQ(parse_config(R"({"activation_function": "relu"})", "c").activation, Activation::relu);
  EXPECT_EQ(parse_config(R"({"activation_function": "gelu"})", "c").activation, Activation::gelu);
}

TEST(Config, RejectsBadValuesNamingTheFile) {
  EXPECT_THAT(error_of([] { parse_config("{not json", "m/config.json"); }),
              HasSubstr("m/config.json: not valid JSON"));
  EXPECT_THAT(error_of([] { parse_config("[1]", "c.json"); }), HasSubstr("expected a JSON object"));
  EXPECT_THAT(error_of([] { parse_config(R"({"n_layer": 2, "n_layer": 3})", "c.json"); }),
              HasSubstr("c.json: key 'n_layer' appears twice"));
  EXPECT_THAT(error_of([] { parse_config("{\"model_type\": \"gpt\xff\"}", "c.json"); }),
              HasSubstr("c.json: not valid JSON"));
  EXPECT_THAT(error_of([] { parse_config(R"({"n_layer": -1})", "c.json"); }), HasSubstr("n_layer"));
  EXPECT_THAT(error_of([] { parse_config(R"({"n_embd": 30, "n_head": 4})", "c.json"); }),
              HasSubstr("not divisible"));
  EXPECT_THAT(error_of([] { parse_config(R"({"activation_function": "swish"})", "c.json"); }),
              HasSubstr("swish"));
  EXPECT_THAT(error_of([] { parse_config(R"({"model_type": "llama"})", "c.json"); }),
              HasSubstr("llama"));
}

TEST(Resolve, FindsFoldersBundledModelsAndTheDefault) {
  const ResolveOptions options{{kModels}, "/nonexistent-cache", "/nonexistent-ollama"};
  EXPECT_EQ(resolve_model("", options).folder, kModels / "demo-brown-gpt2");
  EXPECT_EQ(resolve_model("demo-brown-gpt2-small", options).folder,
            kModels / "demo-brown-gpt2-small");
  const fs::path folder = kData / "tiny-gpt2-base-f32";
  EXPECT_EQ(resolve_model(folder.string(), options).folder, folder);
}

TEST(Resolve, FindsHuggingFaceCacheSnapshotsByIdAndAlias) {
  TempDir cache;
  const fs::path entry = cache.path() / "models--openai-community--gpt2";
  write(entry / "refs" / "main", "abc123\n");
  write(entry / "snapshots" / "abc123" / "config.json", "{}");
  write(entry / "snapshots" / "abc123" / "model.safetensors", "");
  const ResolveOptions options{{kModels}, cache.path(), "/nonexistent-ollama"};
  EXPECT_EQ(resolve_model("gpt2", options).folder, entry / "snapshots" / "abc123");
  EXPECT_EQ(resolve_model("openai-community/gpt2", options).folder, entry / "snapshots" / "abc123");

  const fs::path distil = cache.path() / "models--distilgpt2";  // legacy name, found via the alias
  write(distil / "refs" / "main", "d1");
  write(distil / "snapshots" / "d1" / "config.json", "{}");
  EXPECT_EQ(resolve_model("distilbert/distilgpt2", options).folder, distil / "snapshots" / "d1");
}

TEST(Resolve, UsesHfHubCacheEnvironment) {
  TempDir cache;
  ::setenv("HF_HUB_CACHE", cache.path().c_str(), 1);
  EXPECT_EQ(default_hf_cache(), cache.path());
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_HOME", "/some/home", 1);
  EXPECT_EQ(default_hf_cache(), fs::path("/some/home/hub"));
  ::unsetenv("HF_HOME");
}

TEST(Resolve, NotFoundListsEveryPlaceAndHowToGetIt) {
  const ResolveOptions options{{kModels}, "/nonexistent-cache", "/nonexistent-ollama"};
  const std::string message = error_of([&] { resolve_model("gpt2-medium", options); });
  EXPECT_THAT(message, HasSubstr((kModels / "gpt2-medium").string()));
  EXPECT_THAT(message, HasSubstr("/nonexistent-cache/models--gpt2-medium/refs/main"));
  EXPECT_THAT(message,
              HasSubstr("/nonexistent-cache/models--openai-community--gpt2-medium/refs/main"));
  EXPECT_THAT(message, HasSubstr("huggingface-cli download gpt2-medium"));
  EXPECT_THAT(error_of([&] { resolve_model("./no/such/folder", options); }),
              HasSubstr("does not exist"));
}

TEST(Resolve, FindsASnapshotWithoutRefsMainAndSelectsARevision) {
  TempDir cache;
  const fs::path entry = cache.path() / "models--openai-community--gpt2";
  // As some download tools leave it: a snapshot folder and no refs/.
  write(entry / "snapshots" / "0123456789abcdef" / "config.json", "{}");
  const ResolveOptions options{{kModels}, cache.path(), "/nonexistent-ollama"};
  EXPECT_EQ(resolve_model("gpt2", options).folder, entry / "snapshots" / "0123456789abcdef");

  // Two snapshots and no refs/main: ambiguous, and the error says how to choose.
  write(entry / "snapshots" / "fedcba9876543210" / "config.json", "{}");
  const std::string message = error_of([&] { resolve_model("gpt2", options); });
  EXPECT_THAT(message, HasSubstr("2 snapshots (0123456789abcdef, fedcba9876543210)"));
  EXPECT_THAT(message, HasSubstr("--model gpt2@<commit>"));
  // gpt2@<commit>, a unique prefix of 7 or more, or a branch in refs/.
  const ModelLocation exact = resolve_model("gpt2@fedcba9876543210", options);
  EXPECT_EQ(exact.folder, entry / "snapshots" / "fedcba9876543210");
  EXPECT_EQ(exact.name, "openai-community/gpt2@fedcba9876543210");  // as the id is found
  EXPECT_EQ(resolve_model("openai-community/gpt2@0123456", options).folder,
            entry / "snapshots" / "0123456789abcdef");
  write(entry / "refs" / "main", "fedcba9876543210\n");
  EXPECT_EQ(resolve_model("gpt2", options).folder, entry / "snapshots" / "fedcba9876543210");
  write(entry / "refs" / "old", "0123456789abcdef");
  EXPECT_EQ(resolve_model("gpt2@old", options).folder, entry / "snapshots" / "0123456789abcdef");
  EXPECT_THAT(error_of([&] { resolve_model("gpt2@nosuchcommit", options); }),
              HasSubstr("huggingface-cli download gpt2 --revision nosuchcommit"));
  EXPECT_THAT(error_of([&] { resolve_model("gpt2@", options); }), HasSubstr("nothing after '@'"));
}

// --- weights ---------------------------------------------------------------------------------

// Copies the tiny model into a temp folder, rewriting model.safetensors through `edit`, which
// receives the tensor table and may drop, rename or reshape tensors.
struct TensorSpec {
  std::string name;
  io::DType dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;
};

fs::path rewritten_tiny_model(const TempDir& dir, auto&& edit) {
  const fs::path source = kData / "tiny-gpt2-base-f32";
  fs::copy_file(source / "config.json", dir.path() / "config.json");
  const io::SafetensorsFile file(source / "model.safetensors");
  std::vector<TensorSpec> specs;
  for (const auto& t : file.tensors()) {
    const auto raw = file.raw(t);
    specs.push_back({t.name, t.dtype, t.shape, {raw.begin(), raw.end()}});
  }
  edit(specs);
  io::SafetensorsWriter writer(dir.path() / "model.safetensors");
  for (const auto& s : specs) writer.declare(s.name, s.dtype, s.shape);
  writer.begin();
  for (const auto& s : specs) writer.write(s.name, 0, std::span<const std::byte>(s.bytes));
  writer.commit();
  return dir.path();
}

TEST(Weights, LoadsBothKeyLayoutsAndFloat16) {
  const Model tiny = Model::load(kData / "tiny-gpt2-base-f32");  // "h.0..." keys, F32
  EXPECT_EQ(tiny.layers.size(), 2u);
  const Model demo = Model::load(kModels / "demo-brown-gpt2");  // "transformer.h.0...", F16
  EXPECT_EQ(demo.parameter_count(), 7'688'320u);
}

TEST(Weights, IgnoresAttentionBuffersAndAcceptsAnLmHead) {
  TempDir dir;
  const fs::path folder = rewritten_tiny_model(dir, [](std::vector<TensorSpec>& specs) {
    specs.push_back({"h.0.attn.bias", io::DType::F32, {1, 1, 2, 2}, std::vector<std::byte>(16)});
    specs.push_back(
        {"lm_head.weight", io::DType::F32, {50257, 32}, std::vector<std::byte>(50257 * 32 * 4)});
  });
  EXPECT_NO_THROW(Model::load(folder));
}

TEST(Weights, MissingTensorIsNamed) {
  TempDir dir;
  const fs::path folder = rewritten_tiny_model(dir, [](std::vector<TensorSpec>& specs) {
    std::erase_if(specs, [](const TensorSpec& s) { return s.name == "h.1.mlp.c_fc.bias"; });
  });
  EXPECT_THAT(
      error_of([&] { Model::load(folder); }),
      HasSubstr("model.safetensors: tensor 'h.1.mlp.c_fc.bias' is missing (expected shape [128])"));
}

TEST(Weights, WrongShapeNamesExpectedAndActual) {
  TempDir dir;
  const fs::path folder = rewritten_tiny_model(dir, [](std::vector<TensorSpec>& specs) {
    for (auto& s : specs) {
      if (s.name == "h.0.attn.c_attn.weight") s.shape = {96, 32};  // transposed
    }
  });
  EXPECT_THAT(error_of([&] { Model::load(folder); }),
              HasSubstr("tensor 'h.0.attn.c_attn.weight' has shape [96, 32], expected [32, 96]"));
}

TEST(Weights, UnsupportedDtypeIsNamed) {
  TempDir dir;
  const fs::path folder = rewritten_tiny_model(dir, [](std::vector<TensorSpec>& specs) {
    for (auto& s : specs) {
      if (s.name == "ln_f.bias") s.dtype = io::DType::I32;
    }
  });
  EXPECT_THAT(error_of([&] { Model::load(folder); }), HasSubstr("'ln_f.bias' has dtype I32"));
}

TEST(Weights, MissingFilesAreNamed) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { Model::load(dir.path() / "nope"); }),
              HasSubstr("model folder does not exist"));
  EXPECT_THAT(error_of([&] { Model::load(dir.path()); }), HasSubstr("config.json is missing"));
  write(dir.path() / "config.json", "{\"n_layer\": 2");
  EXPECT_THAT(error_of([&] { Model::load(dir.path()); }), HasSubstr("not valid JSON"));
  write(dir.path() / "config.json", "{}");
  EXPECT_THAT(error_of([&] { Model::load(dir.path()); }),
              HasSubstr("model.safetensors is missing"));
}

// --- non-finite weights and layer outputs ------------------------------------------------------

std::vector<std::byte> bytes_of(const auto& values) {
  const auto* p = reinterpret_cast<const std::byte*>(values.data());
  return {p, p + values.size() * sizeof(values[0])};
}

// The tensor `name` of the tiny model as float32 values.
std::vector<float> tiny_tensor(const std::string& name) {
  const io::SafetensorsFile file(kData / "tiny-gpt2-base-f32" / "model.safetensors");
  return file.to_f32(file.get(name));
}

TEST(BadWeights, NonFiniteF32WeightIsNamedWithTensorAndFirstIndex) {
  TempDir dir;
  const fs::path folder = rewritten_tiny_model(dir, [](std::vector<TensorSpec>& specs) {
    for (auto& s : specs) {
      if (s.name != "h.1.mlp.c_fc.weight") continue;  // (32, 128)
      auto values = tiny_tensor(s.name);
      values[3 * 128 + 5] = std::nanf("");
      values[7 * 128 + 1] = INFINITY;  // a later one is not the one named
      s.bytes = bytes_of(values);
    }
  });
  EXPECT_THAT(error_of([&] { Model::load(folder); }),
              HasSubstr("model.safetensors: tensor 'h.1.mlp.c_fc.weight' has a non-finite value "
                        "(NaN) at index 389 [3, 5]"));
}

TEST(BadWeights, NonFiniteF16AndBf16WeightsAreNamed) {
  for (const auto dtype : {io::DType::F16, io::DType::BF16}) {
    TempDir dir;
    const fs::path folder = rewritten_tiny_model(dir, [&](std::vector<TensorSpec>& specs) {
      for (auto& s : specs) {
        if (s.name != "ln_f.weight" && s.name != "wpe.weight") continue;
        // ln_f.weight all ones; wpe.weight zeros with -Inf at [2, 7].
        std::vector<std::uint16_t> half(
            s.name == "ln_f.weight" ? 32 : 64 * 32,
            s.name == "ln_f.weight" ? (dtype == io::DType::F16 ? 0x3C00 : 0x3F80) : 0);
        if (s.name == "wpe.weight") half[2 * 32 + 7] = dtype == io::DType::F16 ? 0xFC00 : 0xFF80;
        s.dtype = dtype;
        s.bytes = bytes_of(half);
      }
    });
    SCOPED_TRACE(std::string(io::dtype_name(dtype)));
    EXPECT_THAT(error_of([&] { Model::load(folder); }),
                HasSubstr("tensor 'wpe.weight' has a non-finite value (-Inf) at index 71 [2, 7]"));
  }
}

TEST(BadWeights, LayerThatOverflowsIsNamedAndNothingNonFiniteReachesTheSink) {
  TempDir dir;
  // Finite but huge weights: the first block's two residual additions overflow float32.
  const fs::path folder = rewritten_tiny_model(dir, [](std::vector<TensorSpec>& specs) {
    for (auto& s : specs) {
      if (s.name != "h.0.attn.c_proj.bias" && s.name != "h.0.mlp.c_proj.bias") continue;
      std::vector<float> values(32, 3e38f);
      s.bytes = bytes_of(values);
    }
  });
  const Model model = Model::load(folder);
  const std::vector<std::vector<std::int32_t>> texts{{464, 3331}, {464, 3331, 286}};
  ForwardOptions options;
  std::size_t sink_calls = 0;
  const std::string message =
      error_of([&] { forward(model, texts, options, [&](const HiddenStates&) { ++sink_calls; }); });
  // The residual stream is about 3e38 + 3e38 after block 0 for every token; the first is named.
  EXPECT_THAT(message, HasSubstr("model.safetensors: layer 1 produced a non-finite value ("));
  EXPECT_THAT(message, HasSubstr("for text 1, token 0, dimension 0"));
  EXPECT_EQ(sink_calls, 0u);
}

}  // namespace
}  // namespace tokmap::model
