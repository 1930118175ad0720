// bench_repulsion: times one repulsion evaluation (FFT with several grid settings, Barnes-Hut)
// on a fixed embedding and reports its error against the exact O(N^2) sums.
//
//   bench_repulsion EMBEDDING.npy [REPEATS [SCALE [THREADS
//   [all|auto|radii|shapes|grids|small|near]]]]
//
// `near` times the near field alone (tsne::near_field_forces, degree 1) at several radii against
// its all-pairs reference.
// Use a converged map (e.g. the output of `tokmap tsne`): its spread is what the late
// iterations, which dominate the run time, see.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "io/io.hpp"
#include "tsne/tsne.hpp"

namespace {

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_repulsion EMBEDDING.npy [REPEATS [SCALE [THREADS "
                 "[all|auto|radii|shapes|grids|small|near]]]]\n");
    return 2;
  }
  auto m = tokmap::io::read_npy(argv[1]);
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 5;
  // Optional scale: the same map shrunk or grown, as earlier or later iterations see it.
  const int threads = argc > 4 ? std::stoi(argv[4]) : 1;
  const float scale = argc > 3 ? std::stof(argv[3]) : 1.0f;
  for (auto& v : m.data) v *= scale;
  const std::size_t n = m.rows;
  const int dims = static_cast<int>(m.cols);
  // CPU milliseconds of this process per call of `evaluate`, on `threads` threads (steadier than
  // wall time on a shared machine). The process's first half second of work runs up to 2x slower
  // on these machines (measured: the same setting timed first or later), so the first setting
  // is repeated untimed for that long; every setting gets one untimed call.
  bool warm = false;
  const auto time_ms = [&](const auto& evaluate) {
    const std::clock_t w0 = std::clock();
    do evaluate();
    while (!warm && std::clock() - w0 < CLOCKS_PER_SEC / 2);
    warm = true;
    const std::clock_t c0 = std::clock();
    for (int r = 0; r < repeats; ++r) evaluate();
    return 1000.0 * double(std::clock() - c0) / CLOCKS_PER_SEC / repeats;
  };
  struct Result {
    std::string name;
    double ms;
    std::vector<float> force;
    double z;
  };
  std::vector<Result> results;
  struct Setting {
    double boxes_per_unit;
    int nodes;
    double near_radius = 0.0;  // > 0: kernel splitting
    double split_box = 2.0;
    int degree = 3;
    int min_boxes = 0;  // 0: the library's default
  };
  // "auto": the library's defaults (the cost model picks the grid); "all": a sweep.
  const std::string set = argc > 5 ? argv[5] : "all";
  if (set == "near") {
    for (double r : {8.0, 12.0, 16.0, 24.0, 32.0}) {
      std::vector<float> force(n * dims), reference(n * dims);
      double z = 0.0;
      const double ms = time_ms([&] {
        std::fill(force.begin(), force.end(), 0.0f);
        z = tokmap::tsne::near_field_forces(force, m.data, n, dims, 1.0, r, 1, threads);
      });
      const double z_ref =
          tokmap::tsne::near_field_forces_naive(reference, m.data, n, dims, 1.0, r, 1);
      std::printf("near field r_c %4.1f: %8.3f ms  force err %.2e  Z err %.2e\n", r, ms,
                  relative_error(force, reference), std::abs(z - z_ref) / std::abs(z_ref));
    }
    return 0;
  }
  std::vector<Setting> settings;
  if (set == "auto") {
    const tokmap::tsne::TsneOptions defaults;
    settings.push_back(
        {1.0, 3, -defaults.fft_near_radius, defaults.fft_split_box, defaults.fft_near_degree});
  } else if (set == "radii") {
    for (double r : {2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 40.0, 48.0})
      settings.push_back({1.0, 3, r, r, 1});
  } else if (set == "small") {
    // Small maps (early exaggeration): the unsplit grid with fewer boxes over the map.
    for (int boxes : {4, 5, 6, 8, 10, 12}) settings.push_back({1.0, 3, 0.0, 2.0, 3, boxes});
  } else if (set == "grids") {
    // The unsplit grid: box widths and nodes per box.
    for (double bpu : {0.5, 0.75, 1.0, 1.5})
      for (int nodes : {2, 3}) settings.push_back({bpu, nodes});
  } else if (set == "shapes") {
    // Split grids of other shapes: boxes wider than r_c, 2 to 4 nodes per box.
    for (double r : {8.0, 12.0, 16.0, 24.0})
      for (double b : {1.0, 1.5, 2.0})
        for (int nodes : {2, 3, 4}) settings.push_back({1.0, nodes, r, r * b, 1});
  } else {
    settings = {{1.0, 3}, {0.5, 3}, {0.5, 4}};
    for (double r : {2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0})
      for (double b : {0.75, 1.0, 1.25})
        for (int deg : {0, 1}) settings.push_back({1.0, 3, r, r * b, deg});
  }
  for (const auto& s : settings) {
    tokmap::tsne::FftParams params;
    params.boxes_per_unit = s.boxes_per_unit;
    params.nodes_per_box = s.nodes;
    params.min_boxes = s.min_boxes > 0
                           ? s.min_boxes
                           : tokmap::tsne::fft_params(tokmap::tsne::TsneOptions{}, dims).min_boxes;
    params.near_radius = std::abs(s.near_radius);
    params.split_box = s.split_box;
    params.near_degree = s.degree;
    params.force_split = s.near_radius > 0;  // negative: the cost model decides
    tokmap::tsne::FftWorkspace ws;
    Result result{"", 0.0, std::vector<float>(n * dims), 0.0};
    result.ms = time_ms([&] {
      result.z =
          tokmap::tsne::repulsive_fft(result.force, m.data, n, dims, 1.0, params, ws, threads);
    });
    char name[96];
    if (s.near_radius < 0)
      std::snprintf(name, sizeof name, "fft defaults (cost model)");
    else if (s.near_radius > 0)
      std::snprintf(name, sizeof name, "fft split r_c %.1f box %.1f nodes %d degree %d",
                    s.near_radius, s.split_box, s.nodes, s.degree);
    else if (s.min_boxes > 0)
      std::snprintf(name, sizeof name, "fft min_boxes %d nodes %d", s.min_boxes, s.nodes);
    else
      std::snprintf(name, sizeof name, "fft box %.3f nodes %d (h %.3f)", 1.0 / s.boxes_per_unit,
                    s.nodes, 1.0 / s.boxes_per_unit / s.nodes);
    result.name = name;
    results.push_back(std::move(result));
  }
  {
    Result result{"barnes-hut theta 0.5", 0.0, std::vector<float>(n * dims), 0.0};
    result.ms = time_ms([&] {
      result.z =
          tokmap::tsne::repulsive_barnes_hut(result.force, m.data, n, dims, 1.0, 0.5, threads);
    });
    results.push_back(std::move(result));
  }
  // The reference last: its time on `threads` threads (the cost model's pair cost), then its
  // value on all cores.
  std::vector<float> exact(n * dims);
  const double exact_ms =
      time_ms([&] { tokmap::tsne::repulsive_exact(exact, m.data, n, dims, 1.0, threads); });
  const double z_exact = tokmap::tsne::repulsive_exact(exact, m.data, n, dims, 1.0);
  std::printf("n %zu dims %d  Z exact %.6e  exact sums %.2f ms (%.2f ns per pair)\n", n, dims,
              z_exact, exact_ms, 1e6 * exact_ms / (double(n) * double(n)));
  for (const auto& r : results)
    std::printf("%s: %8.2f ms  force err %.2e  Z err %.2e\n", r.name.c_str(), r.ms,
                relative_error(r.force, exact), std::abs(r.z - z_exact) / z_exact);
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_repulsion: %s\n", e.what());
  return 1;
}
