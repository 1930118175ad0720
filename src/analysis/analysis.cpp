#include "analysis/analysis.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>

extern "C" void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a,
                        const int* lda, double* s, double* u, const int* ldu, double* vt,
                        const int* ldvt, double* work, const int* lwork, int* info, std::size_t,
                        std::size_t);

namespace tokmap::analysis {

namespace {

void check_rows(const Matrix& a, const Matrix& b, const char* what) {
  if (a.rows != b.rows) {
    throw Error(std::string(what) + ": the two matrices have " + std::to_string(a.rows) + " and " +
                std::to_string(b.rows) + " rows");
  }
  if (a.data.size() != a.rows * a.cols || b.data.size() != b.rows * b.cols) {
    throw Error(std::string(what) + ": matrix size does not match its shape");
  }
}

neighbors::KnnResult knn_of(const Matrix& m, std::size_t k, neighbors::Metric metric) {
  neighbors::KnnOptions options;
  options.k = k;
  options.metric = metric;
  options.algorithm = neighbors::Algorithm::exact;
  return neighbors::knn_exact(m.data, m.rows, m.cols, options);
}

// Rows prepared so that squared euclidean distance ranks equal the metric's ranks: cosine
// rows are scaled to unit length.
std::vector<float> rank_space(const Matrix& m, neighbors::Metric metric) {
  std::vector<float> out(m.data.begin(), m.data.end());
  if (metric == neighbors::Metric::cosine) {
    for (std::size_t i = 0; i < m.rows; ++i) {
      float* row = out.data() + i * m.cols;
      double norm = 0;
      for (std::size_t c = 0; c < m.cols; ++c) norm += double(row[c]) * row[c];
      if (norm > 0) {
        const float scale = static_cast<float>(1.0 / std::sqrt(norm));
        for (std::size_t c = 0; c < m.cols; ++c) row[c] *= scale;
      }
    }
  }
  return out;
}

// For every point i and each j in `queries` row i, the rank of j among i's neighbours in
// `space` (1 = nearest), computed from blocks of the squared-distance matrix.
std::vector<std::int64_t> ranks_of(const std::vector<float>& space, std::size_t n, std::size_t d,
                                   const std::vector<std::vector<std::int32_t>>& queries) {
  std::vector<double> norms(n);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t c = 0; c < d; ++c) s += double(space[i * d + c]) * space[i * d + c];
    norms[i] = s;
  }
  std::vector<std::int64_t> ranks;
  const std::size_t block = std::max<std::size_t>(
      1, std::min<std::size_t>(256, (1u << 24) / std::max<std::size_t>(n, 1)));
  std::vector<float> dots(block * n);
  for (std::size_t i0 = 0; i0 < n; i0 += block) {
    const std::size_t rows = std::min(block, n - i0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                static_cast<int>(n), static_cast<int>(d), 1.0f, space.data() + i0 * d,
                static_cast<int>(d), space.data(), static_cast<int>(d), 0.0f, dots.data(),
                static_cast<int>(n));
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = i0 + r;
      const float* dot = dots.data() + r * n;
      auto dist = [&](std::size_t j) { return norms[i] + norms[j] - 2.0 * dot[j]; };
      for (const auto j : queries[i]) {
        const double dj = dist(j);
        std::int64_t rank = 1;
        for (std::size_t l = 0; l < n; ++l) {
          if (l == i || l == static_cast<std::size_t>(j)) continue;
          const double dl = dist(l);
          // Ties count the lower index first, as a stable argsort does.
          if (dl < dj || (dl == dj && l < static_cast<std::size_t>(j))) ++rank;
        }
        ranks.push_back(rank);
      }
    }
  }
  return ranks;
}

// sum over i of sum over j in (row i of `from`) \ (row i of `in`) of (rank of j in `space` - k),
// normalised as scikit-learn's trustworthiness.
double rank_penalty(const neighbors::KnnResult& from, const neighbors::KnnResult& in,
                    const std::vector<float>& space, std::size_t d, std::size_t k) {
  const std::size_t n = from.n;
  std::vector<std::vector<std::int32_t>> missing(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto* row_in = in.indices.data() + i * k;
    for (std::size_t a = 0; a < k; ++a) {
      const auto j = from.indices[i * k + a];
      if (std::find(row_in, row_in + k, j) == row_in + k) missing[i].push_back(j);
    }
  }
  const auto ranks = ranks_of(space, n, d, missing);
  double penalty = 0;
  for (const auto r : ranks) penalty += static_cast<double>(r) - static_cast<double>(k);
  const double nn = static_cast<double>(n), kk = static_cast<double>(k);
  return 1.0 - penalty * 2.0 / (nn * kk * (2.0 * nn - 3.0 * kk - 1.0));
}

}  // namespace

