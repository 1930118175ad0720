// viz --atlas: new texts placed into an atlas's frozen maps (src/atlas), as report data.
#include "atlas/atlas.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

#include "explore/explore.hpp"

namespace tokmap::explore {

Placed place(Engine& engine, const std::vector<Text>& texts, const atlas::Atlas& a,
             const std::string& atlas_name, const AtlasVizOptions& options, const Hooks& hooks) {
  const auto start = std::chrono::steady_clock::now();
  const bool ids_only = !texts.empty() && texts.front().from_ids;
  const LoadedModel& loaded =
      engine.load(options.model.empty() ? a.model : options.model, ids_only);
  if (static_cast<std::size_t>(loaded.model.config().n_embd) != a.width) {
    throw Error("model " + loaded.name + " has width " +
                    std::to_string(loaded.model.config().n_embd) + " but the atlas " + atlas_name +
                    " was built with width " + std::to_string(a.width),
                ErrorKind::usage);
  }
  const tokenizer::Tokenizer* tok = loaded.tokenizer ? &*loaded.tokenizer : nullptr;
  std::string layers;
  for (const auto& l : a.layers) {
    if (l.layer > loaded.model.config().n_layer)
      throw Error(atlas_name + ": layer " + std::to_string(l.layer) + " is beyond " + loaded.name +
                      "'s " + std::to_string(loaded.model.config().n_layer),
                  ErrorKind::usage);
    layers += (layers.empty() ? "" : ",") + std::to_string(l.layer);
  }
  // Raw states of the atlas's layers (placement normalises with the atlas's own corpus mean),
  // one text at a time: the forward pass batches texts, and a text's states could then differ
  // in the last bit with the company it keeps; alone, a placed token's position cannot.
  StateOptions state_options;
  state_options.layers = layers;
  state_options.normalize = "none";
  state_options.threads = options.threads;
  state_options.cancelled = hooks.cancelled;
  std::vector<tokenizer::Encoding> encodings;
  std::vector<Point> all_points;
  ModelStates raw;
  for (std::size_t t = 0; t < texts.size(); ++t) {
    hooks.check_cancelled();
    encodings.push_back(encode(tok, texts[t], options.encode, hooks));
    Points one = make_points({{encodings.back()}}, options.exclude_first);
    if (one.points.empty()) continue;
    ModelStates states = hidden_states(loaded, one, 0, state_options);
    if (raw.hidden.empty()) {
      raw = std::move(states);
    } else {
      for (std::size_t l = 0; l < raw.hidden.size(); ++l)
        raw.hidden[l].insert(raw.hidden[l].end(), states.hidden[l].begin(), states.hidden[l].end());
    }
    for (auto& point : one.points) {
      point.text = t;
      all_points.push_back(std::move(point));
    }
  }
  const std::size_t m = all_points.size();
  if (m == 0) throw Error("viz --atlas: the texts have no tokens to place");

  Placed placed;
  placed.model = &loaded;
  // Each layer: the new points in feature space, placed into every map.
  atlas::PlaceOptions place_options;
  place_options.threads = options.threads;
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    hooks.check_cancelled();
    const auto& layer = a.layers[l];
    const auto at = std::find(raw.layers.begin(), raw.layers.end(), layer.layer);
    const auto& states = raw.hidden[static_cast<std::size_t>(at - raw.layers.begin())];
    placed.features.push_back(atlas::to_features(a, l, states, m));
    for (std::size_t k = 0; k < layer.maps.size(); ++k) {
      auto one = atlas::place_features(a, l, k, placed.features.back(), m, place_options);
      PlacedMap map;
      map.atlas_layer = l;
      map.map_index = k;
      map.layer = layer.layer;
      map.dims = layer.maps[k].dims;
      map.coords = std::move(one.coords);
      map.confidence = std::move(one.confidence);
      placed.maps.push_back(std::move(map));
    }
    hooks.step("place", l + 1, a.layers.size());
  }
  placed.encodings = std::move(encodings);
  placed.points = std::move(all_points);
  placed.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return placed;
}

Result run_atlas(Engine& engine, const std::vector<Text>& texts, const fs::path& atlas_file,
                 const AtlasVizOptions& options, const Hooks& hooks) {
  return run_atlas(engine, texts, atlas::read(atlas_file), atlas_file.string(), options, hooks);
}

