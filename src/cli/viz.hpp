#pragma once
// `tokmap viz`: text → hidden states → t-SNE maps per layer → analyses → a report folder.
// Internal to src/cli; the command file only parses flags into VizOptions.
#include <cstdint>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "cli/inputs.hpp"
#include "explore/explore.hpp"

namespace tokmap::cli {

struct VizOptions {
  CommonOptions common;
  TextInputOptions input;
  explore::VizOptions pipeline;  // what decides the report (input.lossy is copied into it)
  std::string out;               // report folder
  bool figures = true;           // PNG/SVG/PDF figures
  std::string atlas;             // place the texts into this .tokmap-atlas (no new maps)
};

// The perplexity used when none is given: (n - 1) / 4 clamped to [2, 30].
double default_perplexity(std::size_t n_points);

void run_viz(const VizOptions& options);

}  // namespace tokmap::cli
