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
// Wide maps split the kernel (FftParams): the grid carries a far part that is smooth on the
// scale of a near radius r_c (the kernel itself beyond r_c, its Taylor polynomial in r^2 inside),
// so boxes r_c wide suffice, and the compact remainder is summed exactly over the pairs closer
// than r_c with cell lists. At N = 10,000 (2D map 155 units wide) this takes one evaluation from
// 45 ms to 5.6 ms on one core and the force error from 3.5% to 0.7% (bench/tsne/bench_repulsion).
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
  std::vector<float*> in_real;  // charges: 1, y_1 .. y_D
  std::vector<fftwf_complex*> in_hat;
  std::vector<float*> out_real;  // potentials: K2*1, K2*y_1 .. K2*y_D
  std::vector<fftwf_complex*> out_hat;
  // 2-D: the transforms split into 1-D row and column passes, run in parallel by our own loop
  // (each 1-D transform is the same plan whichever thread runs it), skipping the zero-padded
  // rows on the way in and the unused rows on the way out.
  // Adjacent columns per 1-D call: 16 measured 6-10% faster than 8 on 3-D grids of 48^3 to
  // 72^3 (FFTW copies the strided columns less often), the same on 2-D ones.
  static constexpr int kColumnBlock = 16;
  fftwf_plan row_r2c = nullptr, row_c2r = nullptr;
  fftwf_plan col_fwd = nullptr, col_bwd = nullptr, col_fwd_rest = nullptr, col_bwd_rest = nullptr;
  // 3-D: the same row and (per plane) column passes, then a pass along the first dimension.
  // Charges fill only the first m indices of each dimension and only the first m of the
  // potentials are read, so the forward rows and columns of the padding and the inverse ones
  // that are never read are skipped: about 60% of the work of the full transforms, and no
  // transposition copies (FFTW's 3-D plans spent 20% of their time in them).
  fftwf_plan dep_fwd = nullptr, dep_bwd = nullptr, dep_fwd_rest = nullptr, dep_bwd_rest = nullptr;
  // The kernel transforms in kernel_hat are valid for this node spacing and dof.
  bool kernel_valid = false;
  double kernel_h = 0.0, kernel_dof = 0.0, kernel_t_c = 0.0;
  // The split chosen by the cost model for a fine grid of choice_nb boxes and choice_n points
  // (choice_radius: the near radius; 0: the fine grid alone; negative: exact sums).
  int choice_nb = -1;
  std::size_t choice_n = 0;
  double choice_radius = 0.0, choice_params = 0.0;

  void release() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    for (auto* plan : {&row_r2c, &row_c2r, &col_fwd, &col_bwd, &col_fwd_rest, &col_bwd_rest,
                       &dep_fwd, &dep_bwd, &dep_fwd_rest, &dep_bwd_rest}) {
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
    complex_size =
        real_size / static_cast<std::size_t>(len) * static_cast<std::size_t>(len / 2 + 1);
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
    std::lock_guard<std::mutex> lock(planner_mutex());
    {
      const int h = len / 2 + 1;
      const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
      row_r2c = fftwf_plan_many_dft_r2c(1, &len, 1, kernel_real[0], nullptr, 1, len, kernel_hat[0],
                                        nullptr, 1, h, flags);
      row_c2r = fftwf_plan_many_dft_c2r(1, &len, 1, out_hat[0], nullptr, 1, h, out_real[0], nullptr,
                                        1, len, flags);
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
      if (d == 3) {
        // Along the first dimension: columns `plane` apart, kColumnBlock adjacent ones per call.
        const int plane = len * h;
        const int depth_rest = plane % kColumnBlock;
        dep_fwd = fftwf_plan_many_dft(1, &len, block, kernel_hat[0], nullptr, plane, 1,
                                      kernel_hat[0], nullptr, plane, 1, FFTW_FORWARD, flags);
        dep_bwd = fftwf_plan_many_dft(1, &len, block, kernel_hat[0], nullptr, plane, 1,
                                      kernel_hat[0], nullptr, plane, 1, FFTW_BACKWARD, flags);
        if (depth_rest > 0) {
          dep_fwd_rest = fftwf_plan_many_dft(1, &len, depth_rest, kernel_hat[0], nullptr, plane, 1,
                                             kernel_hat[0], nullptr, plane, 1, FFTW_FORWARD, flags);
          dep_bwd_rest =
              fftwf_plan_many_dft(1, &len, depth_rest, kernel_hat[0], nullptr, plane, 1,
                                  kernel_hat[0], nullptr, plane, 1, FFTW_BACKWARD, flags);
        }
        if (!dep_fwd || !dep_bwd || (depth_rest > 0 && (!dep_fwd_rest || !dep_bwd_rest)))
          throw Error("FFT: could not plan 1-D transforms of size " + std::to_string(len));
      }
      if (!row_r2c || !row_c2r || !col_fwd || !col_bwd ||
          (rest > 0 && (!col_fwd_rest || !col_bwd_rest)))
        throw Error("FFT: could not plan 1-D transforms of size " + std::to_string(len));
    }
  }
};