MapQuality map_quality(const Matrix& original, const Matrix& map, const QualityOptions& options) {
  check_rows(original, map, "map quality");
  const std::size_t n = original.rows;
  if (n < 4) throw Error("map quality needs at least 4 points, got " + std::to_string(n));
  // scikit-learn requires k < n / 2 for the normalisation to stay positive.
  const std::size_t k = std::max<std::size_t>(1, std::min(options.k, (n - 1) / 2));
  const auto original_knn = knn_of(original, k, options.metric);
  const auto map_knn = knn_of(map, k, neighbors::Metric::euclidean);

  MapQuality quality;
  quality.k = k;
  const auto original_space = rank_space(original, options.metric);
  const auto map_space = rank_space(map, neighbors::Metric::euclidean);
  quality.trustworthiness = rank_penalty(map_knn, original_knn, original_space, original.cols, k);
  quality.continuity = rank_penalty(original_knn, map_knn, map_space, map.cols, k);
  quality.per_point_preservation.resize(n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto* a = original_knn.indices.data() + i * k;
    const auto* b = map_knn.indices.data() + i * k;
    std::size_t shared = 0;
    for (std::size_t x = 0; x < k; ++x) shared += std::find(b, b + k, a[x]) != b + k;
    quality.per_point_preservation[i] = static_cast<float>(shared) / static_cast<float>(k);
    sum += quality.per_point_preservation[i];
  }
  quality.knn_preservation = sum / static_cast<double>(n);
  return quality;
}

double procrustes_align(std::span<float> out, const Matrix& target, const Matrix& moving) {
  check_rows(target, moving, "Procrustes alignment");
  if (target.cols != moving.cols)
    throw Error("Procrustes alignment: maps have different dimensions");
  const std::size_t n = target.rows;
  const int dims = static_cast<int>(target.cols);
  std::vector<double> mean_t(dims, 0.0), mean_m(dims, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (int c = 0; c < dims; ++c) {
      mean_t[c] += target.data[i * dims + c];
      mean_m[c] += moving.data[i * dims + c];
    }
  }
  for (int c = 0; c < dims; ++c) {
    mean_t[c] /= double(n);
    mean_m[c] /= double(n);
  }
  // M = moving_c^T target_c (dims x dims), column-major for LAPACK.
  std::vector<double> m(dims * dims, 0.0);
  double moving_norm = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (int a = 0; a < dims; ++a) {
      const double ma = moving.data[i * dims + a] - mean_m[a];
      moving_norm += ma * ma;
      for (int b = 0; b < dims; ++b)
        m[a + b * dims] += ma * (target.data[i * dims + b] - mean_t[b]);
    }
  }
  std::vector<double> s(dims), u(dims * dims), vt(dims * dims), work(64);
  const int lwork = 64;
  int info = 0;
  dgesvd_("A", "A", &dims, &dims, m.data(), &dims, s.data(), u.data(), &dims, vt.data(), &dims,
          work.data(), &lwork, &info, 1, 1);
  if (info != 0) throw Error("Procrustes alignment: SVD did not converge");
  // R = U V^T (column-major), scale = trace(S) / |moving_c|^2.
  std::vector<double> r(dims * dims, 0.0);
  for (int a = 0; a < dims; ++a) {
    for (int b = 0; b < dims; ++b) {
      for (int c = 0; c < dims; ++c) r[a + b * dims] += u[a + c * dims] * vt[c + b * dims];
    }
  }
  const double scale =
      moving_norm > 0 ? std::accumulate(s.begin(), s.end(), 0.0) / moving_norm : 1.0;
  double residual = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (int b = 0; b < dims; ++b) {
      double value = mean_t[b];
      for (int a = 0; a < dims; ++a)
        value += scale * (moving.data[i * dims + a] - mean_m[a]) * r[a + b * dims];
      out[i * dims + b] = static_cast<float>(value);
      const double diff = value - target.data[i * dims + b];
      residual += diff * diff;
    }
  }
  return std::sqrt(residual / double(n));
}

Stability stability(std::span<const Matrix> maps, std::size_t k) {
  if (maps.size() < 2) throw Error("stability needs maps from at least 2 seeds");
  const std::size_t n = maps[0].rows;
  for (const auto& map : maps) check_rows(maps[0], map, "stability");
  if (n < 3) throw Error("stability needs at least 3 points");
  k = std::min(k, n - 1);
  std::vector<neighbors::KnnResult> knns;
  for (const auto& map : maps) knns.push_back(knn_of(map, k, neighbors::Metric::euclidean));
  Stability result;
  result.per_point.assign(n, 0.0f);
  const double pairs = static_cast<double>(maps.size() * (maps.size() - 1) / 2);
  for (std::size_t a = 0; a < maps.size(); ++a) {
    for (std::size_t b = a + 1; b < maps.size(); ++b) {
      for (std::size_t i = 0; i < n; ++i) {
        const auto* x = knns[a].indices.data() + i * k;
        const auto* y = knns[b].indices.data() + i * k;
        std::size_t shared = 0;
        for (std::size_t c = 0; c < k; ++c) shared += std::find(y, y + k, x[c]) != y + k;
        result.per_point[i] += static_cast<float>(double(shared) / double(2 * k - shared) / pairs);
      }
    }
  }
  result.overall =
      std::accumulate(result.per_point.begin(), result.per_point.end(), 0.0) / double(n);
  for (const auto& map : maps) {
    result.aligned.emplace_back(map.data.size());
    procrustes_align(result.aligned.back(), maps[0], map);
  }
  return result;
}

