// What changed between layers: each point's k-NN neighbourhood in the model's space from one
// mapped layer to the next (Jaccard), and the points ranked by it; the cross-model pairs of
// compare_models ranked the same way.
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
    // through.
    for (std::size_t l = 1; l < s.layers.size(); ++l) {
      const std::size_t n = s.hidden[l].size() / s.width;
      if (n < 2) continue;
      report::LayerChange change;
      change.model = static_cast<int>(m);
      change.layer = s.layers[l];
      change.previous_layer = s.layers[l - 1];
      change.k = std::min(options.k, n - 1);
      change.jaccard = analysis::neighborhood_jaccard({s.hidden[l - 1], n, s.width},
                                                      {s.hidden[l], n, s.width}, change.k, metric);
      change.mean = std::accumulate(change.jaccard.begin(), change.jaccard.end(), 0.0) / double(n);
      change.most_changed = analysis::most_changed(change.jaccard, options.ranked);
      out.push_back(std::move(change));
    }
  }
  return out;
}

void rank_comparison(std::vector<report::ComparisonPair>& pairs, std::size_t ranked) {
  for (auto& pair : pairs) pair.most_changed = analysis::most_changed(pair.overlap, ranked);
}

}  // namespace tokmap::explore
