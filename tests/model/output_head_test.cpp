// The output head (logit lens): next_token against its naive reference, and the whole chain
// (tokmap's forward pass, final norm, unembedding, soft-capping, softmax) against float64
// references computed from independent states (tests/data/explore/make_lens_references.py).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "io/io.hpp"
#include "io/json.hpp"
#include "model/model.hpp"
#include "support/model_states.hpp"

namespace fs = std::filesystem;
namespace model = tokmap::model;

namespace {

using tokmap::test_support::all_states;

const fs::path kData = TOKMAP_TEST_DATA;
const fs::path kModels = TOKMAP_MODELS_DIR;

struct Case {
  const char* name;
  fs::path folder;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const char* arch : {"llama", "qwen2", "phi3", "gemma2", "gptneox"})
    out.push_back({arch, kData / "model" / "arch" / arch / "hf"});
  out.push_back({"demo-brown-gpt2", kModels / "demo-brown-gpt2"});
  return out;
}

// Compares two predictions: probabilities within `tolerance` rank by rank, ids equal unless the
// reference's neighbouring probabilities are within 2 * tolerance (a near-tie may swap).
void expect_same(const model::NextToken& got, const std::vector<std::vector<std::int32_t>>& ids,
                 const std::vector<std::vector<double>>& probs, const std::vector<double>& entropy,
                 double tolerance, const std::string& what) {
  const std::size_t k = std::size_t(got.top_k);
  ASSERT_EQ(got.ids.size(), ids.size() * k) << what;
  for (std::size_t t = 0; t < ids.size(); ++t) {
    EXPECT_NEAR(got.entropy[t], entropy[t], std::max(tolerance, 1e-5 * entropy[t]))
        << what << " token " << t;
    for (std::size_t j = 0; j < k; ++j) {
      EXPECT_NEAR(got.probs[t * k + j], probs[t][j], tolerance) << what << " token " << t;
      const bool tie_before = j > 0 && probs[t][j - 1] - probs[t][j] < 2 * tolerance;
      const bool tie_after = j + 1 < k && probs[t][j] - probs[t][j + 1] < 2 * tolerance;
      if (!tie_before && !tie_after) {
        EXPECT_EQ(got.ids[t * k + j], ids[t][j]) << what << " token " << t << " rank " << j;
      }
    }
  }
}

}  // namespace

TEST(OutputHead, EncodersHaveNone) {
  const auto bert = model::Model::load(kData / "model" / "arch" / "bert" / "hf");
  EXPECT_FALSE(model::has_output_head(bert));
  const std::vector<float> h(std::size_t(bert.config().n_embd), 0.5f);
  EXPECT_THROW(model::next_token(bert, h, 1, {}), tokmap::Error);
}

TEST(OutputHead, HeadsAreTheCheckpointsOwnOrTheTiedEmbedding) {
  const auto llama = model::Model::load(kData / "model" / "arch" / "llama" / "hf");
  EXPECT_EQ(llama.output_head.name, "lm_head.weight");
  const auto neox = model::Model::load(kData / "model" / "arch" / "gptneox" / "hf");
  EXPECT_EQ(neox.output_head.name, "embed_out.weight");
  const auto qwen = model::Model::load(kData / "model" / "arch" / "qwen2" / "hf");
  EXPECT_EQ(qwen.output_head.name, qwen.token_embedding.name);
  const auto gemma = model::Model::load(kData / "model" / "arch" / "gemma2" / "hf");
  EXPECT_FLOAT_EQ(gemma.config().final_logit_softcapping, 30.0f);
  EXPECT_FLOAT_EQ(llama.config().final_logit_softcapping, 0.0f);
  // The GGUF copy has no output.weight for tied models either, and the same soft-capping.
  const auto gemma_gguf = model::Model::load(kData / "model" / "arch" / "gemma2" / "model.gguf");
  EXPECT_TRUE(model::has_output_head(gemma_gguf));
  EXPECT_FLOAT_EQ(gemma_gguf.config().final_logit_softcapping, 30.0f);
}

TEST(OutputHead, FastMatchesNaive) {
  for (const auto& c : cases()) {
    const auto m = model::Model::load(c.folder);
    const std::vector<std::int32_t> ids{464, 314, 182, 197, 52, 308, 234, 11, 3};
    const auto states = all_states(m, ids);
    for (std::size_t l = 0; l < states.size(); ++l) {
      model::NextTokenOptions options;
      options.final_norm = l + 1 < states.size();
      options.top_k = 7;
      const auto fast = model::next_token(m, states[l], ids.size(), options);
      const auto naive = model::next_token_naive(m, states[l], ids.size(), options);
      std::vector<std::vector<std::int32_t>> ref_ids(ids.size());
      std::vector<std::vector<double>> ref_probs(ids.size());
      std::vector<double> ref_entropy;
      for (std::size_t t = 0; t < ids.size(); ++t) {
        for (std::size_t j = 0; j < 7; ++j) {
          ref_ids[t].push_back(naive.ids[t * 7 + j]);
          ref_probs[t].push_back(naive.probs[t * 7 + j]);
        }
        ref_entropy.push_back(naive.entropy[t]);
      }
      expect_same(fast, ref_ids, ref_probs, ref_entropy, 1e-6,
                  std::string(c.name) + " layer " + std::to_string(l));
    }
  }
}