std::vector<float> outlier_scores(const Matrix& original, const OutlierOptions& options) {
  const std::size_t n = original.rows;
  if (n < 3) throw Error("outlier scores need at least 3 points");
  const std::size_t k = std::min(options.k, n - 1);
  const auto knn = knn_of(original, k, options.metric);
  std::vector<float> mean_distance(n);
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t c = 0; c < k; ++c) s += knn.distances[i * k + c];
    mean_distance[i] = static_cast<float>(s / double(k));
  }
  auto median_of = [](std::vector<float> v) {
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + mid, v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + mid)) / 2.0;
    return m;
  };
  const double median = median_of(mean_distance);
  std::vector<float> deviation(n);
  for (std::size_t i = 0; i < n; ++i)
    deviation[i] = std::fabs(mean_distance[i] - static_cast<float>(median));
  double mad = 1.4826 * median_of(deviation);
  if (mad <= 0) {  // more than half the points equally spaced: fall back to the mean deviation
    mad = 1.2533 * std::accumulate(deviation.begin(), deviation.end(), 0.0) / double(n);
  }
  std::vector<float> scores(n, 0.0f);
  if (mad > 0) {
    for (std::size_t i = 0; i < n; ++i)
      scores[i] = static_cast<float>((mean_distance[i] - median) / mad);
  }
  return scores;
}

namespace {

struct Graph {
  // Symmetric adjacency with self-loops; degree[i] = sum of row i.
  std::vector<std::vector<std::pair<std::int32_t, double>>> adj;
  std::vector<double> degree;
  double total = 0;  // sum of degrees (2m)
};

// One level of Louvain: local moves until no node improves. Returns whether anything moved.
bool local_moves(const Graph& g, std::vector<std::int32_t>& community, double resolution,
                 std::mt19937_64& rng) {
  const std::size_t n = g.adj.size();
  std::vector<double> tot(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) tot[community[i]] += g.degree[i];
  std::vector<std::int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<double> weight_to(n, 0.0);
  std::vector<std::int32_t> touched;
  bool any_move = false;
  for (int sweep = 0; sweep < 100; ++sweep) {
    bool moved = false;
    for (const auto i : order) {
      const std::int32_t own = community[i];
      touched.clear();
      for (const auto& [j, w] : g.adj[i]) {
        if (j == i) continue;
        if (weight_to[community[j]] == 0.0) touched.push_back(community[j]);
        weight_to[community[j]] += w;
      }
      tot[own] -= g.degree[i];
      const double ki = g.degree[i];
      std::int32_t best = own;
      double best_gain = weight_to[own] - resolution * tot[own] * ki / g.total;
      for (const auto c : touched) {
        const double gain = weight_to[c] - resolution * tot[c] * ki / g.total;
        if (gain > best_gain + 1e-12 ||
            (std::fabs(gain - best_gain) <= 1e-12 && c < best && best != own)) {
          best_gain = gain;
          best = c;
        }
      }
      tot[best] += ki;
      for (const auto c : touched) weight_to[c] = 0.0;
      weight_to[own] = 0.0;
      if (best != own) {
        community[i] = best;
        moved = true;
        any_move = true;
      }
    }
    if (!moved) break;
  }
  return any_move;
}

double modularity(const Graph& g, const std::vector<std::int32_t>& community, double resolution) {
  const std::size_t n = g.adj.size();
  std::vector<double> in(n, 0.0), tot(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    tot[community[i]] += g.degree[i];
    for (const auto& [j, w] : g.adj[i]) {
      if (community[j] == community[i]) in[community[i]] += w;
    }
  }
  double q = 0;
  for (std::size_t c = 0; c < n; ++c) {
    q += in[c] / g.total - resolution * (tot[c] / g.total) * (tot[c] / g.total);
  }
  return q;
}

}  // namespace

