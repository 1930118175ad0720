#include "cli/viz.hpp"

#include <cstdio>
#include <map>
#include <memory>

#include "cli/cli.hpp"
#include "explore/explore.hpp"
#include "io/io.hpp"

namespace tokmap::cli {

namespace {

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

// The command that makes this report again: the input and every flag that decides the maps,
// quoted for a POSIX shell (`tokmap viz --from-report` reads it back). Only --out is left off,
// so the same input gives the same bytes wherever the report is written: add --out DIR.
std::string command_line(const VizOptions& options, const std::vector<std::string>& models,
                         const std::vector<double>& perplexities) {
  std::vector<std::string> words{"tokmap", "viz"};
  for (const auto& model : models) words.insert(words.end(), {"--model", model});
  if (!options.input.file.empty()) {
    words.insert(words.end(), {"--file", options.input.file});
    if (options.input.whole_file) words.push_back("--whole-file");
  } else {
    for (const auto& text : options.input.texts) words.insert(words.end(), {"--text", text});
  }
  if (options.input.lossy) words.push_back("--lossy");
  for (const auto& word : options.pipeline.highlight)
    words.insert(words.end(), {"--highlight", word});
  std::string dims, perplexity;
  for (const int d : options.pipeline.dims) dims += (dims.empty() ? "" : ",") + std::to_string(d);
  for (const double p : perplexities)
    perplexity += (perplexity.empty() ? "" : ",") + format("%g", p);
  words.insert(words.end(), {"--layers", options.pipeline.layers, "--dims", dims, "--perplexity",
                             perplexity, "--seed", std::to_string(options.pipeline.seed), "--seeds",
                             std::to_string(options.pipeline.seeds), "--metric",
                             options.pipeline.metric, "--normalize", options.pipeline.normalize,
                             options.pipeline.exclude_first ? "--exclude-first" : "--include-first",
                             "--iterations", std::to_string(options.pipeline.iterations)});
  if (!options.pipeline.logit_lens) words.push_back("--no-logit-lens");
  if (!options.figures) words.push_back("--no-figures");
  std::string line;
  for (const auto& word : words) line += (line.empty() ? "" : " ") + shell_quote(word);
  return line;
}

}  // namespace

double default_perplexity(std::size_t n_points) { return explore::default_perplexity(n_points); }

namespace {

// viz --atlas: the texts placed into an atlas's frozen maps (explore::run_atlas).
void run_viz_atlas(const VizOptions& options) {
  if (options.out.empty()) throw Error("--out is required", ErrorKind::usage);
  io::StagingFolder staging(options.out);
  const auto texts = read_texts(options.input, options.common);
  explore::Hooks hooks = hooks_for(options.common);
  explore::Engine engine(resolve_options());
  explore::AtlasVizOptions atlas_options;
  if (!options.pipeline.models.empty()) atlas_options.model = options.pipeline.models.front();
  atlas_options.encode.lossy = options.input.lossy;
  atlas_options.exclude_first = options.pipeline.exclude_first;
  atlas_options.threads = options.pipeline.threads;
  explore::Result result = explore::run_atlas(engine, texts, options.atlas, atlas_options, hooks);
  std::string line = "tokmap viz --atlas " + shell_quote(options.atlas);
  if (!options.input.file.empty()) {
    line += " --file " + shell_quote(options.input.file);
  } else {
    for (const auto& text : options.input.texts) line += " --text " + shell_quote(text);
  }
  result.data.created_with = line;
  explore::WriteOptions write_options;
  write_options.figures = options.figures;
  write_options.threads = options.pipeline.threads;
  explore::write_report(staging.path(), result, write_options);
  staging.commit();
  info(options.common, "wrote " + options.out + "/index.html: " + result.data.title);
}

}  // namespace

void run_viz(const VizOptions& options) {
  if (!options.atlas.empty()) {
    run_viz_atlas(options);
    return;
  }
  explore::VizOptions pipeline = options.pipeline;
  pipeline.encode.lossy = options.input.lossy;
  explore::validate(pipeline);
  if (options.out.empty()) throw Error("--out is required", ErrorKind::usage);
  io::StagingFolder staging(options.out);  // fails early when the destination is not writable

  const auto texts = read_texts(options.input, options.common);
  explore::Hooks hooks = hooks_for(options.common);
  std::map<std::string, std::unique_ptr<Progress>, std::less<>> bars;
  hooks.progress = [&](std::string_view what, std::size_t done, std::size_t total) {
    auto it = bars.find(what);
    if (it == bars.end()) {
      it = bars.emplace(std::string(what),
                        std::make_unique<Progress>(options.common, std::string(what), total))
               .first;
    }
    it->second->update(done);
    if (done >= total) it->second->finish();
  };
  explore::Engine engine(resolve_options());
  explore::Result result = explore::run(engine, texts, pipeline, hooks);
  result.data.created_with = command_line(options, result.data.models, result.data.perplexities);
  explore::WriteOptions write_options;
  write_options.figures = options.figures;
  write_options.threads = options.pipeline.threads;
  explore::write_report(staging.path(), result, write_options);
  staging.commit();
  bars.clear();
  info(options.common, "wrote " + options.out + "/index.html: " + explore::summary(result));
  if (const std::string degenerate = explore::degenerate_maps(result.data); !degenerate.empty()) {
    warn(options.common, degenerate);
  }
}

}  // namespace tokmap::cli
