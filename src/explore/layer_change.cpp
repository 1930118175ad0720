// What changed between layers: each point's k-NN neighbourhood in the model's space from one
// mapped layer to the next (Jaccard), and the points ranked by it; the cross-model pairs of
// compare_models ranked the same way.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "analysis/analysis.hpp"
#include "core/error.hpp"
#include "explore/explore.hpp"
#include "neighbors/neighbors.hpp"

namespace tokmap::explore {

namespace {

// validate() has already named the flag for a bad value; this is for direct callers.
neighbors::Metric metric_of(const std::string& name) {
  if (name == "cosine") return neighbors::Metric::cosine;
  if (name == "euclidean") return neighbors::Metric::euclidean;
  throw Error("metric must be cosine or euclidean, not '" + name + "'", ErrorKind::usage);
}

}  // namespace

std::vector<report::LayerChange> layer_changes(const std::vector<ModelStates>& states,
                                               const ChangeOptions& options) {
  const neighbors::Metric metric = metric_of(options.metric);
  std::vector<report::LayerChange> out;
  for (std::size_t m = 0; m < states.size(); ++m) {
    const ModelStates& s = states[m];
    if (s.width == 0) continue;
    // Consecutive among the layers mapped (--layers 0,6 compares 0 with 6): what the page steps
    // through. Each layer's neighbours are searched once and serve both of its pairs.
    if (s.layers.size() < 2) continue;
    const std::size_t n = s.hidden[0].size() / s.width;
    if (n < 2) continue;
    const std::size_t k = std::min(options.k, n - 1);
    auto neighbors_of = [&](std::size_t l) {
      return analysis::nearest_neighbors({s.hidden[l], n, s.width}, k, metric);
    };
    std::vector<std::int32_t> previous = neighbors_of(0);
    for (std::size_t l = 1; l < s.layers.size(); ++l) {
      std::vector<std::int32_t> current = neighbors_of(l);
      report::LayerChange change;
      change.model = static_cast<int>(m);
      change.layer = s.layers[l];
      change.previous_layer = s.layers[l - 1];
      change.k = k;
      change.jaccard = analysis::jaccard_of_neighbors(previous, current, k);
      change.mean = std::accumulate(change.jaccard.begin(), change.jaccard.end(), 0.0) / double(n);
      change.most_changed = analysis::most_changed(change.jaccard, options.ranked);
      out.push_back(std::move(change));
      previous = std::move(current);
    }
  }
  return out;
}

void rank_comparison(std::vector<report::ComparisonPair>& pairs, std::size_t ranked) {
  for (auto& pair : pairs) pair.most_changed = analysis::most_changed(pair.overlap, ranked);
}

}  // namespace tokmap::explore
