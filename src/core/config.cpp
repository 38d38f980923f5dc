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
    {"relay.listen", ConfigType::kString, "127.0.0.1:7447",
     "Address and port the relay listens on (HTTP and WebSocket). Port 0 lets the OS pick; the chosen URL is "
     "printed.",
     false},
    {"relay.database", ConfigType::kString, "",
     "SQLite file of the relay's events. Empty means <data_dir>/relay.db.", false},
    {"relay.public_url", ConfigType::kString, "",
     "The relay's URL as clients write it, checked in NIP-42 AUTH events. Empty means ws://<relay.listen>.",
     false},
    {"relay.name", ConfigType::kString, "infernet relay", "Name in the NIP-11 information document.", false},
    {"relay.description", ConfigType::kString, "The embedded relay of an Infernet node.",
     "Description in the NIP-11 information document.", false},
    {"relay.contact", ConfigType::kString, "",
     "Contact (e.g. an email or npub) in the NIP-11 information document.", false},
    {"relay.threads", ConfigType::kInt, "2", "Network threads serving connections.", false},
    {"relay.query_threads", ConfigType::kInt, "2",
     "Threads answering REQ and COUNT from the database, so a long query never holds up a network thread.",
     false},
    {"relay.max_message_bytes", ConfigType::kInt, "131072",
     "Largest WebSocket message accepted, in bytes; also the largest event.", false},
    {"relay.max_subscriptions", ConfigType::kInt, "50", "Open subscriptions per connection.", false},
    {"relay.max_filters", ConfigType::kInt, "10", "Filters per REQ.", false},
    {"relay.max_limit", ConfigType::kInt, "5000",
     "Cap on a filter's limit; also the limit of a filter without one.", false},
    {"relay.max_events_per_second", ConfigType::kInt, "200",
     "Events per second per connection (bursts of twice that); more are refused with rate-limited.", false},
    {"relay.max_future_seconds", ConfigType::kInt, "900",
     "How far ahead of now an event's created_at may be.", false},
    {"relay.max_past_seconds", ConfigType::kInt, "0",
     "How far behind now an event's created_at may be; 0 means no limit.", false},
    {"relay.max_outbound_bytes", ConfigType::kInt, "8388608",
     "Bytes queued to one slow subscriber before it is disconnected.", false},
    {"relay.auth_required", ConfigType::kBool, "false",
     "Require NIP-42 authentication before any REQ or EVENT.", false},
    {"relay.auth_read_kinds", ConfigType::kString, "",
     "Comma-separated kinds that only authenticated connections may read.", false},
    {"relay.auth_write_kinds", ConfigType::kString, "",
     "Comma-separated kinds that only authenticated connections may publish.", false},
    {"relay.allowed_pubkeys", ConfigType::kString, "",
     "Comma-separated npubs or hex keys: when set, only these (authenticated) may publish: a private relay.",
     false},
    {"node.relays", ConfigType::kString, "",
     "Comma-separated relay URLs (ws:// or wss://) the provider and consumer roles use. Empty with --relay "
     "means the node's own relay.",
     false},
    {"node.heartbeat_seconds", ConfigType::kInt, "10",
     "How often a provider refreshes its announcement; consumers drop a provider silent for 3 times this.",
     false},
    {"provider.database", ConfigType::kString, "",
     "SQLite file of the provider's job records. Empty means <data_dir>/provider.db.", false},
    {"provider.engine", ConfigType::kString, "fake",
     "Engine serving jobs: llama (every GGUF file in provider.models_dir, through llama.cpp), proxy (an "
     "OpenAI-compatible server at provider.proxy_url) or fake (deterministic, runs no model: tests only).",
     false},
    {"provider.models", ConfigType::kString, "",
     "Comma-separated model names for the fake engine (empty: fake-echo) and the proxy engine (empty: every "
     "model the server lists). The llama engine serves its models directory instead.",
     false},
    {"provider.models_dir", ConfigType::kString, "",
     "Directory of GGUF files the llama engine serves, each under its file name without .gguf. Empty means "
     "<data_dir>/models.",
     false},
    {"provider.threads", ConfigType::kInt, "0",
     "CPU threads per model for the llama engine; 0: one per core.", false},
    {"provider.context", ConfigType::kInt, "2048",
     "Tokens per job (prompt and output) for the llama engine, at most the model's trained context.", false},
    {"provider.batch", ConfigType::kInt, "512", "Tokens per llama.cpp decode call (prompt processing chunk).",
     false},
    {"provider.flash_attn", ConfigType::kBool, "false",
     "Flash attention in the llama engine: faster prompt processing, but text then depends on the thread "
     "count (docs/engines.md).",
     false},
    {"provider.gpu_layers", ConfigType::kInt, "-1",
     "Layers the llama engine offloads to a GPU when one is present; -1: all, 0: none.", false},
    {"provider.test_token_delay_ms", ConfigType::kInt, "0",
     "FOR TESTS ONLY: the llama engine pauses this long after each token, so that a test can act in the "
     "middle of a stream (the failover fault test). Timing only, never the text; 0 in production.",
     false},
    {"provider.proxy_url", ConfigType::kString, "",
     "Base URL of the OpenAI-compatible server the proxy engine forwards to, e.g. http://127.0.0.1:8080/v1.",
     false},
    {"provider.proxy_api_key", ConfigType::kString, "",
     "Bearer key for the proxy engine's server, if it wants one.", false},
    {"provider.name", ConfigType::kString, "", "Name shown in the provider's announcement.", false},
    {"provider.slots", ConfigType::kInt, "2", "Jobs run at the same time.", false},
    {"provider.queue", ConfigType::kInt, "8",
     "Jobs waiting for a slot; more are rejected as busy with a retry-after.", false},
    {"provider.price_per_1k_input_msat", ConfigType::kInt, "1000",
     "Price per 1,000 input tokens, in millisatoshis.", false},
    {"provider.price_per_1k_output_msat", ConfigType::kInt, "2000",
     "Price per 1,000 output tokens, in millisatoshis.", false},
    {"provider.price_per_second_msat", ConfigType::kInt, "0",
     "Price per second of engine time, in millisatoshis.", false},
    {"provider.price_per_job_msat", ConfigType::kInt, "0", "Flat price per job, in millisatoshis.", false},
    {"provider.price_priority_low", ConfigType::kInt, "80",
     "Percent of the list price charged for a low-priority job (1..10000).", false},
    {"provider.price_priority_medium", ConfigType::kInt, "100",
     "Percent of the list price charged for a medium-priority job (1..10000).", false},
    {"provider.price_priority_high", ConfigType::kInt, "150",
     "Percent of the list price charged for a high-priority job (1..10000).", false},
    {"provider.price_priority_urgent", ConfigType::kInt, "200",
     "Percent of the list price charged for an urgent job (1..10000).", false},
    {"provider.reservation_discount_percent", ConfigType::kInt, "0",
     "Discount on the list price for jobs run in reserved slots (0..100); 0 with max slots 0 offers no "
     "reservations.",
     false},
    {"provider.reservation_max_slots", ConfigType::kInt, "0",
     "Slots one reservation may hold, and all reservations together at any time; 0: no reservations.", false},
    {"provider.reservation_max_hours", ConfigType::kInt, "24", "Longest reservation, in hours (1..8760).",
     false},
    {"provider.fake_token_delay_ms", ConfigType::kInt, "0",
     "The fake engine's delay per token, in milliseconds (to make jobs take time in tests and demos).",
     false},
    {"consumer.database", ConfigType::kString, "",
     "SQLite file of the consumer's job database. Empty means <data_dir>/consumer.db.", false},
    {"consumer.accept_timeout_ms", ConfigType::kInt, "5000",
     "How long a provider may take to accept or reject a job before it is tried elsewhere.", false},
    {"consumer.stall_timeout_ms", ConfigType::kInt, "15000",
     "How long a running job may go without progress before its provider is dropped and the job reassigned.",
     false},
    {"consumer.max_attempts", ConfigType::kInt, "3", "Providers a job is tried on before it fails.", false},
    {"consumer.budget_daily_msat", ConfigType::kInt, "0",
     "Account budget per UTC day, in millisatoshis; 0: none. Jobs whose max_cost_msat does not fit in what "
     "is "
     "left are refused (402).",
     false},
    {"consumer.budget_monthly_msat", ConfigType::kInt, "0",
     "Account budget per UTC calendar month, in millisatoshis; 0: none.", false},
    {"consumer.token_count_timeout_ms", ConfigType::kInt, "1500",
     "How long an estimate waits for a provider to count the input with the model's tokenizer before it "
     "uses the byte bound; 0: never ask.",
     false},
    {"consumer.strategy", ConfigType::kString, "balanced",
     "How jobs that name no strategy choose among eligible providers: balanced, cheapest or fastest "
     "(docs/market.md).",
     false},
    {"api.listen", ConfigType::kString, "127.0.0.1:7448",
     "Address and port of the local REST and WebSocket API (loopback by default). Port 0 lets the OS pick; "
     "the URL is printed.",
     false},
    {"api.url", ConfigType::kString, "http://127.0.0.1:7448",
     "The API the CLI commands (submit, status, watch, ...) talk to.", false},
    {"api.key", ConfigType::kString, "",
     "API key the CLI commands send (Authorization: Bearer), for a node whose API requires one "
     "(infernet apikey create). Empty: none.",
     false},
    {"api.auth", ConfigType::kString, "auto",
     "Who must authenticate to the API: auto (requests from loopback without credentials are allowed, "
     "others need an API key or NIP-98) or required (every request).",
     false},
    {"api.keys_database", ConfigType::kString, "",
     "SQLite file of the API keys `infernet apikey` manages (hashes only). Empty means "
     "<data_dir>/api_keys.db. Keys added or revoked count at once, without a restart.",
     false},
    {"api.nostr_keys", ConfigType::kString, "",
     "Comma-separated npubs or hex keys allowed to use the API with NIP-98, each optionally :read or :submit "
     "(default submit). The node's own key is always allowed.",
     false},
    {"api.cors_origins", ConfigType::kString, "",
     "Comma-separated browser origins (https://app.example) allowed to call the API; * allows any origin "
     "but then every cross-origin request needs credentials. Empty: cross-origin requests are refused.",
     false},
    {"api.rate_limit", ConfigType::kInt, "600",
     "Requests per minute per API key, Nostr key or (without credentials) address; 0: no limit.", false},
    {"api.rate_burst", ConfigType::kInt, "300",
     "Requests a client may make at once before api.rate_limit paces it (the token bucket's size).", false},
    {"webhooks.retry_max_seconds", ConfigType::kInt, "60",
     "Longest wait between two tries of a failing webhook delivery, in seconds (1..3600); the waits double "
     "from 1 s up to it.",
     false},
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
