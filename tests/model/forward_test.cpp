// Golden tests of the forward pass against Hugging Face's hidden states, plus properties of
// windows, layer selection and batching.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "io/io.hpp"
#include "model/model.hpp"
#include "support/model_states.hpp"

namespace tokmap::model {
namespace {

using test_support::relative_error;

const fs::path kData = TOKMAP_TEST_DATA;
const fs::path kModels = TOKMAP_MODELS_DIR;

struct Captured {
  std::vector<int> layers;
  std::size_t width = 0;
  // per layer: (n_tokens, width) of text 0
  std::vector<std::vector<float>> states;
};

Captured run(const Model& model, const std::vector<std::int32_t>& ids,
             ForwardOptions options = {}) {
  Captured result;
  if (options.layers.empty()) {
    for (int l = 0; l <= model.config().n_layer; ++l) options.layers.push_back(l);
  }
  result.layers = options.layers;
  result.width = model.config().n_embd;
  result.states.assign(options.layers.size(), std::vector<float>(ids.size() * result.width, NAN));
  std::vector<std::vector<std::int32_t>> texts{ids};
  std::size_t next_token = 0;
  forward(model, texts, options, [&](const HiddenStates& s) {
    EXPECT_EQ(s.text_index, 0u);
    EXPECT_EQ(s.first_token, next_token);  // runs arrive in order, without gaps
    next_token = s.first_token + s.token_count;
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      std::copy(s.layers[l].begin(), s.layers[l].end(),
                result.states[l].begin() + s.first_token * s.width);
    }
  });
  EXPECT_EQ(next_token, ids.size());
  return result;
}

void check_against_reference(const fs::path& model_dir, const fs::path& reference_dir,
                             int expected_cases) {
  const Model model = Model::load(model_dir);
  const io::SafetensorsFile reference(reference_dir / "reference_hidden_states.safetensors");
  const int n_states = model.config().n_layer + 1;
  int cases = 0;
  for (int c = 0;; ++c) {
    const auto* ids_info = reference.find("case" + std::to_string(c) + ".input_ids");
    if (ids_info == nullptr) break;
    ++cases;
    const auto ids64 = reference.to_i64(*ids_info);
    const std::vector<std::int32_t> ids(ids64.begin(), ids64.end());
    const auto& hs_info = reference.get("case" + std::to_string(c) + ".hidden_states");
    ASSERT_EQ(hs_info.shape[0], n_states);
    const auto want = reference.to_f32(hs_info);
    const Captured got = run(model, ids);
    const std::size_t per_layer = ids.size() * model.config().n_embd;
    for (int l = 0; l < n_states; ++l) {
      const double error =
          relative_error(got.states[l], std::span(want).subspan(l * per_layer, per_layer));
      EXPECT_LE(error, 1e-4) << model_dir << " case " << c << " layer " << l;
    }
  }
  EXPECT_EQ(cases, expected_cases);
}

TEST(Forward, MatchesHuggingFaceOnTinyModel) {
  check_against_reference(kData / "tiny-gpt2-base-f32", kData / "tiny-gpt2-base-f32", 5);
}

TEST(Forward, MatchesHuggingFaceOnBundledModel) {
  check_against_reference(kModels / "demo-brown-gpt2", kData / "demo-brown-gpt2", 4);
}

TEST(Forward, MatchesHuggingFaceOnSmallBundledModel) {
  check_against_reference(kModels / "demo-brown-gpt2-small", kData / "demo-brown-gpt2-small", 4);
}

std::vector<std::int32_t> random_ids(std::size_t n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  std::vector<std::int32_t> ids(n);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

TEST(Forward, SelectedLayersEqualTheFullRun) {
  const Model model = Model::load(kModels / "demo-brown-gpt2");
  const auto ids = random_ids(40, model.config().vocab_size, 1);
  const Captured all = run(model, ids);
  ForwardOptions options;
  options.layers = {0, 3};  // stops after block 3: must not change the values
  const Captured some = run(model, ids, options);
  EXPECT_EQ(some.states[0], all.states[0]);
  EXPECT_EQ(some.states[1], all.states[3]);
}

TEST(Forward, BatchingDoesNotChangeResults) {
  const Model model = Model::load(kModels / "demo-brown-gpt2-small");
  std::vector<std::vector<std::int32_t>> texts{random_ids(30, model.config().vocab_size, 2),
                                               random_ids(7, model.config().vocab_size, 3),
                                               random_ids(19, model.config().vocab_size, 4)};
  auto collect = [&](int batch_tokens) {
    ForwardOptions options;
    options.batch_tokens = batch_tokens;
    options.layers = {model.config().n_layer};
    std::vector<std::vector<float>> out(texts.size());
    std::vector<std::size_t> order;
    forward(model, texts, options, [&](const HiddenStates& s) {
      order.push_back(s.text_index);
      out[s.text_index].insert(out[s.text_index].end(), s.layers[0].begin(), s.layers[0].end());
    });
    EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2}));
    return out;
  };
  const auto one_by_one = collect(1);
  const auto together = collect(4096);
  for (std::size_t t = 0; t < texts.size(); ++t) {
    ASSERT_EQ(one_by_one[t].size(), texts[t].size() * model.config().n_embd);
    EXPECT_LE(relative_error(together[t], one_by_one[t]), 1e-5) << "text " << t;
  }
}

