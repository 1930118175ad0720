// tokmap viz: flags only; the pipeline is in viz.cpp.
#include <memory>

#include "cli/viz.hpp"

namespace tokmap::cli {

namespace {

std::vector<double> parse_number_list(const std::string& text, const char* flag) {
  std::vector<double> values;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    try {
      std::size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw Error(std::string(flag) + ": '" + item + "' is not a number", ErrorKind::usage);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

}  // namespace

void add_viz_command(CLI::App& app) {
  auto options = std::make_shared<VizOptions>();
  auto dims = std::make_shared<std::string>("2,3");
  auto perplexity = std::make_shared<std::string>();
  auto* command = app.add_subcommand(
      "viz",
      "From text to a report folder: t-SNE maps of every layer's token embeddings (2D/3D, "
      "interactive index.html, PNG/SVG/PDF figures, points.tsv, Embedding Projector export)");
  command->add_option("-m,--model", options->models,
                      "Model(s): folder, bundled name or Hugging Face id; repeat to compare models "
                      "(same tokenizer). Default: " +
                          std::string(model::kDefaultModel));
  add_text_input_flags(*command, options->input);
  command->add_option("-l,--layers", options->layers, "last, all, or a list such as 0,3,6")
      ->capture_default_str();
  command->add_option("--dims", *dims, "Map dimensions: 2, 3 or 2,3")->capture_default_str();
  command->add_option("-p,--perplexity", *perplexity,
                      "Perplexity, or a list (5,15,30,50) for a grid; default (tokens - 1) / 4 "
                      "clamped to [2, 30]");
  command->add_option("--seed", options->seed, "Random seed")->capture_default_str();
  command
      ->add_option("--seeds", options->seeds,
                   "Maps per setting from this many seeds; > 1 adds stability across seeds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--metric", options->metric,
                   "Distance in the model's space: cosine or euclidean")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "euclidean"}));
  command
      ->add_option("--normalize", options->normalize,
                   "Before mapping: none, center (subtract each layer's mean) or spherize "
                   "(center, then unit length)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "center", "spherize"}));
  command->add_flag("--exclude-first,!--include-first", options->exclude_first,
                    "Leave out each text's first token, whose hidden state has an outsized norm "
                    "in GPT-2 (default: excluded)");
  command->add_option("--highlight", options->highlight,
                      "Words to emphasise and label first (repeatable)");
  command->add_option("-o,--out", options->out, "Report folder (replaced whole on success)")
      ->required();
  command->add_option("--iterations", options->iterations, "t-SNE iterations")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_flag("--no-figures{false}", options->figures, "Skip the PNG/SVG/PDF figures");
  command->add_option("--threads", options->threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  add_common_flags(*command, options->common);
  command->callback([options, dims, perplexity] {
    options->dims.clear();
    for (const double d : parse_number_list(*dims, "--dims"))
      options->dims.push_back(static_cast<int>(d));
    if (!perplexity->empty())
      options->perplexities = parse_number_list(*perplexity, "--perplexity");
    run_viz(*options);
  });
}

}  // namespace tokmap::cli
