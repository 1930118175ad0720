#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <thread>
#include <tuple>

#include "analysis/analysis.hpp"
#include "core/error.hpp"
#include "explore/explore.hpp"
#include "explore/internal.hpp"
#include "neighbors/neighbors.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::explore {

namespace {

neighbors::Metric parse_metric(const std::string& name) {
  if (name == "cosine") return neighbors::Metric::cosine;
  if (name == "euclidean") return neighbors::Metric::euclidean;
  throw Error("--metric must be cosine or euclidean, not '" + name + "'", ErrorKind::usage);
}

// x: (n, d) row-major, in place.
void normalize_rows(std::span<float> x, std::size_t n, std::size_t d, const std::string& how) {
  if (how == "none") return;
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < d; ++c) mean[c] += x[i * d + c];
  }
  for (auto& m : mean) m /= double(n);
  for (std::size_t i = 0; i < n; ++i) {
    double norm = 0;
    for (std::size_t c = 0; c < d; ++c) {
      x[i * d + c] = static_cast<float>(x[i * d + c] - mean[c]);
      norm += double(x[i * d + c]) * x[i * d + c];
    }
    if (how == "spherize" && norm > 0) {
      const float scale = static_cast<float>(1.0 / std::sqrt(norm));
      for (std::size_t c = 0; c < d; ++c) x[i * d + c] *= scale;
    }
  }
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string lowercase_trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return lowercase(text);
}

// The points of one text when the models tokenize it differently. A cut is a byte position
// that no model's token straddles; the spans between consecutive cuts that every model covers
// with at least one token are the points (a span some model has no token in joins the next).
void align_text(std::vector<Point>& out, std::size_t t,
                const std::vector<std::vector<tokenizer::Encoding>>& encodings) {
  const std::size_t models = encodings.size();
  std::size_t length = 0;
  for (std::size_t m = 0; m < models; ++m) {
    for (const auto& span : encodings[m][t].offsets) length = std::max(length, span.second);
  }
  // inside[c] > 0: some token of some model has first < c < second.
  std::vector<int> inside(length + 2, 0);
  std::vector<std::size_t> candidates;
  for (std::size_t m = 0; m < models; ++m) {
    for (const auto& [first, second] : encodings[m][t].offsets) {
      if (first >= second) continue;  // added tokens (BOS, [CLS]) cover no text
      if (second > first + 1) {
        inside[first + 1] += 1;
        inside[second] -= 1;
      }
      candidates.push_back(first);
      candidates.push_back(second);
    }
  }
  for (std::size_t c = 1; c < inside.size(); ++c) inside[c] += inside[c - 1];
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::vector<std::size_t> cuts;
  for (const auto c : candidates) {
    if (inside[c] == 0) cuts.push_back(c);
  }
  // Each token falls in exactly one segment between cuts: the one holding its first byte.
  const std::size_t segments = cuts.empty() ? 0 : cuts.size() - 1;
  std::vector<std::vector<std::vector<std::size_t>>> members(
      segments, std::vector<std::vector<std::size_t>>(models));
  for (std::size_t m = 0; m < models; ++m) {
    const auto& offsets = encodings[m][t].offsets;
    for (std::size_t p = 0; p < offsets.size(); ++p) {
      if (offsets[p].first >= offsets[p].second) continue;
      const auto s = static_cast<std::size_t>(
          std::upper_bound(cuts.begin(), cuts.end(), offsets[p].first) - cuts.begin() - 1);
      members[s][m].push_back(p);
    }
  }
  Point pending;
  pending.text = t;
  pending.positions.assign(models, {});
  const auto covered_by_all = [&](const Point& point) {
    return std::all_of(point.positions.begin(), point.positions.end(),
                       [](const auto& p) { return !p.empty(); });
  };
  const std::size_t first_new = out.size();
  for (std::size_t s = 0; s < segments; ++s) {
    bool any = false;
    for (std::size_t m = 0; m < models; ++m) {
      if (members[s][m].empty()) continue;
      any = true;
      auto& into = pending.positions[m];
      into.insert(into.end(), members[s][m].begin(), members[s][m].end());
    }
    if (!any) continue;
    if (!covered_by_all(pending)) continue;
    out.push_back(pending);
    pending.positions.assign(models, {});
  }
  // A tail some model does not cover joins the last point of the text.
  if (out.size() > first_new) {
    for (std::size_t m = 0; m < models; ++m) {
      auto& into = out.back().positions[m];
      into.insert(into.end(), pending.positions[m].begin(), pending.positions[m].end());
    }
  }
  for (std::size_t i = first_new; i < out.size(); ++i) {
    auto& point = out[i];
    point.span = {std::numeric_limits<std::size_t>::max(), 0};
    for (std::size_t m = 0; m < models; ++m) {
      for (const auto p : point.positions[m]) {
        point.span.first = std::min(point.span.first, encodings[m][t].offsets[p].first);
        point.span.second = std::max(point.span.second, encodings[m][t].offsets[p].second);
      }
    }
  }
}

