// What every subcommand shares: the global options, the loaded configuration, and helpers for the standard
// streams. Subcommands report failure by returning a non-zero exit code after printing one line to stderr.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.hpp"
#include "core/result.hpp"
#include "nostr/keys.hpp"

namespace infernet::cli {

// Exit codes: 0 success, 1 the operation failed (invalid input, bad signature, I/O), 2 usage error.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Largest input read from stdin: bigger than any event or NIP-44 payload the network carries.
constexpr size_t kMaxStdinBytes = 64 * 1024 * 1024;

struct CommandContext {
  // Global options, filled by CLI11 before any subcommand runs.
  std::string config_file;
  std::vector<std::string> overrides;  // --set key=value
  std::string data_dir;
  std::string key_file;
  std::string log_level;

  int exit_code = 0;

  // Loads the configuration once, from the sources above. Errors: as Config::load.
  Result<Config> load_config() const;
  // Reads the node's key from the configured key file.
  Result<nostr::Keypair> load_keys() const;
};

// Prints "infernet: <message>" to stderr and returns kExitFailure.
int fail(const Error& error);
int fail(const std::string& message);

// Reads all of stdin (up to kMaxStdinBytes). Errors: kLimitExceeded, kIo.
Result<std::string> read_stdin();
// Same, with surrounding whitespace removed (for JSON, keys and payloads).
Result<std::string> read_stdin_trimmed();

void add_key_commands(CLI::App& app, CommandContext& ctx);
void add_event_commands(CLI::App& app, CommandContext& ctx);
void add_nip44_commands(CLI::App& app, CommandContext& ctx);
void add_nip19_commands(CLI::App& app, CommandContext& ctx);
void add_nip98_commands(CLI::App& app, CommandContext& ctx);
void add_config_commands(CLI::App& app, CommandContext& ctx);
void add_node_commands(CLI::App& app, CommandContext& ctx);
void add_relay_client_commands(CLI::App& app, CommandContext& ctx);

}  // namespace infernet::cli
