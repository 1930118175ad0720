#pragma once
// t-SNE: affinities (perplexity calibration on k nearest neighbours), initialisation, the
// optimiser (early exaggeration, momentum, gains, step clipping, degrees of freedom) and three
// repulsion methods in 2D and 3D: exact O(N^2), Barnes-Hut (quadtree / octree) and FFT-accelerated
// polynomial interpolation (FIt-SNE's scheme, extended to 3D).
//
// Conventions
// - Matrices are row-major float32 spans: input X is (n, d), an embedding Y is (n, dims).
// - Kernel with dof a: w_ij = (1 + |yi - yj|^2 / a)^-a, q_ij = w_ij / Z, Z = sum_{i != j} w_ij.
// - "Gradient" is 1/4 of dKL/dY (the FIt-SNE / openTSNE convention the learning rates refer to):
//     grad_i = ex * sum_j p_ij g_ij (yi - yj) - (1/Z) sum_j w_ij g_ij (yi - yj),
//   with g_ij = (1 + |yi - yj|^2 / a)^-1 and ex the exaggeration.
// - Determinism: every parallel loop uses fixed static chunks and reductions are made from
//   per-point or per-chunk partial sums added in a fixed order, so a seed gives the same bytes
//   for any thread count.
// - Nothing here prints: warnings are returned in TsneResult, progress goes through a callback,
//   errors are tokmap::Error.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "neighbors/neighbors.hpp"