// Which points --highlight marks. A word matches where it stands alone in a text
// (case-insensitive, not inside a longer word); the points covering it are marked, so a word the
// tokenizer splits (" unease" = " une" + "ase") is marked as its run of sub-tokens, which is
// said once, as is a word that matches nothing.
std::vector<std::uint8_t> highlight_points(const std::vector<std::string>& words,
                                           const std::vector<Text>& texts, const Points& points,
                                           const std::vector<report::Token>& tokens,
                                           const Hooks& hooks) {
  std::vector<std::uint8_t> emphasis(tokens.size(), 0);
  if (words.empty()) return emphasis;
  // Model 0's tokens → their point (or -1).
  std::vector<std::vector<std::int64_t>> point_of(texts.size());
  for (std::size_t t = 0; t < texts.size(); ++t)
    point_of[t].assign(points.encodings[0][t].ids.size(), -1);
  for (std::size_t i = 0; i < points.points.size(); ++i) {
    for (const auto p : points.points[i].positions[0])
      point_of[points.points[i].text][p] = static_cast<std::int64_t>(i);
  }
  const auto is_word_byte = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || u >= 0x80;
  };
  for (const auto& given : words) {
    const std::string word = lowercase_trimmed(given);
    if (word.empty()) continue;
    std::size_t whole = 0, split = 0;
    std::string example;  // the sub-tokens of the first split match
    for (std::size_t t = 0; t < texts.size(); ++t) {
      const std::string text = lowercase(texts[t].text);
      const auto& offsets = points.encodings[0][t].offsets;
      for (std::size_t at = text.find(word); at != std::string::npos;
           at = text.find(word, at + 1)) {
        const std::size_t end = at + word.size();
        if ((at > 0 && is_word_byte(text[at - 1]) && is_word_byte(word.front())) ||
            (end < text.size() && is_word_byte(text[end]) && is_word_byte(word.back()))) {
          continue;  // inside a longer word
        }
        // Token spans tile the text in order: the first that ends after `at`, then on.
        std::vector<std::size_t> covering;
        auto p = static_cast<std::size_t>(
            std::partition_point(offsets.begin(), offsets.end(),
                                 [&](const auto& span) { return span.second <= at; }) -
            offsets.begin());
        for (; p < offsets.size() && offsets[p].first < end; ++p) {
          if (offsets[p].second > at) covering.push_back(p);
        }
        bool kept = false;
        for (const auto q : covering) {
          if (point_of[t][q] >= 0) {
            emphasis[static_cast<std::size_t>(point_of[t][q])] = 1;
            kept = true;
          }
        }
        if (!kept) continue;  // only an excluded first token
        if (covering.size() == 1) {
          ++whole;
        } else {
          ++split;
          if (example.empty()) {
            for (std::size_t k = 0; k < covering.size(); ++k) {
              const auto row = point_of[t][covering[k]];
              const std::string shown =
                  row >= 0 && !points.aligned
                      ? tokens[static_cast<std::size_t>(row)].display
                      : std::string(texts[t].text.substr(
                            offsets[covering[k]].first,
                            offsets[covering[k]].second - offsets[covering[k]].first));
              example += (k ? " + '" : "'") + shown + "'";
            }
          }
        }
      }
    }
    if (whole == 0 && split == 0) {
      hooks.warning("--highlight '" + given + "' matches no token in the texts");
    } else if (whole == 0) {
      hooks.note("--highlight '" + given + "' is not one token: it matches only as sub-tokens (" +
                 example + "), " + std::to_string(split) + " time(s); those runs are highlighted");
    }
  }
  return emphasis;
}

}  // namespace

void run_parallel(std::size_t count, int threads, const std::function<void(std::size_t)>& job,
                  const std::function<void()>& tick) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&](bool main_thread) {
    for (std::size_t i; (i = next++) < count;) {
      try {
        job(i);
      } catch (...) {
        std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = count;  // stop handing out work
      }
      if (main_thread && tick) tick();
    }
  };
  {
    std::vector<std::jthread> workers;
    const std::size_t extra =
        std::min<std::size_t>(count, std::max(1, threads)) - (count > 0 ? 1 : 0);
    for (std::size_t w = 0; w < extra; ++w) workers.emplace_back([&] { work(false); });
    work(true);
  }
  if (failure) std::rethrow_exception(failure);
}

