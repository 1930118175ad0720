// Released models' config.json files (tests/data/model/configs, transcribed from the public
// Hugging Face configs) parse into the structure their architectures need, and bad values fail
// naming the field and the file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "model/model.hpp"
#include "support/error_of.hpp"

namespace tokmap::model {
namespace {

using ::testing::HasSubstr;
using tokmap::test_support::error_of;
const fs::path kConfigs = fs::path(TOKMAP_TEST_DATA) / "model" / "configs";

Config released(const char* name) { return load_config(kConfigs / name); }

TEST(ReleasedConfigs, Llama32UsesLlama3RopeScalingAndGroupedQueries) {
  const Config c = released("Llama-3.2-1B.json");
  EXPECT_EQ(c.architecture, Architecture::llama);
  EXPECT_EQ(c.n_layer, 16);
  EXPECT_EQ(c.n_embd, 2048);
  EXPECT_EQ(c.n_head, 32);
  EXPECT_EQ(c.n_kv_head, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.n_inner, 8192);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.norm, NormKind::rms_norm);
  EXPECT_TRUE(c.gated_mlp);
  EXPECT_EQ(c.activation, Activation::silu);
  EXPECT_EQ(c.rope.scaling, Rope::Scaling::llama3);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);
  EXPECT_EQ(c.rope.original_max_positions, 8192);
  EXPECT_EQ(c.rotary_dim, 64);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FLOAT_EQ(c.attention_scale, 1.0f / 8.0f);
}

TEST(ReleasedConfigs, SmolLM2AndMistral) {
  const Config smol = released("SmolLM2-135M.json");
  EXPECT_EQ(smol.architecture, Architecture::llama);
  EXPECT_EQ(smol.n_embd, 576);
  EXPECT_EQ(smol.n_head, 9);
  EXPECT_EQ(smol.n_kv_head, 3);
  EXPECT_EQ(smol.head_dim, 64);
  EXPECT_EQ(smol.n_layer, 30);
  EXPECT_EQ(smol.rope.scaling, Rope::Scaling::none);
  const Config mistral = released("Mistral-7B-v0.1.json");
  EXPECT_EQ(mistral.architecture, Architecture::mistral);
  EXPECT_EQ(mistral.n_kv_head, 8);
  EXPECT_EQ(mistral.head_dim, 128);
  EXPECT_EQ(mistral.sliding_window, std::vector<int>(32, 4096));
}

TEST(ReleasedConfigs, QwenHasBiasesAndQwen3HasQkNorms) {
  const Config qwen2 = released("Qwen2.5-0.5B.json");
  EXPECT_EQ(qwen2.architecture, Architecture::qwen2);
  EXPECT_TRUE(qwen2.qkv_bias);
  EXPECT_FALSE(qwen2.out_bias);
  EXPECT_EQ(qwen2.n_head, 14);
  EXPECT_EQ(qwen2.n_kv_head, 2);
  EXPECT_EQ(qwen2.head_dim, 64);
  EXPECT_EQ(qwen2.sliding_window, std::vector<int>(24, 0));  // use_sliding_window false
  EXPECT_DOUBLE_EQ(qwen2.rope.theta, 1e6);
  const Config qwen3 = released("Qwen3-0.6B.json");
  EXPECT_EQ(qwen3.architecture, Architecture::qwen3);
  EXPECT_TRUE(qwen3.qk_norm);
  EXPECT_FALSE(qwen3.qkv_bias);
  EXPECT_EQ(qwen3.head_dim, 128);  // != 1024 / 16
  EXPECT_EQ(qwen3.n_embd / qwen3.n_head, 64);
  EXPECT_FALSE(qwen3.norm_adds_one);
}

