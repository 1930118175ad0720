// tokmap tsne: t-SNE of any matrix (.npy, .tsv, .csv) or of one layer of a `tokmap embed` file.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "core/error.hpp"
#include "io/io.hpp"
#include "tsne/tsne.hpp"

namespace tokmap::cli {

namespace {

struct TsneCommandOptions {
  CommonOptions common;
  std::string input;
  std::string out;
  int dims = 2;
  double perplexity = 30.0;
  std::uint64_t seed = 0;
  int iterations = 750;
  double early_exaggeration = 12.0;
  std::string learning_rate = "auto";
  std::string method = "auto";
  std::string metric = "euclidean";
  std::string pca = "auto";
  std::string init = "pca";
  double dof = 1.0;
  int threads = 0;
  int layer = -1;
  bool layer_given = false;
  long resolved_layer = -1;  // the stored layer --layer selected (negatives resolved)
};

std::string lower_extension(const std::string& path) {
  std::string ext = io::fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// The list of layer numbers in the `layers` metadata of a tokmap embeddings file ("[0, 3, 6]").
std::vector<long> parse_layer_list(const std::string& text, const std::string& where) {
  std::vector<long> layers;
  std::size_t i = 0;
  const auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip();
  if (i >= text.size() || text[i] != '[')
    throw Error(where + ": metadata 'layers' is not a JSON list");
  ++i;
  skip();
  if (i < text.size() && text[i] == ']') return layers;
  while (true) {
    skip();
    std::size_t used = 0;
    long value = 0;
    try {
      value = std::stol(text.substr(i), &used);
    } catch (const std::exception&) {
      throw Error(where + ": metadata 'layers' is not a list of integers");
    }
    layers.push_back(value);
    i += used;
    skip();
    if (i < text.size() && text[i] == ',') {
      ++i;
      continue;
    }
    if (i < text.size() && text[i] == ']') break;
    throw Error(where + ": metadata 'layers' is not a list of integers");
  }
  return layers;
}

io::Matrix read_safetensors_layer(const std::string& path, TsneCommandOptions& options) {
  const io::SafetensorsFile file(path);
  const auto* tensor = file.find("hidden_states");
  if (!tensor)
    throw Error(path + ": no tensor 'hidden_states' (not an embeddings file from 'tokmap embed')");
  if (tensor->shape.size() != 3)
    throw Error(path + ": 'hidden_states' has " + std::to_string(tensor->shape.size()) +
                " dimensions, expected 3 (layers, tokens, width)");
  const auto it = file.metadata().find("layers");
  if (it == file.metadata().end()) throw Error(path + ": metadata 'layers' is missing");
  const auto layers = parse_layer_list(it->second, path);
  if (static_cast<std::int64_t>(layers.size()) != tensor->shape[0])
    throw Error(path + ": metadata 'layers' lists " + std::to_string(layers.size()) +
                " layers but 'hidden_states' has " + std::to_string(tensor->shape[0]));
  std::string stored;
  for (std::size_t l = 0; l < layers.size(); ++l)
    stored += (l ? ", " : "") + std::to_string(layers[l]);
  if (!options.layer_given)
    throw Error("--layer is required for a .safetensors input (layers stored: " + stored + ")",
                ErrorKind::usage);
  // Negative layers count from the end of the stored list: -1 is the deepest layer stored.
  std::size_t index = layers.size();
  if (options.layer < 0) {
    if (static_cast<std::size_t>(-static_cast<long>(options.layer)) <= layers.size())
      index = layers.size() - static_cast<std::size_t>(-static_cast<long>(options.layer));
  } else {
    for (std::size_t l = 0; l < layers.size(); ++l)
      if (layers[l] == options.layer) index = l;
  }
  if (index == layers.size())
    throw Error("--layer " + std::to_string(options.layer) + " is not in " + path +
                    " (layers stored: " + stored + "; -1 is the last)",
                ErrorKind::usage);
  options.resolved_layer = layers[index];
  const auto all = file.to_f32(*tensor);
  io::Matrix matrix;
  matrix.rows = static_cast<std::size_t>(tensor->shape[1]);
  matrix.cols = static_cast<std::size_t>(tensor->shape[2]);
  const std::size_t size = matrix.rows * matrix.cols;
  matrix.data.assign(all.begin() + static_cast<std::ptrdiff_t>(index * size),
                     all.begin() + static_cast<std::ptrdiff_t>((index + 1) * size));
  return matrix;
}

io::Matrix read_input(TsneCommandOptions& options) {
  const std::string ext = lower_extension(options.input);
  if (options.layer_given && ext != ".safetensors")
    throw Error("--layer only applies to a .safetensors input", ErrorKind::usage);
  io::Matrix matrix;
  if (ext == ".npy")
    matrix = io::read_npy(options.input);
  else if (ext == ".tsv")
    matrix = io::read_delimited(options.input, '\t');
  else if (ext == ".csv")
    matrix = io::read_delimited(options.input, ',');
  else if (ext == ".safetensors")
    matrix = read_safetensors_layer(options.input, options);
  else
    throw Error(
        "--input " + options.input + ": unknown format (expected .npy, .tsv, .csv or .safetensors)",
        ErrorKind::usage);
  if (matrix.rows == 0 || matrix.cols == 0)
    throw Error(options.input + ": the input has no " + (matrix.rows == 0 ? "rows" : "columns"));
  io::check_finite(matrix, options.input,
                   ext == ".safetensors" ? "layer " + std::to_string(options.resolved_layer) : "");
  return matrix;
}

tsne::TsneOptions library_options(const TsneCommandOptions& o) {
  const auto usage = [](const std::string& m) { throw Error(m, ErrorKind::usage); };
  tsne::TsneOptions t;
  if (o.dims != 2 && o.dims != 3) usage("--dims must be 2 or 3, got " + std::to_string(o.dims));
  t.dims = o.dims;
  if (!(o.perplexity > 0) || !std::isfinite(o.perplexity)) usage("--perplexity must be positive");
  t.perplexity = o.perplexity;
  t.seed = o.seed;
  if (o.iterations < 1) usage("--iterations must be at least 1");
  t.iterations = o.iterations;
  t.early_exaggeration_iterations = std::min(250, o.iterations);
  if (!(o.early_exaggeration > 0) || !std::isfinite(o.early_exaggeration))
    usage("--early-exaggeration must be positive");
  t.early_exaggeration = o.early_exaggeration;
  if (o.learning_rate != "auto") {
    double lr = 0;
    try {
      std::size_t used = 0;
      lr = std::stod(o.learning_rate, &used);
      if (used != o.learning_rate.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      usage("--learning-rate must be 'auto' or a positive number, got '" + o.learning_rate + "'");
    }
    if (!(lr > 0) || !std::isfinite(lr)) usage("--learning-rate must be positive");
    t.learning_rate = lr;
  }
  if (o.method == "auto")
    t.method = tsne::Method::automatic;
  else if (o.method == "exact")
    t.method = tsne::Method::exact;
  else if (o.method == "bh")
    t.method = tsne::Method::barnes_hut;
  else if (o.method == "fft")
    t.method = tsne::Method::fft;
  else
    usage("--method must be auto, exact, bh or fft, got '" + o.method + "'");
  if (o.metric == "euclidean")
    t.metric = neighbors::Metric::euclidean;
  else if (o.metric == "cosine")
    t.metric = neighbors::Metric::cosine;
  else
    usage("--metric must be euclidean or cosine, got '" + o.metric + "'");
  if (o.pca == "auto") {
    t.pca_dims = -1;
  } else {
    try {
      std::size_t used = 0;
      const long v = std::stol(o.pca, &used);
      if (used != o.pca.size() || v < 0 || v > 100000) throw std::invalid_argument("range");
      t.pca_dims = static_cast<int>(v);
    } catch (const std::exception&) {
      usage("--pca must be 'auto' or a number of dimensions >= 0 (0 = off), got '" + o.pca + "'");
    }
  }
  if (!(o.dof > 0) || !std::isfinite(o.dof)) usage("--dof must be positive");
  t.dof = o.dof;
  if (o.threads < 0) usage("--threads must be >= 0 (0 = all cores)");
  t.threads = o.threads;
  return t;
}

void run_tsne_command(TsneCommandOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  tsne::TsneOptions topt = library_options(options);
  const std::string out_ext = lower_extension(options.out);
  if (out_ext != ".npy" && out_ext != ".tsv" && out_ext != ".csv")
    throw Error("--out " + options.out + ": unknown format (expected .npy, .tsv or .csv)",
                ErrorKind::usage);
  if (options.init == "pca") {
    topt.init = tsne::Init::pca;
  } else if (options.init == "random") {
    topt.init = tsne::Init::random;
  } else if (lower_extension(options.init) == ".npy") {
    topt.init = tsne::Init::given;
  } else {
    throw Error("--init must be pca, random or a .npy file, got '" + options.init + "'",
                ErrorKind::usage);
  }

  const io::Matrix input = read_input(options);
  if (topt.init == tsne::Init::given) {
    const io::Matrix init = io::read_npy(options.init);
    if (init.rows != input.rows || init.cols != static_cast<std::size_t>(topt.dims))
      throw Error(options.init + ": initial embedding is " + std::to_string(init.rows) + " x " +
                  std::to_string(init.cols) + ", expected " + std::to_string(input.rows) + " x " +
                  std::to_string(topt.dims));
    io::check_finite(init, options.init);
    topt.initial_embedding = init.data;
  }

  Progress progress(options.common, "t-SNE", static_cast<std::size_t>(topt.iterations));
  const CommonOptions& common = options.common;
  bool estimate_noted = false;
  const auto result = tsne::run_tsne(
      input.data, input.rows, input.cols, topt, [&](const tsne::IterationReport& report) {
        progress.update(static_cast<std::size_t>(report.iteration));
        if (!common.quiet) {
          progress.finish();
          if (!report.kl_exact && !estimate_noted) {
            info(common, "KL divergence above 10,000 points is an estimate (approximate Z)");
            estimate_noted = true;
          }
          std::fprintf(stderr, "iteration %d: KL divergence %.4f\n", report.iteration, report.kl);
        }
        return true;
      });
  progress.finish();
  for (const auto& w : result.warnings) warn(common, w);

  io::Matrix output;
  output.rows = result.n;
  output.cols = static_cast<std::size_t>(result.dims);
  output.data = result.embedding;
  if (out_ext == ".npy")
    io::write_npy(options.out, output);
  else
    io::write_delimited(options.out, output, out_ext == ".tsv" ? '\t' : ',');

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[256];
  std::snprintf(line, sizeof line, "wrote %s: %zu x %d, method %s, perplexity %g, KL %.4f, %.1f s",
                options.out.c_str(), result.n, result.dims, tsne::method_name(result.method),
                result.perplexity, result.kl, seconds);
  info(common, line);
}

}  // namespace

void add_tsne_command(CLI::App& app) {
  auto options = std::make_shared<TsneCommandOptions>();
  auto* command = app.add_subcommand(
      "tsne", "t-SNE map of a matrix (.npy, .tsv, .csv) or of one layer of a 'tokmap embed' file");
  command
      ->add_option("-i,--input", options->input,
                   "Input: .npy (float32/float64, 2-D), .tsv/.csv (numbers only) or an "
                   "embeddings .safetensors (with --layer)")
      ->required();
  command->add_option("-o,--out", options->out, "Output: .npy (float32), .tsv or .csv")->required();
  command->add_option("--dims", options->dims, "Map dimensions: 2 or 3")->capture_default_str();
  command
      ->add_option("--perplexity", options->perplexity, "Perplexity (lowered to (N-1)/3 if >= N)")
      ->capture_default_str();
  command->add_option("--seed", options->seed, "Random seed")
      ->capture_default_str()
      ->check(whole_number(0, std::numeric_limits<std::uint64_t>::max()));
  command
      ->add_option("--iterations", options->iterations,
                   "Total iterations (the first 250 with early exaggeration)")
      ->capture_default_str();
  command
      ->add_option("--early-exaggeration", options->early_exaggeration, "Early exaggeration factor")
      ->capture_default_str();
  command
      ->add_option("--learning-rate", options->learning_rate,
                   "'auto' (= max(N / early exaggeration, 50)) or a number")
      ->capture_default_str();
  command->add_option("--method", options->method, "auto, exact, bh (Barnes-Hut) or fft")
      ->capture_default_str();
  command->add_option("--metric", options->metric, "euclidean or cosine")->capture_default_str();
  command
      ->add_option("--pca", options->pca,
                   "Reduce to this many dimensions for the neighbour search (auto: 50 when D > 50; "
                   "0: off); neighbours are re-ranked in the full space")
      ->capture_default_str();
  command->add_option("--init", options->init, "pca, random, or a .npy file (N x dims)")
      ->capture_default_str();
  command->add_option("--dof", options->dof, "Degrees of freedom of the t kernel (1 = t-SNE)")
      ->capture_default_str();
  command->add_option("--threads", options->threads, "Threads (0 = all cores)")
      ->capture_default_str();
  command->add_option(
      "--layer", options->layer,
      "Layer to map from a .safetensors input (a number in its 'layers' list; -1 = the last "
      "stored, -2 the one before)");
  add_common_flags(*command, options->common);
  command->footer(
      "Examples:\n"
      "  tokmap tsne --input vectors.tsv --out map.tsv --perplexity 15\n"
      "  tokmap tsne --input states.safetensors --layer -1 --dims 3 --out map.npy");
  command->callback([options, command] {
    options->layer_given = command->count("--layer") > 0;
    run_tsne_command(*options);
  });
}

}  // namespace tokmap::cli