Clustering clusters(const Matrix& original, const ClusterOptions& options) {
  const std::size_t n = original.rows;
  if (n < 2) throw Error("clustering needs at least 2 points");
  const std::size_t k = std::min(options.k, n - 1);
  const auto knn = knn_of(original, k, options.metric);

  // Symmetrised k-NN graph: weight 1 for a mutual pair, 0.5 for a one-way pair.
  Graph graph;
  graph.adj.resize(n);
  {
    std::vector<std::unordered_map<std::int32_t, double>> rows(n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < k; ++c) {
        const auto j = knn.indices[i * k + c];
        rows[i][j] += 0.5;
        rows[j][static_cast<std::int32_t>(i)] += 0.5;
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      graph.adj[i].assign(rows[i].begin(), rows[i].end());
      std::sort(graph.adj[i].begin(), graph.adj[i].end());
    }
  }
  auto finish_degrees = [](Graph& g) {
    g.degree.assign(g.adj.size(), 0.0);
    g.total = 0;
    for (std::size_t i = 0; i < g.adj.size(); ++i) {
      for (const auto& [j, w] : g.adj[i]) g.degree[i] += w;
      g.total += g.degree[i];
    }
  };
  finish_degrees(graph);

  std::mt19937_64 rng(options.seed);
  std::vector<std::int32_t> membership(n);  // original point -> node of the current level
  std::iota(membership.begin(), membership.end(), 0);
  Graph level = graph;
  while (true) {
    std::vector<std::int32_t> community(level.adj.size());
    std::iota(community.begin(), community.end(), 0);
    if (!local_moves(level, community, options.resolution, rng)) break;
    // Renumber communities densely and aggregate.
    std::vector<std::int32_t> dense(level.adj.size(), -1);
    std::int32_t count = 0;
    for (auto& c : community) {
      if (dense[c] < 0) dense[c] = count++;
      c = dense[c];
    }
    for (auto& m : membership) m = community[m];
    Graph next;
    next.adj.resize(count);
    std::vector<std::unordered_map<std::int32_t, double>> rows(count);
    for (std::size_t i = 0; i < level.adj.size(); ++i) {
      for (const auto& [j, w] : level.adj[i]) rows[community[i]][community[j]] += w;
    }
    for (std::int32_t c = 0; c < count; ++c) {
      next.adj[c].assign(rows[c].begin(), rows[c].end());
      std::sort(next.adj[c].begin(), next.adj[c].end());
    }
    finish_degrees(next);
    if (static_cast<std::size_t>(count) == level.adj.size()) break;
    level = std::move(next);
  }

  // Number clusters by decreasing size (ties: smallest first member).
  Clustering result;
  std::vector<std::size_t> size(n, 0), first(n, n);
  for (std::size_t i = 0; i < n; ++i) {
    ++size[membership[i]];
    first[membership[i]] = std::min(first[membership[i]], i);
  }
  std::vector<std::int32_t> ids;
  for (std::size_t c = 0; c < n; ++c) {
    if (size[c] > 0) ids.push_back(static_cast<std::int32_t>(c));
  }
  std::sort(ids.begin(), ids.end(), [&](auto a, auto b) {
    return size[a] != size[b] ? size[a] > size[b] : first[a] < first[b];
  });
  std::vector<std::int32_t> rank(n, 0);
  for (std::size_t r = 0; r < ids.size(); ++r) rank[ids[r]] = static_cast<std::int32_t>(r);
  result.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) result.labels[i] = rank[membership[i]];
  result.count = ids.size();
  result.modularity = modularity(graph, result.labels, options.resolution);
  return result;
}

std::vector<float> neighborhood_overlap(const Matrix& a, const Matrix& b, std::size_t k,
                                        neighbors::Metric metric) {
  check_rows(a, b, "neighbourhood overlap");
  if (a.rows < 2) throw Error("neighbourhood overlap needs at least 2 points");
  k = std::min(k, a.rows - 1);
  const auto knn_a = knn_of(a, k, metric);
  const auto knn_b = knn_of(b, k, metric);
  std::vector<float> overlap(a.rows);
  for (std::size_t i = 0; i < a.rows; ++i) {
    const auto* x = knn_a.indices.data() + i * k;
    const auto* y = knn_b.indices.data() + i * k;
    std::size_t shared = 0;
    for (std::size_t c = 0; c < k; ++c) shared += std::find(y, y + k, x[c]) != y + k;
    overlap[i] = static_cast<float>(shared) / static_cast<float>(k);
  }
  return overlap;
}

std::vector<float> neighborhood_jaccard(const Matrix& a, const Matrix& b, std::size_t k,
                                        neighbors::Metric metric) {
  check_rows(a, b, "neighbourhood change");
  if (a.rows < 2) throw Error("neighbourhood change needs at least 2 points");
  k = std::min(k, a.rows - 1);
  return jaccard_of_neighbors(nearest_neighbors(a, k, metric), nearest_neighbors(b, k, metric), k);
}