FftWorkspace::FftWorkspace() : impl_(std::make_unique<Impl>()) {}
FftWorkspace::~FftWorkspace() { impl_->release(); }

namespace {

// The kernel pair (w, wg) of Kernel, or its far part for kernel splitting: below t_c = r_c^2
// each is replaced by its Taylor polynomial in t = r^2 of the given degree around t_c, which
// joins the kernel with `degree` continuous derivatives and is smooth on the scale of r_c.
// f(t) = (1 + t/a)^-e has f^(k)(t) = prod_{i<k} (-e - i) a^-k (1 + t/a)^(-e-k); w has e = a,
// wg has e = a + 1.
struct SplitKernel {
  SplitKernel(double dof, double near_radius, int degree)
      : kernel(dof),
        t_c(near_radius > 0 ? near_radius * near_radius : 0.0),
        degree(std::clamp(degree, 0, kMaxDegree)) {
    if (t_c <= 0) return;
    for (int which = 0; which < 2; ++which) {
      const double e = which == 0 ? dof : dof + 1.0;
      const double base = 1.0 + t_c / dof;
      double factor = 1.0;  // prod_{i<k} (-e - i) / (k! a^k)
      for (int k = 0; k <= this->degree; ++k) {
        coef[which][k] = factor * std::pow(base, -e - k);
        factor *= (-e - k) / ((k + 1) * dof);
      }
    }
  }
  // Far part at t.
  void far(double t, double& w, double& wg) const {
    if (t >= t_c) {
      kernel.eval(t, w, wg);
      return;
    }
    const double x = t - t_c;
    double pw = coef[0][degree], pwg = coef[1][degree];
    for (int k = degree - 1; k >= 0; --k) {
      pw = pw * x + coef[0][k];
      pwg = pwg * x + coef[1][k];
    }
    w = pw;
    wg = pwg;
  }
  static constexpr int kMaxDegree = 7;
  Kernel kernel;
  double t_c;
  int degree;
  std::array<std::array<double, kMaxDegree + 1>, 2> coef{};
};

// The near field's bucketing. Columns over the leading D - 1 dimensions are at least
// r_c / kNearSpan wide (and no more than about 2n cells of that width fit the map), and each
// column is cut along the last dimension into slabs kSlabsPerCell times thinner, numbered
// column by column, so a column's slabs are one contiguous run of sorted points. A point visits
// the columns within kNearSpan of its own that come closer than r_c and, in each, only the slabs
// within sqrt(r_c^2 - d^2) of it along the last axis (d: the column's distance). In 3D that is
// about 12.5 r_c^3 (plus the rounding to slabs) per point instead of the 27 r_c^3 of the
// 3 x 3 x 3 cells it visited before (the ball itself is 4.2 r_c^3); in 2D 5.1 r_c^2 instead of
// 9 r_c^2. Measured on the final 10,000-point 3D map at r_c 24 (bench_repulsion `near`): span 2
// (5 x 5 columns r_c / 2 wide) 4.2 ms against 2.9 ms (more, shorter runs); 8 slabs per cell the
// same as 4.
constexpr int kNearSpan = 1;
constexpr int kSlabsPerCell = 4;

template <int D>
struct NearGrid {
  NearGrid(std::span<const float> y, std::size_t n, double lo_, double range, double r_c)
      : lo(lo_) {
    const double min_cell = range / std::pow(2.0 * static_cast<double>(n), 1.0 / D);
    cell = std::max(r_c / kNearSpan, min_cell);
    slab = cell / kSlabsPerCell;
    inv_cell = 1.0 / cell;
    inv_slab = 1.0 / slab;
    // Rounding: the float loop admits pairs with a computed t < t_c, a few ulps from the exact
    // distance; a reach 1e-5 wider visits all of them (the rest fail the loop's t < t_c test).
    reach2 = r_c * r_c * (1.0 + 1e-5);
    nc = static_cast<int>(range * inv_cell) + 1;
    ns = static_cast<int>(range * inv_slab) + 1;
    std::size_t columns = 1;
    for (int a = 0; a < D - 1; ++a) columns *= static_cast<std::size_t>(nc);
    slab_of.resize(n);
    start.assign(columns * static_cast<std::size_t>(ns) + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t c = 0;
      for (int a = 0; a < D - 1; ++a)
        c = c * static_cast<std::size_t>(nc) +
            static_cast<std::size_t>(index(y[i * D + a], inv_cell, nc));
      c = c * static_cast<std::size_t>(ns) +
          static_cast<std::size_t>(index(y[i * D + D - 1], inv_slab, ns));
      slab_of[i] = static_cast<std::uint32_t>(c);
      ++start[c + 1];
    }
    for (std::size_t c = 0; c + 1 < start.size(); ++c) start[c + 1] += start[c];
  }
  // floor((v - lo) * inv), clamped to [0, count - 1].
  int index(double v, double inv, int count) const {
    const double k = std::floor((v - lo) * inv);
    return static_cast<int>(std::clamp(k, 0.0, static_cast<double>(count - 1)));
  }
  // Calls run(q0, q1) for each run of sorted positions that may hold points closer than r_c to
  // yi, a point of slab `home`; in a fixed order (columns row-major by offset).
  template <class Run>
  void for_each_run(const std::array<float, D>& yi, std::uint32_t home, Run&& run) const {
    std::array<int, D> at{};  // the home column's indices (the last entry unused)
    std::size_t c = home / static_cast<std::uint32_t>(ns);
    for (int a = D - 2; a >= 0; --a) {
      at[a] = static_cast<int>(c % static_cast<std::size_t>(nc));
      c /= static_cast<std::size_t>(nc);
    }
    // gap2[a][o + span]: squared distance from yi to the nearest side of the column at offset
    // o along leading dimension a; infinite outside the grid.
    constexpr int kWidth = 2 * kNearSpan + 1;
    std::array<std::array<double, kWidth>, D> gap2{};
    for (int a = 0; a < D - 1; ++a)
      for (int o = -kNearSpan; o <= kNearSpan; ++o) {
        const int k = at[a] + o;
        double g = 0.0;
        if (k < 0 || k >= nc)
          g = std::numeric_limits<double>::infinity();
        else if (o < 0)
          g = yi[a] - (lo + (k + 1) * cell);
        else if (o > 0)
          g = lo + k * cell - yi[a];
        gap2[a][o + kNearSpan] = g > 0 ? g * g : 0.0;
      }
    const double z = yi[D - 1];
    std::array<int, D> off;
    off.fill(0);
    while (true) {
      double d2 = 0.0;
      std::size_t column = 0;
      for (int a = 0; a < D - 1; ++a) {
        d2 += gap2[a][off[a]];
        column = column * static_cast<std::size_t>(nc) +
                 static_cast<std::size_t>(std::max(at[a] + off[a] - kNearSpan, 0));
      }
      if (d2 < reach2) {
        const double w = std::sqrt(reach2 - d2);
        const std::size_t first = column * static_cast<std::size_t>(ns);
        run(start[first + static_cast<std::size_t>(index(z - w, inv_slab, ns))],
            start[first + static_cast<std::size_t>(index(z + w, inv_slab, ns)) + 1]);
      }
      int a = D - 2;
      while (a >= 0 && off[a] == kWidth - 1) off[a--] = 0;
      if (a < 0) break;
      ++off[a];
    }
  }
  double lo, cell = 0.0, slab = 0.0, inv_cell = 0.0, inv_slab = 0.0, reach2 = 0.0;
  int nc = 1;                          // columns per leading dimension
  int ns = 1;                          // slabs per column
  std::vector<std::uint32_t> slab_of;  // (n) slab of each point (column * ns + slab)
  std::vector<std::uint32_t> start;    // (columns * ns + 1) first sorted position of each slab
};

// The near-field difference K - K_far for the standard kernel (dof 1) with a far part of
// degree <= 1 in t: w_far = w0 + w1 (t - t_c), wg_far = g0 + g1 (t - t_c).
struct LinearFar {
  float t_c, w0, w1, g0, g1;
};
// Lane accumulators of one point's near-field sums: lane l holds the terms of the sorted
// positions q with (q - q0) % kNearLanes == l of each run, so the order is fixed whatever the
// thread count or instruction set.
constexpr int kNearLanes = 16;
template <int D>
struct NearLanes {
  alignas(64) float z[kNearLanes] = {};
  alignas(64) float f[D][kNearLanes] = {};
};
// Adds the terms of the sorted points q0..q1 (coordinates per dimension in coord, readable
// kNearLanes - 1 entries past q1) for the point yi to acc. A free function over plain pointers
// whose fixed-width, masked inner loop vectorises in 2D and 3D: runs are short (10 to 100
// points), and the former loop with a reduction per run spent about 50 ns a run in its
// prologue, remainder and horizontal sums.
template <int D>
void near_run(NearLanes<D>& acc, const std::array<const float*, D>& coord, std::uint32_t q0,
              std::uint32_t q1, const std::array<float, D>& yi, const LinearFar& k) {
  const float* __restrict c0 = coord[0];
  const float* __restrict c1 = coord[1];
  const float* __restrict c2 = coord[D - 1];
  const float y0 = yi[0], y1 = yi[1], y2 = yi[D - 1];
  const float tc = k.t_c, a0 = k.w0, a1 = k.w1, b0 = k.g0, b1 = k.g1;
  float* __restrict az = acc.z;
  float* __restrict af0 = acc.f[0];
  float* __restrict af1 = acc.f[1];
  float* __restrict af2 = acc.f[D - 1];
  for (std::size_t base = q0; base < q1; base += kNearLanes) {
    const int left = static_cast<int>(q1 - base);
    const float* __restrict p0 = c0 + base;
    const float* __restrict p1 = c1 + base;
    const float* __restrict p2 = c2 + base;
#pragma omp simd
    for (int l = 0; l < kNearLanes; ++l) {
      const float d0 = y0 - p0[l], d1 = y1 - p1[l];
      const float d2 = D == 3 ? y2 - p2[l] : 0.0f;
      const float t = d0 * d0 + d1 * d1 + d2 * d2;
      const float x = t - tc;
      const float g = 1.0f / (1.0f + t);
      // A 0/1 factor rather than `near ? term : 0`: adding +0 may turn a -0 sum into +0, so the
      // select could not become a masked add (gcc emitted adds and blends per accumulator).
      const float near = t < tc && l < left ? 1.0f : 0.0f;
      az[l] += near * (g - (a0 + a1 * x));
      const float dwg = near * (g * g - (b0 + b1 * x));
      af0[l] += dwg * d0;
      af1[l] += dwg * d1;
      if constexpr (D == 3) af2[l] += dwg * d2;
    }
  }
}

template <int D>
double near_field(std::span<float> out, std::span<const float> y, std::size_t n, double lo,
                  double range, const SplitKernel& sk, int threads) {
  const NearGrid<D> grid(y, n, lo, range, std::sqrt(sk.t_c));
  std::vector<std::uint32_t> order(n);
  // coord[a][s]: dimension a of the s-th sorted point, padded for near_run's last block.
  std::array<std::vector<float>, D> coord;
  for (auto& v : coord) v.assign(n + kNearLanes, 0.0f);
  std::array<const float*, D> columns;
  for (int a = 0; a < D; ++a) columns[a] = coord[a].data();
  {
    std::vector<std::uint32_t> fill(grid.start.begin(), grid.start.end() - 1);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = fill[grid.slab_of[i]]++;
      order[at] = static_cast<std::uint32_t>(i);
      for (int a = 0; a < D; ++a) coord[a][at] = y[i * D + a];
    }
  }
  const bool standard = sk.kernel.standard;
  // Far parts of degree <= 1 in the float loop: w_far = c0 + c1 (t - t_c), likewise wg.
  const LinearFar far{static_cast<float>(sk.t_c), static_cast<float>(sk.coef[0][0]),
                      sk.degree >= 1 ? static_cast<float>(sk.coef[0][1]) : 0.0f,
                      static_cast<float>(sk.coef[1][0]),
                      sk.degree >= 1 ? static_cast<float>(sk.coef[1][1]) : 0.0f};
  const bool fast = standard && sk.degree <= 1;
  std::vector<double> z_of(n, 0.0);
#pragma omp parallel for num_threads(threads) schedule(static, 256)
  for (std::size_t s = 0; s < n; ++s) {
    const std::size_t i = order[s];
    std::array<float, D> yi;
    for (int a = 0; a < D; ++a) yi[a] = coord[a][s];
    std::array<double, D> force{};
    double z = 0.0;
    if (fast) {
      NearLanes<D> acc;
      grid.for_each_run(yi, grid.slab_of[i], [&](std::uint32_t q0, std::uint32_t q1) {
        near_run<D>(acc, columns, q0, q1, yi, far);
      });
      for (int l = 0; l < kNearLanes; ++l) {
        z += acc.z[l];
        for (int a = 0; a < D; ++a) force[a] += acc.f[a][l];
      }
    } else {
      grid.for_each_run(yi, grid.slab_of[i], [&](std::uint32_t q0, std::uint32_t q1) {
        for (std::uint32_t q = q0; q < q1; ++q) {
          std::array<double, D> diff;
          double t = 0.0;
          for (int a = 0; a < D; ++a) {
            diff[a] = static_cast<double>(yi[a]) - coord[a][q];
            t += diff[a] * diff[a];
          }
          if (t >= sk.t_c) continue;
          double w, wg, w_far, wg_far;
          sk.kernel.eval(t, w, wg);
          sk.far(t, w_far, wg_far);
          z += w - w_far;
          for (int a = 0; a < D; ++a) force[a] += (wg - wg_far) * diff[a];
        }
      });
    }
    for (int a = 0; a < D; ++a) out[i * D + a] += static_cast<float>(force[a]);
    z_of[i] = z;
  }
  double z = 0.0;
  for (double v : z_of) z += v;
  return z;
}

