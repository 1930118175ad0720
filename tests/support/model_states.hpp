#pragma once
// Shared by the model tests: every hidden state of one text, and the relative error the
// reference comparisons use.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "model/model.hpp"

namespace tokmap::test_support {

// (n_layer + 1) states of one text, each (T, C) row-major (NaN where a layer was not captured).
inline std::vector<std::vector<float>> all_states(const model::Model& model,
                                                  const std::vector<std::int32_t>& ids,
                                                  model::ForwardOptions options = {}) {
  const std::size_t C = model.config().n_embd;
  std::vector<std::vector<float>> states(model.config().n_layer + 1,
                                         std::vector<float>(ids.size() * C, NAN));
  const std::vector<std::vector<std::int32_t>> texts{ids};
  model::forward(model, texts, options, [&](const model::HiddenStates& s) {
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      std::copy(s.layers[l].begin(), s.layers[l].end(), states[l].begin() + s.first_token * C);
    }
  });
  return states;
}

// max |got - want| / max |want|
inline double relative_error(std::span<const float> got, std::span<const float> want) {
  double error = 0, reference = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    error = std::max(error, std::fabs(double(got[i]) - want[i]));
    reference = std::max(reference, std::fabs(double(want[i])));
  }
  return error / reference;
}

}  // namespace tokmap::test_support