int core_count(int threads) {
  return threads > 0 ? threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

void validate(const VizOptions& options) {
  parse_metric(options.metric);
  if (options.normalize != "none" && options.normalize != "center" &&
      options.normalize != "spherize") {
    throw Error("--normalize must be none, center or spherize, not '" + options.normalize + "'",
                ErrorKind::usage);
  }
  if (options.dims.empty()) throw Error("--dims takes 2, 3 or 2,3", ErrorKind::usage);
  for (const int d : options.dims) {
    if (d != 2 && d != 3) throw Error("--dims takes 2, 3 or 2,3", ErrorKind::usage);
  }
  if (options.seeds < 1) throw Error("--seeds must be at least 1", ErrorKind::usage);
  for (const double p : options.perplexities) {
    if (!(p > 0)) throw Error("--perplexity values must be positive", ErrorKind::usage);
  }
}

double default_perplexity(std::size_t n_points) {
  return std::clamp(std::round(double(n_points - 1) / 4.0 * 10.0) / 10.0, 2.0, 30.0);
}

Points make_points(std::vector<std::vector<tokenizer::Encoding>> encodings, bool exclude_first) {
  Points out;
  const std::size_t models = encodings.size();
  const std::size_t texts = models == 0 ? 0 : encodings[0].size();
  for (std::size_t m = 1; m < models; ++m) {
    for (std::size_t t = 0; t < texts; ++t) {
      if (encodings[m][t].ids != encodings[0][t].ids) out.aligned = true;
    }
  }
  for (std::size_t t = 0; t < texts; ++t) {
    if (!out.aligned) {
      const auto& encoding = encodings[0][t];
      for (std::size_t p = 0; p < encoding.ids.size(); ++p) {
        if (exclude_first && p == 0) continue;
        Point point;
        point.text = t;
        point.span = encoding.offsets[p];
        point.positions.assign(models, {p});
        out.points.push_back(std::move(point));
      }
      continue;
    }
    const std::size_t first_new = out.points.size();
    align_text(out.points, t, encodings);
    if (exclude_first) {
      // A span holding any model's first token goes, as the first token does without aligning.
      const auto holds_first = [](const Point& point) {
        return std::any_of(point.positions.begin(), point.positions.end(),
                           [](const auto& p) { return !p.empty() && p.front() == 0; });
      };
      out.points.erase(std::remove_if(out.points.begin() + static_cast<std::ptrdiff_t>(first_new),
                                      out.points.end(), holds_first),
                       out.points.end());
    }
  }
  out.encodings = std::move(encodings);
  return out;
}

ModelStates hidden_states(const LoadedModel& loaded, const Points& points, std::size_t m,
                          const StateOptions& options) {
  ModelStates s;
  s.name = loaded.name;
  s.n_layer = loaded.model.config().n_layer;
  s.width = loaded.model.config().n_embd;
  s.layers = model::parse_layers(options.layers, s.n_layer);
  const std::size_t n = points.points.size();
  const auto& encodings = points.encodings[m];
  // [text][position] → point, and how many tokens each point averages.
  std::vector<std::vector<std::int64_t>> point_of(encodings.size());
  for (std::size_t t = 0; t < encodings.size(); ++t)
    point_of[t].assign(encodings[t].ids.size(), -1);
  std::vector<std::uint32_t> count(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto p : points.points[i].positions[m]) {
      point_of[points.points[i].text][p] = static_cast<std::int64_t>(i);
      ++count[i];
    }
  }
  s.hidden.assign(s.layers.size(), std::vector<float>(n * s.width, 0.0f));
  std::vector<std::vector<std::int32_t>> ids;
  for (const auto& e : encodings) ids.push_back(e.ids);
  // The forward pass runs the selected layers and any the tap also wants; kept[f] is the
  // ModelStates layer of forward layer f, or -1.
  std::vector<int> run_layers = s.layers;
  if (options.tap)
    run_layers.insert(run_layers.end(), options.extra_layers.begin(), options.extra_layers.end());
  std::sort(run_layers.begin(), run_layers.end());
  run_layers.erase(std::unique(run_layers.begin(), run_layers.end()), run_layers.end());
  std::vector<std::ptrdiff_t> kept;
  for (const int layer : run_layers) {
    const auto it = std::find(s.layers.begin(), s.layers.end(), layer);
    kept.push_back(it == s.layers.end() ? -1 : it - s.layers.begin());
  }
  model::ForwardOptions forward_options;
  forward_options.layers = run_layers;
  forward_options.threads = options.threads;
  const model::ProgressCallback between_batches = [&](std::size_t done, std::size_t total) {
    if (options.progress) options.progress(done, total);
    if (options.cancelled && options.cancelled()) throw_cancelled();
  };
  model::forward(
      loaded.model, ids, forward_options,
      [&](const model::HiddenStates& h) {
        if (options.tap) options.tap(h, run_layers);
        for (std::size_t i = 0; i < h.token_count; ++i) {
          const auto row = point_of[h.text_index][h.first_token + i];
          if (row < 0) continue;
          for (std::size_t f = 0; f < h.layers.size(); ++f) {
            if (kept[f] < 0) continue;
            const auto l = static_cast<std::size_t>(kept[f]);
            const float* from = h.layers[f].data() + i * h.width;
            float* to = s.hidden[l].data() + static_cast<std::size_t>(row) * h.width;
            for (std::size_t c = 0; c < h.width; ++c) to[c] += from[c];
          }
        }
      },
      options.cancelled || options.progress ? between_batches : model::ProgressCallback{});
  // The mean of a span's tokens (one token: itself, exactly).
  for (auto& layer : s.hidden) {
    for (std::size_t i = 0; i < n; ++i) {
      if (count[i] <= 1) continue;
      const float inv = 1.0f / static_cast<float>(count[i]);
      for (std::size_t c = 0; c < s.width; ++c) layer[i * s.width + c] *= inv;
    }
    normalize_rows(layer, n, s.width, options.normalize);
  }
  return s;
}

