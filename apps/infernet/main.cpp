// infernet: one binary, many subcommands. Each subcommand lives in its own cmd_*.cpp; this file wires the
// global options, the configuration and logging, and turns any escaped exception into one line and a non-zero
// exit.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "apps/infernet/command_context.hpp"
#include "core/log.hpp"
#include "nostr/identity.hpp"

namespace infernet::cli {

// submit, status, watch, cancel, jobs, providers, models (cmd_jobs.cpp).
void add_job_commands(CLI::App& app, CommandContext& ctx);
// model make tiny|random (cmd_model.cpp).
void add_model_commands(CLI::App& app, CommandContext& ctx);
// apikey create|list|revoke (cmd_apikey.cpp).
void add_apikey_commands(CLI::App& app, CommandContext& ctx);
// webhook add|list|remove|enable (cmd_notify.cpp).
void add_webhook_commands(CLI::App& app, CommandContext& ctx);
// reserve, reservations (cmd_reserve.cpp).
void add_reservation_commands(CLI::App& app, CommandContext& ctx);

Result<Config> CommandContext::load_config() const {
  ConfigSources sources;
  sources.config_file = config_file;
  // Dedicated flags are spelled-out --set overrides, applied after any --set.
  sources.overrides = overrides;
  if (!data_dir.empty()) sources.overrides.push_back("data_dir=" + data_dir);
  if (!key_file.empty()) sources.overrides.push_back("key_file=" + key_file);
  if (!log_level.empty()) sources.overrides.push_back("log.level=" + log_level);
  return Config::load(sources);
}

Result<nostr::Keypair> CommandContext::load_keys() const {
  auto config = load_config();
  if (!config) return tl::unexpected(config.error());
  return nostr::read_key_file(config->key_file());
}

int fail(const Error& error) {
  return fail(error.message);
}

int fail(const std::string& message) {
  std::fprintf(stderr, "infernet: %s\n", message.c_str());
  return kExitFailure;
}

Result<std::string> read_stdin() {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::kIo, "cannot read standard input");
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > kMaxStdinBytes) {
      return make_error(ErrorCode::kLimitExceeded, "standard input is larger than 64 MiB");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> read_stdin_trimmed() {
  auto in = read_stdin();
  if (!in) return in;
  size_t b = in->find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::string();
  size_t e = in->find_last_not_of(" \t\r\n");
  return in->substr(b, e - b + 1);
}

}  // namespace infernet::cli

int main(int argc, char** argv) {
  using namespace infernet::cli;
  CommandContext ctx;
  CLI::App app{"Infernet: a decentralized network for AI compute, on Nostr.", "infernet"};
  app.set_version_flag("--version", std::string("infernet 0.1.0"));
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--config", ctx.config_file,
                 "TOML config file (default: <data_dir>/infernet.toml if present)");
  app.add_option("--set", ctx.overrides, "Override a config key: --set key=value (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--data-dir", ctx.data_dir, "Data directory (config data_dir)");
  app.add_option("--key-file", ctx.key_file, "Secret key file (config key_file)");
  app.add_option("--log-level", ctx.log_level, "trace, debug, info, warn, error or off (config log.level)");

  add_key_commands(app, ctx);
  add_event_commands(app, ctx);
  add_nip44_commands(app, ctx);
  add_nip19_commands(app, ctx);
  add_nip98_commands(app, ctx);
  add_config_commands(app, ctx);
  add_node_commands(app, ctx);
  add_relay_client_commands(app, ctx);
  add_job_commands(app, ctx);
  add_model_commands(app, ctx);
  add_apikey_commands(app, ctx);
  add_webhook_commands(app, ctx);
  add_reservation_commands(app, ctx);

  // Logging is configured after parsing so that --log-level and the config file both count.
  app.parse_complete_callback([&ctx] {
    auto config = ctx.load_config();
    std::string level = config ? config->get_string("log.level") : "info";
    (void)infernet::init_logging(level);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "infernet: internal error: %s\n", e.what());
    return kExitFailure;
  }
  return ctx.exit_code;
}
