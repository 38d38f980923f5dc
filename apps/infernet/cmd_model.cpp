// infernet model make tiny|random: the project's own GGUF models (docs/models.md), the same commands as the
// infernet-make-model build tool.
#include "apps/infernet/command_context.hpp"
#include "models/make_model_cli.hpp"

namespace infernet::cli {

void add_model_commands(CLI::App& app, CommandContext& ctx) {
  CLI::App* model = app.add_subcommand("model", "Local model files");
  model->require_subcommand(1);
  CLI::App* make = model->add_subcommand("make", "Make one of the project's own GGUF models");
  make->require_subcommand(1);
  models::add_make_model_commands(*make, ctx.exit_code);
}

}  // namespace infernet::cli
