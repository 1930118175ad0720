// tune_tsne: runs the t-SNE library with optimiser settings given as key=value, for measuring
// defaults (the CLI exposes only the documented flags).
//
//   tune_tsne DATA.npy [iterations=750] [ee_iterations=250] [ee=12] [momentum=0.5]
//             [final_momentum=0.9] [max_step=5] [learning_rate=0] [lr_floor=200]
//             [limit_ee=1 (0: early exaggeration uncapped)] [pca=-1] [threads=0]
//             [method=fft|bh|exact] [dims=2] [perplexity=30] [metric=euclidean|cosine]
//             [rows=N (the first N rows)]
//             [min_boxes_3d=6] [nodes=3] [near_radius=4] [split_box=4] [out=Y.npy]
// Prints the KL, the seconds and the smallest and largest per-coordinate spread of the map.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "io/io.hpp"
#include "tsne/tsne.hpp"

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tune_tsne DATA.npy [key=value ...]\n");
    return 2;
  }
  const auto x = tokmap::io::read_npy(argv[1]);
  tokmap::tsne::TsneOptions o;
  std::string out;
  std::size_t rows = 0;  // 0: all; otherwise the first `rows` rows
  for (int a = 2; a < argc; ++a) {
    const std::string arg = argv[a];
    const auto eq = arg.find('=');
    const std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    const double v = std::atof(value.c_str());
    if (key == "iterations")
      o.iterations = static_cast<int>(v);
    else if (key == "ee_iterations")
      o.early_exaggeration_iterations = static_cast<int>(v);
    else if (key == "ee")
      o.early_exaggeration = v;
    else if (key == "momentum")
      o.momentum = v;
    else if (key == "final_momentum")
      o.final_momentum = v;
    else if (key == "max_step")
      o.max_step_norm = v;
    else if (key == "learning_rate")
      o.learning_rate = v;
    else if (key == "pca")
      o.pca_dims = static_cast<int>(v);
    else if (key == "seed")
      o.seed = static_cast<std::uint64_t>(v);
    else if (key == "threads")
      o.threads = static_cast<int>(v);
    else if (key == "dims")
      o.dims = static_cast<int>(v);
    else if (key == "limit_ee")
      o.limit_early_exaggeration = v != 0;
    else if (key == "lr_floor")
      o.learning_rate_floor = v;
    else if (key == "perplexity")
      o.perplexity = v;
    else if (key == "metric")
      o.metric = value == "cosine" ? tokmap::neighbors::Metric::cosine
                                   : tokmap::neighbors::Metric::euclidean;
    else if (key == "min_boxes_3d")
      o.fft_min_boxes_3d = static_cast<int>(v);
    else if (key == "nodes")
      o.fft_nodes_per_box = static_cast<int>(v);
    else if (key == "split_nodes_3d")
      o.fft_split_nodes_per_box_3d = static_cast<int>(v);
    else if (key == "near_radius")
      o.fft_near_radius = v;
    else if (key == "split_box")
      o.fft_split_box = v;
    else if (key == "rows")
      rows = static_cast<std::size_t>(v);
    else if (key == "out")
      out = value;
    else if (key == "method")
      o.method = value == "bh"      ? tokmap::tsne::Method::barnes_hut
                 : value == "exact" ? tokmap::tsne::Method::exact
                                    : tokmap::tsne::Method::fft;
    else {
      std::fprintf(stderr, "unknown key %s\n", key.c_str());
      return 2;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t n = rows > 0 && rows < x.rows ? rows : x.rows;
  const auto r = tokmap::tsne::run_tsne(std::span(x.data).first(n * x.cols), n, x.cols, o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double spread_min = 1e300, spread_max = 0;
  for (int a = 0; a < r.dims; ++a) {
    double m = 0, v = 0;
    for (std::size_t i = 0; i < r.n; ++i) m += r.embedding[i * r.dims + a];
    m /= static_cast<double>(r.n);
    for (std::size_t i = 0; i < r.n; ++i) v += std::pow(r.embedding[i * r.dims + a] - m, 2);
    const double sd = std::sqrt(v / static_cast<double>(r.n));
    spread_min = std::min(spread_min, sd);
    spread_max = std::max(spread_max, sd);
  }
  std::printf("KL %.4f  %.2f s  std %.3g..%.3g\n", r.kl, s, spread_min, spread_max);
  if (!out.empty()) {
    tokmap::io::Matrix m;
    m.rows = r.n;
    m.cols = static_cast<std::size_t>(r.dims);
    m.data = r.embedding;
    tokmap::io::write_npy(out, m);
  }
} catch (const std::exception& e) {
  std::fprintf(stderr, "tune_tsne: %s\n", e.what());
  return 1;
}
