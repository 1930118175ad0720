// Greedy label placement with a uniform grid for overlap tests.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "render/render.hpp"

namespace tokmap::render {

namespace {

// Boxes (placed labels and their markers) bucketed by the grid cells they cover.
class BoxGrid {
 public:
  BoxGrid(const Box& bounds, double cell) : bounds_(bounds) {
    double w = std::max(bounds.x1 - bounds.x0, 1e-9), h = std::max(bounds.y1 - bounds.y0, 1e-9);
    // At most 512 cells per side: a few hundred labels never need more.
    cell_ = std::max({cell, w / 512.0, h / 512.0});
    cols_ = static_cast<int>(std::ceil(w / cell_)) + 1;
    rows_ = static_cast<int>(std::ceil(h / cell_)) + 1;
    cells_.resize(static_cast<std::size_t>(cols_) * static_cast<std::size_t>(rows_));
  }

  // Any stored box (labels_only: only label boxes, not markers) intersecting `box`?
  bool overlaps(const Box& box, bool labels_only = false) const {
    bool hit = false;
    visit(box, [&](std::vector<std::uint32_t>& cell) {
      for (std::uint32_t i : cell) {
        if ((!labels_only || is_label_[i]) && boxes_[i].intersects(box)) {
          hit = true;
          return false;
        }
      }
      return true;
    });
    return hit;
  }

  void insert(const Box& box, bool is_label) {
    auto index = static_cast<std::uint32_t>(boxes_.size());
    boxes_.push_back(box);
    is_label_.push_back(is_label);
    visit(box, [&](std::vector<std::uint32_t>& cell) {
      cell.push_back(index);
      return true;
    });
  }

 private:
  int clamp_col(double x) const {
    return std::clamp(static_cast<int>(std::floor((x - bounds_.x0) / cell_)), 0, cols_ - 1);
  }
  int clamp_row(double y) const {
    return std::clamp(static_cast<int>(std::floor((y - bounds_.y0) / cell_)), 0, rows_ - 1);
  }
  template <class F>
  void visit(const Box& box, F&& f) const {
    int c0 = clamp_col(box.x0), c1 = clamp_col(box.x1);
    int r0 = clamp_row(box.y0), r1 = clamp_row(box.y1);
    for (int r = r0; r <= r1; ++r) {
      for (int c = c0; c <= c1; ++c) {
        if (!f(cells_[static_cast<std::size_t>(r) * cols_ + c])) return;
      }
    }
  }

  Box bounds_;
  double cell_ = 1;
  int cols_ = 1, rows_ = 1;
  std::vector<Box> boxes_;
  std::vector<bool> is_label_;
  mutable std::vector<std::vector<std::uint32_t>> cells_;
};

// Counts of obstacle points per cell as a summed-area table: points under a box in O(1).
class DensityGrid {
 public:
  DensityGrid(const Box& bounds, std::span<const float> points, double cell) : bounds_(bounds) {
    double w = std::max(bounds.x1 - bounds.x0, 1e-9), h = std::max(bounds.y1 - bounds.y0, 1e-9);
    cell_ = std::max({cell, w / 1024.0, h / 1024.0});
    cols_ = static_cast<int>(std::ceil(w / cell_)) + 1;
    rows_ = static_cast<int>(std::ceil(h / cell_)) + 1;
    sums_.assign(static_cast<std::size_t>(cols_ + 1) * (rows_ + 1), 0);
    for (std::size_t i = 0; i + 1 < points.size(); i += 2) {
      double x = points[i], y = points[i + 1];
      if (!(x >= bounds.x0 && x <= bounds.x1 && y >= bounds.y0 && y <= bounds.y1)) continue;
      ++at(col(x) + 1, row(y) + 1);
    }
    for (int r = 1; r <= rows_; ++r) {
      for (int c = 1; c <= cols_; ++c) at(c, r) += at(c - 1, r) + at(c, r - 1) - at(c - 1, r - 1);
    }
  }

  std::int64_t count(const Box& box) const {
    int c0 = col(box.x0), c1 = col(box.x1), r0 = row(box.y0), r1 = row(box.y1);
    return get(c1 + 1, r1 + 1) - get(c0, r1 + 1) - get(c1 + 1, r0) + get(c0, r0);
  }

 private:
  int col(double x) const {
    return std::clamp(static_cast<int>(std::floor((x - bounds_.x0) / cell_)), 0, cols_ - 1);
  }
  int row(double y) const {
    return std::clamp(static_cast<int>(std::floor((y - bounds_.y0) / cell_)), 0, rows_ - 1);
  }
  std::int64_t& at(int c, int r) { return sums_[static_cast<std::size_t>(r) * (cols_ + 1) + c]; }
  std::int64_t get(int c, int r) const {
    return sums_[static_cast<std::size_t>(r) * (cols_ + 1) + c];
  }

