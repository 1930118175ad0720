// The logit lens stage: next-token predictions of every point at every selected layer, computed
// from the raw states of the forward pass that hidden_states() runs anyway (its tap), so no
// state is kept twice and no forward pass runs twice.
#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "explore/explore.hpp"

namespace tokmap::explore {

bool has_logit_lens(const LoadedModel& model) { return model::has_output_head(model.model); }

ModelStates hidden_states_with_lens(const LoadedModel& loaded, const Points& points, std::size_t m,
                                    const StateOptions& options, const LensOptions& lens_options,
                                    std::optional<report::LogitLens>& lens) {
  lens.reset();
  if (!lens_options.enabled || !has_logit_lens(loaded)) {
    return hidden_states(loaded, points, m, options);
  }
  const model::Model& model = loaded.model;
  const int n_layer = model.config().n_layer;
  const std::vector<int> layers = model::parse_layers(options.layers, n_layer);
  const std::size_t n = points.points.size();
  const auto k = static_cast<std::size_t>(lens_options.top_k);
  const auto C = static_cast<std::size_t>(model.config().n_embd);

  // [text][position] → the point whose prediction that token gives: a span's last token.
  std::vector<std::vector<std::int64_t>> point_of(points.encodings[m].size());
  for (std::size_t t = 0; t < point_of.size(); ++t)
    point_of[t].assign(points.encodings[m][t].ids.size(), -1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& point = points.points[i];
    point_of[point.text][point.positions[m].back()] = static_cast<std::int64_t>(i);
  }

  report::LogitLens out;
  out.model = static_cast<int>(m);
  out.k = lens_options.top_k;
  out.vocab_size = model.config().vocab_size;
  out.final_layer = n_layer;
  out.final_top1.assign(n, -1);
  for (const int layer : layers) {
    auto& entry = out.layers.emplace_back();
    entry.layer = layer;
    entry.top_ids.assign(n * k, -1);
    entry.top_probs.assign(n * k, 0.0f);
    entry.entropy.assign(n, 0.0f);
  }

  StateOptions with_tap = options;
  with_tap.extra_layers = {n_layer};  // "agrees with the final layer" needs it even when unmapped
  std::vector<float> rows;
  std::vector<std::size_t> targets;
  with_tap.tap = [&](const model::HiddenStates& h, std::span<const int> run_layers) {
    targets.clear();
    std::vector<std::size_t> at;  // positions within the batch
    for (std::size_t i = 0; i < h.token_count; ++i) {
      const auto point = point_of[h.text_index][h.first_token + i];
      if (point < 0) continue;
      targets.push_back(static_cast<std::size_t>(point));
      at.push_back(i);
    }
    if (targets.empty()) return;
    // Layers below the last go through the final norm; the last does not (HF's last state
    // already has it), so it has calls of its own.
    for (const bool last : {false, true}) {
      std::vector<std::size_t> forward_index;
      for (std::size_t f = 0; f < run_layers.size(); ++f) {
        const int layer = run_layers[f];
        const bool wanted =
            layer == n_layer || std::any_of(out.layers.begin(), out.layers.end(),
                                            [&](const auto& e) { return e.layer == layer; });
        if (wanted && (layer == n_layer) == last) forward_index.push_back(f);
      }
      const std::size_t R = targets.size();
      // Layers are grouped until a call has about kGroupRows rows: enough that reading the
      // head once per call costs little next to the matmul, few enough that the copy of the
      // rows stays small (the forward pass already holds every layer of the batch).
      constexpr std::size_t kGroupRows = 512;
      const std::size_t per_call = std::max<std::size_t>(1, kGroupRows / R);
      for (std::size_t g0 = 0; g0 < forward_index.size(); g0 += per_call) {
        const std::size_t groups = std::min(per_call, forward_index.size() - g0);
        rows.resize(groups * R * C);
        for (std::size_t g = 0; g < groups; ++g) {
          for (std::size_t r = 0; r < R; ++r) {
            std::copy_n(h.layers[forward_index[g0 + g]].data() + at[r] * C, C,
                        rows.data() + (g * R + r) * C);
          }
        }
        model::NextTokenOptions next_options;
        next_options.top_k = lens_options.top_k;
        next_options.final_norm = !last;
        next_options.threads = lens_options.threads;
        const auto next = model::next_token(model, rows, groups * R, next_options);
        for (std::size_t g = 0; g < groups; ++g) {
          const int layer = run_layers[forward_index[g0 + g]];
          const auto it = std::find_if(out.layers.begin(), out.layers.end(),
                                       [&](const auto& e) { return e.layer == layer; });
          for (std::size_t r = 0; r < R; ++r) {
            const std::size_t i = targets[r], row = g * R + r;
            if (layer == n_layer) out.final_top1[i] = next.ids[row * k];
            if (it == out.layers.end()) continue;
            std::copy_n(next.ids.data() + row * k, k, it->top_ids.data() + i * k);
            std::copy_n(next.probs.data() + row * k, k, it->top_probs.data() + i * k);
            it->entropy[i] = next.entropy[row];
          }
        }
      }
    }
  };
  ModelStates states = hidden_states(loaded, points, m, with_tap);

  std::map<std::int32_t, std::string> shown;
  const tokenizer::Tokenizer* tok = loaded.tokenizer ? &*loaded.tokenizer : nullptr;
  const auto add = [&](std::int32_t id) {
    if (id >= 0 && !shown.count(id)) shown[id] = display_token(tok, id);
  };
  for (const auto id : out.final_top1) add(id);
  for (const auto& layer : out.layers) {
    for (const auto id : layer.top_ids) add(id);
  }
  out.tokens.assign(shown.begin(), shown.end());
  lens = std::move(out);
  return states;
}

}  // namespace tokmap::explore