std::vector<std::int32_t> nearest_neighbors(const Matrix& x, std::size_t k,
                                            neighbors::Metric metric) {
  if (k == 0 || k >= x.rows)
    throw Error("nearest neighbours: k = " + std::to_string(k) + " needs more than " +
                std::to_string(k) + " points, got " + std::to_string(x.rows));
  return knn_of(x, k, metric).indices;
}

std::vector<float> jaccard_of_neighbors(std::span<const std::int32_t> a,
                                        std::span<const std::int32_t> b, std::size_t k) {
  if (k == 0 || a.size() != b.size() || a.size() % k != 0)
    throw Error("neighbourhood change: neighbour lists of different shapes");
  const std::size_t n = a.size() / k;
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto* x = a.data() + i * k;
    const auto* y = b.data() + i * k;
    std::size_t shared = 0;
    for (std::size_t c = 0; c < k; ++c) shared += std::find(y, y + k, x[c]) != y + k;
    // Both sets have k members, so the union has 2k - shared.
    out[i] = static_cast<float>(double(shared) / double(2 * k - shared));
  }
  return out;
}

std::vector<float> neighborhood_jaccard_naive(const Matrix& a, const Matrix& b, std::size_t k,
                                              neighbors::Metric metric) {
  check_rows(a, b, "neighbourhood change");
  if (a.rows < 2) throw Error("neighbourhood change needs at least 2 points");
  const std::size_t n = a.rows;
  k = std::min(k, n - 1);
  auto distance = [&](const Matrix& m, std::size_t i, std::size_t j) {
    const float* x = m.data.data() + i * m.cols;
    const float* y = m.data.data() + j * m.cols;
    double dot = 0, xx = 0, yy = 0, sq = 0;
    for (std::size_t c = 0; c < m.cols; ++c) {
      dot += double(x[c]) * y[c];
      xx += double(x[c]) * x[c];
      yy += double(y[c]) * y[c];
      sq += (double(x[c]) - y[c]) * (double(x[c]) - y[c]);
    }
    if (metric == neighbors::Metric::cosine) {
      const double norm = std::sqrt(xx * yy);
      return norm > 0 ? 1.0 - dot / norm : 1.0;
    }
    return sq;
  };
  auto nearest = [&](const Matrix& m, std::size_t i) {
    std::vector<std::pair<double, std::size_t>> all;
    for (std::size_t j = 0; j < n; ++j)
      if (j != i) all.emplace_back(distance(m, i, j), j);
    std::sort(all.begin(), all.end());
    std::vector<std::size_t> ids;
    for (std::size_t c = 0; c < k; ++c) ids.push_back(all[c].second);
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = nearest(a, i), y = nearest(b, i);
    std::vector<std::size_t> both, either;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(both));
    std::set_union(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(either));
    out[i] = static_cast<float>(double(both.size()) / double(either.size()));
  }
  return out;
}

std::vector<std::int32_t> most_changed(std::span<const float> similarity, std::size_t count) {
  std::vector<std::int32_t> order(similarity.size());
  std::iota(order.begin(), order.end(), 0);
  // NaN compares false with everything: rank it as +inf so the order stays strict and weak.
  auto key = [&](std::int32_t i) {
    const float v = similarity[static_cast<std::size_t>(i)];
    return std::isfinite(v) ? v : std::numeric_limits<float>::infinity();
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t x, std::int32_t y) { return key(x) < key(y); });
  order.resize(std::min(count, order.size()));
  return order;
}

}  // namespace tokmap::analysis

// ---------------------------------------------------------------------------------------------
// Map assessment

namespace tokmap::analysis {

double random_trustworthiness(std::size_t n, std::size_t k) {
  // A random map's k neighbours of i are k random others: a share (n - 1 - k) / (n - 1) of them
  // are false neighbours, each with an original rank uniform on k + 1 .. n - 1, so a mean
  // penalty (rank - k) of (n - k) / 2; scikit-learn's normalisation 2 / (n k (2n - 3k - 1)).
  const double nn = static_cast<double>(n), kk = static_cast<double>(k);
  const double denominator = (nn - 1.0) * (2.0 * nn - 3.0 * kk - 1.0);
  if (n < 2 || !(denominator > 0)) return 0.5;
  return 1.0 - (nn - 1.0 - kk) * (nn - kk) / denominator;
}

namespace {

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string general(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2g", value);
  return buffer;
}

std::string percent(double share) {
  const double p = 100.0 * share;
  if (p > 0 && p < 0.1) return general(p) + "%";
  return fixed(p, p < 10 ? 1 : 0) + "%";
}

// Singular values of the column-centred (n, dims) map, descending (LAPACK dgesvd on the
// column-major copy). Also returns the centroid's norm through `centroid_norm`.
std::vector<double> centred_singular_values(const Matrix& map, double& centroid_norm) {
  const std::size_t n = map.rows, dims = map.cols;
  std::vector<double> mean(dims, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < dims; ++c) mean[c] += map.data[i * dims + c];
  }
  centroid_norm = 0;
  for (auto& m : mean) {
    m /= double(n);
    centroid_norm += m * m;
  }
  centroid_norm = std::sqrt(centroid_norm);
  std::vector<double> a(n * dims);  // column-major
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < dims; ++c) a[i + c * n] = map.data[i * dims + c] - mean[c];
  }
  const int m = static_cast<int>(n), d = static_cast<int>(dims), one = 1;
  std::vector<double> s(dims, 0.0);
  double query = 0, dummy = 0;
  int lwork = -1, info = 0;
  dgesvd_("N", "N", &m, &d, a.data(), &m, s.data(), &dummy, &one, &dummy, &one, &query, &lwork,
          &info, 1, 1);
  lwork = std::max(1, static_cast<int>(query));
  std::vector<double> work(static_cast<std::size_t>(lwork));
  dgesvd_("N", "N", &m, &d, a.data(), &m, s.data(), &dummy, &one, &dummy, &one, work.data(), &lwork,
          &info, 1, 1);
  if (info != 0) throw Error("map assessment: SVD of the map did not converge");
  return s;
}

