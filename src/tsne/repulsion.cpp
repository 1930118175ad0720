// Exact O(n^2) repulsion and Barnes-Hut (2D quadtree, 3D octree).
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "tsne/kernel.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::tsne {

namespace {

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

// y (n, D) row-major as one double column per dimension, for loops that vectorise over points.
template <int D>
std::array<std::vector<double>, D> columns(std::span<const float> y, std::size_t n) {
  std::array<std::vector<double>, D> coord;
  for (int a = 0; a < D; ++a) {
    coord[a].resize(n);
    for (std::size_t j = 0; j < n; ++j) coord[a][j] = y[j * D + a];
  }
  return coord;
}

template <int D>
double repulsive_exact_d(std::span<float> out, std::span<const float> y, std::size_t n, double dof,
                         int threads) {
  const Kernel kernel(dof);
  std::vector<double> z_row(n);
  if (kernel.standard) {
    // dof 1: a branch-free loop over every j (the self pair adds w = 1 and no force, taken off
    // after), on coordinates laid out per dimension so the compiler vectorises it.
    const auto coord = columns<D>(y, n);
#pragma omp parallel for num_threads(threads) schedule(static, 64)
    for (std::size_t i = 0; i < n; ++i) {
      const double y0 = coord[0][i], y1 = D > 1 ? coord[D > 1 ? 1 : 0][i] : 0.0;
      const double y2 = D > 2 ? coord[D - 1][i] : 0.0;
      const double* c0 = coord[0].data();
      const double* c1 = coord[D > 1 ? 1 : 0].data();
      const double* c2 = coord[D - 1].data();
      double z = 0.0, f0 = 0.0, f1 = 0.0, f2 = 0.0;
#pragma omp simd reduction(+ : z, f0, f1, f2)
      for (std::size_t j = 0; j < n; ++j) {
        const double d0 = y0 - c0[j];
        const double d1 = D > 1 ? y1 - c1[j] : 0.0;
        const double d2 = D > 2 ? y2 - c2[j] : 0.0;
        const double w = 1.0 / (1.0 + d0 * d0 + d1 * d1 + d2 * d2);
        const double wg = w * w;
        z += w;
        f0 += wg * d0;
        f1 += wg * d1;
        f2 += wg * d2;
      }
      z_row[i] = z - 1.0;
      const std::array<double, 3> f{f0, f1, f2};
      for (int a = 0; a < D; ++a) out[i * D + a] = static_cast<float>(f[a]);
    }
    double z = 0.0;
    for (double v : z_row) z += v;
    return z;
  }
#pragma omp parallel for num_threads(threads) schedule(static, 64)
  for (std::size_t i = 0; i < n; ++i) {
    const float* yi = y.data() + i * D;
    double z = 0.0;
    std::array<double, D> f{};
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const float* yj = y.data() + j * D;
      std::array<double, D> diff;
      double d2 = 0.0;
      for (int a = 0; a < D; ++a) {
        diff[a] = static_cast<double>(yi[a]) - yj[a];
        d2 += diff[a] * diff[a];
      }
      double w, wg;
      kernel.eval(d2, w, wg);
      z += w;
      for (int a = 0; a < D; ++a) f[a] += wg * diff[a];
    }
    z_row[i] = z;
    for (int a = 0; a < D; ++a) out[i * D + a] = static_cast<float>(f[a]);
  }
  double z = 0.0;
  for (double v : z_row) z += v;
  return z;
}

