// FFT-accelerated interpolation of the repulsive forces (FIt-SNE's scheme), in 2D and 3D.
//
// The embedding's bounding cube is cut into nb^D boxes with p equispaced interpolation nodes
// per box and dimension, so the nodes form a regular grid of M = nb * p points per dimension
// with spacing h. Each point's charges are spread onto the p^D nodes of its box with Lagrange
// weights, the node-to-node kernel sums are a D-dimensional Toeplitz convolution done by
// zero-padded FFTs (size 2M per dimension), and the node potentials are interpolated back.
// Two kernels are used: K2 = w g is convolved with the charges 1 and y, which gives
// sum_j w_ij g_ij (yi - yj) = yi * (K2 * 1)(yi) - (K2 * y)(yi) for any dof; K1 = w only enters
// Z = sum_ij w_ij = <c, K1 * c> (c = the spread charge 1), evaluated by Parseval in the
// frequency domain. Per iteration: D + 1 forward and D + 1 inverse FFTs.
//
// Once the map is wider than min_boxes boxes, the box width is fixed at 1 / boxes_per_unit
// (the grid grows instead), so the kernel and its FFT only change when the grid size does and
// are cached between iterations. Grid sizes are 2^a 3^b (FFTW_ESTIMATE plans are fast there).
//
// Determinism: each charge's spread, FFT and product is one task done by one thread in point
// order; plans are FFTW_ESTIMATE (the same algorithm every run); the gather is per point.
#include <fftw3.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "tsne/kernel.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::tsne {

namespace {

std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

bool smooth(int v) {
  for (int f : {2, 3})
    while (v % f == 0) v /= f;
  return v == 1;
}

}  // namespace

struct FftWorkspace::Impl {
  int dims = 0;
  int length = 0;  // padded length per dimension (2M)
  std::size_t real_size = 0, complex_size = 0;
  std::array<float*, 2> kernel_real{nullptr, nullptr};
  std::array<fftwf_complex*, 2> kernel_hat{nullptr, nullptr};
  std::vector<float*> in_real;            // charges: 1, y_1 .. y_D
  std::vector<fftwf_complex*> in_hat;
  std::vector<float*> out_real;           // potentials: K2*1, K2*y_1 .. K2*y_D
  std::vector<fftwf_complex*> out_hat;
  fftwf_plan forward = nullptr;
  fftwf_plan backward = nullptr;
  // 2-D: the transforms split into 1-D row and column passes, run in parallel by our own loop
  // (each 1-D transform is the same plan whichever thread runs it), skipping the zero-padded
  // rows on the way in and the unused rows on the way out.
  static constexpr int kColumnBlock = 8;
  fftwf_plan row_r2c = nullptr, row_c2r = nullptr;
  fftwf_plan col_fwd = nullptr, col_bwd = nullptr, col_fwd_rest = nullptr, col_bwd_rest = nullptr;
  // The kernel transforms in kernel_hat are valid for this node spacing and dof.
  bool kernel_valid = false;
  double kernel_h = 0.0, kernel_dof = 0.0;