// For each point: is another point within `radius` (exact distances in double) that `counts`
// (i, j)? Grid of cells `radius` wide, hashed; each point looks at the 3^dims cells around it and
// stops at the first partner, so a fully collapsed map costs O(n) too.
template <typename Counts>
std::vector<std::uint8_t> has_close_partner(const Matrix& map, double radius, Counts&& counts) {
  const std::size_t n = map.rows, dims = map.cols;
  std::vector<std::uint8_t> close(n, 0);
  if (!(radius > 0)) return close;
  std::vector<double> low(dims, std::numeric_limits<double>::infinity());
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < dims; ++c)
      low[c] = std::min<double>(low[c], map.data[i * dims + c]);
  }
  auto cell_of = [&](std::size_t i, std::size_t c) {
    return static_cast<std::int64_t>(std::floor((map.data[i * dims + c] - low[c]) / radius));
  };
  // Cells far beyond 2^20 per axis only happen for maps whose radius is tiny next to their
  // extent; they still hash correctly, collisions only cost time.
  auto key_of = [](const std::int64_t* cell, std::size_t dims) {
    std::uint64_t key = 1469598103934665603ull;
    for (std::size_t c = 0; c < dims; ++c)
      key = (key ^ static_cast<std::uint64_t>(cell[c])) * 1099511628211ull;
    return key;
  };
  std::unordered_map<std::uint64_t, std::vector<std::int32_t>> cells;
  cells.reserve(n);
  std::vector<std::int64_t> cell_index(n * dims);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < dims; ++c) cell_index[i * dims + c] = cell_of(i, c);
    cells[key_of(&cell_index[i * dims], dims)].push_back(static_cast<std::int32_t>(i));
  }
  const double r2 = radius * radius;
  std::size_t offsets = 1;
  for (std::size_t c = 0; c < dims; ++c) offsets *= 3;
  std::vector<std::int64_t> probe(dims);
  for (std::size_t i = 0; i < n; ++i) {
    if (close[i]) continue;
    for (std::size_t o = 0; o < offsets && !close[i]; ++o) {
      std::size_t rest = o;
      for (std::size_t c = 0; c < dims; ++c) {
        probe[c] = cell_index[i * dims + c] + static_cast<std::int64_t>(rest % 3) - 1;
        rest /= 3;
      }
      const auto it = cells.find(key_of(probe.data(), dims));
      if (it == cells.end()) continue;
      for (const auto j : it->second) {
        if (static_cast<std::size_t>(j) == i) continue;
        double d2 = 0;
        for (std::size_t c = 0; c < dims; ++c) {
          const double diff = double(map.data[i * dims + c]) - map.data[j * dims + c];
          d2 += diff * diff;
        }
        if (d2 <= r2 && counts(i, static_cast<std::size_t>(j))) {
          close[i] = close[j] = 1;
          break;
        }
      }
    }
  }
  return close;
}

struct Finding {
  Rating rating;
  std::string flag;
  std::string reason;
};

std::optional<Rating> grade(double value, double good, double fair) {
  if (!std::isfinite(value)) return std::nullopt;
  return value >= good ? Rating::good : value >= fair ? Rating::fair : Rating::poor;
}

}  // namespace

