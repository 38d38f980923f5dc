// Configuration: every key Infernet reads, where its value came from, and how it is loaded.
//
// Precedence, lowest to highest: the built-in default, the TOML file, the environment (INFERNET_<KEY> with
// dots as underscores, upper-case: log.level -> INFERNET_LOG_LEVEL), then command-line flags. Every key is
// declared in one table (config.cpp) with its type, default and description; `infernet config keys` prints
// that table and docs/config.md mirrors it (a test keeps the two in step). Unknown keys in a file or on the
// command line are errors, so a typo never silently falls back to a default. A loaded Config is immutable and
// thread-safe to read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace infernet {

enum class ConfigType { kString, kInt, kBool };

struct ConfigKeySpec {
  std::string_view name;  // dotted, e.g. "log.level"
  ConfigType type;
  std::string_view default_value;  // as it would be written on the command line
  std::string_view description;
  bool changeable_at_runtime;
};

// Every key the program knows, in documentation order.
std::span<const ConfigKeySpec> config_keys();

// The environment variable that sets a key: "log.level" -> "INFERNET_LOG_LEVEL".
std::string config_env_name(std::string_view key);

struct ConfigSources {
  // Explicit config file (--config or INFERNET_CONFIG). When empty, <data_dir>/infernet.toml is read if
  // present.
  std::string config_file;
  // "key=value" overrides from the command line, applied last.
  std::vector<std::string> overrides;
  // Environment lookup; tests pass their own. nullptr means the process environment.
  const std::map<std::string, std::string>* environment = nullptr;
};

class Config {
 public:
  // Errors: kInvalidInput for an unknown key, a value of the wrong type or a TOML syntax error (with file and
  // line); kNotFound when an explicitly named config file does not exist.
  static Result<Config> load(const ConfigSources& sources);

  // Defaults only; never fails.
  static Config defaults();

  // Values of declared keys. Asking for an undeclared key or the wrong type is a programming error (throws).
  const std::string& get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  bool get_bool(std::string_view key) const;

  // Where the value came from: "default", "file <path>", "env INFERNET_...", "flag".
  const std::string& source_of(std::string_view key) const;

  // The data directory with a leading "~" expanded.
  std::string data_dir() const;
  // key_file, or <data_dir>/identity.key when unset.
  std::string key_file() const;

 private:
  struct Entry {
    std::string value;
    std::string source;
  };
  Status set(std::string_view key, std::string value, std::string source);
  const Entry& entry(std::string_view key, ConfigType type) const;

  std::map<std::string, Entry, std::less<>> values_;
};

}  // namespace infernet
