// Atlas build and placement (see atlas.hpp for the method).
#include "atlas/atlas.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "tsne/tsne.hpp"

namespace tokmap::atlas {
namespace {

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

// x (width) raw -> u: minus mean, unit length for cosine (an all-zero row stays zero).
void to_unit(std::span<float> u, const float* x, std::span<const float> mean, bool cosine) {
  double norm = 0;
  for (std::size_t c = 0; c < u.size(); ++c) {
    u[c] = x[c] - mean[c];
    norm += double(u[c]) * u[c];
  }
  if (cosine && norm > 0) {
    const float s = static_cast<float>(1.0 / std::sqrt(norm));
    for (auto& v : u) v *= s;
  }
}

// f (rank) = (u - pca_mean) . components^T, in double for stable bytes.
void project(std::span<float> f, std::span<const float> u, const AtlasLayer& layer) {
  const std::size_t width = u.size();
  for (std::size_t r = 0; r < f.size(); ++r) {
    const float* axis = layer.components.data() + r * width;
    double s = 0;
    for (std::size_t c = 0; c < width; ++c) s += double(u[c] - layer.pca_mean[c]) * axis[c];
    f[r] = static_cast<float>(s);
  }
}

// The `k` smallest of values (n) as indices, sorted by (value, index); `skip` left out. One scan
// with a bounded max-heap: most values fail the comparison with the heap's top and cost one
// compare (an nth_element over an index array of 20k took as long as the whole placement).
// The same indices as sorting every (value, index) pair.
void smallest(std::vector<std::int32_t>& out, const std::vector<float>& values, std::size_t k,
              std::int64_t skip, std::vector<std::int32_t>& heap) {
  const std::size_t n = values.size();
  const std::size_t available = n - (skip >= 0 && static_cast<std::size_t>(skip) < n ? 1 : 0);
  k = std::min(k, available);
  const auto less = [&](std::int32_t a, std::int32_t b) {
    return values[a] < values[b] || (values[a] == values[b] && a < b);
  };
  heap.clear();
  out.clear();
  if (k == 0) return;
  for (std::size_t j = 0; j < n; ++j) {
    if (static_cast<std::int64_t>(j) == skip) continue;
    const auto i = static_cast<std::int32_t>(j);
    if (heap.size() < k) {
      heap.push_back(i);
      std::push_heap(heap.begin(), heap.end(), less);
    } else if (values[j] < values[heap.front()]) {  // ties keep the lower index, already in
      std::pop_heap(heap.begin(), heap.end(), less);
      heap.back() = i;
      std::push_heap(heap.begin(), heap.end(), less);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), less);
  out.assign(heap.begin(), heap.end());
}

struct PointResult {
  float y[3] = {0, 0, 0};
  int overlap = 0;  // of confidence_k
};

// Repulsion of the whole frozen reference on one point y: z = sum_j w_j, rep = sum_j w_j^2 (y -
// y_j) with w_j = 1 / (1 + |y - y_j|^2). soa: the map's coordinates by dimension, (dims, n). Float
// lanes summed in blocks of 256 into double, in a fixed order: vectorised, and the same bytes on
// every run and thread count.
void repulsion(double& z, double* rep, const std::vector<float>& soa, std::size_t n, int dims,
               const double* y) {
  const float yx = static_cast<float>(y[0]), yy = static_cast<float>(y[1]),
              yz = dims == 3 ? static_cast<float>(y[2]) : 0.0f;
  const float* xs = soa.data();
  const float* ys = soa.data() + n;
  const float* zs = dims == 3 ? soa.data() + 2 * n : nullptr;
  for (std::size_t start = 0; start < n; start += 256) {
    const std::size_t end = std::min(n, start + 256);
    float bz = 0, b0 = 0, b1 = 0, b2 = 0;
    if (dims == 2) {
#pragma omp simd reduction(+ : bz, b0, b1)
      for (std::size_t j = start; j < end; ++j) {
        const float dx = yx - xs[j], dy = yy - ys[j];
        const float w = 1.0f / (1.0f + dx * dx + dy * dy);
        bz += w;
        b0 += w * w * dx;
        b1 += w * w * dy;
      }
    } else {
#pragma omp simd reduction(+ : bz, b0, b1, b2)
      for (std::size_t j = start; j < end; ++j) {
        const float dx = yx - xs[j], dy = yy - ys[j], dz = yz - zs[j];
        const float w = 1.0f / (1.0f + dx * dx + dy * dy + dz * dz);
        bz += w;
        b0 += w * w * dx;
        b1 += w * w * dy;
        b2 += w * w * dz;
      }
    }
    z += bz;
    rep[0] += b0;
    rep[1] += b1;
    if (dims == 3) rep[2] += b2;
  }
}

// One new point against the frozen reference. Everything here depends only on this point and
// the atlas: batch independence and thread-count independence hold by construction.
PointResult place_one(const Atlas& atlas, const AtlasLayer& layer, const AtlasMap& map,
                      const std::vector<float>& soa, const std::vector<float>& features_t,
                      const float* f, std::int64_t exclude, const PlaceOptions& options) {
  const std::size_t n = atlas.n, rank = atlas.rank;
  const int dims = map.dims;
  // Squared distances to every reference point, vectorised across the reference points
  // (features_t: (rank, n)): each sum runs over the rank in order, the same bytes every run.
  // (Vectorising along the rank instead, per point, spent more time in the horizontal sums of
  // its 50 dimensions than in the arithmetic.)
  std::vector<float> dist(n, 0.0f);
  for (std::size_t c = 0; c < rank; ++c) {
    const float fc = f[c];
    const float* g = features_t.data() + c * n;
#pragma omp simd
    for (std::size_t j = 0; j < n; ++j) {
      const float t = fc - g[j];
      dist[j] += t * t;
    }
  }
  const std::size_t reference = exclude >= 0 ? n - 1 : n;
  const std::size_t k = std::min<std::size_t>(
      reference, std::max<std::size_t>(1, static_cast<std::size_t>(3.0 * atlas.perplexity)));
  std::vector<std::int32_t> nn, scratch;
  smallest(nn, dist, k, exclude, scratch);
  std::vector<float> sq(nn.size()), p(nn.size());
  for (std::size_t a = 0; a < nn.size(); ++a) sq[a] = dist[nn[a]];
  tsne::conditional_probabilities(
      p, sq, 1, nn.size(), std::min(atlas.perplexity, std::max(1.0, (nn.size() - 1) / 3.0)), 1);

  PointResult result;
  const float* ref = map.coords.data();
  double y[3] = {0, 0, 0};
  for (std::size_t a = 0; a < nn.size(); ++a)
    for (int c = 0; c < dims; ++c) y[c] += double(p[a]) * ref[std::size_t(nn[a]) * dims + c];

  // Gradient descent with momentum on KL(p || q) (see atlas.hpp); the excluded reference point
  // takes no part in the repulsion either, as if it were not in the atlas (its terms are
  // subtracted after the branch-free, vectorised sum).
  double velocity[3] = {0, 0, 0};
  for (int it = 0; it < options.iterations; ++it) {
    double z = 0, rep[3] = {0, 0, 0}, att[3] = {0, 0, 0};
    repulsion(z, rep, soa, n, dims, y);
    if (exclude >= 0) {
      double d2 = 0, diff[3];
      for (int c = 0; c < dims; ++c) {
        diff[c] = y[c] - ref[std::size_t(exclude) * dims + c];
        d2 += diff[c] * diff[c];
      }
      const double w = 1.0 / (1.0 + d2);
      z -= w;
      for (int c = 0; c < dims; ++c) rep[c] -= w * w * diff[c];
    }
    for (std::size_t a = 0; a < nn.size(); ++a) {
      const float* r = ref + std::size_t(nn[a]) * dims;
      double d2 = 0, diff[3];
      for (int c = 0; c < dims; ++c) {
        diff[c] = y[c] - r[c];
        d2 += diff[c] * diff[c];
      }
      const double w = 1.0 / (1.0 + d2);
      for (int c = 0; c < dims; ++c) att[c] += double(p[a]) * w * diff[c];
    }
    double norm = 0;
    for (int c = 0; c < dims; ++c) {
      const double grad = att[c] - rep[c] / z;
      velocity[c] = options.momentum * velocity[c] - options.learning_rate * grad;
      norm += velocity[c] * velocity[c];
    }
    norm = std::sqrt(norm);
    const double scale =
        options.max_step > 0 && norm > options.max_step ? options.max_step / norm : 1.0;
    for (int c = 0; c < dims; ++c) y[c] += velocity[c] * scale;
  }
  for (int c = 0; c < dims; ++c) result.y[c] = static_cast<float>(y[c]);

  // Confidence: the point's kc nearest reference points in feature space against its kc nearest
  // reference points in the map.
  const std::size_t kc =
      std::min<std::size_t>(static_cast<std::size_t>(atlas.confidence_k), nn.size());
  std::vector<float> mapdist(n);
  for (std::size_t j = 0; j < n; ++j) {
    double d2 = 0;
    for (int c = 0; c < dims; ++c) {
      const double t = y[c] - ref[j * dims + c];
      d2 += t * t;
    }
    mapdist[j] = static_cast<float>(d2);
  }
  std::vector<std::int32_t> mapnn;
  smallest(mapnn, mapdist, kc, exclude, scratch);
  std::vector<std::int32_t> high(nn.begin(), nn.begin() + static_cast<std::ptrdiff_t>(kc));
  std::sort(high.begin(), high.end());
  std::sort(mapnn.begin(), mapnn.end());
  std::vector<std::int32_t> both;
  std::set_intersection(high.begin(), high.end(), mapnn.begin(), mapnn.end(),
                        std::back_inserter(both));
  result.overlap = static_cast<int>(both.size());
  return result;
}

// Pool-adjacent-violators: the non-decreasing fit of values with weights.
std::vector<double> isotonic(const std::vector<double>& values,
                             const std::vector<double>& weights) {
  struct Block {
    double sum, weight;
    std::size_t count;
  };
  std::vector<Block> blocks;
  for (std::size_t i = 0; i < values.size(); ++i) {
    blocks.push_back({values[i] * weights[i], weights[i], 1});
    while (blocks.size() > 1) {
      auto& b = blocks[blocks.size() - 1];
      auto& a = blocks[blocks.size() - 2];
      if (a.sum / a.weight <= b.sum / b.weight) break;
      a.sum += b.sum;
      a.weight += b.weight;
      a.count += b.count;
      blocks.pop_back();
    }
  }
  std::vector<double> out;
  for (const auto& b : blocks) out.insert(out.end(), b.count, b.sum / b.weight);
  return out;
}

}  // namespace

double map_diameter(const AtlasMap& map, std::size_t n) {
  double lo[3] = {1e300, 1e300, 1e300}, hi[3] = {-1e300, -1e300, -1e300};
  for (std::size_t i = 0; i < n; ++i)
    for (int c = 0; c < map.dims; ++c) {
      lo[c] = std::min<double>(lo[c], map.coords[i * map.dims + c]);
      hi[c] = std::max<double>(hi[c], map.coords[i * map.dims + c]);
    }
  double s = 0;
  for (int c = 0; c < map.dims; ++c) s += (hi[c] - lo[c]) * (hi[c] - lo[c]);
  return std::sqrt(s);
}

std::vector<float> to_features(const Atlas& atlas, std::size_t layer_index,
                               std::span<const float> raw, std::size_t m) {
  if (layer_index >= atlas.layers.size())
    throw Error("atlas: no layer index " + std::to_string(layer_index), ErrorKind::usage);
  if (raw.size() != m * atlas.width)
    throw Error("atlas: placing " + std::to_string(m) + " points needs " +
                    std::to_string(m * atlas.width) + " values (width " +
                    std::to_string(atlas.width) + "), got " + std::to_string(raw.size()),
                ErrorKind::usage);
  const auto& layer = atlas.layers[layer_index];
  const bool cosine = atlas.metric == "cosine";
  std::vector<float> out(m * atlas.rank), u(atlas.width);
  for (std::size_t i = 0; i < m; ++i) {
    to_unit(u, raw.data() + i * atlas.width, layer.mean, cosine);
    project({out.data() + i * atlas.rank, atlas.rank}, u, layer);
  }
  return out;
}

Placement place_features(const Atlas& atlas, std::size_t layer_index, std::size_t map_index,
                         std::span<const float> features, std::size_t m,
                         const PlaceOptions& options, std::span<const std::int64_t> exclude) {
  const auto& layer = atlas.layers.at(layer_index);
  const auto& map = layer.maps.at(map_index);
  if (features.size() != m * atlas.rank)
    throw Error("atlas: features of " + std::to_string(m) + " points must have " +
                    std::to_string(m * atlas.rank) + " values",
                ErrorKind::usage);
  if (!exclude.empty() && exclude.size() != m)
    throw Error("atlas: one excluded reference row per placed point", ErrorKind::usage);
  if (atlas.n < 2) throw Error("atlas: the reference has fewer than 2 points");
  Placement out;
  out.layer = layer.layer;
  out.dims = map.dims;
  out.coords.resize(m * map.dims);
  out.confidence.resize(m);
  out.overlap.resize(m);
  const int kc = atlas.confidence_k;
  std::vector<float> soa(map.coords.size());
  for (std::size_t j = 0; j < atlas.n; ++j)
    for (int c = 0; c < map.dims; ++c)
      soa[std::size_t(c) * atlas.n + j] = map.coords[j * map.dims + c];
  std::vector<float> features_t(layer.features.size());
  for (std::size_t j = 0; j < atlas.n; ++j)
    for (std::size_t c = 0; c < atlas.rank; ++c)
      features_t[c * atlas.n + j] = layer.features[j * atlas.rank + c];
      // Static chunks of independent points: any thread count gives the same bytes.
#pragma omp parallel for schedule(static) num_threads(thread_count(options.threads))
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(m); ++i) {
    const auto r = place_one(atlas, layer, map, soa, features_t, features.data() + i * atlas.rank,
                             exclude.empty() ? -1 : exclude[i], options);
    for (int c = 0; c < map.dims; ++c) out.coords[i * map.dims + c] = r.y[c];
    const int o = std::clamp(r.overlap, 0, kc);
    out.overlap[i] = static_cast<float>(o) / static_cast<float>(std::max(kc, 1));
    out.confidence[i] = map.calibration.empty() ? out.overlap[i] : map.calibration[o];
  }
  return out;
}