// Candidate pairs the near-field pass would visit, estimated from every kSample-th point (the
// cost model evaluates it for several radii each time the grid size changes).
template <int D>
double near_candidates(std::span<const float> y, std::size_t n, double lo, double range,
                       double r_c) {
  constexpr std::size_t kSample = 8;
  const NearGrid<D> grid(y, n, lo, range, r_c);
  double total = 0.0;
  for (std::size_t i = 0; i < n; i += kSample) {
    std::array<float, D> yi;
    for (int a = 0; a < D; ++a) yi[a] = y[i * D + a];
    grid.for_each_run(yi, grid.slab_of[i],
                      [&](std::uint32_t q0, std::uint32_t q1) { total += q1 - q0; });
  }
  return total * static_cast<double>(n) / static_cast<double>((n + kSample - 1) / kSample);
}

// Grid size caps (boxes per dimension): beyond them the boxes widen with the map.
constexpr int kMaxBoxes2d = 640;
constexpr int kMaxBoxes3d = 40;

template <int D>
double repulsive_fft_d(std::span<float> out, std::span<const float> y, std::size_t n, double dof,
                       const FftParams& params, FftWorkspace::Impl& ws, int threads) {
  const int fine_nodes = std::max(params.nodes_per_box, 1);
  const int split_nodes = params.split_nodes_per_box > 0 ? params.split_nodes_per_box : fine_nodes;
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
    // Small maps: about min_boxes boxes, their width rounded down to a ladder of quarter
    // octaves below the fixed width, so the kernel stays cached while the map grows slowly.
    const double target = range / std::max(params.min_boxes, 1);
    box = fixed_box * std::exp2(std::floor(4.0 * std::log2(target / fixed_box)) / 4.0);
    nb = std::max(static_cast<int>(std::ceil(range / box)), 1);
    while (!smooth(nb)) ++nb;
  } else {
    nb = static_cast<int>(std::ceil(range / fixed_box));
    while (!smooth(nb)) ++nb;
    box = fixed_box;
  }
  // Wide maps: split the kernel, with a coarser grid for its smooth far part, when that is
  // cheaper. Radii near_radius * {1, 1.5, 2, 3, 4, 6, 8} (box widths in proportion) compete with
  // the fine grid under a cost model fitted on this machine: per FFT node and log, per near-field
  // candidate pair (bench/tsne/bench_repulsion measures both). Sparse maps (3D) get wide radii.
  bool split = false, direct = false;
  double near_radius = 0.0;
  const bool reuse = !params.force_split && ws.choice_nb == nb && ws.choice_n == n &&
                     ws.choice_params == params.near_radius;
  if (reuse) {
    // The fine grid has the same size as when the cost model last ran (the map grows slowly):
    // keep its choice rather than pay for the candidate counts every iteration.
    near_radius = ws.choice_radius;
    split = near_radius > 0;
    direct = near_radius < 0;
  } else {
    // Seconds on one core: 0.6 ns per FFT node and log2(nodes) (6 transforms' worth); near field
    // 0.25 ns per candidate pair plus 25 ns per run (bench/tsne/bench_repulsion on 10,000-
    // and 100,000-point 2D and 3D maps: with these it picks the fastest radius measured on each).
    // A grid over the size cap below would lose accuracy: not a candidate for the split.
    const int cap = D == 3 ? kMaxBoxes3d : kMaxBoxes2d;
    const auto grid_cost = [&](int boxes, int p) {
      const double nodes = std::pow(2.0 * boxes * p, D);
      return 0.6e-9 * 6.0 * nodes * std::log2(nodes);
    };
    const auto fft_cost = [&](int boxes, int p) {
      return boxes > cap ? std::numeric_limits<double>::infinity() : grid_cost(boxes, p);
    };
    double best =
        params.force_split ? std::numeric_limits<double>::infinity() : fft_cost(nb, fine_nodes);
    if (params.near_radius > 0 && (params.force_split || nb > params.split_min_boxes)) {
      // Wide maps: split the kernel, with a coarser grid for its smooth far part, when that is
      // cheaper. Radii near_radius * {1, 1.5, 2, 3, 4, 6, 8} (box widths in proportion) compete
      // with the fine grid. Sparse maps (3D) get wide radii.
      const auto boxes_for = [&](double width) {
        return std::max(static_cast<int>(std::ceil(range / width)), 1);
      };
      // Each point visits up to 3^(D-1) runs whatever the radius.
      const double run_cost = 25e-9 * static_cast<double>(n) * (D == 3 ? 9.0 : 3.0);
      for (double factor : {1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0}) {
        const double r_c = params.near_radius * factor;
        const int boxes = boxes_for(params.split_box * factor);
        if (boxes > cap && !params.force_split) continue;
        const double cost = fft_cost(boxes, split_nodes) +
                            0.25e-9 * near_candidates<D>(y, n, lo, range, r_c) + run_cost;
        if (cost < best || params.force_split) {
          best = cost;
          split = true;
          near_radius = r_c;
        }
        if (params.force_split) break;
      }
    }
    // Few points: the grid has a floor of min_boxes per dimension, so its cost does not fall
    // with n, and all n^2 pairs summed exactly cost less (a 50-point 3D map paid 26 ms per
    // iteration for a 60^3 transform). The vectorised exact loop: 0.17 ns per pair in 2D, 0.18 ns
    // in 3D (one core, AVX-512; bench_repulsion prints it), rounded up for older vector units.
    const double pair_cost = 0.25e-9;
    const double grid = std::min(best, grid_cost(std::min(nb, cap), fine_nodes));
    if (!params.force_split && pair_cost * static_cast<double>(n) * static_cast<double>(n) < grid) {
      direct = true;
      split = false;
    }
  }
  if (!params.force_split) {
    ws.choice_nb = nb;
    ws.choice_n = n;
    ws.choice_radius = direct ? -1.0 : split ? near_radius : 0.0;
    ws.choice_params = params.near_radius;
  }
  if (direct) return repulsive_exact(out, y, n, D, dof, threads);
  if (split) {
    box = params.split_box * near_radius / params.near_radius;
    nb = std::max(static_cast<int>(std::ceil(range / box)), 1);
    while (!smooth(nb)) ++nb;
  }
  const int p = split ? split_nodes : fine_nodes;
  const SplitKernel kernel(dof, near_radius, params.near_degree);
  // Cap the grid: in 3D the fixed box width would need (2 * 3 * range)^3 FFT points once the map
  // is a hundred units wide (minutes per iteration). Beyond the cap the boxes widen with the
  // map instead, trading interpolation accuracy for a bounded cost per iteration.
  const int max_boxes = D == 3 ? kMaxBoxes3d : kMaxBoxes2d;
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
  const bool kernel_ready =
      ws.kernel_valid && ws.kernel_h == h && ws.kernel_dof == dof && ws.kernel_t_c == kernel.t_c;

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

  // Per point: the weight of each of its box's nodes (the product over dimensions), shared by
  // the spreading of every charge and the gather.
  std::vector<float> node_weight(n * box_nodes);