// Both parts of the exact gradient in one pass (dof 1): P's row i is scattered into a dense row
// so the loop over every j stays branch-free and vectorises; the self pair adds w = 1 to Z and
// nothing to the forces.
template <int D, class Real>
double exact_forces_fused_d(std::span<float> att, std::span<float> rep, const SparseP& p,
                            std::span<const float> y, double exaggeration, int threads) {
  const std::size_t n = p.n;
  // Real = float: float sums per block of 512 pairs, added in double across blocks (twice the
  // vector width of double, and the accuracy of the float forces returned). Real = double: one
  // block, the sums in double.
  const std::size_t block = std::is_same_v<Real, float> ? 512 : n;
  std::array<std::vector<Real>, 3> coord;
  for (int a = 0; a < 3; ++a) coord[a].assign(n, Real(0));
  for (std::size_t i = 0; i < n; ++i)
    for (int a = 0; a < D; ++a) coord[a][i] = y[i * D + a];
  std::vector<double> z_row(n);
#pragma omp parallel num_threads(threads)
  {
    std::vector<Real> p_row(n, Real(0));
#pragma omp for schedule(static, 64)
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t begin = p.row_ptr[i], end = p.row_ptr[i + 1];
      for (std::int64_t e = begin; e < end; ++e)
        p_row[static_cast<std::size_t>(p.col[e])] = p.val[e];
      const Real y0 = coord[0][i], y1 = coord[1][i], y2 = coord[2][i];
      const Real* __restrict c0 = coord[0].data();
      const Real* __restrict c1 = coord[1].data();
      const Real* __restrict c2 = coord[2].data();
      const Real* __restrict pr = p_row.data();
      double z = 0.0;
      std::array<double, 3> fa{}, fr{};
      for (std::size_t start = 0; start < n; start += block) {
        const std::size_t stop = std::min(n, start + block);
        Real zb = 0, a0 = 0, a1 = 0, a2 = 0, r0 = 0, r1 = 0, r2 = 0;
#pragma omp simd reduction(+ : zb, a0, a1, a2, r0, r1, r2)
        for (std::size_t j = start; j < stop; ++j) {
          const Real d0 = y0 - c0[j];
          const Real d1 = D > 1 ? y1 - c1[j] : Real(0);
          const Real d2 = D > 2 ? y2 - c2[j] : Real(0);
          const Real w = Real(1) / (Real(1) + d0 * d0 + d1 * d1 + d2 * d2);
          const Real pw = pr[j] * w, ww = w * w;
          zb += w;
          a0 += pw * d0;
          a1 += pw * d1;
          a2 += pw * d2;
          r0 += ww * d0;
          r1 += ww * d1;
          r2 += ww * d2;
        }
        z += zb;
        fa[0] += a0, fa[1] += a1, fa[2] += a2;
        fr[0] += r0, fr[1] += r1, fr[2] += r2;
      }
      for (std::int64_t e = begin; e < end; ++e) p_row[static_cast<std::size_t>(p.col[e])] = 0;
      z_row[i] = z - 1.0;
      for (int a = 0; a < D; ++a) {
        att[i * D + a] = static_cast<float>(exaggeration * fa[a]);
        rep[i * D + a] = static_cast<float>(fr[a]);
      }
    }
  }
  double z = 0.0;
  for (double v : z_row) z += v;
  return z;
}

// Space-partitioning tree over a point set: each internal node has 2^D children (quadtree in
// 2D, octree in 3D). A node becomes a leaf when it holds one point, when all its points are
// identical (exact duplicates), or at the depth limit; leaves may hold many points, which are
// then evaluated exactly, so duplicates never recurse forever.
template <int D>
class SpaceTree {
 public:
  static constexpr int kChildren = 1 << D;
  static constexpr int kMaxDepth = 40;

  struct Node {
    std::array<double, D> center{};  // geometric centre of the cell
    double half = 0.0;               // half width of the (cubic) cell
    std::array<double, D> com{};     // centre of mass
    std::int64_t count = 0;
    std::int64_t begin = 0, end = 0;  // point range in perm_ (leaves)
    std::int32_t first_child = -1;    // index of the first of kChildren children; -1 = leaf
  };

  SpaceTree(std::span<const float> y, std::size_t n) : y_(y), perm_(n) {
    for (std::size_t i = 0; i < n; ++i) perm_[i] = static_cast<std::int32_t>(i);
    std::array<double, D> lo, hi;
    lo.fill(std::numeric_limits<double>::infinity());
    hi.fill(-std::numeric_limits<double>::infinity());
    for (std::size_t i = 0; i < n; ++i)
      for (int a = 0; a < D; ++a) {
        lo[a] = std::min<double>(lo[a], y[i * D + a]);
        hi[a] = std::max<double>(hi[a], y[i * D + a]);
      }
    Node root;
    double half = 0.0;
    for (int a = 0; a < D; ++a) {
      root.center[a] = 0.5 * (lo[a] + hi[a]);
      half = std::max(half, 0.5 * (hi[a] - lo[a]));
    }
    root.half = half * (1.0 + 1e-6) + 1e-12;
    nodes_.push_back(root);
    scratch_.resize(n);
    build(0, 0, static_cast<std::int64_t>(n), 0);
  }

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<std::int32_t>& perm() const { return perm_; }

