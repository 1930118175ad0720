// Placeholder until the command lands; replaced by its real implementation.
#include "cli/cli.hpp"
#include "core/error.hpp"

namespace tokmap::cli {
void add_tokenize_command(CLI::App& app) {
  auto* command = app.add_subcommand("tokenize", "(in progress)");
  command->callback([] { throw Error("'tokenize' is not implemented yet"); });
}
}  // namespace tokmap::cli
