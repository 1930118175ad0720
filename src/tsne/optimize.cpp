// Attractive forces, the gradient, KL divergence, initialisation and the optimiser.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>

#include "tsne/kernel.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::tsne {

namespace {

// See run_tsne and choose_method.
constexpr std::size_t kExactCheaperPoints = 1000;

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Exact Z = sum_{i != j} w_ij = 2 sum_{i < j} w_ij, O(n^2); per-row sums added in row order.
double exact_z(std::span<const float> y, std::size_t n, int dims, double dof, int threads) {
  const Kernel kernel(dof);
  std::vector<double> z_row(n);
  if (kernel.standard && (dims == 2 || dims == 3)) {
    // The hot case: structure-of-arrays copy so the inner loop vectorises; float kernel values,
    // summed in float per 512-block and in double across blocks. (2-D maps have zs = 0.)
    const bool three = dims == 3;
    std::vector<float> xs(n), ys(n), zs(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
      xs[i] = y[i * dims];
      ys[i] = y[i * dims + 1];
      if (dims == 3) zs[i] = y[i * dims + 2];
    }
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (std::size_t i = 0; i < n; ++i) {
      const float xi = xs[i], yi = ys[i], zi = zs[i];
      const float* __restrict px = xs.data();
      const float* __restrict py = ys.data();
      const float* __restrict pz = zs.data();
      double z = 0.0;
      for (std::size_t start = i + 1; start < n; start += 512) {
        const std::size_t end = std::min(n, start + 512);
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (std::size_t j = start; j < end; ++j) {
          const float dx = xi - px[j], dy = yi - py[j];
          const float dz = three ? zi - pz[j] : 0.0f;
          acc += 1.0f / (1.0f + dx * dx + dy * dy + dz * dz);
        }
        z += acc;
      }
      z_row[i] = z;
    }
  } else {
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (std::size_t i = 0; i < n; ++i) {
      double z = 0.0;
      const float* yi = y.data() + i * static_cast<std::size_t>(dims);
      for (std::size_t j = i + 1; j < n; ++j) {
        double d2 = 0.0;
        for (int a = 0; a < dims; ++a) {
          const double t = static_cast<double>(yi[a]) - y[j * dims + a];
          d2 += t * t;
        }
        double w, wg;
        kernel.eval(d2, w, wg);
        z += w;
      }
      z_row[i] = z;
    }
  }
  double z = 0.0;
  for (double v : z_row) z += v;
  return 2.0 * z;
}

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Standard normal numbers from a seed, the same on every platform (Box-Muller).
std::vector<float> gaussian(std::size_t count, std::uint64_t seed, double stddev) {
  std::vector<float> out(count);
  std::uint64_t state = seed;
  for (std::size_t e = 0; e < count; e += 2) {
    const double u1 = (static_cast<double>(splitmix(state) >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = (static_cast<double>(splitmix(state) >> 11) + 0.5) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[e] = static_cast<float>(stddev * r * std::cos(2.0 * M_PI * u2));
    if (e + 1 < count) out[e + 1] = static_cast<float>(stddev * r * std::sin(2.0 * M_PI * u2));
  }
  return out;
}

// Standard deviations of y (n, dims) along its principal axes (square roots of the eigenvalues
// of its covariance, by Jacobi rotations), descending; non-finite when y is.
std::array<double, 3> principal_spreads(std::span<const float> y, std::size_t n, int dims) {
  std::array<double, 3> mean{};
  for (std::size_t i = 0; i < n; ++i)
    for (int a = 0; a < dims; ++a) mean[a] += y[i * dims + a];
  for (int a = 0; a < dims; ++a) mean[a] /= static_cast<double>(n);
  std::array<std::array<double, 3>, 3> c{};
  for (std::size_t i = 0; i < n; ++i)
    for (int a = 0; a < dims; ++a)
      for (int b = 0; b < dims; ++b)
        c[a][b] +=
            (y[i * dims + a] - mean[a]) * (y[i * dims + b] - mean[b]) / static_cast<double>(n);
  for (int sweep = 0; sweep < 30; ++sweep) {
    for (int p = 0; p < dims; ++p)
      for (int q = p + 1; q < dims; ++q) {
        if (!(std::fabs(c[p][q]) > 1e-300)) continue;
        const double theta = 0.5 * std::atan2(2.0 * c[p][q], c[q][q] - c[p][p]);
        const double cs = std::cos(theta), sn = std::sin(theta);
        for (int k = 0; k < dims; ++k) {  // c = J^T c J with the rotation J in the (p, q) plane
          const double kp = c[k][p], kq = c[k][q];
          c[k][p] = cs * kp - sn * kq;
          c[k][q] = sn * kp + cs * kq;
        }
        for (int k = 0; k < dims; ++k) {
          const double pk = c[p][k], qk = c[q][k];
          c[p][k] = cs * pk - sn * qk;
          c[q][k] = sn * pk + cs * qk;
        }
      }
  }
  std::array<double, 3> spread{};
  for (int a = 0; a < dims; ++a)
    spread[a] = std::isfinite(c[a][a]) ? std::sqrt(std::max(c[a][a], 0.0)) : c[a][a];
  for (int a = 0; a < dims; ++a)  // descending (three values at most)
    for (int b = a + 1; b < dims; ++b)
      if (spread[b] > spread[a]) std::swap(spread[a], spread[b]);
  return spread;
}

// Empty when the map is usable; otherwise what it collapsed to ("a point", "a line", "a plane").
// Optimised maps grow from the initial scale to spreads of order 1 to 100 and are close to
// isotropic; a collapse leaves spreads near 1e-12 of that. So: a map whose widest spread ended
// below 1% of the start's is a point, and a principal axis below 1e-4 of the widest is flat
// (n points span at most n - 1 axes: two points are a line by right).
std::string degenerate_map(std::span<const float> y, std::size_t n, int dims,
                           double initial_spread) {
  const std::array<double, 3> spread = principal_spreads(y, n, dims);
  for (int a = 0; a < dims; ++a)
    if (!std::isfinite(spread[a])) return "non-finite values";
  if (!(spread[0] > 0) || spread[0] < 0.01 * initial_spread) return "a point";
  int axes = 0;
  for (int a = 0; a < dims; ++a) axes += spread[a] >= 1e-4 * spread[0] ? 1 : 0;
  if (axes >= std::min<int>(dims, static_cast<int>(n) - 1)) return {};
  return axes == 1 ? "a line" : "a plane";
}

// Maps up to this size are optimised with several schedules (run_tsne).
constexpr std::size_t kMultiStartMaxPoints = 200;
// Maps up to this size also start from kRandomStarts random layouts.
constexpr std::size_t kRandomStartsMaxPoints = 50;
constexpr std::uint64_t kRandomStarts = 4;

}  // namespace

const char* method_name(Method method) {
  switch (method) {
    case Method::automatic:
      return "auto";
    case Method::exact:
      return "exact";
    case Method::barnes_hut:
      return "bh";
    case Method::fft:
      return "fft";
  }
  return "?";
}

// Up to 1,000 points the exact gradient is the cheapest (see kExactCheaperPoints), and in 3D up
// to 3,000; above, the FFT (in 3D its grid needs (2 * 3 * boxes)^3 nodes, and the exact
// O(n^2) pass wins until n^2 outgrows it).
// Measured on the Brown embeddings, 1 thread, 750 iterations (bench/tsne/tune_tsne,
// docs/BENCHMARKS.md), seconds: 2-D n = 1000: exact 0.95, Barnes-Hut 1.29, FFT 0.67 (before the
// momentum reset); n = 2000: Barnes-Hut 3.32, FFT 1.25; n = 5000: 10.2 / 3.0.
// 3-D n = 1000: exact 0.95; n = 1500: Barnes-Hut 4.9, FFT 1.9; n = 2000: exact 3.7, Barnes-Hut
// 8.5, FFT 6.6; n = 10000: FFT 29.5 (two threads).
Method choose_method(std::size_t n, int dims) {
  if (n <= kExactCheaperPoints || dims < 2) return Method::exact;
  if (dims == 3 && n <= 3000) return Method::exact;
  return Method::fft;
}

namespace {

template <int D>
void attractive_d(std::span<float> out, const SparseP& p, std::span<const float> y,
                  float exaggeration, double dof, int threads) {
  const std::size_t n = p.n;
  const float inv_dof = static_cast<float>(1.0 / dof);
#pragma omp parallel for num_threads(threads) schedule(static, 256)
  for (std::size_t i = 0; i < n; ++i) {
    // Scalar accumulators and a gather per coordinate, so the loop vectorises.
    const float y0 = y[i * D], y1 = D > 1 ? y[i * D + 1] : 0.0f, y2 = D > 2 ? y[i * D + 2] : 0.0f;
    float f0 = 0.0f, f1 = 0.0f, f2 = 0.0f;
    const std::int64_t begin = p.row_ptr[i], end = p.row_ptr[i + 1];
    const std::int32_t* col = p.col.data();
    const float* val = p.val.data();
    const float* yd = y.data();
#pragma omp simd reduction(+ : f0, f1, f2)
    for (std::int64_t e = begin; e < end; ++e) {
      const std::int32_t j = col[e] * D;  // 32-bit: 16 lanes per gather (n * D < 2^31)
      const float d0 = y0 - yd[j];
      const float d1 = D > 1 ? y1 - yd[j + (D > 1 ? 1 : 0)] : 0.0f;
      const float d2 = D > 2 ? y2 - yd[j + (D > 2 ? 2 : 0)] : 0.0f;
      const float pg = val[e] / (1.0f + (d0 * d0 + d1 * d1 + d2 * d2) * inv_dof);
      f0 += pg * d0;
      f1 += pg * d1;
      f2 += pg * d2;
    }
    const std::array<float, 3> f{f0, f1, f2};
    for (int a = 0; a < D; ++a) out[i * D + a] = exaggeration * f[a];
  }
}

}  // namespace

void attractive_forces(std::span<float> out, const SparseP& p, std::span<const float> y, int dims,
                       double exaggeration, double dof, int threads) {
  const int t = p.n < 4096 ? 1 : thread_count(threads);
  const auto ex = static_cast<float>(exaggeration);
  switch (dims) {
    case 1:
      attractive_d<1>(out, p, y, ex, dof, t);
      break;
    case 2:
      attractive_d<2>(out, p, y, ex, dof, t);
      break;
    case 3:
      attractive_d<3>(out, p, y, ex, dof, t);
      break;
    default:
      throw Error("t-SNE supports 1 to 3 dimensions, got " + std::to_string(dims));
  }
}

FftParams fft_params(const TsneOptions& options, int dims) {
  FftParams params;
  params.boxes_per_unit = dims == 2 ? options.fft_boxes_per_unit_2d : options.fft_boxes_per_unit_3d;
  params.min_boxes = dims == 2 ? options.fft_min_boxes_2d : options.fft_min_boxes_3d;
  params.nodes_per_box = options.fft_nodes_per_box;
  if (dims == 3) params.split_nodes_per_box = options.fft_split_nodes_per_box_3d;
  params.near_radius = options.fft_near_radius;
  params.split_box = options.fft_split_box;
  params.near_degree = options.fft_near_degree;
  return params;
}

double gradient(std::span<float> out, const SparseP& p, std::span<const float> y, int dims,
                double exaggeration, double dof, Method method, const TsneOptions& options,
                FftWorkspace* workspace) {
  const std::size_t n = p.n;
  std::vector<float> rep(n * dims);
  double z = 0.0;
  // Small exact maps: both parts in one pass (P is nearly dense there).
  const bool fused =
      (method == Method::exact || method == Method::automatic) && dof == 1.0 && n <= 4096;
  if (fused) {
    z = exact_forces_fused(out, rep, p, y, dims, exaggeration, options.threads);
  } else if (method == Method::barnes_hut) {
    z = repulsive_barnes_hut(rep, y, n, dims, dof, options.theta, options.threads);
  } else if (method == Method::fft) {
    const FftParams params = fft_params(options, dims);
    FftWorkspace local;
    z = repulsive_fft(rep, y, n, dims, dof, params, workspace ? *workspace : local,
                      options.threads);
  } else {
    z = repulsive_exact(rep, y, n, dims, dof, options.threads);
  }
  if (!fused) attractive_forces(out, p, y, dims, exaggeration, dof, options.threads);
  const double inv_z = z > 0 ? 1.0 / z : 0.0;
  for (std::size_t e = 0; e < n * dims; ++e) out[e] = static_cast<float>(out[e] - inv_z * rep[e]);
  return z;
}

double kl_divergence(const SparseP& p, std::span<const float> y, int dims, double dof, double z,
                     int threads) {
  const std::size_t n = p.n;
  const int t = n < 1024 ? 1 : thread_count(threads);
  if (z <= 0.0) z = exact_z(y, n, dims, dof, t);
  const Kernel kernel(dof);
  std::vector<double> row(n);
#pragma omp parallel for num_threads(t) schedule(static, 256)
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0.0;
    const float* yi = y.data() + i * dims;
    for (std::int64_t e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e) {
      const double pij = p.val[e];
      if (pij <= 0) continue;
      const float* yj = y.data() + static_cast<std::size_t>(p.col[e]) * dims;
      double d2 = 0.0;
      for (int a = 0; a < dims; ++a) {
        const double dd = static_cast<double>(yi[a]) - yj[a];
        d2 += dd * dd;
      }
      double w, wg;
      kernel.eval(d2, w, wg);
      s += pij * (std::log(pij) - std::log(std::max(w, 1e-300)));
    }
    row[i] = s;
  }
  double kl = 0.0, total_p = 0.0;
  for (double v : row) kl += v;
  for (float v : p.val) total_p += v;
  return kl + total_p * std::log(z);
}

TsneResult run_tsne(std::span<const float> data, std::size_t n, std::size_t d,
                    const TsneOptions& options, const Callback& callback) {
  // --- option checks (usage errors) ---
  const auto usage = [](const std::string& message) { throw Error(message, ErrorKind::usage); };
  if (options.dims < 1 || options.dims > 3)
    usage("--dims must be 2 or 3, got " + std::to_string(options.dims));
  if (!(options.perplexity > 0) || !std::isfinite(options.perplexity))
    usage("--perplexity must be positive, got " + number(options.perplexity));
  if (options.iterations < 0) usage("--iterations must be >= 0");
  if (options.early_exaggeration_iterations < 0)
    usage("early exaggeration iterations must be >= 0");
  if (!(options.early_exaggeration > 0) || !std::isfinite(options.early_exaggeration))
    usage("--early-exaggeration must be positive, got " + number(options.early_exaggeration));
  if (!std::isfinite(options.learning_rate)) usage("--learning-rate must be finite");
  if (!(options.dof > 0) || !std::isfinite(options.dof))
    usage("--dof must be positive, got " + number(options.dof));
  if (options.theta < 0) usage("theta must be >= 0");
  if (options.kl_every < 1) usage("kl_every must be >= 1");
  if (options.pca_dims < -1) usage("--pca must be >= 0");
  if (n < 2) throw Error("t-SNE needs at least 2 rows, got " + std::to_string(n));
  if (d == 0) throw Error("t-SNE needs at least 1 column");
  if (data.size() != n * d)
    throw Error("t-SNE: data size does not match " + std::to_string(n) + " x " + std::to_string(d));
  for (std::size_t e = 0; e < data.size(); ++e)
    if (!std::isfinite(data[e]))
      throw Error("non-finite value in row " + std::to_string(e / d + 1) + ", column " +
                  std::to_string(e % d + 1));
  const int dims = options.dims;
  Method method = options.method == Method::automatic ? choose_method(n, dims) : options.method;
  if (dims == 1 && method != Method::exact) usage("1-D embeddings need --method exact");
  // Up to kExactCheaperPoints the exact gradient costs less than a tree or a grid (one
  // iteration at 1,000 points, one core: exact 1.0 ms in 2D and 1.3 ms in 3D, Barnes-Hut 1.7
  // and 3.1 ms, the FFT's smallest grid 0.7 and 14 ms) and has no approximation error, so a
  // forced bh or fft runs exact there (result.method says so).
  if (method != Method::exact && options.dof == 1.0 && n <= kExactCheaperPoints)
    method = Method::exact;

  TsneResult result;
  result.n = n;
  result.dims = dims;
  result.method = method;

  // --- input preparation ---
  std::vector<float> x(n * d);
  if (!prepare_input(x, data, n, d, options.center, options.metric))
    throw Error("all " + std::to_string(n) + " rows are identical; t-SNE needs distinct points");
  std::size_t dx = d;
  const int pca_dims = options.pca_dims == -1 ? (d > 50 ? 50 : 0) : options.pca_dims;
  std::vector<float> full;  // the prepared input before PCA, kept for re-ranking
  if (pca_dims > 0 && static_cast<std::size_t>(pca_dims) < d) {
    std::vector<float> reduced(n * static_cast<std::size_t>(pca_dims));
    pca(reduced, x, n, d, static_cast<std::size_t>(pca_dims));
    full = std::move(x);
    x = std::move(reduced);
    dx = static_cast<std::size_t>(pca_dims);
  }

  // --- affinities ---
  double perplexity = options.perplexity;
  if (perplexity >= static_cast<double>(n)) {
    const double lowered = static_cast<double>(n - 1) / 3.0;
    result.warnings.push_back("perplexity " + number(perplexity) +
                              " is not below the number of points (" + std::to_string(n) +
                              "); using " + number(lowered));
    perplexity = lowered;
  }
  result.perplexity = perplexity;
  const std::size_t k =
      std::clamp<std::size_t>(static_cast<std::size_t>(std::floor(3.0 * perplexity)), 1, n - 1);
  result.neighbors = k;
  neighbors::KnnOptions knn_options;
  knn_options.k = k;
  knn_options.metric = neighbors::Metric::euclidean;  // cosine rows are unit length already
  knn_options.algorithm = options.knn_algorithm;
  knn_options.exact_threshold = options.exact_knn_threshold;
  knn_options.seed = options.seed;
  knn_options.threads = options.threads;
  std::vector<float> sq(n * k);
  neighbors::KnnResult knn;
  if (!full.empty()) {
    // PCA makes the search fast; the affinities come from the full input: half as many
    // candidates again are found in the reduced space and re-ranked by their full distance.
    knn_options.k = std::min(n - 1, k + (k + 1) / 2);
    const std::size_t kc = knn_options.k;
    const neighbors::KnnResult candidates = neighbors::knn(x, n, dx, knn_options);
    knn.indices.resize(n * k);
    knn.distances.resize(n * k);
    const int t = n < 1024 ? 1 : thread_count(options.threads);
#pragma omp parallel num_threads(t)
    {
      std::vector<std::pair<float, std::int32_t>> ranked(kc);
#pragma omp for schedule(static, 256)
      for (std::size_t i = 0; i < n; ++i) {
        const float* xi = &full[i * d];
        for (std::size_t c = 0; c < kc; ++c) {
          const std::int32_t j = candidates.indices[i * kc + c];
          const float* xj = &full[static_cast<std::size_t>(j) * d];
          float s2 = 0.0f;
#pragma omp simd reduction(+ : s2)
          for (std::size_t a = 0; a < d; ++a) s2 += (xi[a] - xj[a]) * (xi[a] - xj[a]);
          ranked[c] = {s2, j};
        }
        std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k),
                          ranked.end());
        for (std::size_t c = 0; c < k; ++c) {
          sq[i * k + c] = ranked[c].first;
          knn.indices[i * k + c] = ranked[c].second;
        }
      }
    }
    full = {};
  } else {
    knn = neighbors::knn(x, n, dx, knn_options);
    for (std::size_t e = 0; e < sq.size(); ++e) sq[e] = knn.distances[e] * knn.distances[e];
  }
  std::vector<float> conditional(n * k);
  conditional_probabilities(conditional, sq, n, k, perplexity, options.threads);
  const SparseP p = joint_probabilities(conditional, knn.indices, n, k);
  sq = {};
  conditional = {};
  {
    double entropy_term = 0.0;  // sum p log p
    for (const float v : p.val)
      if (v > 0) entropy_term += static_cast<double>(v) * std::log(static_cast<double>(v));
    result.kl_uniform =
        entropy_term + std::log(static_cast<double>(n) * static_cast<double>(n - 1));
  }

  // --- initialisation ---
  std::vector<float> y(n * static_cast<std::size_t>(dims));
  if (options.init == Init::given) {
    if (options.initial_embedding.size() != y.size())
      throw Error("initial embedding has " + std::to_string(options.initial_embedding.size()) +
                  " values, expected " + std::to_string(n) + " x " + std::to_string(dims));
    for (float v : options.initial_embedding)
      if (!std::isfinite(v)) throw Error("initial embedding has a non-finite value");
    y = options.initial_embedding;
  } else if (options.init == Init::random) {
    y = gaussian(y.size(), options.seed, 1e-4);
  } else {
    const std::size_t kk = std::min<std::size_t>(static_cast<std::size_t>(dims), dx);
    std::vector<float> proj(n * kk);
    if (pca_dims > 0 && static_cast<std::size_t>(pca_dims) < d) {
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t a = 0; a < kk; ++a) proj[i * kk + a] = x[i * dx + a];
    } else {
      pca(proj, x, n, dx, kk);
    }
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < n; ++i) mean += proj[i * kk];
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) var += (proj[i * kk] - mean) * (proj[i * kk] - mean);
    const double sd = std::sqrt(var / static_cast<double>(n));
    const double scale = sd > 0 ? 1e-4 / sd : 1.0;
    const std::vector<float> noise = gaussian(y.size(), options.seed, 1e-4);
    for (std::size_t i = 0; i < n; ++i)
      for (int a = 0; a < dims; ++a)
        y[i * dims + a] = static_cast<std::size_t>(a) < kk
                              ? static_cast<float>(proj[i * kk + a] * scale)
                              : noise[i * dims + a];
  }

  // --- optimisation ---
  const double early_exaggeration =
      options.early_exaggeration_iterations > 0 && options.limit_early_exaggeration
          ? early_exaggeration_for(p, dims, options.early_exaggeration)
          : options.early_exaggeration;
  result.early_exaggeration = early_exaggeration;
  // auto (openTSNE's rule): max(n / exaggeration, 50) with the exaggeration of the phase, i.e.
  // n / early_exaggeration during early exaggeration and n afterwards.
  const auto learning_rate = [&](double exaggeration) {
    return options.learning_rate > 0
               ? options.learning_rate
               : std::max(static_cast<double>(n) / exaggeration, options.learning_rate_floor);
  };
  const std::size_t size = y.size();
  const std::vector<float> initial = y;
  const double initial_spread = principal_spreads(initial, n, dims)[0];
  std::vector<float> grad(size), update(size, 0.0f), gains(size, 1.0f);
  FftWorkspace workspace;
  const int total = options.iterations;
  const bool exact_kl = n <= options.exact_kl_max_n;
  double last_z = 0.0;
  const auto report = [&](int iteration, bool ee, bool notify) {
    double z = 0.0;
    if (!exact_kl) {
      // Estimate: Z from the repulsion method at the current embedding.
      std::vector<float> scratch(size);
      if (method == Method::barnes_hut)
        z = repulsive_barnes_hut(scratch, y, n, dims, options.dof, options.theta, options.threads);
      else if (method == Method::fft) {
        const FftParams params = fft_params(options, dims);
        z = repulsive_fft(scratch, y, n, dims, options.dof, params, workspace, options.threads);
      } else {
        z = last_z;
      }
      if (!(z > 0)) z = 0.0;
    }
    result.kl = kl_divergence(p, y, dims, options.dof, z, options.threads);
    result.kl_exact = exact_kl || z <= 0.0;
    result.iterations = iteration;
    if (!callback || !notify) return true;
    IterationReport r;
    r.iteration = iteration;
    r.total_iterations = total;
    r.kl = result.kl;
    r.kl_exact = result.kl_exact;
    r.early_exaggeration = ee;
    r.embedding = y;
    return callback(r);
  };

  // One whole run from `initial` with the given early exaggeration and step cap; false when the
  // callback stopped it (only runs that `notify` call it).
  struct Schedule {
    double exaggeration;
    double max_step;
    double learning_rate = 0.0;   // both phases; 0: the options' rule (learning_rate above)
    bool reset_gains = false;     // at the end of early exaggeration, with the momentum
    double final_momentum = 0.0;  // 0: the options'
    const std::vector<float>* start = nullptr;  // null: `initial`
  };
  const auto optimise = [&](Schedule schedule, bool notify) {
    const double ee_factor = schedule.exaggeration;
    if (schedule.final_momentum <= 0) schedule.final_momentum = options.final_momentum;
    y = schedule.start != nullptr ? *schedule.start : initial;
    std::fill(update.begin(), update.end(), 0.0f);
    std::fill(gains.begin(), gains.end(), 1.0f);
    for (int it = 0; it < total; ++it) {
      const bool ee = it < options.early_exaggeration_iterations;
      if (it == options.early_exaggeration_iterations && it > 0) {
        // A new phase starts from rest, as in openTSNE and scikit-learn (each phase is its own
        // gradient descent): the exaggerated phase's momentum would carry the map on past the
        // scale the un-exaggerated forces want. scikit-learn also resets the gains.
        std::fill(update.begin(), update.end(), 0.0f);
        if (schedule.reset_gains) std::fill(gains.begin(), gains.end(), 1.0f);
      }
      const double exaggeration = ee ? ee_factor : 1.0;
      const auto momentum = static_cast<float>(ee ? options.momentum : schedule.final_momentum);
      last_z = gradient(grad, p, y, dims, exaggeration, options.dof, method, options, &workspace);
      const auto rate = static_cast<float>(
          schedule.learning_rate > 0 ? schedule.learning_rate : learning_rate(exaggeration));
      const auto min_gain = static_cast<float>(options.min_gain);
      for (std::size_t e = 0; e < size; ++e) {
        float g = gains[e];
        g = (update[e] * grad[e] < 0.0f) ? g + 0.2f : g * 0.8f;
        g = std::max(g, min_gain);
        gains[e] = g;
        update[e] = momentum * update[e] - rate * g * grad[e];
      }
      if (schedule.max_step > 0) {
        const double cap = schedule.max_step;
        for (std::size_t i = 0; i < n; ++i) {
          double s = 0.0;
          for (int a = 0; a < dims; ++a)
            s += static_cast<double>(update[i * dims + a]) * update[i * dims + a];
          if (s > cap * cap) {
            const auto f = static_cast<float>(cap / std::sqrt(s));
            for (int a = 0; a < dims; ++a) update[i * dims + a] *= f;
          }
        }
      }
      for (std::size_t e = 0; e < size; ++e) y[e] += update[e];
      result.iterations = it + 1;
      if (!std::isfinite(y[0]) || !std::isfinite(y[size - 1]))
        throw Error("t-SNE diverged at iteration " + std::to_string(it + 1) +
                    " (try a smaller --learning-rate)");
      if ((it + 1) % options.kl_every == 0 || it + 1 == total) {
        if (!report(it + 1, ee, notify)) return false;
      }
    }
    return true;
  };

  const Schedule standard{early_exaggeration, options.max_step_norm};
  result.stopped = !optimise(standard, true);
  if (!result.stopped && total > 0) {
    // 2: a point or non-finite (nothing to show); 1: flat (a line or a plane); 0: fine.
    const auto severity = [](const std::string& collapse) {
      return collapse.empty() ? 0 : (collapse == "a line" || collapse == "a plane") ? 1 : 2;
    };
    const std::string first_collapse = degenerate_map(y, n, dims, initial_spread);
    std::string collapse = first_collapse;
    // Small maps are cheap and their KL has many local minima close together: the same start
    // is also optimised without exaggeration, without the step cap, with openTSNE's final
    // momentum 0.8, with the exaggeration uncapped (openTSNE's schedule) and with
    // scikit-learn's schedule, and the lowest KL kept
    // (the standard schedule alone lost to scikit-learn by 2-18% on a fifth of the small-map
    // grid). A collapsed map of any size is run again without exaggeration, which never makes
    // the point map stable (see early_exaggeration_for): once the points coincide in floating
    // point every force is exactly zero and nothing recovers.
    std::vector<Schedule> alternatives;
    std::vector<std::vector<float>> random_starts;
    if (n <= kRandomStartsMaxPoints && options.init != Init::given) {
      for (std::uint64_t r = 1; r <= kRandomStarts; ++r)
        random_starts.push_back(gaussian(size, options.seed + 0x9E3779B97F4A7C15ull * r, 1e-4));
    }
    if (n <= kMultiStartMaxPoints) {
      alternatives = {{1.0, options.max_step_norm},
                      {early_exaggeration, 0.0},
                      {early_exaggeration, options.max_step_norm, 0.0, false, 0.8},
                      {options.early_exaggeration, options.max_step_norm},
                      {options.early_exaggeration, options.max_step_norm, 0.0, false, 0.8},
                      // scikit-learn's: one rate for both phases, max(n / 12 / 4, 50) on its
                      // 4x gradient, no step cap
                      {options.early_exaggeration, 0.0,
                       options.learning_rate > 0
                           ? options.learning_rate
                           : std::max(static_cast<double>(n) / 12.0, options.learning_rate_floor),
                       true, 0.8}};
      // The tiniest maps also start from a few random layouts (seeded from options.seed) with
      // the standard schedule: their KL has well-separated local minima, and which one the PCA
      // start falls into depends on rounding (an AVX-512 build lost to scikit-learn by 2.5-4.4%
      // on 2 of the grid's 2D maps at n = 12 and 20 where the AVX2 build did not). A given
      // initialisation is kept as given.
      if (n <= kRandomStartsMaxPoints && options.init != Init::given) {
        for (std::size_t r = 0; r < random_starts.size(); ++r)
          alternatives.push_back(
              {early_exaggeration, options.max_step_norm, 0.0, false, 0.0, &random_starts[r]});
      }
    } else if (severity(collapse) > 0 && early_exaggeration > 1.0) {
      alternatives = {{1.0, options.max_step_norm}};
    }
    if (options.early_exaggeration_iterations == 0 && !alternatives.empty())
      alternatives.erase(alternatives.begin());  // "no exaggeration" is the standard then
    std::vector<float> best = y;
    double best_kl = result.kl, best_exaggeration = early_exaggeration;
    const auto same = [&](const Schedule& one, const Schedule& other) {
      return one.exaggeration == other.exaggeration && one.max_step == other.max_step &&
             one.learning_rate == other.learning_rate && one.reset_gains == other.reset_gains &&
             one.start == other.start &&
             (one.final_momentum > 0 ? one.final_momentum : options.final_momentum) ==
                 (other.final_momentum > 0 ? other.final_momentum : options.final_momentum);
    };
    for (std::size_t a = 0; a < alternatives.size(); ++a) {
      const Schedule& schedule = alternatives[a];
      bool seen = same(schedule, standard);
      for (std::size_t b = 0; b < a && !seen; ++b) seen = same(alternatives[b], schedule);
      if (seen) continue;
      optimise(schedule, false);
      const std::string c = degenerate_map(y, n, dims, initial_spread);
      const bool better = severity(c) < severity(collapse) ||
                          (severity(c) == severity(collapse) && result.kl < best_kl);
      if (!better) continue;
      best = y;
      best_kl = result.kl;
      best_exaggeration = schedule.exaggeration;
      collapse = c;
    }
    y = std::move(best);
    result.kl = best_kl;
    result.iterations = total;
    result.early_exaggeration = best_exaggeration;
    if (severity(first_collapse) > 0 && severity(collapse) < severity(first_collapse))
      result.warnings.push_back(
          "the map collapsed to " + first_collapse + " with early exaggeration " +
          number(early_exaggeration) + "; ran again" +
          (best_exaggeration == 1.0
               ? " without it"
               : " (kept early exaggeration " + number(best_exaggeration) + ")"));
    if (severity(collapse) == 2)
      throw Error("t-SNE collapsed the map to " + collapse +
                  "; the affinities carry no structure the map can show (try a lower "
                  "--perplexity or --learning-rate)");
    if (severity(collapse) == 1 && n >= 12)
      result.warnings.push_back("the map is flat (" + collapse +
                                "): its optimum needs fewer dimensions than " +
                                std::to_string(dims));
  }
  if (total == 0) report(0, false, true);
  result.embedding = std::move(y);
  return result;
}

}  // namespace tokmap::tsne