 private:
  void build(std::size_t node_index, std::int64_t begin, std::int64_t end, int depth) {
    Node& node = nodes_[node_index];
    node.begin = begin;
    node.end = end;
    node.count = end - begin;
    if (node.count == 0) return;
    std::array<double, D> com{};
    bool identical = true;
    const float* first = y_.data() + static_cast<std::size_t>(perm_[begin]) * D;
    for (std::int64_t p = begin; p < end; ++p) {
      const float* yp = y_.data() + static_cast<std::size_t>(perm_[p]) * D;
      for (int a = 0; a < D; ++a) {
        com[a] += yp[a];
        identical = identical && yp[a] == first[a];
      }
    }
    for (int a = 0; a < D; ++a) com[a] /= static_cast<double>(node.count);
    node.com = com;
    if (node.count <= 1 || identical || depth >= kMaxDepth) return;

    // Partition the points into the children (stable, so the order is deterministic).
    std::array<std::int64_t, kChildren + 1> offset{};
    const auto child_of = [&](std::int32_t point) {
      const float* yp = y_.data() + static_cast<std::size_t>(point) * D;
      int c = 0;
      for (int a = 0; a < D; ++a)
        if (yp[a] >= nodes_[node_index].center[a]) c |= 1 << a;
      return c;
    };
    for (std::int64_t p = begin; p < end; ++p) ++offset[child_of(perm_[p]) + 1];
    for (int c = 0; c < kChildren; ++c) offset[c + 1] += offset[c];
    std::array<std::int64_t, kChildren> fill{};
    for (int c = 0; c < kChildren; ++c) fill[c] = begin + offset[c];
    for (std::int64_t p = begin; p < end; ++p) scratch_[fill[child_of(perm_[p])]++] = perm_[p];
    std::copy(scratch_.begin() + begin, scratch_.begin() + end, perm_.begin() + begin);

    const auto first_child = static_cast<std::int32_t>(nodes_.size());
    const Node parent = nodes_[node_index];
    for (int c = 0; c < kChildren; ++c) {
      Node child;
      child.half = parent.half * 0.5;
      for (int a = 0; a < D; ++a)
        child.center[a] = parent.center[a] + ((c >> a) & 1 ? child.half : -child.half);
      nodes_.push_back(child);
    }
    nodes_[node_index].first_child = first_child;
    for (int c = 0; c < kChildren; ++c)
      build(static_cast<std::size_t>(first_child + c), begin + offset[c], begin + offset[c + 1],
            depth + 1);
  }

  std::span<const float> y_;
  std::vector<std::int32_t> perm_;
  std::vector<std::int32_t> scratch_;
  std::vector<Node> nodes_;
};

