#include "core/config.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <toml++/toml.h>

namespace infernet {
namespace {

constexpr ConfigKeySpec kKeys[] = {
    {"data_dir", ConfigType::kString, "~/.infernet",
     "Directory holding the identity key, databases and caches. Created on first use with mode 0700.", false},
    {"key_file", ConfigType::kString, "",
     "Path of the node's Nostr secret key file (nsec, mode 0600). Empty means <data_dir>/identity.key.",
     false},
    {"log.level", ConfigType::kString, "info", "Log verbosity: trace, debug, info, warn, error or off.",
     true},
    {"nip98.max_age_seconds", ConfigType::kInt, "60",
     "How far an HTTP auth (NIP-98) token's created_at may be from now, in seconds, either way.", true},
};

const ConfigKeySpec* find_spec(std::string_view name) {
  for (const auto& k : kKeys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

Status check_type(const ConfigKeySpec& spec, const std::string& value) {
  if (spec.type == ConfigType::kInt) {
    char* end = nullptr;
    errno = 0;
    std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno != 0) {
      return make_error(ErrorCode::kInvalidInput,
                        std::string(spec.name) + ": expected an integer, got '" + value + "'");
    }
  } else if (spec.type == ConfigType::kBool) {
    if (value != "true" && value != "false") {
      return make_error(ErrorCode::kInvalidInput,
                        std::string(spec.name) + ": expected true or false, got '" + value + "'");
    }
  }
  if (spec.name == "log.level") {
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
    bool ok = false;
    for (auto l : kLevels)
      ok = ok || l == value;
    if (!ok) {
      return make_error(ErrorCode::kInvalidInput,
                        "log.level: expected trace, debug, info, warn, error or off, got '" + value + "'");
    }
  }
  return {};
}

// Flattens a TOML table into dotted keys, turning each leaf into its command-line spelling.
Status flatten(const toml::table& table, const std::string& prefix, const std::string& path,
               std::vector<std::pair<std::string, std::string>>& out) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = node.as_table()) {
      auto st = flatten(*sub, key, path, out);
      if (!st) return st;
    } else if (const auto* s = node.as_string()) {
      out.emplace_back(key, s->get());
    } else if (const auto* i = node.as_integer()) {
      out.emplace_back(key, std::to_string(i->get()));
    } else if (const auto* b = node.as_boolean()) {
      out.emplace_back(key, b->get() ? "true" : "false");
    } else {
      std::string msg = path;
      msg += ": ";
      msg += key;
      msg += ": only strings, integers and booleans are supported";
      return make_error(ErrorCode::kInvalidInput, std::move(msg));
    }
  }
  return {};
}

std::optional<std::string> lookup_env(const ConfigSources& sources, const std::string& name) {
  if (sources.environment != nullptr) {
    auto it = sources.environment->find(name);
    if (it == sources.environment->end()) return std::nullopt;
    return it->second;
  }
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string expand_home(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    return std::string(home != nullptr ? home : "") + path.substr(1);
  }
  return path;
}

}  // namespace

std::span<const ConfigKeySpec> config_keys() {
  return kKeys;
}

std::string config_env_name(std::string_view key) {
  std::string out = "INFERNET_";
  for (char c : key) {
    out += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

Config Config::defaults() {
  Config c;
  for (const auto& k : kKeys)
    c.values_[std::string(k.name)] = Entry{std::string(k.default_value), "default"};
  return c;
}

Status Config::set(std::string_view key, std::string value, std::string source) {
  const ConfigKeySpec* spec = find_spec(key);
  if (spec == nullptr) {
    return make_error(ErrorCode::kInvalidInput, "unknown config key '" + std::string(key) + "'");
  }
  auto st = check_type(*spec, value);
  if (!st) return make_error(st.error().code, source + ": " + st.error().message);
  values_[std::string(key)] = Entry{std::move(value), std::move(source)};
  return {};
}

Result<Config> Config::load(const ConfigSources& sources) {
  Config c = defaults();

  // The environment and flags are read before the file only to learn where the file is.
  std::vector<std::pair<std::string, std::string>> flag_values;
  for (const auto& o : sources.overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(ErrorCode::kInvalidInput, "--set expects key=value, got '" + o + "'");
    }
    flag_values.emplace_back(o.substr(0, eq), o.substr(eq + 1));
  }
  std::string file = sources.config_file;
  if (file.empty()) {
    if (auto env = lookup_env(sources, "INFERNET_CONFIG")) file = *env;
  }
  bool file_required = !file.empty();
  if (file.empty()) {
    std::string data_dir = c.get_string("data_dir");
    if (auto env = lookup_env(sources, config_env_name("data_dir"))) data_dir = *env;
    for (const auto& [k, v] : flag_values) {
      if (k == "data_dir") data_dir = v;
    }
    file = expand_home(data_dir) + "/infernet.toml";
  }

  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    toml::table parsed;
    try {
      // This toml++ build reports syntax errors by exception; it is caught here, at the edge.
      parsed = toml::parse_file(file);
    } catch (const toml::parse_error& err) {
      return make_error(ErrorCode::kInvalidInput, file + ":" + std::to_string(err.source().begin.line) +
                                                      ": " + std::string(err.description()));
    }
    std::vector<std::pair<std::string, std::string>> file_values;
    auto st = flatten(parsed, "", file, file_values);
    if (!st) return tl::unexpected(st.error());
    for (auto& [k, v] : file_values) {
      auto s = c.set(k, std::move(v), "file " + file);
      if (!s) return tl::unexpected(s.error());
    }
  } else if (file_required) {
    return make_error(ErrorCode::kNotFound, "config file '" + file + "' does not exist");
  }

  for (const auto& k : kKeys) {
    std::string env_name = config_env_name(k.name);
    if (auto env = lookup_env(sources, env_name)) {
      auto s = c.set(k.name, *env, "env " + env_name);
      if (!s) return tl::unexpected(s.error());
    }
  }
  for (auto& [k, v] : flag_values) {
    auto s = c.set(k, std::move(v), "flag");
    if (!s) return tl::unexpected(s.error());
  }
  return c;
}

const Config::Entry& Config::entry(std::string_view key, ConfigType type) const {
  const ConfigKeySpec* spec = find_spec(key);
  if (spec == nullptr || spec->type != type) {
    throw std::logic_error("config key '" + std::string(key) + "' is not declared with this type");
  }
  return values_.find(key)->second;
}

const std::string& Config::get_string(std::string_view key) const {
  return entry(key, ConfigType::kString).value;
}
int64_t Config::get_int(std::string_view key) const {
  return std::strtoll(entry(key, ConfigType::kInt).value.c_str(), nullptr, 10);
}
bool Config::get_bool(std::string_view key) const {
  return entry(key, ConfigType::kBool).value == "true";
}

const std::string& Config::source_of(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw std::logic_error("config key '" + std::string(key) + "' is not declared");
  return it->second.source;
}

std::string Config::data_dir() const {
  return expand_home(get_string("data_dir"));
}

std::string Config::key_file() const {
  const std::string& k = get_string("key_file");
  if (!k.empty()) return expand_home(k);
  return data_dir() + "/identity.key";
}

}  // namespace infernet
