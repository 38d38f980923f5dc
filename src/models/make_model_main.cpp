// infernet-make-model: makes the project's own GGUF models at build time (the tiny_model and bench_model
// targets) without the whole infernet binary. `infernet model make` offers the same commands.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "core/log.hpp"
#include "models/make_model_cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Makes the project's own GGUF models: a tiny trained llama and a random-weight speed model.",
               "infernet-make-model"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  int exit_code = 1;
  infernet::models::add_make_model_commands(app, exit_code);
  app.parse_complete_callback([&log_level] { (void)infernet::init_logging(log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infernet-make-model: internal error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