// More rows than one block (512) of the fast path, through Gemma 2's soft-capping.
TEST(OutputHead, ManyRowsGoThroughInBlocks) {
  const auto m = model::Model::load(kData / "model" / "arch" / "gemma2" / "hf");
  const std::size_t T = 1100, C = std::size_t(m.config().n_embd);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> h(T * C);
  for (auto& v : h) v = normal(rng);
  const auto fast = model::next_token(m, h, T, {});
  const auto naive = model::next_token_naive(m, h, T, {});
  std::vector<std::vector<std::int32_t>> ids(T);
  std::vector<std::vector<double>> probs(T);
  std::vector<double> entropy;
  for (std::size_t t = 0; t < T; ++t) {
    for (std::size_t j = 0; j < 5; ++j) {
      ids[t].push_back(naive.ids[t * 5 + j]);
      probs[t].push_back(naive.probs[t * 5 + j]);
    }
    entropy.push_back(naive.entropy[t]);
  }
  // Random unnormalised rows give sharp distributions with logits near the cap (30), where one
  // float32 ulp of the fast path's BLAS logits is 2e-6 against the naive double dot products.
  expect_same(fast, ids, probs, entropy, 1e-5, "random rows");
}

// The chain from token ids to predictions against PyTorch-side float64 references.
TEST(OutputHead, LensMatchesPyTorchReferences) {
  for (const auto& c : cases()) {
    const auto m = model::Model::load(c.folder);
    const fs::path file = kData / "explore" / "lens" / (std::string(c.name) + ".json");
    const auto ref = tokmap::io::parse_json(tokmap::io::read_text_file(file), file.string());
    const auto ids = ref["ids"].get<std::vector<std::int32_t>>();
    const auto states = all_states(m, ids);
    ASSERT_EQ(ref["layers"].size(), states.size()) << c.name;
    for (std::size_t l = 0; l < states.size(); ++l) {
      const auto& layer = ref["layers"][l];
      model::NextTokenOptions options;
      options.final_norm = l + 1 < states.size();  // HF's last state has the norm already
      const auto got = model::next_token(m, states[l], ids.size(), options);
      expect_same(got, layer["top_ids"].get<std::vector<std::vector<std::int32_t>>>(),
                  layer["top_probs"].get<std::vector<std::vector<double>>>(),
                  layer["entropy"].get<std::vector<double>>(), 1e-4,
                  std::string(c.name) + " layer " + std::to_string(l));
    }
  }
}

// The GGUF copies (output.weight for untied llama; none for tied Gemma 2, read as llama.cpp
// does; Gemma's norms stored as 1 + w) predict what the safetensors copies predict.
TEST(OutputHead, GgufCopiesPredictTheSame) {
  for (const char* arch : {"llama", "gemma2", "qwen2", "gptneox"}) {
    const auto hf = model::Model::load(kData / "model" / "arch" / arch / "hf");
    const auto gguf = model::Model::load(kData / "model" / "arch" / arch / "model.gguf");
    const std::vector<std::int32_t> ids{464, 314, 182, 197, 52, 308, 234};
    const auto a = all_states(hf, ids), b = all_states(gguf, ids);
    for (std::size_t l = 0; l < a.size(); ++l) {
      model::NextTokenOptions options;
      options.final_norm = l + 1 < a.size();
      const auto want = model::next_token(hf, a[l], ids.size(), options);
      const auto got = model::next_token(gguf, b[l], ids.size(), options);
      std::vector<std::vector<std::int32_t>> ref_ids(ids.size());
      std::vector<std::vector<double>> ref_probs(ids.size());
      std::vector<double> ref_entropy;
      for (std::size_t t = 0; t < ids.size(); ++t) {
        for (std::size_t j = 0; j < 5; ++j) {
          ref_ids[t].push_back(want.ids[t * 5 + j]);
          ref_probs[t].push_back(want.probs[t * 5 + j]);
        }
        ref_entropy.push_back(want.entropy[t]);
      }
      expect_same(got, ref_ids, ref_probs, ref_entropy, 1e-5,
                  std::string(arch) + " gguf layer " + std::to_string(l));
    }
  }
}

// Applying the final norm to the last state a second time is a different (wrong) answer.
TEST(OutputHead, LastLayerIsNotNormalisedTwice) {
  const auto m = model::Model::load(kModels / "demo-brown-gpt2");
  const std::vector<std::int32_t> ids{464, 3331, 286, 262, 7850};
  const auto states = all_states(m, ids);
  model::NextTokenOptions twice;
  twice.final_norm = true;
  model::NextTokenOptions once;
  once.final_norm = false;
  const auto a = model::next_token(m, states.back(), ids.size(), once);
  const auto b = model::next_token(m, states.back(), ids.size(), twice);
  double diff = 0;
  for (std::size_t i = 0; i < a.probs.size(); ++i)
    diff = std::max(diff, double(std::abs(a.probs[i] - b.probs[i])));
  EXPECT_GT(diff, 1e-3);
}