template <int D>
double repulsive_bh_d(std::span<float> out, std::span<const float> y, std::size_t n, double dof,
                      double theta, int threads) {
  const Kernel kernel(dof);
  const SpaceTree<D> tree(y, n);
  const auto& nodes = tree.nodes();
  const auto& perm = tree.perm();
  const double theta2 = theta * theta;
  std::vector<double> z_row(n);
#pragma omp parallel num_threads(threads)
  {
    std::vector<std::int32_t> stack;
    stack.reserve(256);
#pragma omp for schedule(static, 64)
    for (std::size_t i = 0; i < n; ++i) {
      const float* yi = y.data() + i * D;
      double z = 0.0;
      std::array<double, D> f{};
      stack.clear();
      stack.push_back(0);
      while (!stack.empty()) {
        const auto& node = nodes[static_cast<std::size_t>(stack.back())];
        stack.pop_back();
        if (node.count == 0) continue;
        if (node.first_child < 0) {
          for (std::int64_t p = node.begin; p < node.end; ++p) {
            const auto j = static_cast<std::size_t>(perm[static_cast<std::size_t>(p)]);
            if (j == i) continue;
            std::array<double, D> diff;
            double d2 = 0.0;
            for (int a = 0; a < D; ++a) {
              diff[a] = static_cast<double>(yi[a]) - y[j * D + a];
              d2 += diff[a] * diff[a];
            }
            double w, wg;
            kernel.eval(d2, w, wg);
            z += w;
            for (int a = 0; a < D; ++a) f[a] += wg * diff[a];
          }
          continue;
        }
        std::array<double, D> diff;
        double d2 = 0.0;
        for (int a = 0; a < D; ++a) {
          diff[a] = yi[a] - node.com[a];
          d2 += diff[a] * diff[a];
        }
        const double width = 2.0 * node.half;
        if (width * width < theta2 * d2) {
          double w, wg;
          kernel.eval(d2, w, wg);
          const double m = static_cast<double>(node.count);
          z += m * w;
          for (int a = 0; a < D; ++a) f[a] += m * wg * diff[a];
        } else {
          for (int c = SpaceTree<D>::kChildren - 1; c >= 0; --c)
            stack.push_back(node.first_child + c);
        }
      }
      z_row[i] = z;
      for (int a = 0; a < D; ++a) out[i * D + a] = static_cast<float>(f[a]);
    }
  }
  double z = 0.0;
  for (double v : z_row) z += v;
  return z;
}

}  // namespace

double repulsive_exact(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                       double dof, int threads) {
  const int t = thread_count(threads);
  switch (dims) {
    // Small problems run on one thread: a parallel region costs more than it saves there.
    case 1:
      return repulsive_exact_d<1>(out, y, n, dof, n < 1024 ? 1 : t);
    case 2:
      return repulsive_exact_d<2>(out, y, n, dof, n < 1024 ? 1 : t);
    case 3:
      return repulsive_exact_d<3>(out, y, n, dof, n < 1024 ? 1 : t);
    default:
      throw Error("exact repulsion supports 1 to 3 dimensions, got " + std::to_string(dims));
  }
}

double exact_forces_fused(std::span<float> att, std::span<float> rep, const SparseP& p,
                          std::span<const float> y, int dims, double exaggeration, int threads) {
  const int t = p.n < 1024 ? 1 : thread_count(threads);
  // Double sums for the smallest maps: their KL landscape has many close minima, and the runs
  // cost nothing. Float sums above (half the time; the same KL on the small-map grid).
  const bool in_double = p.n <= kFusedDoubleMaxPoints;
  switch (dims) {
    case 1:
      return in_double ? exact_forces_fused_d<1, double>(att, rep, p, y, exaggeration, t)
                       : exact_forces_fused_d<1, float>(att, rep, p, y, exaggeration, t);
    case 2:
      return in_double ? exact_forces_fused_d<2, double>(att, rep, p, y, exaggeration, t)
                       : exact_forces_fused_d<2, float>(att, rep, p, y, exaggeration, t);
    case 3:
      return in_double ? exact_forces_fused_d<3, double>(att, rep, p, y, exaggeration, t)
                       : exact_forces_fused_d<3, float>(att, rep, p, y, exaggeration, t);
    default:
      throw Error("exact repulsion supports 1 to 3 dimensions, got " + std::to_string(dims));
  }
}

double repulsive_barnes_hut(std::span<float> out, std::span<const float> y, std::size_t n, int dims,
                            double dof, double theta, int threads) {
  const int t = n < 4096 ? 1 : thread_count(threads);
  switch (dims) {
    case 2:
      return repulsive_bh_d<2>(out, y, n, dof, theta, t);
    case 3:
      return repulsive_bh_d<3>(out, y, n, dof, theta, t);
    default:
      throw Error("Barnes-Hut supports 2 or 3 dimensions, got " + std::to_string(dims),
                  ErrorKind::usage);
  }
}

}  // namespace tokmap::tsne
