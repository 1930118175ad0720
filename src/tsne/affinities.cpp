// Input preparation, PCA, perplexity calibration and the joint probabilities P.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "tsne/tsne.hpp"

extern "C" void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n,
                        double* a, const int* lda, const double* vl, const double* vu,
                        const int* il, const int* iu, const double* abstol, int* m, double* w,
                        double* z, const int* ldz, int* isuppz, double* work, const int* lwork,
                        int* iwork, const int* liwork, int* info, std::size_t, std::size_t,
                        std::size_t);

namespace tokmap::tsne {

namespace {
int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }
}  // namespace

bool prepare_input(std::span<float> out, std::span<const float> in, std::size_t n, std::size_t d,
                   bool center, neighbors::Metric metric) {
  std::copy(in.begin(), in.end(), out.begin());
  bool all_same = true;
  for (std::size_t i = 1; i < n && all_same; ++i)
    all_same = std::equal(in.begin() + i * d, in.begin() + (i + 1) * d, in.begin());
  if (metric == neighbors::Metric::cosine) {
    for (std::size_t i = 0; i < n; ++i) {
      float* row = out.data() + i * d;
      double s = 0;
      for (std::size_t j = 0; j < d; ++j) s += static_cast<double>(row[j]) * row[j];
      if (s > 0) {
        const double inv = 1.0 / std::sqrt(s);
        for (std::size_t j = 0; j < d; ++j) row[j] = static_cast<float>(row[j] * inv);
      }
    }
    if (!all_same) {
      // Rows that differ only by a positive scale are identical for the cosine metric.
      all_same = true;
      for (std::size_t i = 1; i < n && all_same; ++i)
        all_same = std::equal(out.begin() + i * d, out.begin() + (i + 1) * d, out.begin());
    }
  } else if (center) {
    std::vector<double> mean(d, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) mean[j] += in[i * d + j];
    for (auto& m : mean) m /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j)
        out[i * d + j] = static_cast<float>(in[i * d + j] - mean[j]);
  }
  return !all_same;
}

namespace {

// Top-k eigenpairs of a symmetric (dim, dim) matrix in double: values descending, vectors as
// columns of a column-major (dim, k) matrix in the same order.
void top_eigenpairs(std::vector<double>& matrix, std::size_t dim, std::size_t k,
                    std::vector<double>& values, std::vector<double>& vectors) {
  const int dn = static_cast<int>(dim);
  const int il = dn - static_cast<int>(k) + 1, iu = dn;
  const double vl = 0, vu = 0, abstol = 0;
  int m = 0, info = 0;
  std::vector<double> w(dim), z(dim * k);
  std::vector<int> isuppz(2 * dim);
  int lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevr_("V", "I", "U", &dn, matrix.data(), &dn, &vl, &vu, &il, &iu, &abstol, &m, w.data(),
          z.data(), &dn, isuppz.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1, 1);
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  std::vector<int> iwork(static_cast<std::size_t>(std::max(liwork, 1)));
  dsyevr_("V", "I", "U", &dn, matrix.data(), &dn, &vl, &vu, &il, &iu, &abstol, &m, w.data(),
          z.data(), &dn, isuppz.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1, 1);
  if (info != 0 || m != static_cast<int>(k))
    throw Error("PCA: eigen-decomposition failed (LAPACK dsyevr info " + std::to_string(info) +
                ")");
  values.resize(k);
  vectors.resize(dim * k);
  for (std::size_t c = 0; c < k; ++c) {  // dsyevr returns ascending order
    values[c] = w[k - 1 - c];
    std::copy_n(z.data() + (k - 1 - c) * dim, dim, vectors.data() + c * dim);
  }
}

// PCA through the Gram matrix G = Xc Xc^T (n < d): with G u = lambda u, the principal axis is
// v = Xc^T u / sqrt(lambda) and the projection Xc v = sqrt(lambda) u. Signs follow the same rule
// as the covariance path (largest-magnitude loading of v positive).
void pca_gram(std::span<float> out, const std::vector<float>& centered, std::size_t n,
              std::size_t d, std::size_t k) {
  std::vector<double> x(centered.begin(), centered.end());
  std::vector<double> gram(n * n, 0.0);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, static_cast<int>(n), static_cast<int>(d),
              1.0, x.data(), static_cast<int>(d), 0.0, gram.data(), static_cast<int>(n));
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = a + 1; b < n; ++b) gram[b * n + a] = gram[a * n + b];
  std::vector<double> values, vectors;
  top_eigenpairs(gram, n, k, values, vectors);
  const double largest = std::max(values[0], 0.0);
  std::vector<double> axis(d);
  for (std::size_t c = 0; c < k; ++c) {
    const double* u = vectors.data() + c * n;
    // Directions with no variance (rank below k) project to 0, as the covariance path's would.
    if (!(values[c] > 1e-12 * largest) || largest == 0.0) {
      for (std::size_t i = 0; i < n; ++i) out[i * k + c] = 0.0f;
      continue;
    }
    std::fill(axis.begin(), axis.end(), 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) axis[j] += x[i * d + j] * u[i];
    std::size_t arg = 0;
    for (std::size_t j = 1; j < d; ++j)
      if (std::abs(axis[j]) > std::abs(axis[arg])) arg = j;
    const double scale = (axis[arg] < 0 ? -1.0 : 1.0) * std::sqrt(values[c]);
    for (std::size_t i = 0; i < n; ++i) out[i * k + c] = static_cast<float>(scale * u[i]);
  }
}

}  // namespace