  void release() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    for (auto* plan : {&forward, &backward, &row_r2c, &row_c2r, &col_fwd, &col_bwd, &col_fwd_rest,
                       &col_bwd_rest}) {
      if (*plan) fftwf_destroy_plan(*plan);
      *plan = nullptr;
    }
    for (auto*& p : kernel_real) fftwf_free(p), p = nullptr;
    for (auto*& p : kernel_hat) fftwf_free(p), p = nullptr;
    for (auto* p : in_real) fftwf_free(p);
    for (auto* p : in_hat) fftwf_free(p);
    for (auto* p : out_real) fftwf_free(p);
    for (auto* p : out_hat) fftwf_free(p);
    in_real.clear();
    in_hat.clear();
    out_real.clear();
    out_hat.clear();
    length = dims = 0;
    kernel_valid = false;
  }

  void ensure(int d, int len) {
    if (d == dims && len == length) return;
    release();
    dims = d;
    length = len;
    real_size = 1;
    for (int a = 0; a < d; ++a) real_size *= static_cast<std::size_t>(len);
    complex_size = real_size / static_cast<std::size_t>(len) * static_cast<std::size_t>(len / 2 + 1);
    const auto alloc_real = [&] {
      auto* p = fftwf_alloc_real(real_size);
      if (!p) throw std::bad_alloc();
      return p;
    };
    const auto alloc_complex = [&] {
      auto* p = fftwf_alloc_complex(complex_size);
      if (!p) throw std::bad_alloc();
      return p;
    };
    for (int k = 0; k < 2; ++k) {
      kernel_real[k] = alloc_real();
      kernel_hat[k] = alloc_complex();
    }
    for (int c = 0; c < d + 1; ++c) {
      in_real.push_back(alloc_real());
      in_hat.push_back(alloc_complex());
    }
    for (int c = 0; c < d + 1; ++c) {
      out_real.push_back(alloc_real());
      out_hat.push_back(alloc_complex());
    }
    std::array<int, 3> shape{len, len, len};
    std::lock_guard<std::mutex> lock(planner_mutex());
    forward = fftwf_plan_dft_r2c(d, shape.data(), kernel_real[0], kernel_hat[0], FFTW_ESTIMATE);
    backward = fftwf_plan_dft_c2r(d, shape.data(), out_hat[0], out_real[0], FFTW_ESTIMATE);
    if (d == 2) {
      const int h = len / 2 + 1;
      const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
      row_r2c = fftwf_plan_many_dft_r2c(1, &len, 1, kernel_real[0], nullptr, 1, len, kernel_hat[0],
                                        nullptr, 1, h, flags);
      row_c2r = fftwf_plan_many_dft_c2r(1, &len, 1, out_hat[0], nullptr, 1, h, out_real[0],
                                        nullptr, 1, len, flags);
      const int rest = h % kColumnBlock;
      const int block = kColumnBlock;
      col_fwd = fftwf_plan_many_dft(1, &len, block, kernel_hat[0], nullptr, h, 1, kernel_hat[0],
                                    nullptr, h, 1, FFTW_FORWARD, flags);
      col_bwd = fftwf_plan_many_dft(1, &len, block, kernel_hat[0], nullptr, h, 1, kernel_hat[0],
                                    nullptr, h, 1, FFTW_BACKWARD, flags);
      if (rest > 0) {
        col_fwd_rest = fftwf_plan_many_dft(1, &len, rest, kernel_hat[0], nullptr, h, 1,
                                           kernel_hat[0], nullptr, h, 1, FFTW_FORWARD, flags);
        col_bwd_rest = fftwf_plan_many_dft(1, &len, rest, kernel_hat[0], nullptr, h, 1,
                                           kernel_hat[0], nullptr, h, 1, FFTW_BACKWARD, flags);
      }
      if (!row_r2c || !row_c2r || !col_fwd || !col_bwd || (rest > 0 && (!col_fwd_rest || !col_bwd_rest)))
        throw Error("FFT: could not plan 1-D transforms of size " + std::to_string(len));
    }
    if (!forward || !backward) throw Error("FFT: could not plan a transform of size " +
                                           std::to_string(len) + "^" + std::to_string(d));
  }
};

FftWorkspace::FftWorkspace() : impl_(std::make_unique<Impl>()) {}
FftWorkspace::~FftWorkspace() { impl_->release(); }

namespace {

template <int D>
double repulsive_fft_d(std::span<float> out, std::span<const float> y, std::size_t n, double dof,
                       const FftParams& params, FftWorkspace::Impl& ws, int threads) {
  const int p = std::max(params.nodes_per_box, 1);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t e = 0; e < n * D; ++e) {
    lo = std::min<double>(lo, y[e]);
    hi = std::max<double>(hi, y[e]);
  }
  double range = hi - lo;
  if (!(range > 1e-6)) {
    const double mid = 0.5 * (lo + hi);
    lo = mid - 5e-7;
    range = 1e-6;
  }
  // Small maps: min_boxes boxes over the range. Wider maps: boxes of fixed width
  // 1 / boxes_per_unit, so the kernel (which depends on the node spacing only) is reused.
  const double fixed_box = 1.0 / params.boxes_per_unit;
  int nb = 0;
  double box = 0.0;
  if (range <= params.min_boxes * fixed_box) {
    nb = std::max(params.min_boxes, 1);
    while (!smooth(nb)) ++nb;
    box = range / nb;
  } else {
    nb = static_cast<int>(std::ceil(range / fixed_box));
    while (!smooth(nb)) ++nb;
    box = fixed_box;
  }
  // Cap the grid: in 3D the fixed box width would need (2 * 3 * range)^3 FFT points once the map
  // is a hundred units wide (minutes per iteration). Beyond the cap the boxes widen with the
  // map instead, trading interpolation accuracy for a bounded cost per iteration.
  const int max_boxes = D == 3 ? 40 : 640;
  if (nb > max_boxes) {
    nb = max_boxes;
    while (!smooth(nb)) --nb;
    box = range / nb;
  }
  const int m = nb * p;
  const int len = 2 * m;
  constexpr int kIn = D + 1;   // charges 1, y_1 .. y_D
  constexpr int kOut = D + 1;  // potentials K2*1, K2*y_1 .. K2*y_D
  ws.ensure(D, len);
  const double h = box / p;
  const bool kernel_ready = ws.kernel_valid && ws.kernel_h == h && ws.kernel_dof == dof;

