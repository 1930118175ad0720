// The `tokmap tsne` command: formats, KL lines, exit codes and bad inputs (one-line error,
// exit 1 for bad data, 2 for bad flags, no output file left behind).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "analysis/analysis.hpp"
#include "io/io.hpp"

namespace fs = std::filesystem;

namespace {

struct CommandRun {
  int code = -1;
  std::string err;
};

class TsneCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tokmap-tsne-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  CommandRun run(const std::string& args) const {
    const std::string err_path = path("stderr.txt");
    const std::string command =
        std::string(TOKMAP_BINARY) + " tsne " + args + " 2> '" + err_path + "' > /dev/null";
    const int status = std::system(command.c_str());
    CommandRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_path);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    return r;
  }

  void write_text(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
  }

  // A raw .npy with any descr and shape text.
  void write_npy_raw(const std::string& name, const std::string& descr, const std::string& shape,
                     const std::string& payload) const {
    std::string header =
        "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
    header.push_back('\n');
    std::string out = "\x93NUMPY";
    out.push_back('\x01');
    out.push_back('\x00');
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>(header.size() >> 8));
    out += header + payload;
    std::ofstream(path(name), std::ios::binary) << out;
  }

  tokmap::io::Matrix blobs(std::size_t n, std::size_t d) const {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    tokmap::io::Matrix m;
    m.rows = n;
    m.cols = d;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j)
        m.data.push_back(normal(rng) + static_cast<float>(4 * ((i % 3) == j % 3)));
    return m;
  }

  void expect_one_line_error(const CommandRun& r, int code, const std::string& fragment) const {
    EXPECT_EQ(r.code, code) << r.err;
    EXPECT_EQ(r.err.rfind("tokmap: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  }

  // No output and no temporary file left in the folder.
  void expect_no_output() const {
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const auto name = entry.path().filename().string();
      EXPECT_EQ(name.find("out"), std::string::npos) << "left behind: " << name;
    }
  }

  fs::path dir_;
};

TEST_F(TsneCommand, LayerMinusOneIsTheLastStoredAndNonFiniteRowsNameTheLayer) {
  auto m = blobs(60, 4);
  {
    tokmap::io::SafetensorsWriter writer(path("emb.safetensors"));
    writer.set_metadata("layers", "[0, 3, 6]");
    writer.declare("hidden_states", tokmap::io::DType::F32, {3, 60, 4});
    writer.begin();
    std::vector<float> zeros(m.data.size(), 0.0f);
    writer.write("hidden_states", 0, std::span<const float>(zeros));
    auto with_nan = m.data;
    with_nan[4 * 4 + 2] = std::nanf("");  // layer 3, row 5, column 3
    writer.write("hidden_states", m.data.size(), std::span<const float>(with_nan));
    writer.write("hidden_states", 2 * m.data.size(), std::span<const float>(m.data));
    writer.commit();
  }
  const std::string io = "-i " + path("emb.safetensors") + " -o " + path("out.npy") + " ";
  expect_one_line_error(run(io + "--layer 3"), 1,
                        "emb.safetensors: layer 3, row 5, column 3 is NaN");
  expect_one_line_error(run(io + "--layer -2"), 1, "layer 3, row 5, column 3 is NaN");
  expect_one_line_error(run(io + "--layer -4"), 2, "--layer -4 is not in");
  const auto r = run(io + "--layer -1 --iterations 50 --perplexity 10");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(tokmap::io::read_npy(path("out.npy")).rows, 60u);
}

TEST_F(TsneCommand, SeedMinusOneIsAUsageError) {
  write_text("in.tsv", "0\t0\n1\t0\n0\t1\n5\t5\n");
  expect_one_line_error(run("-i " + path("in.tsv") + " -o " + path("out.npy") + " --seed -1"), 2,
                        "--seed: must be at least 0, got -1");
}

}  // namespace