namespace {

// rows of `in` (n, d) minus their column means (computed in double).
std::vector<float> centered_rows(std::span<const float> in, std::size_t n, std::size_t d) {
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) mean[j] += in[i * d + j];
  for (auto& m : mean) m /= static_cast<double>(n);
  std::vector<float> centered(n * d);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      centered[i * d + j] = static_cast<float>(in[i * d + j] - mean[j]);
  return centered;
}

// The top-k axes of centered rows (n, d): out (k, d), by decreasing variance, each signed so that
// its largest-magnitude loading is positive (so maps and atlases do not flip between runs).
void centered_axes(std::span<float> out, const std::vector<float>& centered, std::size_t n,
                   std::size_t d, std::size_t k) {
  // Covariance (upper triangle, row-major) accumulated in double over row blocks.
  std::vector<double> cov(d * d, 0.0);
  std::vector<float> block_cov(d * d);
  const std::size_t block = 4096;
  for (std::size_t start = 0; start < n; start += block) {
    const std::size_t rows = std::min(block, n - start);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(d), static_cast<int>(rows),
                1.0f, centered.data() + start * d, static_cast<int>(d), 0.0f, block_cov.data(),
                static_cast<int>(d));
    for (std::size_t a = 0; a < d; ++a)
      for (std::size_t b = a; b < d; ++b) cov[a * d + b] += block_cov[a * d + b];
  }
  for (std::size_t a = 0; a < d; ++a)
    for (std::size_t b = a; b < d; ++b) cov[b * d + a] = cov[a * d + b];

  // Top-k eigenvectors (LAPACK dsyevr; symmetric, so row/column major agree).
  std::vector<double> values, vectors;
  top_eigenpairs(cov, d, k, values, vectors);
  for (std::size_t c = 0; c < k; ++c) {
    const double* v = vectors.data() + c * d;
    std::size_t arg = 0;
    for (std::size_t j = 1; j < d; ++j)
      if (std::abs(v[j]) > std::abs(v[arg])) arg = j;
    const double sign = v[arg] < 0 ? -1.0 : 1.0;
    for (std::size_t j = 0; j < d; ++j) out[c * d + j] = static_cast<float>(sign * v[j]);
  }
}

void check_rank(std::size_t k, std::size_t d) {
  if (k == 0 || k > d)
    throw Error("PCA: cannot keep " + std::to_string(k) + " of " + std::to_string(d) +
                " dimensions");
}

}  // namespace

void principal_axes(std::span<float> out, std::span<const float> in, std::size_t n, std::size_t d,
                    std::size_t k) {
  check_rank(k, d);
  centered_axes(out, centered_rows(in, n, d), n, d, k);
}

