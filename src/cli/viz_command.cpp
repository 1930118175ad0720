// tokmap viz: flags only; the pipeline is in viz.cpp.
#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/viz.hpp"
#include "report/report.hpp"

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

// The flags of viz as parsed text, before the lists are checked.
struct VizFlags {
  VizOptions options;
  std::string dims = "2,3";
  std::string perplexity;
  std::string from_report;
};

void add_viz_flags(CLI::App& command, VizFlags& flags) {
  VizOptions& options = flags.options;
  command.add_option("-m,--model", options.pipeline.models,
                     "Model(s): folder, bundled name or Hugging Face id (id@revision for one "
                     "snapshot); repeat to compare models (different tokenizers are aligned on the "
                     "spans both cover). Default: " +
                         std::string(model::kDefaultModel));
  add_text_input_flags(command, options.input);
  command
      .add_option("-l,--layers", options.pipeline.layers,
                  "last, all, or a list such as 0,3,6 (negatives count from the end: -1 = last)")
      ->capture_default_str();
  command.add_option("--dims", flags.dims, "Map dimensions: 2, 3 or 2,3")->capture_default_str();
  command.add_option("-p,--perplexity", flags.perplexity,
                     "Perplexity, or a list (5,15,30,50) for a grid; default (tokens - 1) / 4 "
                     "clamped to [2, 30]");
  command.add_option("--seed", options.pipeline.seed, "Random seed")
      ->capture_default_str()
      ->check(whole_number(0, std::numeric_limits<std::uint64_t>::max()));
  command
      .add_option("--seeds", options.pipeline.seeds,
                  "Maps per setting from this many seeds; > 1 adds stability across seeds")
      ->capture_default_str()
      ->check(whole_number(1));
  command
      .add_option("--metric", options.pipeline.metric,
                  "Distance in the model's space: cosine or euclidean")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "euclidean"}));
  command
      .add_option("--normalize", options.pipeline.normalize,
                  "Before mapping: none, center (subtract each layer's mean) or spherize "
                  "(center, then unit length)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "center", "spherize"}));
  command.add_flag_callback(
      "--exclude-first", [&options] { options.pipeline.exclude_first = true; },
      "Leave out each text's first token, whose hidden state has an outsized norm in GPT-2 "
      "(the default)");
  command.add_flag_callback(
      "--include-first", [&options] { options.pipeline.exclude_first = false; },
      "Keep each text's first token");
  command.add_flag_callback(
      "--no-logit-lens", [&options] { options.pipeline.logit_lens = false; },
      "Skip the logit lens (each point's top-5 next tokens per layer through the output head; "
      "causal LMs only)");
  command.add_option("--highlight", options.pipeline.highlight,
                     "Words to emphasise and label first (repeatable); a word the tokenizer "
                     "splits is matched as its run of sub-tokens");
  command.add_option("-o,--out", options.out, "Report folder (replaced whole on success)")
      ->required();
  command.add_option("--iterations", options.pipeline.iterations, "t-SNE iterations")
      ->capture_default_str()
      ->check(whole_number(1));
  command.add_flag_callback(
      "--no-figures", [&options] { options.figures = false; }, "Skip the PNG/SVG/PDF figures");
  command.add_option("--threads", options.pipeline.threads, "Threads (default: all cores)")
      ->check(whole_number(0));
  command.add_option("--atlas", options.atlas,
                     "Place the texts' tokens into this atlas's frozen maps (tokmap atlas build) "
                     "instead of mapping them anew: the atlas faded, the new tokens on top, "
                     "points.tsv with source and confidence");
  command.add_option("--from-report", flags.from_report,
                     "Rerun the report in this index.html (its texts and every map-deciding "
                     "flag, from its created_with) into --out");
  add_common_flags(command, options.common);
}

void finish_flags(VizFlags& flags) {
  flags.options.pipeline.dims.clear();
  for (const double d : parse_number_list(flags.dims, "--dims"))
    flags.options.pipeline.dims.push_back(static_cast<int>(d));
  if (!flags.perplexity.empty())
    flags.options.pipeline.perplexities = parse_number_list(flags.perplexity, "--perplexity");
}