#pragma omp parallel for num_threads(threads) schedule(static, 1024)
  for (std::size_t i = 0; i < n; ++i) {
    const float* wi = weight.data() + i * D * p;
    float* out_w = node_weight.data() + i * box_nodes;
    for (std::size_t q = 0; q < box_nodes; ++q) {
      float wq = 1.0f;
      for (int a = 0; a < D; ++a) wq *= wi[a * p + node_digit[q][a]];
      out_w[q] = wq;
    }
  }
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
          kernel.far(r2 + s2[o], w, wg);
          out_row[o] = static_cast<float>(task == 0 ? w : wg);
        }
      }
    } else {
      const int c = task - 2;
      float* grid = ws.in_real[c];
      std::fill(grid, grid + real_size, 0.0f);
      for (std::size_t i = 0; i < n; ++i) {
        const float charge = c == 0 ? 1.0f : static_cast<float>(y[i * D + (c - 1)] - center);
        const float* wi = node_weight.data() + i * box_nodes;
        float* g = grid + base[i];
        for (std::size_t q = 0; q < box_nodes; ++q) g[node_offset[q]] += charge * wi[q];
      }
    }
  }
  const int hcols = len / 2 + 1;
  const std::size_t plane_size = static_cast<std::size_t>(len) * hcols;  // one (L, H) plane
  constexpr int kBlock = FftWorkspace::Impl::kColumnBlock;
  const int column_blocks = (hcols + kBlock - 1) / kBlock;
  // One 1-D pass along the second-last dimension over the given (L, H) planes, in place.
  const auto column_pass = [&](const std::vector<fftwf_complex*>& planes, bool forward_dir) {
    const int items = static_cast<int>(planes.size()) * column_blocks;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int item = 0; item < items; ++item) {
      const int a = item / column_blocks, b = item % column_blocks;
      const int first = b * kBlock;
      const bool rest = first + kBlock > hcols;
      fftwf_plan plan = forward_dir ? (rest ? ws.col_fwd_rest : ws.col_fwd)
                                    : (rest ? ws.col_bwd_rest : ws.col_bwd);
      fftwf_complex* at = planes[a] + first;
      fftwf_execute_dft(plan, at, at);
    }
  };
  // 3-D: one 1-D pass along the first dimension over whole arrays, in place.
  const auto depth_pass = [&](const std::vector<fftwf_complex*>& arrays, bool forward_dir) {
    const auto blocks = static_cast<std::int64_t>((plane_size + kBlock - 1) / kBlock);
    const std::int64_t items = static_cast<std::int64_t>(arrays.size()) * blocks;
#pragma omp parallel for num_threads(threads) schedule(static, 4)
    for (std::int64_t item = 0; item < items; ++item) {
      const auto a = static_cast<std::size_t>(item / blocks);
      const auto first = static_cast<std::size_t>(item % blocks) * kBlock;
      const bool rest = first + kBlock > plane_size;
      fftwf_plan plan = forward_dir ? (rest ? ws.dep_fwd_rest : ws.dep_fwd)
                                    : (rest ? ws.dep_bwd_rest : ws.dep_bwd);
      fftwf_complex* at = arrays[a] + first;
      fftwf_execute_dft(plan, at, at);
    }
  };
  // Rows of the last dimension: row r holds the leading indices (i0, i1) = (r / L, r % L) in 3-D,
  // i0 = r in 2-D. Charges are non-zero in the rows whose leading indices are all below m.
  const std::size_t rows_total = real_size / static_cast<std::size_t>(len);
  const auto charge_row = [&](std::size_t r) {
    if constexpr (D == 2) return r < static_cast<std::size_t>(m);
    return r / static_cast<std::size_t>(len) < static_cast<std::size_t>(m) &&
           r % static_cast<std::size_t>(len) < static_cast<std::size_t>(m);
  };
  {
    // Forward: every row, plane and column of the kernel tables; for the charges only the
    // rows that hold charges (the others' transforms are zero) and, in 3-D, the first m planes
    // of the column pass (the others are still all zero).
    std::vector<float*> re;
    std::vector<fftwf_complex*> co;
    std::vector<bool> full;
    if (!kernel_ready)
      for (int k = 0; k < 2; ++k) {
        re.push_back(ws.kernel_real[k]);
        co.push_back(ws.kernel_hat[k]);
        full.push_back(true);
      }
    for (int c = 0; c < kIn; ++c) {
      re.push_back(ws.in_real[c]);
      co.push_back(ws.in_hat[c]);
      full.push_back(false);
    }
    const auto arrays = static_cast<std::int64_t>(re.size());
    const std::int64_t items = arrays * static_cast<std::int64_t>(rows_total);
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (std::int64_t item = 0; item < items; ++item) {
      const auto a = static_cast<std::size_t>(item / static_cast<std::int64_t>(rows_total));
      const auto r = static_cast<std::size_t>(item % static_cast<std::int64_t>(rows_total));
      fftwf_complex* out_row = co[a] + r * hcols;
      if (full[a] || charge_row(r))
        fftwf_execute_dft_r2c(ws.row_r2c, re[a] + r * len, out_row);
      else
        std::fill(&out_row[0][0], &out_row[0][0] + 2 * hcols, 0.0f);
    }
    std::vector<fftwf_complex*> planes;
    const int plane_count = D == 2 ? 1 : len;
    for (std::size_t a = 0; a < co.size(); ++a)
      for (int q = 0; q < (full[a] ? plane_count : (D == 2 ? 1 : m)); ++q)
        planes.push_back(co[a] + static_cast<std::size_t>(q) * plane_size);
    column_pass(planes, true);
    if constexpr (D == 3) depth_pass(co, true);
  }
  ws.kernel_valid = true;
  ws.kernel_h = h;
  ws.kernel_dof = dof;
  ws.kernel_t_c = kernel.t_c;
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
      sum += weight *
             (static_cast<double>(ch[col][0]) * ch[col][0] +
              static_cast<double>(ch[col][1]) * ch[col][1]) *
             k1[col][0];
    }
    parseval_row[row] = sum;
  };
  {
    const auto spectrum = static_cast<std::int64_t>(spectrum_rows);
    const std::int64_t items = (kOut + 1) * spectrum;
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (std::int64_t item = 0; item < items; ++item) {
      const auto c = static_cast<int>(item / spectrum);
      const auto row = static_cast<std::size_t>(item % spectrum);
      if (c == kOut)
        parseval_of_row(row);
      else
        multiply_rows(c, row);
    }
    // Inverse: in 3-D the whole first-dimension pass, then only what the gather reads: the
    // first m planes' columns and the rows of the first m x m leading indices.
    const std::vector<fftwf_complex*> outs(ws.out_hat.begin(), ws.out_hat.end());
    if constexpr (D == 3) depth_pass(outs, false);
    std::vector<fftwf_complex*> planes;
    for (auto* o : outs)
      for (int q = 0; q < (D == 2 ? 1 : m); ++q)
        planes.push_back(o + static_cast<std::size_t>(q) * plane_size);
    column_pass(planes, false);
    const int leading = D == 2 ? 1 : m;  // rows per plane read
    const std::int64_t row_items = static_cast<std::int64_t>(kOut) * leading * m;
#pragma omp parallel for num_threads(threads) schedule(static, 16)
    for (std::int64_t item = 0; item < row_items; ++item) {
      const auto c = static_cast<int>(item / (static_cast<std::int64_t>(leading) * m));
      const auto rest = static_cast<std::size_t>(item % (static_cast<std::int64_t>(leading) * m));
      // 2-D: row = rest (< m); 3-D: (i0, i1) = (rest / m, rest % m).
      const std::size_t r = D == 2 ? rest : (rest / m) * static_cast<std::size_t>(len) + rest % m;
      fftwf_execute_dft_c2r(ws.row_c2r, ws.out_hat[c] + r * half, ws.out_real[c] + r * len);
    }
  }
  double parseval = 0.0;
  for (double v : parseval_row) parseval += v;
  // Gather: interpolate the node potentials back to the points.
  const double scale = 1.0 / static_cast<double>(real_size);