TEST(ReleasedConfigs, GemmaFamilies) {
  const Config g1 = released("gemma-2b.json");
  EXPECT_EQ(g1.architecture, Architecture::gemma);
  EXPECT_EQ(g1.activation, Activation::gelu_new);  // tanh GELU although hidden_act says gelu
  EXPECT_TRUE(g1.norm_adds_one);
  EXPECT_FLOAT_EQ(g1.embedding_scale, std::sqrt(2048.0f));
  EXPECT_EQ(g1.head_dim, 256);
  EXPECT_EQ(g1.n_kv_head, 1);
  EXPECT_FALSE(g1.sandwich_norms);

  const Config g2 = released("gemma-2-2b.json");
  EXPECT_EQ(g2.architecture, Architecture::gemma2);
  EXPECT_TRUE(g2.sandwich_norms);
  EXPECT_FLOAT_EQ(g2.attn_logit_softcapping, 50.0f);
  EXPECT_FLOAT_EQ(g2.attention_scale, 1.0f / 16.0f);  // query_pre_attn_scalar 256
  ASSERT_EQ(g2.sliding_window.size(), 26u);
  EXPECT_EQ(g2.sliding_window[0], 4096);  // even layers slide
  EXPECT_EQ(g2.sliding_window[1], 0);

  const Config g3 = released("gemma-3-1b-pt.json");
  EXPECT_EQ(g3.architecture, Architecture::gemma3_text);
  EXPECT_TRUE(g3.qk_norm);
  EXPECT_TRUE(g3.sandwich_norms);
  EXPECT_FLOAT_EQ(g3.attn_logit_softcapping, 0.0f);  // null
  EXPECT_DOUBLE_EQ(g3.rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(g3.rope_local.theta, 1e4);
  ASSERT_EQ(g3.sliding_window.size(), 26u);
  for (int l = 0; l < 26; ++l) {
    EXPECT_EQ(g3.sliding_window[l], (l + 1) % 6 == 0 ? 0 : 512) << l;  // 5 local : 1 global
  }
}

TEST(ReleasedConfigs, Phi3PythiaAndEncoders) {
  const Config phi3 = released("Phi-3-mini-4k-instruct.json");
  EXPECT_EQ(phi3.architecture, Architecture::phi3);
  EXPECT_EQ(phi3.n_kv_head, 32);
  EXPECT_EQ(phi3.sliding_window, std::vector<int>(32, 2047));

  const Config pythia = released("pythia-160m.json");
  EXPECT_EQ(pythia.architecture, Architecture::gpt_neox);
  EXPECT_EQ(pythia.residual, Residual::parallel);
  EXPECT_EQ(pythia.rotary_dim, 16);  // 0.25 * 64
  EXPECT_EQ(pythia.activation, Activation::gelu);
  EXPECT_EQ(pythia.norm, NormKind::layer_norm);

  const Config bert = released("bert-base-uncased.json");
  EXPECT_EQ(bert.architecture, Architecture::bert);
  EXPECT_FALSE(bert.causal);
  EXPECT_EQ(bert.residual, Residual::post_norm);
  EXPECT_FALSE(bert.final_norm);
  EXPECT_EQ(bert.type_vocab_size, 2);
  EXPECT_FLOAT_EQ(bert.layer_norm_epsilon, 1e-12f);
  EXPECT_EQ(bert.n_positions, 512);

  const Config roberta = released("roberta-base.json");
  EXPECT_EQ(roberta.architecture, Architecture::roberta);
  EXPECT_EQ(roberta.padding_idx, 1);
  EXPECT_EQ(roberta.position_table_rows, 514);
  EXPECT_EQ(roberta.n_positions, 512);  // positions 2..513
  EXPECT_EQ(roberta.type_vocab_size, 1);

  const Config distil = released("distilbert-base-uncased.json");
  EXPECT_EQ(distil.architecture, Architecture::distilbert);
  EXPECT_EQ(distil.n_layer, 6);
  EXPECT_EQ(distil.n_embd, 768);
  EXPECT_EQ(distil.n_inner, 3072);
  EXPECT_EQ(distil.type_vocab_size, 0);
}

TEST(ReleasedConfigs, UnsupportedValuesAreNamedWithTheFile) {
  EXPECT_THAT(
      error_of([] { parse_config(R"({"model_type": "mamba"})", "m/config.json"); }),
      HasSubstr("m/config.json: model_type 'mamba' is not supported (tokmap runs: gpt2, llama"));
  EXPECT_THAT(error_of([] { parse_config(R"({"model_type": "llama"})", "c.json"); }),
              HasSubstr("c.json: model_type 'llama' needs 'hidden_size'"));
  const std::string llama =
      R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100)";
  EXPECT_THAT(error_of([&] {
                parse_config(llama + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4}})",
                             "c.json");
              }),
              HasSubstr("c.json: rope_scaling type 'yarn' is not supported"));
  EXPECT_THAT(error_of([&] { parse_config(llama + R"(, "hidden_act": "mish"})", "c.json"); }),
              HasSubstr("hidden_act 'mish' is not supported"));
  EXPECT_THAT(error_of([&] { parse_config(llama + R"(, "num_key_value_heads": 3})", "c.json"); }),
              HasSubstr("not a multiple of num_key_value_heads"));
  EXPECT_THAT(error_of([] {
                parse_config(R"({"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100,
                  "position_embedding_type": "relative_key"})",
                             "c.json");
              }),
              HasSubstr("position_embedding_type 'relative_key' is not supported"));
  EXPECT_THAT(error_of([&] {
                parse_config(llama + R"(, "layer_types": ["full_attention", "chunked"]})",
                             "c.json");
              }),
              HasSubstr("layer_types entry \"chunked\""));
}

}  // namespace
}  // namespace tokmap::model