  std::array<std::size_t, D> stride;
  stride[D - 1] = 1;
  for (int a = D - 2; a >= 0; --a) stride[a] = stride[a + 1] * static_cast<std::size_t>(len);

  // Lagrange nodes in the unit box and their denominators.
  std::vector<double> node(p), denom(p);
  for (int k = 0; k < p; ++k) node[k] = (k + 0.5) / p;
  for (int k = 0; k < p; ++k) {
    double dd = 1.0;
    for (int j = 0; j < p; ++j)
      if (j != k) dd *= node[k] - node[j];
    denom[k] = dd;
  }

  // Per point: the grid index of its box's first node and the weights per dimension.
  std::vector<std::size_t> base(n);
  std::vector<float> weight(n * D * static_cast<std::size_t>(p));
#pragma omp parallel for num_threads(threads) schedule(static, 1024)
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t b_index = 0;
    for (int a = 0; a < D; ++a) {
      const double pos = (y[i * D + a] - lo) / box;
      int b = static_cast<int>(pos);
      b = std::clamp(b, 0, nb - 1);
      const double u = pos - b;
      b_index += static_cast<std::size_t>(b * p) * stride[a];
      for (int k = 0; k < p; ++k) {
        double num = 1.0;
        for (int j = 0; j < p; ++j)
          if (j != k) num *= u - node[j];
        weight[(i * D + a) * p + k] = static_cast<float>(num / denom[k]);
      }
    }
    base[i] = b_index;
  }
  // Offsets of the p^D nodes of a box relative to its first node, with their per-dim digits.
  std::size_t box_nodes = 1;
  for (int a = 0; a < D; ++a) box_nodes *= static_cast<std::size_t>(p);
  std::vector<std::size_t> node_offset(box_nodes);
  std::vector<std::array<int, D>> node_digit(box_nodes);
  for (std::size_t q = 0; q < box_nodes; ++q) {
    std::size_t rest = q, off = 0;
    for (int a = D - 1; a >= 0; --a) {
      const int digit = static_cast<int>(rest % p);
      rest /= p;
      node_digit[q][a] = digit;
      off += static_cast<std::size_t>(digit) * stride[a];
    }
    node_offset[q] = off;
  }

  const Kernel kernel(dof);
  const double center = 0.5 * (lo + hi);
  const std::size_t real_size = ws.real_size;
  // Phase 1: kernel tables and their FFTs (tasks 0, 1; only when the spacing changed), charge
  // spreading and FFTs (tasks 2..).
  const int first_task = kernel_ready ? 2 : 0;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int task = first_task; task < 2 + kIn; ++task) {
    if (task < 2) {
      float* kr = ws.kernel_real[task];
      // Squared signed offsets per index of one dimension (index m has no partner: value 0).
      std::vector<double> s2(static_cast<std::size_t>(len));
      for (int o = 0; o < len; ++o) {
        const double s = o < m ? o : o - len;
        s2[static_cast<std::size_t>(o)] = o == m ? -1.0 : s * s * h * h;
      }
      const std::size_t row = static_cast<std::size_t>(len);
      const std::size_t rows = real_size / row;
      for (std::size_t r = 0; r < rows; ++r) {
        // r enumerates the leading D-1 indices.
        double r2 = 0.0;
        bool zero = false;
        std::size_t rest = r;
        for (int a = 0; a < D - 1; ++a) {
          const double v = s2[rest % row];
          rest /= row;
          if (v < 0) zero = true;
          r2 += v;
        }
        float* out_row = kr + r * row;
        for (std::size_t o = 0; o < row; ++o) {
          if (zero || s2[o] < 0) {
            out_row[o] = 0.0f;
            continue;
          }
          double w, wg;
          kernel.eval(r2 + s2[o], w, wg);
          out_row[o] = static_cast<float>(task == 0 ? w : wg);
        }
      }
      if constexpr (D != 2) fftwf_execute_dft_r2c(ws.forward, kr, ws.kernel_hat[task]);
    } else {
      const int c = task - 2;
      float* grid = ws.in_real[c];
      std::fill(grid, grid + real_size, 0.0f);
      for (std::size_t i = 0; i < n; ++i) {
        const float charge = c == 0 ? 1.0f : static_cast<float>(y[i * D + (c - 1)] - center);
        const float* wi = weight.data() + i * D * p;
        float* g = grid + base[i];
        for (std::size_t q = 0; q < box_nodes; ++q) {
          float wq = charge;
          for (int a = 0; a < D; ++a) wq *= wi[a * p + node_digit[q][a]];
          g[node_offset[q]] += wq;
        }
      }
      if constexpr (D != 2) fftwf_execute_dft_r2c(ws.forward, grid, ws.in_hat[c]);
    }
  }
  const int hcols = len / 2 + 1;
  const int column_blocks = (hcols + FftWorkspace::Impl::kColumnBlock - 1) / FftWorkspace::Impl::kColumnBlock;
  // One 1-D column pass over `count` arrays, in place.
  const auto column_pass = [&](fftwf_complex* const* arrays, int count, bool forward_dir) {
    const int items = count * column_blocks;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int item = 0; item < items; ++item) {
      const int a = item / column_blocks, b = item % column_blocks;
      const int first = b * FftWorkspace::Impl::kColumnBlock;
      const bool rest = first + FftWorkspace::Impl::kColumnBlock > hcols;
      fftwf_plan plan = forward_dir ? (rest ? ws.col_fwd_rest : ws.col_fwd)
                                    : (rest ? ws.col_bwd_rest : ws.col_bwd);
      fftwf_complex* at = arrays[a] + first;
      fftwf_execute_dft(plan, at, at);
    }
  };
  if constexpr (D == 2) {
    // Forward row pass: every row of the kernel tables, the first m rows of the charges (the
    // rest are zero padding: their transforms are zero).
    std::vector<float*> re;
    std::vector<fftwf_complex*> co;
    std::vector<int> nonzero_rows;
    if (!kernel_ready)
      for (int k = 0; k < 2; ++k) {
        re.push_back(ws.kernel_real[k]);
        co.push_back(ws.kernel_hat[k]);
        nonzero_rows.push_back(len);
      }
    for (int c = 0; c < kIn; ++c) {
      re.push_back(ws.in_real[c]);
      co.push_back(ws.in_hat[c]);
      nonzero_rows.push_back(m);
    }
    const int arrays = static_cast<int>(re.size());
    const int items = arrays * len;
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (int item = 0; item < items; ++item) {
      const int a = item / len, r = item % len;
      fftwf_complex* out_row = co[a] + static_cast<std::size_t>(r) * hcols;
      if (r < nonzero_rows[a])
        fftwf_execute_dft_r2c(ws.row_r2c, re[a] + static_cast<std::size_t>(r) * len, out_row);
      else
        std::fill(&out_row[0][0], &out_row[0][0] + 2 * hcols, 0.0f);
    }
    column_pass(co.data(), arrays, true);
  }
  ws.kernel_valid = true;
  ws.kernel_h = h;
  ws.kernel_dof = dof;
  // Phase 2: products with the kernel transforms and inverse FFTs, and Parseval's sum for Z:
  // sum_q c(q) (K1 * c)(q) = L^-D sum_k |c^(k)|^2 K1^(k) (K1^ is real: the kernel table is
  // even), over the half spectrum with weight 2 for the mirrored columns (per row, summed in
  // row order).
  const std::size_t complex_size = ws.complex_size;
  const std::size_t half = static_cast<std::size_t>(len / 2 + 1);
  const std::size_t spectrum_rows = complex_size / half;
  std::vector<double> parseval_row(spectrum_rows);
  const auto multiply_rows = [&](int c, std::size_t row) {
    const fftwf_complex* in = ws.in_hat[c] + row * half;
    const fftwf_complex* k = ws.kernel_hat[1] + row * half;
    fftwf_complex* out = ws.out_hat[c] + row * half;
    for (std::size_t e = 0; e < half; ++e) {
      out[e][0] = in[e][0] * k[e][0] - in[e][1] * k[e][1];
      out[e][1] = in[e][0] * k[e][1] + in[e][1] * k[e][0];
    }
  };
  const auto parseval_of_row = [&](std::size_t row) {
    const fftwf_complex* ch = ws.in_hat[0] + row * half;
    const fftwf_complex* k1 = ws.kernel_hat[0] + row * half;
    double sum = 0.0;
    for (std::size_t col = 0; col < half; ++col) {
      const double weight = (col == 0 || col == half - 1) ? 1.0 : 2.0;
      sum += weight * (static_cast<double>(ch[col][0]) * ch[col][0] +
                       static_cast<double>(ch[col][1]) * ch[col][1]) * k1[col][0];
    }
    parseval_row[row] = sum;
  };
  if constexpr (D == 2) {
    const auto rows_total = static_cast<std::int64_t>(spectrum_rows);
    const std::int64_t items = (kOut + 1) * rows_total;
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (std::int64_t item = 0; item < items; ++item) {
      const auto c = static_cast<int>(item / rows_total);
      const auto row = static_cast<std::size_t>(item % rows_total);
      if (c == kOut) parseval_of_row(row);
      else multiply_rows(c, row);
    }
    std::vector<fftwf_complex*> outs(ws.out_hat.begin(), ws.out_hat.end());
    column_pass(outs.data(), kOut, false);
    const int row_items = kOut * m;
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (int item = 0; item < row_items; ++item) {
      const int c = item / m, r = item % m;
      fftwf_execute_dft_c2r(ws.row_c2r, ws.out_hat[c] + static_cast<std::size_t>(r) * half,
                            ws.out_real[c] + static_cast<std::size_t>(r) * len);
    }
  } else {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int c = 0; c <= kOut; ++c) {
      if (c == kOut) {
        for (std::size_t row = 0; row < spectrum_rows; ++row) parseval_of_row(row);
        continue;
      }
      for (std::size_t row = 0; row < spectrum_rows; ++row) multiply_rows(c, row);
      fftwf_execute_dft_c2r(ws.backward, ws.out_hat[c], ws.out_real[c]);
    }
  }
  double parseval = 0.0;
  for (double v : parseval_row) parseval += v;
  // Gather: interpolate the node potentials back to the points.
  const double scale = 1.0 / static_cast<double>(real_size);
