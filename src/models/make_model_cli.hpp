// The command-line front of the model makers, shared by the infernet-make-model tool and `infernet model
// make`: subcommands `tiny` and `random` with the same options in both.
#pragma once

namespace CLI {
class App;
}

namespace infernet::models {

// Adds `tiny` and `random` under parent. When one runs, exit_code becomes 0 on success, 1 on failure (after
// one line "infernet: <message>" on stderr); the summary goes to stdout.
void add_make_model_commands(CLI::App& parent, int& exit_code);

}  // namespace infernet::models