namespace tokmap::tsne {

enum class Method { automatic, exact, barnes_hut, fft };
enum class Init { pca, random, given };

const char* method_name(Method method);

struct TsneOptions {
  int dims = 2;              // 2 or 3 (exact also accepts 1)
  double perplexity = 30.0;  // lowered to (n - 1) / 3 when >= n (with a warning)
  std::uint64_t seed = 0;
  int iterations = 750;  // total, early exaggeration included
  int early_exaggeration_iterations = 250;
  double early_exaggeration = 12.0;
  // Cap the exaggeration where it would collapse the map (early_exaggeration_for); false uses
  // early_exaggeration as given, as openTSNE and FIt-SNE do.
  bool limit_early_exaggeration = true;
  // <= 0: auto = max(n / exaggeration of the phase, learning_rate_floor) (openTSNE's rule; the
  // floor is scikit-learn's 50 on its 4x gradient, which small maps need to unfold in time).
  double learning_rate = 0.0;
  double learning_rate_floor = 200.0;
  double momentum = 0.5;  // during early exaggeration
  // Afterwards (0.8 in openTSNE and scikit-learn; 0.9 measured lower KL, docs/BENCHMARKS.md).
  double final_momentum = 0.9;
  double min_gain = 0.01;
  double max_step_norm = 5.0;  // per-point update norm cap; <= 0 disables
  double dof = 1.0;            // degrees of freedom of the t kernel (1 = standard t-SNE)
  Method method = Method::automatic;
  neighbors::Metric metric = neighbors::Metric::euclidean;
  neighbors::Algorithm knn_algorithm = neighbors::Algorithm::automatic;
  std::size_t exact_knn_threshold = 50000;
  bool center = true;  // subtract column means (euclidean metric)
  // -1: 50 when d > 50; 0: off; otherwise reduce to this. PCA speeds up the neighbour search only:
  // 1.5 k candidates found in the reduced space are re-ranked by their full-space distance, so P
  // is the full input's.
  int pca_dims = -1;
  Init init = Init::pca;
  std::vector<float> initial_embedding;  // (n, dims) for Init::given
  double theta = 0.5;                    // Barnes-Hut opening angle
  // FFT interpolation: boxes per unit length of the embedding's bounding cube, minimum boxes
  // per dimension, interpolation nodes per box and dimension.
  double fft_boxes_per_unit_2d = 1.0;
  int fft_min_boxes_2d = 20;
  double fft_boxes_per_unit_3d = 1.0;
  // 3D maps spend early exaggeration about 6 units wide: 6 gives them a 48^3 transform instead
  // of 72^3 (3 times cheaper; 10k Brown rows: 2 s less, final KL 1.2419 against 1.2439 with 10).
  int fft_min_boxes_3d = 6;
  int fft_nodes_per_box = 3;
  int fft_split_nodes_per_box_3d = 3;  // the far part of a split kernel is smooth on r_c
  // Kernel splitting for wide maps (see FftParams): near-field radius (0 = off), the far grid's
  // box width and the degree of the far part's Taylor polynomial inside the radius.
  double fft_near_radius = 4.0;
  double fft_split_box = 4.0;
  int fft_near_degree = 1;
  int kl_every = 50;  // KL divergence (and the callback) every this many iterations
  std::size_t exact_kl_max_n = 10000;  // exact KL up to this n, estimated above (see kl_divergence)
  int threads = 0;                     // 0 = all cores
};

// Symmetric joint probabilities in CSR form: row i holds columns col[row_ptr[i] .. row_ptr[i+1])
// in increasing order with values val; sum of all values is 1 and P is symmetric.
struct SparseP {
  std::size_t n = 0;
  std::vector<std::int64_t> row_ptr;  // n + 1
  std::vector<std::int32_t> col;
  std::vector<float> val;
};

// Reported every kl_every iterations and after the last one.
struct IterationReport {
  int iteration = 0;  // 1-based count of finished iterations
  int total_iterations = 0;
  double kl = 0.0;       // KL(P || Q) with the un-exaggerated P
  bool kl_exact = true;  // false: estimate with the repulsion method's approximate Z
  bool early_exaggeration = false;
  std::span<const float> embedding;  // (n, dims), valid only during the call
};
// Return false to stop the run early (the result then holds the current embedding).
using Callback = std::function<bool(const IterationReport&)>;

struct TsneResult {
  std::size_t n = 0;
  int dims = 0;
  std::vector<float> embedding;  // (n, dims)
  double kl = 0.0;               // at the last iteration
  // KL of the uninformative map, every point in one place (q_ij = 1 / (n (n - 1))):
  // sum p log p + log(n (n - 1)) with this run's P; kl / kl_uniform rates the map.
  double kl_uniform = 0.0;
  bool kl_exact = true;
  int iterations = 0;             // iterations actually run
  bool stopped = false;           // stopped by the callback
  Method method = Method::exact;  // the repulsion method used
  double perplexity = 0.0;        // the perplexity used (after lowering)
  std::size_t neighbors = 0;      // k
  double early_exaggeration =
      0;  // the exaggeration used (early_exaggeration_for; 1 after a re-run)
  std::vector<std::string> warnings;
};

// The whole pipeline: prepare, PCA, kNN, P, init, optimise. Throws tokmap::Error for n < 2,
// all rows identical, bad options (ErrorKind::usage) or non-finite values.
TsneResult run_tsne(std::span<const float> data, std::size_t n, std::size_t d,
                    const TsneOptions& options, const Callback& callback = {});

// Method::automatic resolved for n points in `dims` dimensions.
Method choose_method(std::size_t n, int dims);

// ---------------------------------------------------------------------------------------------
// Kernels (outputs first). `threads` 0 = all cores.

// Input preparation. out: (n, d) prepared copy; centres columns when `center`, and for cosine
// scales rows to unit length. Returns false when all rows are identical.
bool prepare_input(std::span<float> out, std::span<const float> in, std::size_t n, std::size_t d,
                   bool center, neighbors::Metric metric);

// The top k principal axes of x (n, d) about its column means: out (k, d), by decreasing
// variance, each signed so that its largest-magnitude loading is positive (pca's rule).
void principal_axes(std::span<float> out, std::span<const float> x, std::size_t n, std::size_t d,
                    std::size_t k);

// Principal components: out (n, k) = projection of the column-centred `in` (n, d) onto its top k
// principal axes (eigen-decomposition of the covariance in double; sign fixed so that the
// largest-magnitude loading of each axis is positive). k <= d.
void pca(std::span<float> out, std::span<const float> in, std::size_t n, std::size_t d,
         std::size_t k);
// The share of the total variance of the column-centred `in` (n, d) that each column of
// `projected` (n, k), pca()'s output for `in`, carries: |Xc v_c|^2 / |Xc|_F^2, scikit-learn's
// explained_variance_ratio_ (the n - 1 normalisation cancels). All zeros when `in` has no
// variance.
std::vector<double> explained_variance_ratio(std::span<const float> projected,
                                             std::span<const float> in, std::size_t n,
                                             std::size_t d, std::size_t k);

// Conditional probabilities by binary search of beta = 1/(2 sigma^2) to the perplexity
// (scikit-learn's _binary_search_perplexity: at most 100 steps, entropy tolerance 1e-5, natural
// log). out: (n, k); sq_distances: (n, k) squared distances to the k neighbours.
void conditional_probabilities(std::span<float> out, std::span<const float> sq_distances,
                               std::size_t n, std::size_t k, double perplexity, int threads = 0);

// P = (C + C^T) / sum, from conditional probabilities C (n, k) on the kNN graph `indices` (n, k).
SparseP joint_probabilities(std::span<const float> conditional,
                            std::span<const std::int32_t> indices, std::size_t n, std::size_t k);

// Spectrum of P's graph Laplacian L = D - P (D = diag of P's row sums): its `count` smallest
// eigenvalues after the constant vector's 0 (lambda_2 ..), ascending. Lanczos above 200 points
// (Ritz values: upper bounds), a dense eigen-decomposition at or below (and in the _dense
// reference, O(n^3)). With enough > 0, Lanczos may stop early once the count-th value is known
// to be at most `enough` (the values returned are then upper bounds above that).
std::vector<double> laplacian_low_eigenvalues(const SparseP& p, int count, double enough = 0.0);
std::vector<double> laplacian_low_eigenvalues_dense(const SparseP& p, int count);

// The early exaggeration used for a `dims`-D map of P: `requested`, capped so that the map's
// `dims` leading Laplacian modes still expand while it is exaggerated (ex (n - 1) lambda <= 1/2
// for lambda = lambda_{dims+1}), never below 1. Without the cap, a nearly uniform P (a sentence
// or a paragraph at perplexity 30) collapses the map to a line or a point.
double early_exaggeration_for(const SparseP& p, int dims, double requested);

// Attractive part: out (n, dims) = exaggeration * sum_j p_ij g_ij (yi - yj).
void attractive_forces(std::span<float> out, const SparseP& p, std::span<const float> y, int dims,
                       double exaggeration, double dof, int threads = 0);

// Repulsive part, un-normalised: out (n, dims) = sum_j w_ij g_ij (yi - yj); returns Z.
double repulsive_exact(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                       double dof, int threads = 0);
// Both exact parts in one pass over all pairs, dof 1 only: att (n, dims) = the attractive part
// (as attractive_forces), rep (n, dims) = the un-normalised repulsion (as repulsive_exact);
// returns Z. For small maps, whose P is nearly dense (gradient() uses it up to 4,096 points).
// Sums in double up to kFusedDoubleMaxPoints points, above in float per block of 512 pairs.
inline constexpr std::size_t kFusedDoubleMaxPoints = 200;
double exact_forces_fused(std::span<float> att, std::span<float> rep, const SparseP& p,
                          std::span<const float> y, int dims, double exaggeration, int threads = 0);
double repulsive_barnes_hut(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                            double dof, double theta, int threads = 0);

struct FftParams {
  double boxes_per_unit = 1.0;
  int min_boxes = 20;
  int nodes_per_box = 3;
  int split_nodes_per_box = 0;  // nodes per box of the split grid's far part; 0: nodes_per_box
  // Kernel splitting for wide maps: K = K_far + (K - K_far), where K_far equals K beyond
  // near_radius and is a Taylor polynomial in r^2 (degree near_degree, matched at near_radius)
  // inside it. K_far is smooth on a scale of near_radius, so it goes on a grid of boxes
  // split_box wide; the compact difference is summed exactly over the pairs closer than
  // near_radius (cell lists). Considered once the fine grid (1 / boxes_per_unit) would need more
  // than split_min_boxes boxes per dimension, with near_radius and split_box scaled by 1 to 8 as
  // a cost model finds cheapest; near_radius <= 0 disables it.
  double near_radius = 0.0;
  int near_degree = 3;
  double split_box = 2.0;
  int split_min_boxes = 40;
  bool force_split = false;  // split with exactly near_radius (benchmarks and tests)
};
// Holds FFTW plans and buffers between iterations.
class FftWorkspace {
 public:
  FftWorkspace();
  ~FftWorkspace();
  FftWorkspace(const FftWorkspace&) = delete;
  FftWorkspace& operator=(const FftWorkspace&) = delete;
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};
double repulsive_fft(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                     double dof, const FftParams& params, FftWorkspace& workspace, int threads = 0);

// The exact near-field part of a split kernel (FftParams; 2 or 3 dims), as repulsive_fft sums
// it: out (n, dims) += sum_{j: |yi - yj| < near_radius} (wg - wg_far)(yi - yj); returns
// sum_i sum_{j: |yi - yj| < near_radius} (w - w_far), j = i included (w = the kernel, wg = w g,
// _far: their far parts of degree near_degree). Cell lists, sums in a fixed order per point.
double near_field_forces(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                         double dof, double near_radius, int near_degree, int threads = 0);
// Its reference: the same per-pair terms over all n^2 pairs, one thread, O(n^2).
double near_field_forces_naive(std::span<float> out, std::span<const float> y, std::size_t n,
                               int dims, double dof, double near_radius, int near_degree);

// The FFT parameters of `options` for maps of `dims` dimensions.
FftParams fft_params(const TsneOptions& options, int dims);

// Full gradient (see the convention above) with the chosen method; returns Z.
double gradient(std::span<float> out, const SparseP& p, std::span<const float> y, int dims,
                double exaggeration, double dof, Method method, const TsneOptions& options,
                FftWorkspace* workspace = nullptr);

// KL(P || Q). With z <= 0, Z is computed exactly (O(n^2)); otherwise the given Z is used (the
// estimate reported above exact_kl_max_n: exact sum over P's support, approximate Z).
double kl_divergence(const SparseP& p, std::span<const float> y, int dims, double dof,
                     double z = 0.0, int threads = 0);

}  // namespace tokmap::tsne