#pragma omp parallel for num_threads(threads) schedule(static, 1024)
  for (std::size_t i = 0; i < n; ++i) {
    std::array<double, kOut> phi{};
    const float* wi = weight.data() + i * D * p;
    for (std::size_t q = 0; q < box_nodes; ++q) {
      double wq = 1.0;
      for (int a = 0; a < D; ++a) wq *= wi[a * p + node_digit[q][a]];
      const std::size_t at = base[i] + node_offset[q];
      for (int c = 0; c < kOut; ++c) phi[c] += wq * ws.out_real[c][at];
    }
    for (auto& v : phi) v *= scale;
    for (int a = 0; a < D; ++a)
      out[i * D + a] =
          static_cast<float>((y[i * D + a] - center) * phi[0] - phi[1 + a]);
  }
  // Minus the self terms w(0) = 1.
  return parseval * scale - static_cast<double>(n);
}

}  // namespace

double repulsive_fft(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                     double dof, const FftParams& params, FftWorkspace& workspace, int threads) {
  const int t = n < 4096 ? 1 : (threads > 0 ? threads : omp_get_max_threads());
  switch (dims) {
    case 2: return repulsive_fft_d<2>(out, y, n, dof, params, workspace.impl(), t);
    case 3: return repulsive_fft_d<3>(out, y, n, dof, params, workspace.impl(), t);
    default:
      throw Error("FFT repulsion supports 2 or 3 dimensions, got " + std::to_string(dims),
                  ErrorKind::usage);
  }
}

}  // namespace tokmap::tsne