TEST_F(TsneCommand, MapsNpyToEveryFormatWithKlLines) {
  tokmap::io::write_npy(path("in.npy"), blobs(300, 5));
  const auto r = run("--input " + path("in.npy") + " --out " + path("out.npy") +
                     " --iterations 300 --perplexity 20 --seed 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("iteration 50: KL divergence "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("iteration 300: KL divergence "), std::string::npos) << r.err;
  const auto out = tokmap::io::read_npy(path("out.npy"));
  EXPECT_EQ(out.rows, 300u);
  EXPECT_EQ(out.cols, 2u);

  // Same seed, other format: the same numbers (TSV round-trips float32 exactly).
  ASSERT_EQ(run("-i " + path("in.npy") + " -o " + path("out.tsv") +
                " --iterations 300 --perplexity 20 --seed 1 --quiet --threads 1")
                .code,
            0);
  const auto tsv = tokmap::io::read_delimited(path("out.tsv"), '\t');
  EXPECT_EQ(tsv.data, out.data);

  const auto quiet = run("-i " + path("in.npy") + " -o " + path("out.csv") +
                         " --dims 3 --method bh --iterations 60 -q");
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  EXPECT_EQ(tokmap::io::read_delimited(path("out.csv"), ',').cols, 3u);
}

TEST_F(TsneCommand, ReadsTsvAndWarnsAboutLargePerplexity) {
  write_text("in.tsv", "0\t0\n1\t0\n0\t1\n5\t5\n6\t5\n5\t6\n");
  const auto r = run("-i " + path("in.tsv") + " -o " + path("out.npy") + " --iterations 100");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("tokmap: warning: perplexity 30"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1.66667"), std::string::npos) << r.err;
}

TEST_F(TsneCommand, BadNpyDtypeAndShape) {
  write_npy_raw("int.npy", "<i4", "(2, 2)", std::string(16, '\0'));
  expect_one_line_error(run("-i " + path("int.npy") + " -o " + path("out.npy")), 1, "int.npy");
  write_npy_raw("flat.npy", "<f4", "(4,)", std::string(16, '\0'));
  expect_one_line_error(run("-i " + path("flat.npy") + " -o " + path("out.npy")), 1, "flat.npy");
  write_npy_raw("short.npy", "<f4", "(100, 4)", std::string(16, '\0'));
  expect_one_line_error(run("-i " + path("short.npy") + " -o " + path("out.npy")), 1, "short.npy");
  expect_no_output();
}

TEST_F(TsneCommand, RaggedNonNumericNanEmptyInputs) {
  write_text("ragged.tsv", "1\t2\t3\n4\t5\n");
  expect_one_line_error(run("-i " + path("ragged.tsv") + " -o " + path("out.npy")), 1, "line 2");
  write_text("words.tsv", "1\t2\nhello\t5\n");
  expect_one_line_error(run("-i " + path("words.tsv") + " -o " + path("out.npy")), 1, "hello");
  write_text("nan.csv", "1,2\n3,4\n5,nan\n");
  expect_one_line_error(run("-i " + path("nan.csv") + " -o " + path("out.npy")), 1, "row 3");
  write_text("inf.tsv", "1\t2\n3\tinf\n5\t6\n");
  expect_one_line_error(run("-i " + path("inf.tsv") + " -o " + path("out.npy")), 1, "row 2");
  write_text("empty.tsv", "");
  expect_one_line_error(run("-i " + path("empty.tsv") + " -o " + path("out.npy")), 1, "no rows");
  write_npy_raw("empty.npy", "<f4", "(0, 3)", "");
  expect_one_line_error(run("-i " + path("empty.npy") + " -o " + path("out.npy")), 1, "no rows");
  write_text("one.tsv", "1\t2\n");
  expect_one_line_error(run("-i " + path("one.tsv") + " -o " + path("out.npy")), 1, "at least 2");
  write_text("same.tsv", "1\t2\n1\t2\n1\t2\n");
  expect_one_line_error(run("-i " + path("same.tsv") + " -o " + path("out.npy")), 1, "identical");
  expect_one_line_error(run("-i " + path("missing.tsv") + " -o " + path("out.npy")), 1,
                        "missing.tsv");
  expect_no_output();
}

TEST_F(TsneCommand, BadFlagValuesAreUsageErrors) {
  write_text("in.tsv", "0\t0\n1\t0\n0\t1\n5\t5\n");
  const std::string io = "-i " + path("in.tsv") + " -o " + path("out.npy") + " ";
  expect_one_line_error(run(io + "--dims 4"), 2, "--dims");
  expect_one_line_error(run(io + "--method fast"), 2, "--method");
  expect_one_line_error(run(io + "--metric manhattan"), 2, "--metric");
  expect_one_line_error(run(io + "--learning-rate -3"), 2, "--learning-rate");
  expect_one_line_error(run(io + "--perplexity 0"), 2, "--perplexity");
  expect_one_line_error(run(io + "--init spectral"), 2, "--init");
  expect_one_line_error(run(io + "--layer 3"), 2, "--layer");
  expect_one_line_error(run("-i " + path("in.tsv") + " -o " + path("out.txt")), 2, "out.txt");
  expect_no_output();
}

TEST_F(TsneCommand, SafetensorsLayer) {
  const auto m = blobs(120, 6);
  {
    tokmap::io::SafetensorsWriter writer(path("emb.safetensors"));
    writer.set_metadata("layers", "[0, 6]");
    writer.declare("hidden_states", tokmap::io::DType::F32, {2, 120, 6});
    writer.begin();
    std::vector<float> zeros(m.data.size(), 0.0f);
    writer.write("hidden_states", 0, std::span<const float>(zeros));
    writer.write("hidden_states", m.data.size(), std::span<const float>(m.data));
    writer.commit();
  }
  expect_one_line_error(run("-i " + path("emb.safetensors") + " -o " + path("out.npy")), 2,
                        "layers stored: 0, 6");
  expect_one_line_error(
      run("-i " + path("emb.safetensors") + " -o " + path("out.npy") + " --layer 3"), 2,
      "--layer 3");
  // Layer 0 is all zeros: every row identical.
  expect_one_line_error(
      run("-i " + path("emb.safetensors") + " -o " + path("out.npy") + " --layer 0"), 1,
      "identical");
  const auto r = run("-i " + path("emb.safetensors") + " -o " + path("out.npy") +
                     " --layer 6 --iterations 50 --perplexity 10");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(tokmap::io::read_npy(path("out.npy")).rows, 120u);
}

// scikit-learn's own expectations of t-SNE (sklearn/manifold/tests/test_t_sne.py, 1.2),
// re-expressed against `tokmap tsne`.
namespace {

std::vector<float> nearest_neighbour_distances(const tokmap::io::Matrix& y) {
  std::vector<float> out(y.rows, std::numeric_limits<float>::infinity());
  for (std::size_t i = 0; i < y.rows; ++i)
    for (std::size_t j = 0; j < y.rows; ++j) {
      if (i == j) continue;
      double d2 = 0;
      for (std::size_t c = 0; c < y.cols; ++c)
        d2 += std::pow(y.data[i * y.cols + c] - y.data[j * y.cols + c], 2);
      out[i] = std::min(out[i], static_cast<float>(std::sqrt(d2)));
    }
  return out;
}

// assert_uniform_grid: every point has a neighbour at about the same distance.
std::string uniform_grid_problem(const tokmap::io::Matrix& y) {
  const auto nn = nearest_neighbour_distances(y);
  double mean = 0;
  for (float d : nn) mean += d;
  mean /= static_cast<double>(nn.size());
  const double lo = *std::min_element(nn.begin(), nn.end());
  const double hi = *std::max_element(nn.begin(), nn.end());
  if (!(lo > 0.1)) return "smallest neighbour distance " + std::to_string(lo);
  if (!(lo / mean > 0.5)) return "smallest / mean " + std::to_string(lo / mean);
  if (!(hi / mean < 2.0)) return "largest / mean " + std::to_string(hi / mean);
  return {};
}

}  // namespace

// test_uniform_grid: a 10 x 10 grid in [0, 1]^2, perplexity 50, random init, 500 iterations,
// seeds 0-2, exact and Barnes-Hut; like scikit-learn, a run that misses is run once more from its
// own result (t-SNE is not convex).
TEST_F(TsneCommand, ScikitLearnUniformGridIsRecovered) {
  tokmap::io::Matrix grid;
  grid.rows = 100;
  grid.cols = 2;
  for (int a = 0; a < 10; ++a)
    for (int b = 0; b < 10; ++b) {
      grid.data.push_back(static_cast<float>(b) / 9.0f);  // meshgrid order: x varies fastest
      grid.data.push_back(static_cast<float>(a) / 9.0f);
    }
  tokmap::io::write_npy(path("grid.npy"), grid);
  for (const char* method : {"exact", "bh"}) {
    for (int seed = 0; seed < 3; ++seed) {
      const std::string common = std::string(" --perplexity 50 --iterations 500 --method ") +
                                 method + " --seed " + std::to_string(seed) + " --quiet";
      ASSERT_EQ(
          run("-i " + path("grid.npy") + " -o " + path("y.npy") + " --init random" + common).code,
          0);
      std::string problem = uniform_grid_problem(tokmap::io::read_npy(path("y.npy")));
      if (!problem.empty()) {
        ASSERT_EQ(run("-i " + path("grid.npy") + " -o " + path("y2.npy") + " --init " +
                      path("y.npy") + common)
                      .code,
                  0);
        problem = uniform_grid_problem(tokmap::io::read_npy(path("y2.npy")));
      }
      EXPECT_TRUE(problem.empty()) << method << " seed " << seed << ": " << problem;
    }
  }
}

// test_preserve_trustworthiness_approximately: 50 standard normal points in 2D, random and PCA
// init, exact and Barnes-Hut, 700 iterations: trustworthiness with 1 neighbour above 0.85.
TEST_F(TsneCommand, ScikitLearnTrustworthinessIsPreserved) {
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  tokmap::io::Matrix x;
  x.rows = 50;
  x.cols = 2;
  for (std::size_t e = 0; e < 100; ++e) x.data.push_back(normal(rng));
  tokmap::io::write_npy(path("x.npy"), x);
  for (const char* method : {"exact", "bh"}) {
    for (const char* init : {"random", "pca"}) {
      ASSERT_EQ(run("-i " + path("x.npy") + " -o " + path("y.npy") + " --iterations 700 --seed 0" +
                    " --method " + method + " --init " + init + " --quiet")
                    .code,
                0);
      const auto y = tokmap::io::read_npy(path("y.npy"));
      tokmap::analysis::QualityOptions options;
      options.k = 1;
      const auto quality = tokmap::analysis::map_quality({x.data, 50, 2}, {y.data, 50, 2}, options);
      EXPECT_GT(quality.trustworthiness, 0.85) << method << " " << init;
    }
  }
}