std::vector<report::Analysis> analyze(const std::vector<ModelStates>& states,
                                      const AnalysisOptions& options) {
  const neighbors::Metric metric = parse_metric(options.metric);
  std::vector<report::Analysis> out;
  for (std::size_t m = 0; m < states.size(); ++m) {
    const auto& s = states[m];
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      const std::size_t n = s.hidden[l].size() / s.width;
      const analysis::Matrix x{s.hidden[l], n, s.width};
      report::Analysis a;
      a.model = static_cast<int>(m);
      a.layer = s.layers[l];
      neighbors::KnnOptions knn_options;
      knn_options.k = std::min<std::size_t>(5, n - 1);
      knn_options.metric = metric;
      knn_options.algorithm = neighbors::Algorithm::exact;
      const auto knn = neighbors::knn(x.data, n, s.width, knn_options);
      a.neighbor_count = knn.k;
      a.neighbors = knn.indices;
      a.neighbor_distances = knn.distances;
      analysis::ClusterOptions cluster_options;
      cluster_options.metric = metric;
      cluster_options.seed = options.seed;
      a.cluster = analysis::clusters(x, cluster_options).labels;
      analysis::OutlierOptions outlier_options;
      outlier_options.metric = metric;
      a.outlier = analysis::outlier_scores(x, outlier_options);
      std::vector<std::int32_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](auto i, auto j) { return a.outlier[i] > a.outlier[j]; });
      for (std::size_t i = 0; i < std::min<std::size_t>(10, n); ++i) {
        if (a.outlier[order[i]] < 3.0f && i >= 3) break;
        a.top_outliers.push_back(order[i]);
      }
      out.push_back(std::move(a));
    }
  }
  return out;
}

std::vector<std::int64_t> match_previous(const report::ReportData& previous,
                                         const report::ReportData& now) {
  // (text, begin, end) of every previous token → its index.
  std::map<std::tuple<std::size_t, std::size_t, std::size_t>, std::int64_t> where;
  for (std::size_t i = 0; i < previous.tokens.size(); ++i) {
    const auto& t = previous.tokens[i];
    where[{static_cast<std::size_t>(t.text), t.offset.first, t.offset.second}] =
        static_cast<std::int64_t>(i);
  }
  // Each new text's counterpart: the same text, else the previous text sharing the longest
  // prefix + suffix with it, if that is at least half of it (an edit, not another sentence).
  // Prefix and suffix are measured independently: bytes within the prefix sit at the same
  // offsets in both, bytes within the suffix at offsets shifted by the change in length.
  struct Counterpart {
    std::int64_t text = -1;
    std::size_t prefix = 0, suffix = 0;
  };
  std::vector<Counterpart> counterpart(now.texts.size());
  for (std::size_t t = 0; t < now.texts.size(); ++t) {
    const std::string& a = now.texts[t];
    std::size_t best = 0;
    for (std::size_t u = 0; u < previous.texts.size(); ++u) {
      const std::string& b = previous.texts[u];
      if (a == b) {
        counterpart[t] = {static_cast<std::int64_t>(u), a.size(), a.size()};
        break;
      }
      const std::size_t shorter = std::min(a.size(), b.size());
      std::size_t prefix = 0;
      while (prefix < shorter && a[prefix] == b[prefix]) ++prefix;
      std::size_t suffix = 0;
      while (suffix < shorter && a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) ++suffix;
      const std::size_t kept = std::min(prefix + suffix, shorter);
      if (kept > best && 2 * kept >= std::max(a.size(), b.size())) {
        best = kept;
        counterpart[t] = {static_cast<std::int64_t>(u), prefix, suffix};
      }
    }
  }
  std::vector<std::int64_t> out(now.tokens.size(), -1);
  for (std::size_t i = 0; i < now.tokens.size(); ++i) {
    const auto& token = now.tokens[i];
    const auto& c = counterpart[static_cast<std::size_t>(token.text)];
    if (c.text < 0) continue;
    const std::size_t size = now.texts[static_cast<std::size_t>(token.text)].size();
    const std::size_t old_size = previous.texts[static_cast<std::size_t>(c.text)].size();
    const auto find = [&](std::size_t begin, std::size_t end) -> std::int64_t {
      const auto it = where.find({static_cast<std::size_t>(c.text), begin, end});
      if (it == where.end() ||
          previous.tokens[static_cast<std::size_t>(it->second)].display != token.display)
        return -1;
      return it->second;
    };
    const auto [begin, end] = token.offset;
    if (end <= c.prefix) out[i] = find(begin, end);
    if (out[i] < 0 && begin + c.suffix >= size && begin + old_size >= size)
      out[i] = find(begin + old_size - size, end + old_size - size);
  }
  return out;
}