#pragma omp parallel for num_threads(threads) schedule(static, 1024)
  for (std::size_t i = 0; i < n; ++i) {
    std::array<double, kOut> phi{};
    const float* wi = node_weight.data() + i * box_nodes;
    for (std::size_t q = 0; q < box_nodes; ++q) {
      const double wq = wi[q];
      const std::size_t at = base[i] + node_offset[q];
      for (int c = 0; c < kOut; ++c) phi[c] += wq * ws.out_real[c][at];
    }
    for (auto& v : phi) v *= scale;
    for (int a = 0; a < D; ++a)
      out[i * D + a] = static_cast<float>((y[i * D + a] - center) * phi[0] - phi[1 + a]);
  }
  const double near_z = split ? near_field<D>(out, y, n, lo, range, kernel, threads) : 0.0;
  // Minus the self terms w(0) = 1.
  return parseval * scale + near_z - static_cast<double>(n);
}

// The reference for near_field: every pair (i, j) in index order, the same per-pair terms (the
// float loop's for the standard kernel with a far part of degree <= 1, double otherwise).
template <int D>
double near_field_naive_d(std::span<float> out, std::span<const float> y, std::size_t n,
                          const SplitKernel& sk) {
  const bool fast = sk.kernel.standard && sk.degree <= 1;
  const auto tc = static_cast<float>(sk.t_c);
  const auto a0 = static_cast<float>(sk.coef[0][0]), b0 = static_cast<float>(sk.coef[1][0]);
  const float a1 = sk.degree >= 1 ? static_cast<float>(sk.coef[0][1]) : 0.0f;
  const float b1 = sk.degree >= 1 ? static_cast<float>(sk.coef[1][1]) : 0.0f;
  double z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    std::array<double, D> force{};
    for (std::size_t j = 0; j < n; ++j) {
      if (fast) {
        std::array<float, 3> d{};
        for (int a = 0; a < D; ++a) d[a] = y[i * D + a] - y[j * D + a];
        const float t = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        if (!(t < tc)) continue;
        const float g = 1.0f / (1.0f + t);
        z += g - (a0 + a1 * (t - tc));
        const float dwg = g * g - (b0 + b1 * (t - tc));
        for (int a = 0; a < D; ++a) force[a] += dwg * d[a];
      } else {
        std::array<double, D> d;
        double t = 0.0;
        for (int a = 0; a < D; ++a) {
          d[a] = static_cast<double>(y[i * D + a]) - y[j * D + a];
          t += d[a] * d[a];
        }
        if (t >= sk.t_c) continue;
        double w, wg, w_far, wg_far;
        sk.kernel.eval(t, w, wg);
        sk.far(t, w_far, wg_far);
        z += w - w_far;
        for (int a = 0; a < D; ++a) force[a] += (wg - wg_far) * d[a];
      }
    }
    for (int a = 0; a < D; ++a) out[i * D + a] += static_cast<float>(force[a]);
  }
  return z;
}