void pca(std::span<float> out, std::span<const float> in, std::size_t n, std::size_t d,
         std::size_t k) {
  check_rank(k, d);
  const std::vector<float> centered = centered_rows(in, n, d);
  // Fewer points than dimensions (a sentence's tokens in a 768-wide model): decompose the
  // (n, n) Gram matrix instead of the (d, d) covariance; same axes, far less work.
  if (n < d && k <= n) {
    pca_gram(out, centered, n, d, k);
    return;
  }
  std::vector<float> rows(k * d);  // (k, d)
  centered_axes(rows, centered, n, d, k);
  std::vector<float> axes(d * k);  // (d, k) row-major, for the product below
  for (std::size_t c = 0; c < k; ++c)
    for (std::size_t j = 0; j < d; ++j) axes[j * k + c] = rows[c * d + j];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(k),
              static_cast<int>(d), 1.0f, centered.data(), static_cast<int>(d), axes.data(),
              static_cast<int>(k), 0.0f, out.data(), static_cast<int>(k));
}

std::vector<double> explained_variance_ratio(std::span<const float> projected,
                                             std::span<const float> in, std::size_t n,
                                             std::size_t d, std::size_t k) {
  if (projected.size() != n * k || in.size() != n * d)
    throw Error("explained variance: sizes do not match (n, d, k)");
  // The projections are centred already (projections of centred rows), so their sums of squares
  // are the variances along the axes; the total is the trace of the covariance.
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) mean[j] += in[i * d + j];
  for (auto& m : mean) m /= static_cast<double>(std::max<std::size_t>(n, 1));
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      total += (in[i * d + j] - mean[j]) * (in[i * d + j] - mean[j]);
  std::vector<double> ratio(k, 0.0);
  if (!(total > 0.0)) return ratio;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < k; ++c)
      ratio[c] += double(projected[i * k + c]) * double(projected[i * k + c]);
  for (auto& r : ratio) r /= total;
  return ratio;
}

void conditional_probabilities(std::span<float> out, std::span<const float> sq_distances,
                               std::size_t n, std::size_t k, double perplexity, int threads) {
  const double desired_entropy = std::log(perplexity);
  const double tol = 1e-5;
  const int nthreads = n < 2048 ? 1 : thread_count(threads);
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<double> p(k);
#pragma omp for schedule(static, 256)
    for (std::size_t i = 0; i < n; ++i) {
      const float* dist = sq_distances.data() + i * k;
      double beta = 1.0, beta_min = -std::numeric_limits<double>::infinity(),
             beta_max = std::numeric_limits<double>::infinity();
      for (int step = 0; step < 100; ++step) {
        double sum_p = 0.0;
        for (std::size_t j = 0; j < k; ++j) {
          p[j] = std::exp(-static_cast<double>(dist[j]) * beta);
          sum_p += p[j];
        }
        if (sum_p == 0.0) sum_p = 1e-8;
        double sum_dp = 0.0;
        for (std::size_t j = 0; j < k; ++j) {
          p[j] /= sum_p;
          sum_dp += static_cast<double>(dist[j]) * p[j];
        }
        const double entropy = std::log(sum_p) + beta * sum_dp;
        const double diff = entropy - desired_entropy;
        if (std::abs(diff) <= tol) break;
        if (diff > 0) {
          beta_min = beta;
          beta = beta_max == std::numeric_limits<double>::infinity() ? beta * 2.0
                                                                     : (beta + beta_max) / 2.0;
        } else {
          beta_max = beta;
          beta = beta_min == -std::numeric_limits<double>::infinity() ? beta / 2.0
                                                                      : (beta + beta_min) / 2.0;
        }
      }
      for (std::size_t j = 0; j < k; ++j) out[i * k + j] = static_cast<float>(p[j]);
    }
  }
}