MapAssessment assess_map(const Matrix& map, const MapFacts& facts, const Matrix& original,
                         const AssessOptions& options) {
  const std::size_t n = map.rows, dims = map.cols;
  if (dims < 1 || dims > 3)
    throw Error("map assessment: maps have 1 to 3 dimensions, got " + std::to_string(dims));
  if (map.data.size() != n * dims) throw Error("map assessment: map size does not match its shape");
  if (n < 2) throw Error("map assessment needs at least 2 points");
  const bool has_original = original.rows > 0;
  if (has_original) check_rows(original, map, "map assessment");

  MapAssessment result;
  std::vector<Finding> findings;
  auto add = [&](Rating rating, std::string flag, std::string reason) {
    findings.push_back({rating, std::move(flag), std::move(reason)});
  };

  // --- geometry -------------------------------------------------------------------------------
  const bool finite =
      std::all_of(map.data.begin(), map.data.end(), [](float v) { return std::isfinite(v); });
  if (!finite) {
    add(Rating::degenerate, "non_finite", "the map has non-finite coordinates (NaN or infinity)");
    result.effective_dims = 0;
    result.spread.assign(dims, std::numeric_limits<double>::quiet_NaN());
    result.rms_radius = std::numeric_limits<double>::quiet_NaN();
  } else {
    double centroid_norm = 0;
    const auto s = centred_singular_values(map, centroid_norm);
    result.spread.resize(dims);
    double sum2 = 0;
    for (std::size_t c = 0; c < dims; ++c) {
      result.spread[c] = s[c] / std::sqrt(double(n));
      sum2 += result.spread[c] * result.spread[c];
    }
    result.rms_radius = std::sqrt(sum2);
    const double sigma1 = result.spread[0];
    const double ratio2 = dims >= 2 && sigma1 > 0 ? result.spread[1] / sigma1 : 0.0;
    const double ratio3 = dims >= 3 && sigma1 > 0 ? result.spread[2] / sigma1 : 0.0;
    const bool point = result.rms_radius < std::max(options.point_radius, 1e-5 * centroid_norm);
    if (point) {
      result.effective_dims = 0;
      add(Rating::degenerate, "point",
          "every point is at the same place (RMS spread " + general(result.rms_radius) +
              "; optimised t-SNE maps span tens of units): the optimisation collapsed or never "
              "left its initialisation");
    } else if (dims >= 2 && ratio2 < options.line_ratio) {
      result.effective_dims = 1;
      add(Rating::degenerate, "line",
          "the " + std::to_string(dims) + "D map is a straight line (its width is " +
              percent(ratio2) + " of its length): a collapsed optimisation, not structure");
    } else {
      result.effective_dims = static_cast<int>(dims);
      if (dims >= 2 && ratio2 < options.elongated_ratio) {
        add(Rating::fair, "elongated",
            "the map is nearly a straight line (width " + percent(ratio2) +
                " of its length): a partly collapsed optimisation, unless the data are "
                "one-dimensional");
      }
      if (dims == 3 && ratio3 < options.plane_ratio) {
        result.effective_dims = 2;
        add(Rating::poor, "plane",
            "the 3D map is flat (its depth is " + percent(ratio3) +
                " of its length): it shows no more than a 2D map, and its third axis is noise");
      } else if (dims == 3 && ratio3 < options.thin_ratio && ratio2 >= options.elongated_ratio) {
        add(Rating::fair, "thin",
            "the 3D map is nearly flat (depth " + percent(ratio3) + " of its length)");
      }
    }
    // --- coincident points --------------------------------------------------------------------
    if (point) {
      result.coincident_fraction = 1.0;
    } else {
      // Points that are neighbours in the input belong together in the map: repeated tokens
      // ("the", ",") in a long text have nearly equal states, and t-SNE rightly stacks them. A
      // pair counts only when j is farther from i in the input than i's k-th nearest neighbour
      // (k = 10, euclidean on the rows as given), which is computed for the points that have a
      // close partner at all (O(n d) each).
      const std::size_t k_input = std::min<std::size_t>(10, n - 1);
      std::vector<double> neighbour_radius2(n, -1.0);
      const auto input_d2 = [&](std::size_t i, std::size_t j) {
        double d2 = 0;
        for (std::size_t c = 0; c < original.cols; ++c) {
          const double diff =
              double(original.data[i * original.cols + c]) - original.data[j * original.cols + c];
          d2 += diff * diff;
        }
        return d2;
      };
      const auto counts = [&](std::size_t i, std::size_t j) {
        if (!has_original) return true;
        if (neighbour_radius2[i] < 0) {
          std::vector<double> d2(n);
          for (std::size_t m = 0; m < n; ++m) d2[m] = m == i ? -1.0 : input_d2(i, m);
          std::nth_element(d2.begin(), d2.begin() + static_cast<std::ptrdiff_t>(k_input), d2.end());
          neighbour_radius2[i] = d2[k_input];  // d2[0] is i itself (-1)
        }
        return input_d2(i, j) > neighbour_radius2[i];
      };
      const auto close =
          has_close_partner(map, options.coincident_distance * result.rms_radius, counts);
      std::size_t count = 0;
      for (std::size_t i = 0; i < n; ++i) count += close[i];
      result.coincident_fraction = double(count) / double(n);
      const std::string what =
          percent(result.coincident_fraction) + " of the points (" + std::to_string(count) +
          " of " + std::to_string(n) +
          ") lie on top of a point that is not among their 10 nearest neighbours in the input";
      if (result.coincident_fraction >= options.coincident_degenerate) {
        add(Rating::degenerate, "coincident", what + ": most of the map has collapsed");
      } else if (result.coincident_fraction >= options.coincident_poor) {
        add(Rating::poor, "coincident", what + ": part of the map has collapsed");
      }
    }
  }

  // --- KL against the uninformative map
  // -----------------------------------------------------------
  if (std::isfinite(facts.kl) && std::isfinite(facts.kl_uniform) && facts.kl_uniform > 0) {
    result.kl_ratio = facts.kl / facts.kl_uniform;
    const double r = result.kl_ratio;
    result.kl_rating = r < options.kl_good         ? Rating::good
                       : r < options.kl_fair       ? Rating::fair
                       : r < options.kl_degenerate ? Rating::poor
                                                   : Rating::degenerate;
    const std::string what = "KL " + fixed(facts.kl, 3) + " is " + percent(r) +
                             " of the KL of a map with every point in one place (" +
                             fixed(facts.kl_uniform, 3) + ")";
    if (*result.kl_rating == Rating::degenerate) {
      add(Rating::degenerate, "uniform_kl", what + ": the map explains next to nothing of P");
    } else if (*result.kl_rating == Rating::poor) {
      add(Rating::poor, "high_kl", what + ": the map keeps little of the neighbourhoods");
    } else if (*result.kl_rating == Rating::fair) {
      add(Rating::fair, "high_kl", what);
    }
  }

  // --- neighbour numbers ------------------------------------------------------------------------
  result.random_trustworthiness = random_trustworthiness(n, facts.k);
  result.neighbors_meaningful = n >= options.min_points_for_neighbors;
  if (!result.neighbors_meaningful) {
    add(Rating::good, "few_points",
        "with " + std::to_string(n) + " points (k = " + std::to_string(facts.k) +
            ") the neighbour numbers are not meaningful: a random map scores " +
            fixed(result.random_trustworthiness, 2) + " trustworthiness");
  } else {
    // The grades are stated for large N, where a random map scores 0.5; for smaller N they keep
    // the same share of the way from random to perfect (0.9 is 80% of the way from 0.5 to 1).
    const double base = result.random_trustworthiness;
    auto scaled = [&](double threshold) { return base + (threshold - 0.5) / 0.5 * (1.0 - base); };
    const double good = scaled(options.rank_good), fair = scaled(options.rank_fair);
    result.trustworthiness_rating = grade(facts.trustworthiness, good, fair);
    result.continuity_rating = grade(facts.continuity, good, fair);
    result.knn_rating = grade(facts.knn_preservation, options.knn_good, options.knn_fair);
    const double limit = result.random_trustworthiness + options.random_margin;
    const bool t_random = std::isfinite(facts.trustworthiness) && facts.trustworthiness < limit;
    const bool c_random = std::isfinite(facts.continuity) && facts.continuity < limit;
    if (t_random || c_random) {
      if (t_random) result.trustworthiness_rating = Rating::degenerate;
      if (c_random) result.continuity_rating = Rating::degenerate;
      add(Rating::degenerate, "random_neighbors",
          std::string(t_random ? "trustworthiness " + fixed(facts.trustworthiness, 2) : "") +
              (t_random && c_random ? " and " : "") +
              (c_random ? "continuity " + fixed(facts.continuity, 2) : "") +
              (t_random && c_random ? " are" : " is") + " no better than a random map's (" +
              fixed(result.random_trustworthiness, 2) +
              "): the map's neighbourhoods are not the data's");
    } else {
      for (const auto& [rating, name, value] :
           {std::tuple{result.trustworthiness_rating, "trustworthiness", facts.trustworthiness},
            std::tuple{result.continuity_rating, "continuity", facts.continuity}}) {
        if (rating && *rating != Rating::good) {
          add(*rating, "low_" + std::string(name),
              std::string(name) + " " + fixed(value, 2) + " is " + rating_name(*rating) +
                  " (good from " + fixed(good, 2) + ", fair from " + fixed(fair, 2) + ")");
        }
      }
    }
  }

  // Worst first; the rating is the worst finding.
  std::stable_sort(findings.begin(), findings.end(),
                   [](const Finding& a, const Finding& b) { return a.rating > b.rating; });
  for (auto& f : findings) {
    result.rating = std::max(result.rating, f.rating);
    if (std::find(result.flags.begin(), result.flags.end(), f.flag) == result.flags.end())
      result.flags.push_back(f.flag);
    result.reasons.push_back(std::move(f.reason));
  }
  return result;
}

}  // namespace tokmap::analysis
