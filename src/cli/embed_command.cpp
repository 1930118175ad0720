// Placeholder until the command lands; replaced by its real implementation.
#include "cli/cli.hpp"
#include "core/error.hpp"

namespace tokmap::cli {
void add_embed_command(CLI::App& app) {
  auto* command = app.add_subcommand("embed", "(in progress)");
  command->callback([] { throw Error("'embed' is not implemented yet"); });
}
}  // namespace tokmap::cli