SparseP joint_probabilities(std::span<const float> conditional,
                            std::span<const std::int32_t> indices, std::size_t n, std::size_t k) {
  // Entries (i, j, c_ij) and (j, i, c_ij) bucketed by row, sorted by column, duplicates summed.
  std::vector<std::int64_t> count(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t m = 0; m < k; ++m) {
      ++count[i + 1];
      ++count[static_cast<std::size_t>(indices[i * k + m]) + 1];
    }
  for (std::size_t i = 0; i < n; ++i) count[i + 1] += count[i];
  std::vector<std::pair<std::int32_t, float>> entries(static_cast<std::size_t>(count[n]));
  std::vector<std::int64_t> fill(count.begin(), count.end() - 1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t m = 0; m < k; ++m) {
      const auto j = static_cast<std::size_t>(indices[i * k + m]);
      const float c = conditional[i * k + m];
      entries[static_cast<std::size_t>(fill[i]++)] = {static_cast<std::int32_t>(j), c};
      entries[static_cast<std::size_t>(fill[j]++)] = {static_cast<std::int32_t>(i), c};
    }
  SparseP p;
  p.n = n;
  p.row_ptr.assign(n + 1, 0);
  p.col.reserve(entries.size());
  std::vector<double> merged;
  merged.reserve(entries.size());
  for (std::size_t i = 0; i < n; ++i) {
    auto first = entries.begin() + count[i], last = entries.begin() + count[i + 1];
    // Stable: equal columns keep insertion order, so the sums are formed in a fixed order.
    std::stable_sort(first, last, [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto it = first; it != last; ++it) {
      if (!p.col.empty() && static_cast<std::int64_t>(p.col.size()) > p.row_ptr[i] &&
          p.col.back() == it->first) {
        merged.back() += it->second;
      } else {
        p.col.push_back(it->first);
        merged.push_back(it->second);
      }
    }
    p.row_ptr[i + 1] = static_cast<std::int64_t>(p.col.size());
  }
  double total = 0.0;
  for (double v : merged) total += v;
  total = std::max(total, static_cast<double>(std::numeric_limits<float>::epsilon()));
  p.val.resize(merged.size());
  for (std::size_t e = 0; e < merged.size(); ++e) p.val[e] = static_cast<float>(merged[e] / total);
  return p;
}

namespace {

// y = L x for the graph Laplacian L = D - P of P (D = diag of P's row sums); x, y: (n).
void laplacian_times(std::span<double> y, const SparseP& p, std::span<const double> degree,
                     std::span<const double> x) {
  for (std::size_t i = 0; i < p.n; ++i) {
    double s = 0.0;
    for (std::int64_t e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e)
      s += static_cast<double>(p.val[e]) * x[static_cast<std::size_t>(p.col[e])];
    y[i] = degree[i] * x[i] - s;
  }
}

std::vector<double> row_sums(const SparseP& p) {
  std::vector<double> degree(p.n, 0.0);
  for (std::size_t i = 0; i < p.n; ++i)
    for (std::int64_t e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e) degree[i] += p.val[e];
  return degree;
}

// The `count` smallest eigenvalues of a symmetric (dim, dim) matrix, ascending.
std::vector<double> smallest_eigenvalues(std::vector<double> matrix, std::size_t dim,
                                         std::size_t count) {
  for (double& v : matrix) v = -v;
  std::vector<double> values, vectors;
  top_eigenpairs(matrix, dim, count, values, vectors);
  for (double& v : values) v = -v;
  return values;
}

}  // namespace

std::vector<double> laplacian_low_eigenvalues_dense(const SparseP& p, int count) {
  const std::size_t n = p.n;
  const std::vector<double> degree = row_sums(p);
  std::vector<double> dense(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    dense[i * n + i] = degree[i];
    for (std::int64_t e = p.row_ptr[i]; e < p.row_ptr[i + 1]; ++e)
      dense[i * n + static_cast<std::size_t>(p.col[e])] -= p.val[e];
  }
  const std::size_t wanted = std::min<std::size_t>(static_cast<std::size_t>(count), n - 1);
  std::vector<double> values = smallest_eigenvalues(std::move(dense), n, wanted + 1);
  values.erase(values.begin());  // the constant vector's 0
  return values;
}

std::vector<double> laplacian_low_eigenvalues(const SparseP& p, int count, double enough) {
  const std::size_t n = p.n;
  if (n <= 200) return laplacian_low_eigenvalues_dense(p, count);
  // Lanczos on the complement of the constant vector (L's null vector), with full
  // re-orthogonalisation. Interlacing makes the k-th smallest Ritz value an upper bound of
  // lambda_{k+1}, so stopping early errs towards larger eigenvalues. Memory: steps * n doubles.
  const std::size_t steps = std::min<std::size_t>(n - 1, n <= 100000 ? 100 : 30);
  const std::vector<double> degree = row_sums(p);
  const double inv_sqrt_n = 1.0 / std::sqrt(static_cast<double>(n));
  std::vector<std::vector<double>> basis;
  std::vector<double> alpha, beta;
  const auto orthogonalise = [&](std::vector<double>& v) {
    for (int pass = 0; pass < 2; ++pass) {
      double c = 0.0;
      for (double x : v) c += x * inv_sqrt_n;
      for (double& x : v) x -= c * inv_sqrt_n;
      for (const auto& b : basis) {
        double d = 0.0;
        for (std::size_t i = 0; i < n; ++i) d += v[i] * b[i];
        for (std::size_t i = 0; i < n; ++i) v[i] -= d * b[i];
      }
    }
    double norm = 0.0;
    for (double x : v) norm += x * x;
    return std::sqrt(norm);
  };
  // A fixed, irregular start vector (any vector with a component on every eigenvector does).
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::sin(12.9898 * static_cast<double>(i) + 1.0);
  double norm = orthogonalise(v);
  std::vector<double> w(n);
  const auto ritz_values = [&] {
    const std::size_t m = alpha.size();
    std::vector<double> tridiagonal(m * m, 0.0);
    for (std::size_t i = 0; i < m; ++i) {
      tridiagonal[i * m + i] = alpha[i];
      if (i + 1 < m) tridiagonal[i * m + i + 1] = tridiagonal[(i + 1) * m + i] = beta[i];
    }
    return smallest_eigenvalues(std::move(tridiagonal), m,
                                std::min<std::size_t>(static_cast<std::size_t>(count), m));
  };
  for (std::size_t step = 0; step < steps && norm > 1e-12; ++step) {
    if (enough > 0 && step >= static_cast<std::size_t>(count) && step % 10 == 0) {
      // Ritz values only fall as steps are added: once the count-th is below `enough`, so is
      // the eigenvalue, and the caller needs no more.
      const std::vector<double> ritz = ritz_values();
      if (ritz.size() == static_cast<std::size_t>(count) && ritz.back() <= enough) return ritz;
    }
    for (double& x : v) x /= norm;
    laplacian_times(w, p, degree, v);
    double a = 0.0;
    for (std::size_t i = 0; i < n; ++i) a += w[i] * v[i];
    alpha.push_back(a);
    basis.push_back(v);
    norm = orthogonalise(w);
    beta.push_back(norm);
    std::swap(v, w);
  }
  return ritz_values();
}

double early_exaggeration_for(const SparseP& p, int dims, double requested) {
  if (requested <= 1.0 || p.n < 3) return requested;
  // With the map small (all w_ij ~ 1), the gradient is linear in the map: each column y evolves
  // as dy ~ -(ex L_P - L_U) y, where L_U, the Laplacian of uniform affinities, is
  // 1 / (n - 1) on every non-constant vector. A Laplacian mode of P with
  // ex (n - 1) lambda_k > 1 contracts, one below expands (Linderman & Steinerberger 2019).
  // When P is nearly uniform -- few points for the perplexity, a sentence or a paragraph -- every
  // mode contracts under ex = 12 and the map shrinks to a line or a point until its
  // coordinates are equal in floating point. Capped at half the value at which the map's `dims`
  // leading modes stop expanding, they grow at half the rate they have without exaggeration,
  // and the map keeps its dimensions; for wide, clustered P the cap is far above 12.
  // The cap is requested when lambda <= 0.5 / (requested (n - 1)): Lanczos may stop there.
  const double irrelevant = 0.5 / (requested * static_cast<double>(p.n - 1));
  const std::vector<double> lambda = laplacian_low_eigenvalues(p, dims, irrelevant);
  const double top = lambda.empty() ? 0.0 : lambda.back();
  if (!(top > 0)) return requested;
  const double cap = 0.5 / (static_cast<double>(p.n - 1) * top);
  return std::max(1.0, std::min(requested, cap));
}

}  // namespace tokmap::tsne