std::vector<float> start_from_previous(const report::ReportData& previous,
                                       std::span<const std::int64_t> previous_of,
                                       const report::ReportData& now, std::size_t model, int layer,
                                       int dims, double perplexity, std::uint64_t seed) {
  const std::size_t n = now.tokens.size();
  // The previous run's map of the same model, layer and dims; of several (more perplexities,
  // or a perplexity chosen from another number of points), the one of the closest perplexity.
  const report::Map* from = nullptr;
  for (const auto& m : previous.maps) {
    if (m.layer != layer || m.dims != dims || m.model < 0 ||
        static_cast<std::size_t>(m.model) >= previous.models.size() || model >= now.models.size() ||
        previous.models[static_cast<std::size_t>(m.model)] != now.models[model])
      continue;
    if (from == nullptr ||
        std::abs(m.perplexity - perplexity) < std::abs(from->perplexity - perplexity))
      from = &m;
  }
  std::size_t matched = 0;
  for (const auto p : previous_of) matched += p >= 0 ? 1 : 0;
  if (from == nullptr || matched < 3) return {};
  const std::size_t d = static_cast<std::size_t>(dims);
  std::vector<float> start(n * d, 0.0f);
  std::vector<bool> placed(n, false);
  double spread = 0;
  std::vector<double> centre(d, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const auto p = previous_of[i];
    if (p < 0 || static_cast<std::size_t>(p + 1) * d > from->coords.size()) continue;
    for (std::size_t c = 0; c < d; ++c) {
      start[i * d + c] = from->coords[static_cast<std::size_t>(p) * d + c];
      centre[c] += start[i * d + c] / static_cast<double>(matched);
    }
    placed[i] = true;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!placed[i]) continue;
    for (std::size_t c = 0; c < d; ++c)
      spread += std::abs(start[i * d + c] - centre[c]) / static_cast<double>(matched * d);
  }
  // A new token starts beside the nearest matched token before it in its text (else after it,
  // else the centre), a little apart so that no two start in the same place.
  std::mt19937_64 random(seed ^ 0x5EEDull);
  std::normal_distribution<double> jitter(0.0, std::max(spread, 1e-3) * 0.02);
  for (std::size_t i = 0; i < n; ++i) {
    if (placed[i]) continue;
    std::int64_t near = -1;
    for (std::int64_t j = static_cast<std::int64_t>(i) - 1;
         j >= 0 && now.tokens[static_cast<std::size_t>(j)].text == now.tokens[i].text; --j)
      if (placed[static_cast<std::size_t>(j)]) {
        near = j;
        break;
      }
    for (std::size_t j = i + 1; near < 0 && j < n && now.tokens[j].text == now.tokens[i].text; ++j)
      if (placed[j]) near = static_cast<std::int64_t>(j);
    for (std::size_t c = 0; c < d; ++c) {
      const double base = near >= 0 ? start[static_cast<std::size_t>(near) * d + c] : centre[c];
      start[i * d + c] = static_cast<float>(base + jitter(random));
    }
  }
  return start;
}