TEST(Forward, LongTextsUseOverlappingWindowsWithMostLeftContext) {
  // The tiny model has 64 positions: 150 tokens need windows [0,64) [32,96) [64,128) [86,150).
  const Model model = Model::load(kData / "tiny-gpt2-base-f32");
  const int P = model.config().n_positions;
  ASSERT_EQ(P, 64);
  const auto ids = random_ids(150, model.config().vocab_size, 5);
  ForwardOptions options;
  options.layers = {1, 2};
  const Captured whole = run(model, ids, options);

  auto window_states = [&](std::size_t begin) {
    std::vector<std::int32_t> slice(ids.begin() + begin, ids.begin() + begin + P);
    return run(model, slice, options);
  };
  struct Expect {
    std::size_t window_begin, keep_begin, keep_end;
  };
  const std::size_t C = model.config().n_embd;
  for (const Expect e :
       {Expect{0, 0, 64}, Expect{32, 64, 96}, Expect{64, 96, 128}, Expect{86, 128, 150}}) {
    const Captured window = window_states(e.window_begin);
    for (std::size_t l = 0; l < 2; ++l) {
      const std::vector<float> from_whole(whole.states[l].begin() + e.keep_begin * C,
                                          whole.states[l].begin() + e.keep_end * C);
      const std::vector<float> from_window(
          window.states[l].begin() + (e.keep_begin - e.window_begin) * C,
          window.states[l].begin() + (e.keep_end - e.window_begin) * C);
      // Not bit-identical: the whole run and the window run multiply matrices of different row
      // counts, and OpenBLAS picks its blocking (hence the summation order) by shape and kernel.
      // Measured relative error: 0 under Prescott and Sandybridge, 4.2e-7 under Haswell and Zen.
      // A token taken from the wrong window differs by O(1), so 1e-5 still tells them apart.
      EXPECT_LE(relative_error(from_whole, from_window), 1e-5)
          << "tokens " << e.keep_begin << ".." << e.keep_end << " layer " << options.layers[l];
    }
  }
}

TEST(Forward, RejectsEmptyTextsAndIdsOutsideTheVocabulary) {
  const Model model = Model::load(kData / "tiny-gpt2-base-f32");
  std::vector<std::vector<std::int32_t>> empty{{}};
  EXPECT_THROW(forward(model, empty, {}, [](const HiddenStates&) {}), Error);
  std::vector<std::vector<std::int32_t>> bad{{1, 2, 50257}};
  try {
    forward(model, bad, {}, [](const HiddenStates&) {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("50257"), std::string::npos);
  }
}

TEST(ParseLayers, AcceptsAllLastListsAndNegatives) {
  EXPECT_EQ(parse_layers("all", 2), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(parse_layers("last", 6), (std::vector<int>{6}));
  EXPECT_EQ(parse_layers("6,0,3,3", 6), (std::vector<int>{0, 3, 6}));
  EXPECT_EQ(parse_layers("-1", 6), (std::vector<int>{6}));
}

TEST(ParseLayers, RejectsOutOfRangeAndGarbageAsUsageErrors) {
  for (const char* spec : {"7", "-8", "1,x", "", ","}) {
    if (std::string(spec).empty()) continue;  // empty means all
    try {
      parse_layers(spec, 6);
      FAIL() << spec;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::usage) << spec;
    }
  }
}

}  // namespace
}  // namespace tokmap::model