std::vector<Placement> place(const Atlas& atlas, std::size_t layer_index,
                             std::span<const float> raw, std::size_t m, const PlaceOptions& options,
                             std::span<const std::int64_t> exclude) {
  const auto features = to_features(atlas, layer_index, raw, m);
  std::vector<Placement> out;
  for (std::size_t k = 0; k < atlas.layers[layer_index].maps.size(); ++k)
    out.push_back(place_features(atlas, layer_index, k, features, m, options, exclude));
  return out;
}

Atlas build(const std::vector<std::vector<float>>& states, const std::vector<int>& layers,
            std::size_t n, std::size_t width, const BuildOptions& options,
            const Progress& progress) {
  if (states.size() != layers.size())
    throw Error("atlas build: one state matrix per layer", ErrorKind::usage);
  if (n < 8) throw Error("atlas build needs at least 8 tokens, got " + std::to_string(n));
  if (options.metric != "cosine" && options.metric != "euclidean")
    throw Error("atlas build: metric must be cosine or euclidean, not '" + options.metric + "'",
                ErrorKind::usage);
  if (options.rank < 1) throw Error("atlas build: rank must be at least 1", ErrorKind::usage);
  if (options.confidence_k < 1 || options.confidence_k > 100)
    throw Error("atlas build: confidence k must be in 1..100", ErrorKind::usage);
  for (const int d : options.dims)
    if (d != 2 && d != 3) throw Error("atlas build: dims must be 2 or 3", ErrorKind::usage);
  Atlas atlas;
  atlas.metric = options.metric;
  atlas.width = width;
  atlas.rank = std::min<std::size_t>(static_cast<std::size_t>(options.rank), width);
  atlas.n = n;
  atlas.perplexity = std::min(options.perplexity, (double(n) - 1.0) / 3.0);
  atlas.confidence_k = options.confidence_k;
  atlas.seed = options.seed;
  const bool cosine = options.metric == "cosine";

  // Held-out tokens for the calibration: evenly spaced rows.
  const std::size_t h = std::min(options.holdout, n / 2);
  std::vector<std::int64_t> held(h);
  for (std::size_t i = 0; i < h; ++i)
    held[i] = static_cast<std::int64_t>((2 * i + 1) * n / (2 * h));

  for (std::size_t l = 0; l < layers.size(); ++l) {
    if (states[l].size() != n * width)
      throw Error("atlas build: layer " + std::to_string(layers[l]) + " has " +
                  std::to_string(states[l].size()) + " values, not n * width");
    AtlasLayer layer;
    layer.layer = layers[l];
    std::vector<double> mean(width, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < width; ++c) mean[c] += states[l][i * width + c];
    layer.mean.resize(width);
    for (std::size_t c = 0; c < width; ++c) layer.mean[c] = static_cast<float>(mean[c] / double(n));
    std::vector<float> u(n * width);
    for (std::size_t i = 0; i < n; ++i)
      to_unit({u.data() + i * width, width}, states[l].data() + i * width, layer.mean, cosine);
    std::vector<double> pm(width, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < width; ++c) pm[c] += u[i * width + c];
    layer.pca_mean.resize(width);
    for (std::size_t c = 0; c < width; ++c)
      layer.pca_mean[c] = static_cast<float>(pm[c] / double(n));
    layer.components.assign(atlas.rank * width, 0.0f);
    tsne::principal_axes(layer.components, u, n, width, atlas.rank);
    layer.features.resize(n * atlas.rank);
    for (std::size_t i = 0; i < n; ++i)
      project({layer.features.data() + i * atlas.rank, atlas.rank}, {u.data() + i * width, width},
              layer);

    for (const int dims : options.dims) {
      tsne::TsneOptions t;
      t.dims = dims;
      t.perplexity = atlas.perplexity;
      t.seed = options.seed;
      t.iterations = options.iterations;
      t.metric = neighbors::Metric::euclidean;
      t.center = false;
      t.pca_dims = 0;
      t.threads = options.threads;
      // Consecutive layers start from the previous layer's map so they line up.
      if (!atlas.layers.empty()) {
        for (const auto& previous : atlas.layers.back().maps) {
          if (previous.dims == dims) {
            t.init = tsne::Init::given;
            t.initial_embedding = previous.coords;
          }
        }
      }
      auto result = tsne::run_tsne(layer.features, n, atlas.rank, t);
      AtlasMap map;
      map.dims = dims;
      map.coords = std::move(result.embedding);
      map.kl = result.kl;
      layer.maps.push_back(std::move(map));
    }
    atlas.layers.push_back(std::move(layer));

    // Calibration: the held-out tokens placed leave-one-out; "good" = landed within the radius
    // of its own kc-th nearest map neighbour of where the map put it.
    auto& built = atlas.layers.back();
    std::vector<float> hf(h * atlas.rank);
    for (std::size_t i = 0; i < h; ++i)
      std::copy_n(built.features.data() + held[i] * atlas.rank, atlas.rank,
                  hf.data() + i * atlas.rank);
    PlaceOptions po;
    po.threads = options.threads;
    for (std::size_t k = 0; k < built.maps.size(); ++k) {
      const auto placed = place_features(atlas, atlas.layers.size() - 1, k, hf, h, po, held);
      auto& map = built.maps[k];
      const int dims = map.dims;
      const int kc = atlas.confidence_k;
      std::vector<double> good(kc + 1, 0.0), total(kc + 1, 0.0);
      std::vector<float> d2(n);
      for (std::size_t i = 0; i < h; ++i) {
        const float* truth = map.coords.data() + held[i] * dims;
        for (std::size_t j = 0; j < n; ++j) {
          double s = 0;
          for (int c = 0; c < dims; ++c) {
            const double t = double(map.coords[j * dims + c]) - truth[c];
            s += t * t;
          }
          d2[j] = static_cast<float>(s);
        }
        d2[held[i]] = 0;
        std::vector<float> sorted(d2);
        const std::size_t kth = std::min<std::size_t>(kc, n - 1);
        std::nth_element(sorted.begin(), sorted.begin() + kth, sorted.end());
        double moved = 0;
        for (int c = 0; c < dims; ++c) {
          const double t = double(placed.coords[i * dims + c]) - truth[c];
          moved += t * t;
        }
        const int o = static_cast<int>(std::lround(placed.overlap[i] * kc));
        total[o] += 1;
        if (moved <= sorted[kth]) good[o] += 1;
      }
      // Laplace-smoothed rates per overlap, made non-decreasing in the overlap.
      std::vector<double> rate(kc + 1), weight(kc + 1);
      for (int o = 0; o <= kc; ++o) {
        rate[o] = (good[o] + 1.0) / (total[o] + 2.0);
        weight[o] = total[o] + 2.0;
      }
      const auto fit = isotonic(rate, weight);
      map.calibration.resize(kc + 1);
      for (int o = 0; o <= kc; ++o) map.calibration[o] = static_cast<float>(fit[o]);
    }
    if (progress) progress(l + 1, layers.size());
  }
  return atlas;
}

}  // namespace tokmap::atlas