std::vector<report::Map> make_maps(const std::vector<ModelStates>& states,
                                   const MapOptions& options, const Hooks& hooks) {
  const neighbors::Metric metric = parse_metric(options.metric);
  if (states.empty() || options.perplexities.empty()) return {};
  const std::size_t n = states[0].hidden.empty() ? 0 : states[0].hidden[0].size() / states[0].width;
  // A chain is one (model, perplexity, dims): its layers run in order, each map starting from
  // the previous layer's. Chains are independent, so small inputs run several chains at once,
  // each t-SNE on one thread (at a few hundred points, threads inside one t-SNE mostly wait);
  // large inputs run one chain at a time with every thread. The output does not depend on it.
  struct Chain {
    std::size_t model = 0;
    double perplexity = 0;
    int dims = 2;
    std::vector<report::Map> maps;  // one per layer of the model
    std::vector<std::string> warnings;
  };
  std::vector<Chain> chains;
  for (std::size_t m = 0; m < states.size(); ++m) {
    for (const double perplexity : options.perplexities) {
      for (const int dims : options.dims) chains.push_back({m, perplexity, dims, {}, {}});
    }
  }
  const int cores = core_count(options.threads);
  const bool small = n < 2000;
  // Small inputs: each t-SNE gets the cores the unfinished chains leave free, so the last chain
  // (3D, the longest) is not left on one core while the others idle. t-SNE's result does not
  // depend on its thread count, so neither does the output.
  std::atomic<std::size_t> chains_unfinished{chains.size()};
  const auto tsne_threads = [&] {
    if (!small) return cores;
    const auto running =
        std::min<std::size_t>(chains_unfinished.load(), static_cast<std::size_t>(cores));
    return std::max(1, cores / static_cast<int>(std::max<std::size_t>(running, 1)));
  };

  std::atomic<std::size_t> runs_done{0};
  std::size_t runs_total = 0;
  for (const auto& chain : chains)
    runs_total += states[chain.model].layers.size() * static_cast<std::size_t>(options.seeds);

  auto run_chain = [&](Chain& chain) {
    const auto& s = states[chain.model];
    const int dims = chain.dims;
    for (std::size_t l = 0; l < s.layers.size(); ++l) {
      const analysis::Matrix x{s.hidden[l], n, s.width};
      report::Map map;
      map.model = static_cast<int>(chain.model);
      map.layer = s.layers[l];
      map.perplexity = chain.perplexity;
      map.dims = dims;
      std::vector<std::vector<float>> seed_maps;
      std::vector<float> start;
      for (int k = 0; k < options.seeds; ++k) {
        tsne::TsneOptions t;
        t.dims = dims;
        t.perplexity = chain.perplexity;
        t.seed = options.seed + static_cast<std::uint64_t>(k);
        t.iterations = options.iterations;
        t.metric = metric;
        t.threads = tsne_threads();
        if (k == 0 && options.start_from)
          start = options.start_from(chain.model, s.layers[l], dims, chain.perplexity);
        if (k == 0 && !start.empty()) {
          // An earlier run's layout of this layer (a live page after an edit).
          t.init = tsne::Init::given;
          t.initial_embedding = start;
        } else if (k == 0 && !chain.maps.empty()) {
          // Start from the previous layer's map so consecutive layers line up.
          t.init = tsne::Init::given;
          t.initial_embedding = chain.maps.back().coords;
        } else if (k > 0) {
          t.init = tsne::Init::random;  // PCA init would make every seed identical
        }
        tsne::Callback keep_going;
        if (options.cancelled)
          keep_going = [&](const tsne::IterationReport&) { return !options.cancelled(); };
        auto result = tsne::run_tsne(x.data, n, s.width, t, keep_going);
        if (result.stopped) throw_cancelled();
        for (auto& w : result.warnings) {
          if (std::find(chain.warnings.begin(), chain.warnings.end(), w) == chain.warnings.end()) {
            chain.warnings.push_back(std::move(w));
          }
        }
        if (k == 0) {
          map.kl = result.kl;
          map.kl_uniform = result.kl_uniform;
        } else {
          map.seed_kl.push_back(result.kl);
        }
        seed_maps.push_back(std::move(result.embedding));
        ++runs_done;
      }
      // Align to the previous layer (rotation/reflection/scale) so the slider moves points
      // only as much as the layers differ.
      map.coords = seed_maps[0];
      if (!start.empty()) {
        analysis::procrustes_align(map.coords, {start, n, std::size_t(dims)},
                                   {seed_maps[0], n, std::size_t(dims)});
      } else if (!chain.maps.empty()) {
        analysis::procrustes_align(map.coords, {chain.maps.back().coords, n, std::size_t(dims)},
                                   {seed_maps[0], n, std::size_t(dims)});
      }
      analysis::QualityOptions quality_options;
      quality_options.metric = metric;
      const auto quality =
          analysis::map_quality(x, {map.coords, n, std::size_t(dims)}, quality_options);
      map.trustworthiness = quality.trustworthiness;
      map.continuity = quality.continuity;
      map.knn_preservation = quality.knn_preservation;
      map.k = quality.k;
      // Assessed as t-SNE left them (before alignment rescales them): the point test is in
      // t-SNE's units. Other seeds get the geometry and KL checks (no per-seed neighbour ranks).
      analysis::MapFacts facts;
      facts.kl = map.kl;
      facts.kl_uniform = map.kl_uniform;
      facts.trustworthiness = quality.trustworthiness;
      facts.continuity = quality.continuity;
      facts.knn_preservation = quality.knn_preservation;
      facts.k = quality.k;
      map.assessment = analysis::assess_map({seed_maps[0], n, std::size_t(dims)}, facts, x);
      for (std::size_t k = 1; k < seed_maps.size(); ++k) {
        analysis::MapFacts seed_facts;
        seed_facts.kl = map.seed_kl[k - 1];
        seed_facts.kl_uniform = map.kl_uniform;
        seed_facts.k = quality.k;
        map.seed_assessments.push_back(
            analysis::assess_map({seed_maps[k], n, std::size_t(dims)}, seed_facts, x));
      }
      if (options.seeds > 1) {
        std::vector<analysis::Matrix> maps;
        maps.push_back({map.coords, n, std::size_t(dims)});
        for (std::size_t k = 1; k < seed_maps.size(); ++k)
          maps.push_back({seed_maps[k], n, std::size_t(dims)});
        auto stable = analysis::stability(maps);
        map.stability = stable.overall;
        map.point_stability = stable.per_point;
        for (std::size_t k = 1; k < stable.aligned.size(); ++k)
          map.seed_coords.push_back(std::move(stable.aligned[k]));
      }
      chain.maps.push_back(std::move(map));
    }
    --chains_unfinished;
  };
  {
    // Small maps run one chain per core, each single-threaded: BLAS (PCA, k-NN) must not start
    // its own threads on top (they oversubscribe the cores and spin: the GPT-2-small-shaped case
    // of bench/viz took 2.0 s without figures with them, 1.0 s without).
    std::optional<neighbors::ScopedBlasThreads> blas;
    if (small && cores > 1 && chains.size() > 1) blas.emplace(1);
    // 3D chains first: they take longest, so they must not be the ones started last.
    std::vector<std::size_t> order(chains.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return chains[a].dims > chains[b].dims; });
    hooks.step("t-SNE", 0, runs_total);
    run_parallel(
        chains.size(), small ? cores : 1, [&](std::size_t i) { run_chain(chains[order[i]]); },
        [&] { hooks.step("t-SNE", runs_done.load(), runs_total); });
  }
  std::vector<report::Map> maps;
  std::vector<std::string> warnings_seen;
  for (auto& chain : chains) {
    for (const auto& w : chain.warnings) {
      if (std::find(warnings_seen.begin(), warnings_seen.end(), w) == warnings_seen.end()) {
        hooks.warning(w);
        warnings_seen.push_back(w);
      }
    }
    for (auto& map : chain.maps) maps.push_back(std::move(map));
  }
  hooks.step("t-SNE", runs_total, runs_total);
  return maps;
}