template <int D>
double near_field_forces_d(std::span<float> out, std::span<const float> y, std::size_t n,
                           double dof, double near_radius, int near_degree, bool naive,
                           int threads) {
  const SplitKernel kernel(dof, near_radius, near_degree);
  if (naive) return near_field_naive_d<D>(out, y, n, kernel);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t e = 0; e < n * D; ++e) {
    lo = std::min<double>(lo, y[e]);
    hi = std::max<double>(hi, y[e]);
  }
  return near_field<D>(out, y, n, lo, std::max(hi - lo, 1e-6), kernel, threads);
}

double near_field_dispatch(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                           double dof, double near_radius, int near_degree, bool naive,
                           int threads) {
  if (!(near_radius > 0)) throw Error("near field: the radius must be positive", ErrorKind::usage);
  const int t = threads > 0 ? threads : omp_get_max_threads();
  switch (dims) {
    case 2:
      return near_field_forces_d<2>(out, y, n, dof, near_radius, near_degree, naive, t);
    case 3:
      return near_field_forces_d<3>(out, y, n, dof, near_radius, near_degree, naive, t);
    default:
      throw Error("the near field supports 2 or 3 dimensions, got " + std::to_string(dims),
                  ErrorKind::usage);
  }
}

}  // namespace

double near_field_forces(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                         double dof, double near_radius, int near_degree, int threads) {
  return near_field_dispatch(out, y, n, dims, dof, near_radius, near_degree, false, threads);
}

double near_field_forces_naive(std::span<float> out, std::span<const float> y, std::size_t n,
                               int dims, double dof, double near_radius, int near_degree) {
  return near_field_dispatch(out, y, n, dims, dof, near_radius, near_degree, true, 1);
}

double repulsive_fft(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                     double dof, const FftParams& params, FftWorkspace& workspace, int threads) {
  const int t = n < 4096 ? 1 : (threads > 0 ? threads : omp_get_max_threads());
  switch (dims) {
    case 2:
      return repulsive_fft_d<2>(out, y, n, dof, params, workspace.impl(), t);
    case 3:
      return repulsive_fft_d<3>(out, y, n, dof, params, workspace.impl(), t);
    default:
      throw Error("FFT repulsion supports 2 or 3 dimensions, got " + std::to_string(dims),
                  ErrorKind::usage);
  }
}

}  // namespace tokmap::tsne
