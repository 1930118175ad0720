// PCA beside t-SNE: a linear view of each (model, layer) with the share of variance it shows, so
// the page can show the global structure t-SNE does not keep (distances between clusters, the
// spread along the main axes).
#include <algorithm>
#include <vector>

#include "explore/explore.hpp"
#include "explore/internal.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::explore {

std::vector<report::PcaView> pca_views(const std::vector<ModelStates>& states,
                                       const PcaOptions& options) {
  struct Job {
    std::size_t model, layer;
  };
  std::vector<Job> jobs;
  for (std::size_t m = 0; m < states.size(); ++m)
    for (std::size_t l = 0; l < states[m].layers.size(); ++l) jobs.push_back({m, l});
  std::vector<report::PcaView> out(jobs.size());
  run_parallel(jobs.size(), options.threads, [&](std::size_t j) {
    const ModelStates& s = states[jobs[j].model];
    const std::vector<float>& x = s.hidden[jobs[j].layer];
    const std::size_t n = s.width == 0 ? 0 : x.size() / s.width;
    report::PcaView& view = out[j];
    view.model = static_cast<int>(jobs[j].model);
    view.layer = s.layers[jobs[j].layer];
    // One decomposition serves both views: the 2D view is the 3D one's first two axes.
    const std::size_t k = std::min<std::size_t>({std::size_t(options.dims), s.width, n});
    view.dims = static_cast<int>(k);
    if (k == 0) return;
    view.coords.resize(n * k);
    tsne::pca(view.coords, x, n, s.width, k);
    view.explained = tsne::explained_variance_ratio(view.coords, x, n, s.width, k);
  });
  return out;
}

}  // namespace tokmap::explore