std::vector<report::ComparisonPair> compare_models(const std::vector<ModelStates>& states,
                                                   const std::string& metric_name) {
  const neighbors::Metric metric = parse_metric(metric_name);
  std::vector<report::ComparisonPair> out;
  for (std::size_t m = 1; m < states.size(); ++m) {
    for (std::size_t l = 0; l < states[0].layers.size(); ++l) {
      const int layer_a = states[0].layers[l];
      // Matching relative depth: layer 6 of 6 pairs with layer 4 of 4.
      const int wanted =
          static_cast<int>(std::lround(double(layer_a) * states[m].n_layer / states[0].n_layer));
      const auto it = std::find(states[m].layers.begin(), states[m].layers.end(), wanted);
      if (it == states[m].layers.end()) continue;
      const std::size_t lb = static_cast<std::size_t>(it - states[m].layers.begin());
      const std::size_t n = states[0].hidden[l].size() / states[0].width;
      report::ComparisonPair pair;
      pair.a = 0;
      pair.b = static_cast<int>(m);
      pair.layer_a = layer_a;
      pair.layer_b = wanted;
      pair.k = 10;
      pair.overlap = analysis::neighborhood_overlap({states[0].hidden[l], n, states[0].width},
                                                    {states[m].hidden[lb], n, states[m].width},
                                                    pair.k, metric);
      pair.mean = std::accumulate(pair.overlap.begin(), pair.overlap.end(), 0.0) / double(n);
      out.push_back(std::move(pair));
    }
  }
  return out;
}