// --from-report: the report's own command line (created_with) and its texts, with --out and
// the flags that do not change the maps (--threads, --quiet, --no-figures) from this run.
VizOptions options_from_report(const VizFlags& given, const CLI::App& command) {
  const std::string& path = given.from_report;
  for (const auto* option : command.get_options()) {
    if (option->count() == 0) continue;
    const auto& names = option->get_lnames();
    const std::string name = names.empty() ? option->get_name() : names.front();
    if (name != "from-report" && name != "out" && name != "threads" && name != "quiet" &&
        name != "no-figures") {
      throw Error("--from-report takes the settings from the report; --" + name +
                      " cannot be given with it (only --out, --threads, --quiet, --no-figures)",
                  ErrorKind::usage);
    }
  }
  nlohmann::json data;
  try {
    data = nlohmann::json::parse(report::read_data_json(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": the report's data is not valid JSON: " + e.what());
  }
  const std::string created_with = data.value("created_with", std::string());
  std::vector<std::string> words;
  try {
    words = shell_split(created_with);
  } catch (const Error& e) {
    throw Error(path + ": created_with: " + e.what());
  }
  if (words.size() < 2 || words[0] != "tokmap" || words[1] != "viz") {
    throw Error(path + ": created_with is not a 'tokmap viz' command: '" + created_with + "'");
  }
  VizFlags rerun;
  CLI::App parser{"tokmap viz (from a report)", "viz"};
  add_viz_flags(parser, rerun);
  words.insert(words.end(), {"--out", given.options.out});  // created_with leaves --out off
  std::vector<std::string> reversed(words.rbegin(), words.rend() - 2);
  try {
    parser.parse(reversed);
  } catch (const CLI::ParseError& e) {
    throw Error(path + ": created_with: " + e.what());
  }
  finish_flags(rerun);
  VizOptions options = rerun.options;
  // The texts come from the report itself, so the rerun needs neither the original file nor
  // a shell that keeps long --text arguments intact.
  options.input = {};
  options.input.lossy = rerun.options.input.lossy;
  if (!data.contains("texts") || !data["texts"].is_array() || data["texts"].empty()) {
    throw Error(path + ": the report has no texts");
  }
  // A viz --atlas report holds the atlas's texts first: only the placed texts are placed again.
  std::size_t first_text = 0;
  if (!options.atlas.empty() && data.contains("tokens") && data["tokens"].is_array()) {
    for (const auto& token : data["tokens"]) {
      if (token.is_object() && token.value("source", std::string()) == "atlas" &&
          token.contains("text") && token["text"].is_number_unsigned())
        first_text = std::max<std::size_t>(first_text, token["text"].get<std::size_t>() + 1);
    }
  }
  for (std::size_t t = first_text; t < data["texts"].size(); ++t) {
    const auto& text = data["texts"][t];
    if (!text.is_string()) throw Error(path + ": the report's texts are not strings");
    options.input.texts.push_back(text.get<std::string>());
  }
  if (options.input.texts.empty()) throw Error(path + ": the report has no placed texts");
  options.out = given.options.out;
  options.common = given.options.common;
  if (command.count("--threads") > 0) options.pipeline.threads = given.options.pipeline.threads;
  if (!given.options.figures) options.figures = false;
  return options;
}

}  // namespace

void add_viz_command(CLI::App& app) {
  auto flags = std::make_shared<VizFlags>();
  auto* command = app.add_subcommand(
      "viz",
      "From text to a report folder: t-SNE maps of every layer's token embeddings (2D/3D, "
      "interactive index.html, PNG/SVG/PDF figures, points.tsv, Embedding Projector export)");
  add_viz_flags(*command, *flags);
  command->footer(
      "Examples:\n"
      "  tokmap viz --file samples/sentences.txt --highlight bank --out report\n"
      "  tokmap viz --text \"The bank of the river.\" --text \"Money at the bank.\" --layers "
      "0,-1 --out r\n"
      "  tokmap viz --from-report report/index.html --out report-again\n"
      "  tokmap viz --atlas samples/austen.tokmap-atlas --text \"She was a lady of fortune.\" "
      "--out placed");
  command->callback([flags, command] {
    if (!flags->from_report.empty()) {
      run_viz(options_from_report(*flags, *command));
      return;
    }
    finish_flags(*flags);
    run_viz(flags->options);
  });
}

}  // namespace tokmap::cli
