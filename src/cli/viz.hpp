#pragma once
// `tokmap viz`: text → hidden states → t-SNE maps per layer → analyses → a report folder.
// Internal to src/cli; the command file only parses flags into VizOptions.
#include <cstdint>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "cli/inputs.hpp"

namespace tokmap::cli {

struct VizOptions {
  CommonOptions common;
  TextInputOptions input;
  std::vector<std::string> models;  // empty = the default bundled model
  std::string layers = "all";       // all | last | list
  std::vector<int> dims{2, 3};
  std::vector<double> perplexities;  // empty = chosen from the number of tokens
  std::uint64_t seed = 0;
  int seeds = 1;                       // maps per setting; > 1 adds stability across seeds
  std::string metric = "cosine";       // cosine | euclidean (original space)
  std::string normalize = "center";    // none | center | spherize
  bool exclude_first = true;           // drop each text's position-0 token
  std::vector<std::string> highlight;  // words whose tokens are emphasised and labelled
  std::string out;                     // report folder
  std::string atlas;                   // place the texts into this .tokmap-atlas (no new maps)
  int iterations = 750;
  bool figures = true;  // PNG/SVG/PDF figures
  int threads = 0;
};

// The perplexity used when none is given: (n - 1) / 4 clamped to [2, 30].
double default_perplexity(std::size_t n_points);

void run_viz(const VizOptions& options);

}  // namespace tokmap::cli