Result run(Engine& engine, const std::vector<Text>& texts, const VizOptions& options,
           const Hooks& user_hooks) {
  const auto start = std::chrono::steady_clock::now();
  validate(options);
  Result result;
  // Warnings reach the caller as they come and stay in the result.
  Hooks hooks = user_hooks;
  hooks.warn = [&](std::string_view message) {
    result.warnings.emplace_back(message);
    user_hooks.warning(message);
  };
  const std::vector<std::string> specs =
      options.models.empty() ? std::vector<std::string>{""} : options.models;
  const bool ids_only = !texts.empty() && texts.front().from_ids;

  // --- Tokens -----------------------------------------------------------------------------------
  std::vector<const LoadedModel*> models;
  std::vector<std::vector<tokenizer::Encoding>> encodings;
  std::vector<std::string> names;
  for (const auto& spec : specs) {
    const LoadedModel& loaded = engine.load(spec, ids_only);
    models.push_back(&loaded);
    names.push_back(loaded.name);
    const tokenizer::Tokenizer* tok = loaded.tokenizer ? &*loaded.tokenizer : nullptr;
    auto& these = encodings.emplace_back();
    for (std::size_t t = 0; t < texts.size(); ++t) {
      hooks.step("tokenize", t, texts.size());
      hooks.check_cancelled();
      these.push_back(encode(tok, texts[t], options.encode, hooks));
    }
    hooks.step("tokenize", texts.size(), texts.size());
  }
  Points points = make_points(std::move(encodings), options.exclude_first);
  const std::size_t n = points.points.size();
  if (n < 4) {
    throw Error(
        "viz needs at least 4 tokens to map, got " + std::to_string(n) +
        (options.exclude_first ? " (first tokens excluded; --include-first keeps them)" : ""));
  }
  if (points.aligned) {
    hooks.note(names[0] + " and " + names[1] + (names.size() > 2 ? " and others" : "") +
               " tokenize the texts differently: each point is a span every model's tokens cover "
               "exactly (a word, mostly), " +
               std::to_string(n) +
               " in all; a model's vector for it is the mean of its tokens' hidden states");
  }

  // --- Hidden states ----------------------------------------------------------------------------
  StateOptions state_options;
  state_options.layers = options.layers;
  state_options.normalize = options.normalize;
  state_options.threads = options.threads;
  state_options.cancelled = hooks.cancelled;
  if (hooks.progress) {
    state_options.progress = [&](std::size_t done, std::size_t total) {
      hooks.step("hidden states", done, total);
    };
  }
  LensOptions lens_options;
  lens_options.enabled = options.logit_lens;
  lens_options.threads = options.threads;
  for (std::size_t m = 0; m < models.size(); ++m) {
    std::optional<report::LogitLens> lens;
    result.states.push_back(
        hidden_states_with_lens(*models[m], points, m, state_options, lens_options, lens));
    if (lens) result.data.lens.push_back(std::move(*lens));
  }

  // --- Report data: points ----------------------------------------------------------------------
  report::ReportData& data = result.data;
  const tokenizer::Tokenizer* tok0 = models[0]->tokenizer ? &*models[0]->tokenizer : nullptr;
  for (const auto& point : points.points) {
    const auto& encoding = points.encodings[0][point.text];
    const std::size_t p = point.positions[0].front();
    const auto id = encoding.ids[p];
    report::Token token;
    token.text = static_cast<int>(point.text);
    token.position = static_cast<int>(p);
    token.id = id;
    token.offset = points.aligned ? point.span : encoding.offsets[p];
    for (const auto q : point.positions[0]) token.display += display_token(tok0, encoding.ids[q]);
    // A token of incomplete UTF-8 bytes is labelled with the character its neighbours complete.
    if (token.display.find("<0x") != std::string::npos) {
      token.label = tokenizer::whole_characters(texts[point.text].text, token.offset.first,
                                                token.offset.second);
    }
    token.kind = tok0 != nullptr && id < static_cast<std::int32_t>(tok0->vocab_size())
                     ? report::token_kind(tok0->token_bytes(id), token.position,
                                          id == tok0->special_token_id("<|endoftext|>"))
                     : report::token_kind(token.display, token.position, false);
    if (points.aligned) {
      for (std::size_t m = 0; m < models.size(); ++m) {
        const tokenizer::Tokenizer* tok = models[m]->tokenizer ? &*models[m]->tokenizer : nullptr;
        auto& pieces = token.pieces.emplace_back();
        for (const auto q : point.positions[m]) {
          const auto piece_id = points.encodings[m][point.text].ids[q];
          pieces.push_back({display_token(tok, piece_id), piece_id});
        }
      }
    }
    data.tokens.push_back(std::move(token));
  }
  result.emphasis = highlight_points(options.highlight, texts, points, data.tokens, hooks);
  for (std::size_t i = 0; i < n; ++i) {
    if (result.emphasis[i]) data.settings.highlight_tokens.push_back(static_cast<std::int32_t>(i));
  }
  for (const auto& t : texts) data.texts.push_back(t.text);
  data.models = names;
  {
    std::vector<int> all_layers;
    for (const auto& s : result.states)
      all_layers.insert(all_layers.end(), s.layers.begin(), s.layers.end());
    std::sort(all_layers.begin(), all_layers.end());
    all_layers.erase(std::unique(all_layers.begin(), all_layers.end()), all_layers.end());
    data.layers = all_layers;
  }
  std::vector<double> perplexities = options.perplexities;
  if (perplexities.empty()) {
    perplexities.push_back(default_perplexity(n));
    hooks.note("perplexity " + format("%g", perplexities[0]) + " for " + std::to_string(n) +
               (points.aligned ? " points" : " tokens") + " (set --perplexity to change)");
  }
  data.perplexities = perplexities;
  for (int s = 0; s < options.seeds; ++s)
    data.seeds.push_back(options.seed + static_cast<std::uint64_t>(s));
  data.dims = options.dims;
  data.settings.metric = options.metric;
  data.settings.normalize = options.normalize;
  data.settings.exclude_first = options.exclude_first;
  data.settings.highlight = options.highlight;
  data.settings.points = points.aligned ? "spans" : "tokens";
  data.settings.logit_lens = options.logit_lens;
  data.title = "tokmap — " + data.models[0] +
               (data.models.size() > 1 ? " vs " + data.models[1] : "") + ", " +
               std::to_string(texts.size()) + " text(s), " + std::to_string(n) +
               (points.aligned ? " aligned spans" : " tokens");

  // --- Analyses, maps, comparison ---------------------------------------------------------------
  AnalysisOptions analysis_options;
  analysis_options.metric = options.metric;
  analysis_options.seed = options.seed;
  data.analysis = analyze(result.states, analysis_options);
  MapOptions map_options;
  map_options.dims = options.dims;
  map_options.perplexities = perplexities;
  map_options.seed = options.seed;
  map_options.seeds = options.seeds;
  map_options.iterations = options.iterations;
  map_options.metric = options.metric;
  map_options.threads = options.threads;
  map_options.cancelled = hooks.cancelled;
  std::vector<std::int64_t> previous_of;
  if (options.previous) {
    previous_of = match_previous(*options.previous, data);
    map_options.start_from = [&](std::size_t m, int layer, int dims, double perplexity) {
      return start_from_previous(*options.previous, previous_of, data, m, layer, dims, perplexity,
                                 options.seed);
    };
  }
  data.maps = make_maps(result.states, map_options, hooks);
  data.comparison = compare_models(result.states, options.metric);
  rank_comparison(data.comparison);
  data.changes = layer_changes(result.states, {.metric = options.metric});
  // As many axes as the deepest map: a 2D-only report keeps only two.
  data.pca =
      pca_views(result.states, {.dims = *std::max_element(options.dims.begin(), options.dims.end()),
                                .threads = options.threads});
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace tokmap::explore
