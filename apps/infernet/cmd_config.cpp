// infernet config show|keys: what the program will use, and why.
#include <cstdio>

#include "apps/infernet/command_context.hpp"

namespace infernet::cli {
namespace {

const char* type_name(ConfigType t) {
  switch (t) {
    case ConfigType::kString:
      return "string";
    case ConfigType::kInt:
      return "int";
    case ConfigType::kBool:
      return "bool";
  }
  return "?";
}

}  // namespace

void add_config_commands(CLI::App& app, CommandContext& ctx) {
  auto* config = app.add_subcommand("config", "Show the configuration and the keys it accepts");
  config->require_subcommand(1);
  auto* show = config->add_subcommand("show", "Print every key's value and where it came from");
  show->callback([&ctx] {
    auto c = ctx.load_config();
    if (!c) {
      ctx.exit_code = fail(c.error());
      return;
    }
    for (const auto& k : config_keys()) {
      std::string value;
      switch (k.type) {
        case ConfigType::kString:
          value = c->get_string(k.name);
          break;
        case ConfigType::kInt:
          value = std::to_string(c->get_int(k.name));
          break;
        case ConfigType::kBool:
          value = c->get_bool(k.name) ? "true" : "false";
          break;
      }
      std::printf("%-24s = %-20s # %s\n", std::string(k.name).c_str(), value.c_str(),
                  c->source_of(k.name).c_str());
    }
  });
  auto* keys = config->add_subcommand("keys", "Print every config key with its type, default and meaning");
  keys->callback([] {
    for (const auto& k : config_keys()) {
      std::printf("%s (%s, env %s, default '%s'%s)\n    %s\n", std::string(k.name).c_str(), type_name(k.type),
                  config_env_name(k.name).c_str(), std::string(k.default_value).c_str(),
                  k.changeable_at_runtime ? ", runtime" : "", std::string(k.description).c_str());
    }
  });
}

}  // namespace infernet::cli