Result run_atlas(Engine& engine, const std::vector<Text>& texts, const atlas::Atlas& a,
                 const std::string& atlas_name, const AtlasVizOptions& options,
                 const Hooks& hooks) {
  const auto start = std::chrono::steady_clock::now();
  Placed placed = place(engine, texts, a, atlas_name, options, hooks);
  const LoadedModel& loaded = *placed.model;
  const tokenizer::Tokenizer* tok = loaded.tokenizer ? &*loaded.tokenizer : nullptr;
  const auto& encodings = placed.encodings;
  const auto& all_points = placed.points;
  const std::size_t m = all_points.size();
  Result result;
  report::ReportData& data = result.data;
  const std::size_t n = a.n, total = n + m;
  data.texts = a.texts;
  for (const auto& t : texts) data.texts.push_back(t.text);
  const auto kind_of = [&](std::int32_t id, const std::string& display, int position) {
    return tok != nullptr && id < static_cast<std::int32_t>(tok->vocab_size())
               ? report::token_kind(tok->token_bytes(id), position,
                                    id == tok->special_token_id("<|endoftext|>"))
               : report::token_kind(display, position, false);
  };
  for (const auto& t : a.tokens) {
    report::Token token;
    token.text = t.text;
    token.position = t.position;
    token.id = t.id;
    token.display = t.display;
    token.offset = {t.begin, t.end};
    token.kind = kind_of(t.id, t.display, t.position);
    token.source = "atlas";
    data.tokens.push_back(std::move(token));
  }
  for (const auto& point : all_points) {
    const auto& encoding = encodings[point.text];
    const std::size_t p = point.positions[0].front();
    report::Token token;
    token.text = static_cast<int>(a.texts.size() + point.text);
    token.position = static_cast<int>(p);
    token.id = encoding.ids[p];
    token.display = display_token(tok, token.id);
    token.offset = encoding.offsets[p];
    token.kind = kind_of(token.id, token.display, token.position);
    token.source = "placed";
    data.tokens.push_back(std::move(token));
  }

  // The analyses run in the atlas's feature space.
  std::vector<float> confidence(m, 1.0f);
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    const auto& layer = a.layers[l];
    const auto& features = placed.features[l];
    ModelStates space;
    space.name = loaded.name;
    space.n_layer = loaded.model.config().n_layer;
    space.width = a.rank;
    space.layers = {layer.layer};
    space.hidden.push_back(layer.features);
    space.hidden[0].insert(space.hidden[0].end(), features.begin(), features.end());
    result.states.push_back(std::move(space));
  }
  for (auto& one : placed.maps) {
    const auto& reference = a.layers[one.atlas_layer].maps[one.map_index];
    report::Map map;
    map.layer = one.layer;
    map.perplexity = a.perplexity;
    map.dims = one.dims;
    map.kl = reference.kl;
    // Not measured here (the atlas's maps were judged when it was built; `tokmap atlas check`
    // re-places its texts): the page shows "—" rather than a score of 0.
    map.trustworthiness = map.continuity = map.knn_preservation =
        std::numeric_limits<double>::quiet_NaN();
    map.coords = reference.coords;
    map.coords.insert(map.coords.end(), one.coords.begin(), one.coords.end());
    map.confidence.assign(n, 1.0f);
    map.confidence.insert(map.confidence.end(), one.confidence.begin(), one.confidence.end());
    // A token's own confidence (the page's default): the last layer's first map's.
    if (one.atlas_layer + 1 == a.layers.size() && one.map_index == 0) confidence = one.confidence;
    data.maps.push_back(std::move(map));
  }
  for (std::size_t i = 0; i < m; ++i) data.tokens[n + i].confidence = confidence[i];
  // One ModelStates per layer above; the analyses want one per model with every layer.
  hooks.check_cancelled();
  ModelStates all = result.states.front();
  for (std::size_t l = 1; l < result.states.size(); ++l) {
    all.layers.push_back(result.states[l].layers[0]);
    all.hidden.push_back(std::move(result.states[l].hidden[0]));
  }
  result.states = {std::move(all)};
  AnalysisOptions analysis_options;
  analysis_options.metric = "euclidean";
  data.analysis = analyze(result.states, analysis_options);

  data.models = {loaded.name};
  for (const auto& l : a.layers) data.layers.push_back(l.layer);
  data.perplexities = {a.perplexity};
  data.seeds = {a.seed};
  for (const auto& mp : a.layers.front().maps) data.dims.push_back(mp.dims);
  std::sort(data.dims.begin(), data.dims.end());
  data.settings.metric = a.metric;
  data.settings.normalize = a.normalize;
  data.settings.exclude_first = options.exclude_first;
  data.title = "tokmap — " + loaded.name + ", " + std::to_string(m) + " token(s) placed into " +
               fs::path(atlas_name).filename().string() + " (" + std::to_string(n) + " tokens)";
  result.emphasis.assign(total, 0);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace tokmap::explore