  Box bounds_;
  double cell_ = 1;
  int cols_ = 1, rows_ = 1;
  std::vector<std::int64_t> sums_;
};

bool finite_box(const Box& b) {
  return std::isfinite(b.x0) && std::isfinite(b.y0) && std::isfinite(b.x1) && std::isfinite(b.y1);
}

}  // namespace

std::vector<PlacedLabel> place_labels(std::span<const LabelRequest> requests, const Box& bounds,
                                      const LabelOptions& options,
                                      std::span<const float> obstacles) {
  std::vector<PlacedLabel> placed;
  if (requests.empty() || options.max_labels == 0 || !finite_box(bounds) ||
      !(bounds.x1 > bounds.x0) || !(bounds.y1 > bounds.y0)) {
    return placed;
  }
  double cell = 4;
  for (std::size_t i = 0; i < std::min<std::size_t>(requests.size(), 64); ++i) {
    if (std::isfinite(requests[i].height)) cell = std::max(cell, 2 * requests[i].height);
  }
  BoxGrid grid(bounds, cell);
  bool use_density = obstacles.size() >= 2;
  DensityGrid density(bounds, use_density ? obstacles : std::span<const float>{}, 2.0);

  std::size_t max_attempts = options.max_attempts
                                 ? options.max_attempts
                                 : std::max<std::size_t>(4000, 20 * options.max_labels);
  std::size_t attempts = std::min(requests.size(), max_attempts);
  placed.reserve(std::min(options.max_labels, attempts));

  for (std::size_t i = 0; i < attempts && placed.size() < options.max_labels; ++i) {
    const LabelRequest& q = requests[i];
    double w = q.width, h = q.height;
    if (!std::isfinite(q.x) || !std::isfinite(q.y) || !(w > 0) || !(h > 0) ||
        !std::isfinite(q.radius)) {
      continue;
    }
    // A point already hidden under a placed label gets no label of its own.
    double m = std::max(q.radius, 0.0);
    if (grid.overlaps({q.x - m, q.y - m, q.x + m, q.y + m}, true)) continue;
    double r = m + options.gap;
    double d = r * std::numbers::sqrt2 / 2;  // diagonal corners at distance r
    const Box candidates[] = {
        {q.x + r, q.y - h / 2, q.x + r + w, q.y + h / 2},  // right
        {q.x - r - w, q.y - h / 2, q.x - r, q.y + h / 2},  // left
        {q.x - w / 2, q.y - r - h, q.x + w / 2, q.y - r},  // above
        {q.x - w / 2, q.y + r, q.x + w / 2, q.y + r + h},  // below
        {q.x + d, q.y - d - h, q.x + d + w, q.y - d},      // above right
        {q.x - d - w, q.y - d - h, q.x - d, q.y - d},      // above left
        {q.x + d, q.y + d, q.x + d + w, q.y + d + h},      // below right
        {q.x - d - w, q.y + d, q.x - d, q.y + d + h},      // below left
    };
    int best = -1;
    double best_score = std::numeric_limits<double>::infinity();
    for (int c = 0; c < 8; ++c) {
      const Box& box = candidates[c];
      if (!box.inside(bounds) || grid.overlaps(box)) continue;
      // Prefer the earlier positions; a covered point costs more than one step down the list.
      double score = 0.4 * c;
      if (use_density) score += static_cast<double>(density.count(box));
      if (score < best_score) {
        best_score = score;
        best = c;
      }
      if (!use_density) break;
    }
    if (best < 0) continue;
    grid.insert(candidates[best], true);
    if (m > 0) grid.insert({q.x - m, q.y - m, q.x + m, q.y + m}, false);
    placed.push_back({i, candidates[best]});
  }
  return placed;
}

std::vector<std::uint32_t> label_priority(const Points& points) {
  std::size_t n = points.size();
  std::vector<std::uint32_t> order;
  if (points.label_order.empty()) {
    order.resize(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  } else {
    order.reserve(points.label_order.size());
    for (std::uint32_t i : points.label_order) {
      if (i < n) order.push_back(i);
    }
  }
  if (points.emphasis.size() == n) {
    std::stable_partition(order.begin(), order.end(),
                          [&](std::uint32_t i) { return points.emphasis[i] != 0; });
  }
  return order;
}

}  // namespace tokmap::render
