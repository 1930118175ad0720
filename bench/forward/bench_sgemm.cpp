// OpenBLAS sgemm speed at the shapes of a model's matmuls: out (M, N) = inp (M, K) · W^T with
// W (N, K) (nn.Linear / GGUF layout, as kernels::matmul_transposed calls it), best of N runs,
// on 1 BLAS thread and on all of them. The "peak" a forward pass can reach on this machine.
//
//   bench_sgemm --shapes 256x576x576,256x576x1536 [--threads 1,2] [--runs 5]
//
// Prints one JSON line per shape and thread count.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string shapes = "256x576x576", threads_list = "1,2";
  int runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--shapes")
      shapes = argv[i + 1];
    else if (arg == "--threads")
      threads_list = argv[i + 1];
    else if (arg == "--runs")
      runs = std::stoi(argv[i + 1]);
  }
  std::vector<int> thread_counts;
  {
    std::stringstream s(threads_list);
    std::string item;
    while (std::getline(s, item, ',')) thread_counts.push_back(std::stoi(item));
  }
  std::stringstream s(shapes);
  std::string shape;
  while (std::getline(s, shape, ',')) {
    int M = 0, K = 0, N = 0;
    if (std::sscanf(shape.c_str(), "%dx%dx%d", &M, &K, &N) != 3) return 2;
    std::vector<float> a(std::size_t(M) * K), w(std::size_t(N) * K), out(std::size_t(M) * N);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(i % 97) * 0.01f - 0.5f;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(i % 89) * 0.01f - 0.4f;
    for (const int threads : thread_counts) {
      openblas_set_num_threads(threads);
      double best = 1e30;
      for (int r = 0; r <= runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a.data(), K, w.data(),
                    K, 0.0f, out.data(), N);
        const double t =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r > 0) best = std::min(best, t);
      }
      std::printf(
          "{\"sgemm\": \"%dx%dx%d\", \"threads\": %d, \"best_s\": %.6f, \"gflops\": %.1f, "
          "\"core\": \"%s\"}\n",
          M, K, N, threads, best, 2.0 * M * K * N / best / 1e9, openblas_get_corename());
    }
  }
  return 0;
}
