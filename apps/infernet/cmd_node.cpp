// infernet node: the long-running daemon, any mix of roles in one process: --relay (the embedded Nostr
// relay), --provider (runs jobs on an engine), --consumer (the job database, dispatch, and the local REST and
// WebSocket API). Each role prints one line when it is up, which scripts and tests wait for.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <spdlog/spdlog.h>

#include "api/api.hpp"
#include "apps/infernet/command_context.hpp"
#include "consumer/consumer.hpp"
#include "core/clock.hpp"
#include "engine/fake/fake_engine.hpp"
#include "engine/llama/llama_engine.hpp"
#include "engine/proxy/proxy_engine.hpp"
#include "net/io_pool.hpp"
#include "net/listen_address.hpp"
#include "net/server.hpp"
#include "nostr/identity.hpp"
#include "nostr/nip19.hpp"
#include "notify/webhooks.hpp"
#include "provider/provider.hpp"
#include "relay/event_store.hpp"
#include "relay/relay.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::cli {
namespace {

struct NodeOptions {
  bool relay = false;
  bool provider = false;
  bool consumer = false;
  std::string listen;
  std::string database;
  std::string api_listen;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A database path from `key`, or <data_dir>/<file> when the key is empty.
std::string database_path(const Config& config, const std::string& key, const std::string& file) {
  std::string path = config.get_string(key);
  if (!path.empty()) return path;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir(), ec);
  ::chmod(config.data_dir().c_str(), 0700);
  return config.data_dir() + "/" + file;
}

// The webhooks' database beside the consumer's: "<dir>/consumer.db" -> "<dir>/consumer.webhooks.db".
std::string webhooks_database(const std::string& consumer_database) {
  std::string_view base = consumer_database;
  if (base.ends_with(".db")) base.remove_suffix(3);
  return std::string(base) + ".webhooks.db";
}

// The node's identity: read from key_file, created there (0600) on first run so a new user needs no step.
Result<nostr::Keypair> node_keys(const Config& config) {
  const std::string path = config.key_file();
  if (std::filesystem::exists(path)) return nostr::read_key_file(path);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  auto keys = nostr::Keypair::generate();
  if (auto st = nostr::write_key_file(path, keys, false); !st) return tl::unexpected(st.error());
  spdlog::info("node: created a new identity in {}", path);
  return keys;
}

// The embedded relay: its store, the relay and the server that carries it.
struct RelayRole {
  std::unique_ptr<relay::EventStore> store;
  std::unique_ptr<relay::Relay> relay;
  std::unique_ptr<net::Server> server;
  std::string url;

  Status start(const Config& config, const NodeOptions& opts, const Clock& clock) {
    auto listen = net::parse_listen_address(
        "relay.listen", opts.listen.empty() ? config.get_string("relay.listen") : opts.listen);
    if (!listen) return tl::unexpected(listen.error());
    std::string database =
        !opts.database.empty() ? opts.database : database_path(config, "relay.database", "relay.db");
    auto options = relay::relay_options_from_config(config);
    if (!options) return tl::unexpected(options.error());
    options->query_threads = static_cast<size_t>(std::max<int64_t>(1, config.get_int("relay.query_threads")));
    auto opened = relay::EventStore::open({.path = database});
    if (!opened) return tl::unexpected(with_context(opened.error(), "relay database " + database));
    store = std::move(*opened);
    relay = std::make_unique<relay::Relay>(*options, *store, clock);

    net::ServerOptions server_options = *listen;
    server_options.threads = static_cast<size_t>(std::max<int64_t>(1, config.get_int("relay.threads")));
    server_options.max_message_bytes = options->limits.max_message_bytes;
    server_options.max_outbound_bytes = static_cast<size_t>(config.get_int("relay.max_outbound_bytes"));
    net::ServerHandlers handlers;
    relay::Relay* r = relay.get();
    handlers.http = [r](const net::HttpRequest& req) { return r->handle_http(req); };
    handlers.websocket = [r](std::shared_ptr<net::WebSocketConnection> c, const net::HttpRequest& req) {
      return r->accept(std::move(c), req);
    };
    server = std::make_unique<net::Server>(server_options, handlers);
    if (auto st = server->start(); !st) {
      return tl::unexpected(with_context(st.error(), "relay: listen on " + listen->host));
    }
    url = "ws://" + net::url_host(listen->host) + ":" + std::to_string(server->port());
    if (options->public_url.empty()) relay->set_public_url(url);
    std::printf("relay listening on %s (database %s)\n", url.c_str(), database.c_str());
    return {};
  }

  void stop() {
    if (!server) return;
    server->stop();
    relay->stop();
    store->close();
    std::printf("relay stopped\n");
  }
};

Result<std::unique_ptr<engine::Engine>> make_llama(const Config& config) {
  engine::LlamaEngineOptions options;
  options.models_dir = config.get_string("provider.models_dir");
  if (options.models_dir.empty()) options.models_dir = std::filesystem::path(config.data_dir()) / "models";
  // The fingerprints live with the node's data: a models directory may be shared or read-only.
  options.fingerprint_cache = std::filesystem::path(config.data_dir()) / "model-fingerprints.txt";
  auto positive = [&](const char* key, int64_t max) -> Result<uint32_t> {
    const int64_t v = config.get_int(key);
    if (v < 1 || v > max)
      return make_error(ErrorCode::kInvalidInput, std::string(key) + ": must be 1.." + std::to_string(max));
    return static_cast<uint32_t>(v);
  };
  auto slots = positive("provider.slots", 256);
  if (!slots) return tl::unexpected(slots.error());
  auto context = positive("provider.context", 1 << 20);
  if (!context) return tl::unexpected(context.error());
  auto batch = positive("provider.batch", 1 << 16);
  if (!batch) return tl::unexpected(batch.error());
  options.slots = *slots;
  options.context = *context;
  options.batch = *batch;
  options.queue_capacity =
      static_cast<size_t>(std::max<int64_t>(0, config.get_int("provider.queue"))) + *slots;
  options.threads = static_cast<int>(std::clamp<int64_t>(config.get_int("provider.threads"), 0, 1024));
  options.flash_attn = config.get_bool("provider.flash_attn");
  options.gpu_layers =
      static_cast<int>(std::clamp<int64_t>(config.get_int("provider.gpu_layers"), -1, 100000));
  options.test_token_delay = std::chrono::milliseconds(
      std::clamp<int64_t>(config.get_int("provider.test_token_delay_ms"), 0, 10000));
  return engine::make_llama_engine(options);
}

Result<std::unique_ptr<engine::Engine>> make_proxy(const Config& config) {
  engine::ProxyEngineOptions options;
  options.base_url = config.get_string("provider.proxy_url");
  if (options.base_url.empty()) {
    return make_error(ErrorCode::kInvalidInput,
                      "provider.proxy_url: the proxy engine needs the server's base URL, e.g. "
                      "http://127.0.0.1:8080/v1");
  }
  options.api_key = config.get_string("provider.proxy_api_key");
  options.models = split_list(config.get_string("provider.models"));
  options.slots = static_cast<size_t>(std::clamp<int64_t>(config.get_int("provider.slots"), 1, 256));
  options.queue_capacity =
      static_cast<size_t>(std::max<int64_t>(0, config.get_int("provider.queue"))) + options.slots;
  return engine::make_proxy_engine(options);
}

Result<std::unique_ptr<engine::Engine>> make_engine(const Config& config) {
  const std::string& name = config.get_string("provider.engine");
  if (name == "llama") return make_llama(config);
  if (name == "proxy") return make_proxy(config);
  if (name != "fake") {
    return make_error(ErrorCode::kInvalidInput,
                      "provider.engine: unknown engine '" + name + "' (available: llama, proxy, fake)");
  }
  engine::FakeEngineOptions options;
  options.models = split_list(config.get_string("provider.models"));
  if (options.models.empty()) options.models = {"fake-echo"};
  options.slots = static_cast<size_t>(std::max<int64_t>(1, config.get_int("provider.slots")));
  options.queue_capacity =
      static_cast<size_t>(std::max<int64_t>(0, config.get_int("provider.queue"))) + options.slots;
  options.token_delay =
      std::chrono::milliseconds(std::max<int64_t>(0, config.get_int("provider.fake_token_delay_ms")));
  return engine::make_fake_engine(options);
}

Result<provider::ProviderOptions> provider_options(const Config& config) {
  provider::ProviderOptions o;
  o.database = database_path(config, "provider.database", "provider.db");
  o.name = config.get_string("provider.name");
  auto price = [&](const char* key) {
    return static_cast<uint64_t>(std::max<int64_t>(0, config.get_int(key)));
  };
  o.prices.per_1k_input_msat = price("provider.price_per_1k_input_msat");
  o.prices.per_1k_output_msat = price("provider.price_per_1k_output_msat");
  o.prices.per_second_msat = price("provider.price_per_second_msat");
  o.prices.per_job_msat = price("provider.price_per_job_msat");
  for (const char* priority : protocol::kPriorities) {
    const std::string key = std::string("provider.price_priority_") + priority;
    const int64_t percent = config.get_int(key);
    if (percent < 1 || percent > 10000)
      return make_error(ErrorCode::kInvalidInput, key + ": must be a percent from 1 to 10000");
    o.prices.priority_percent.emplace(priority, static_cast<uint32_t>(percent));
  }
  o.slots = static_cast<uint32_t>(std::max<int64_t>(1, config.get_int("provider.slots")));
  o.queue = static_cast<uint32_t>(std::max<int64_t>(0, config.get_int("provider.queue")));
  const int64_t discount = config.get_int("provider.reservation_discount_percent");
  const int64_t max_slots = config.get_int("provider.reservation_max_slots");
  const int64_t max_hours = config.get_int("provider.reservation_max_hours");
  if (discount < 0 || discount > 100)
    return make_error(ErrorCode::kInvalidInput,
                      "provider.reservation_discount_percent: must be from 0 to 100");
  if (max_slots < 0 || max_slots > o.slots)
    return make_error(ErrorCode::kInvalidInput,
                      "provider.reservation_max_slots: must be from 0 to provider.slots");
  if (max_hours < 1 || max_hours > protocol::kMaxReservationHours)
    return make_error(ErrorCode::kInvalidInput, "provider.reservation_max_hours: must be from 1 to 8760");
  o.reservations = {static_cast<uint32_t>(discount), static_cast<uint32_t>(max_slots),
                    static_cast<uint32_t>(max_hours)};
  o.heartbeat = std::chrono::seconds(std::max<int64_t>(1, config.get_int("node.heartbeat_seconds")));
  return o;
}

Result<consumer::ConsumerOptions> consumer_options(const Config& config) {
  consumer::ConsumerOptions o;
  o.database = database_path(config, "consumer.database", "consumer.db");
  auto ms = [&](const char* key) {
    return std::chrono::milliseconds(std::max<int64_t>(1, config.get_int(key)));
  };
  o.accept_timeout = ms("consumer.accept_timeout_ms");
  o.stall_timeout = ms("consumer.stall_timeout_ms");
  o.token_count_timeout =
      std::chrono::milliseconds(std::max<int64_t>(0, config.get_int("consumer.token_count_timeout_ms")));
  o.max_attempts = static_cast<uint32_t>(std::max<int64_t>(1, config.get_int("consumer.max_attempts")));
  o.heartbeat = std::chrono::seconds(std::max<int64_t>(1, config.get_int("node.heartbeat_seconds")));
  o.budget_daily_msat =
      static_cast<uint64_t>(std::max<int64_t>(0, config.get_int("consumer.budget_daily_msat")));
  o.budget_monthly_msat =
      static_cast<uint64_t>(std::max<int64_t>(0, config.get_int("consumer.budget_monthly_msat")));
  auto strategy = market::parse_strategy(config.get_string("consumer.strategy"), "consumer.strategy");
  if (!strategy) return tl::unexpected(strategy.error());
  o.strategy = *strategy;
  return o;
}

// Who may use the API (docs/api.md, "Authentication"): api.* settings, the key file, and the node's own key.
Result<api::AccessOptions> access_options(const Config& config, const nostr::Keypair& keys) {
  api::AccessOptions o;
  auto mode = api::parse_auth_mode(config.get_string("api.auth"));
  if (!mode) return tl::unexpected(mode.error());
  o.mode = *mode;
  auto grants = api::parse_nostr_keys(config.get_string("api.nostr_keys"));
  if (!grants) return tl::unexpected(grants.error());
  o.credentials.nostr_keys = std::move(*grants);
  o.credentials.nostr_keys.push_back({keys.public_key().hex(), api::Scope::kSubmit});
  o.credentials.nip98_max_age_seconds = std::max<int64_t>(1, config.get_int("nip98.max_age_seconds"));
  auto origins = api::parse_cors_origins(config.get_string("api.cors_origins"));
  if (!origins) return tl::unexpected(origins.error());
  o.cors_origins = std::move(*origins);
  o.rate_limit.per_minute = config.get_int("api.rate_limit");
  o.rate_limit.burst = config.get_int("api.rate_burst");
  if (o.rate_limit.per_minute < 0) {
    return make_error(ErrorCode::kInvalidInput, "api.rate_limit: must be 0 (no limit) or more");
  }
  if (o.rate_limit.burst < 1)
    return make_error(ErrorCode::kInvalidInput, "api.rate_burst: must be 1 or more");
  std::string path = database_path(config, "api.keys_database", "api_keys.db");
  auto store = api::ApiKeyStore::open(path);
  if (!store) return tl::unexpected(with_context(store.error(), "api keys " + path));
  o.credentials.keys = std::move(*store);
  return o;
}

int run_node(const CommandContext& ctx, const NodeOptions& opts) {
  if (!opts.relay && !opts.provider && !opts.consumer) {
    return fail("node: choose at least one role: --relay, --provider, --consumer");
  }
  // Signals are taken by sigwait below; blocking them before any thread starts keeps them off the pool
  // threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = ctx.load_config();
  if (!config) return fail(config.error());
  SystemClock clock;

  RelayRole relay_role;
  if (opts.relay) {
    if (auto st = relay_role.start(*config, opts, clock); !st) return fail(st.error());
  }

  // The provider and consumer roles reach relays through one pool: node.relays, or the node's own relay.
  net::IoPool io(2);
  std::unique_ptr<relay::RelayPool> pool;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<provider::ProviderNode> provider_node;
  std::unique_ptr<consumer::ConsumerNode> consumer_node;
  std::unique_ptr<notify::Webhooks> webhooks;
  std::unique_ptr<api::ApiServer> api_server;
  if (opts.provider || opts.consumer) {
    auto keys = node_keys(*config);
    if (!keys) return fail(with_context(keys.error(), "node identity " + config->key_file()));
    relay::RelayPoolOptions pool_options;
    pool_options.relays = split_list(config->get_string("node.relays"));
    if (pool_options.relays.empty() && opts.relay) pool_options.relays.push_back(relay_role.url);
    if (pool_options.relays.empty())
      return fail("node.relays: name at least one relay URL, or run with --relay");
    io.start();
    pool = std::make_unique<relay::RelayPool>(io.io_context(), pool_options, *keys);
    if (auto st = pool->start(); !st) return fail(st.error());
    const std::string npub = nostr::nip19::encode_npub(keys->public_key().bytes());

    if (opts.provider) {
      auto made = make_engine(*config);
      if (!made) return fail(made.error());
      engine = std::move(*made);
      auto options = provider_options(*config);
      if (!options) return fail(options.error());
      auto node = provider::ProviderNode::open(*options, *pool, *engine, *keys, clock);
      if (!node) return fail(with_context(node.error(), "provider database " + options->database));
      provider_node = std::move(*node);
      if (auto st = provider_node->start(); !st) return fail(st.error());
      std::string served;
      for (const auto& m : engine->models())
        served += (served.empty() ? "" : ",") + m.name;
      std::printf("provider %s serving %s on %s engine\n", npub.c_str(), served.c_str(),
                  engine->name().c_str());
    }
    if (opts.consumer) {
      auto consumer_config = consumer_options(*config);
      if (!consumer_config) return fail(consumer_config.error());
      const consumer::ConsumerOptions& options = *consumer_config;
      auto node = consumer::ConsumerNode::open(options, *pool, *keys, clock);
      if (!node) return fail(with_context(node.error(), "consumer database " + options.database));
      consumer_node = std::move(*node);
      if (auto st = consumer_node->start(); !st) return fail(st.error());
      notify::WebhooksOptions webhook_options;
      webhook_options.database = webhooks_database(options.database);
      const int64_t retry_max = config->get_int("webhooks.retry_max_seconds");
      if (retry_max < 1 || retry_max > 3600)
        return fail("webhooks.retry_max_seconds: must be from 1 to 3600, got " + std::to_string(retry_max));
      webhook_options.outbox.max_retry = std::chrono::seconds(retry_max);
      auto hooks = notify::Webhooks::open(*consumer_node, webhook_options);
      if (!hooks) return fail(hooks.error());
      webhooks = std::move(*hooks);
      if (auto st = webhooks->start(); !st) return fail(with_context(st.error(), "webhooks"));
      api::ApiServerOptions api_options;
      api_options.api.webhooks = webhooks.get();
      api_options.listen = opts.api_listen.empty() ? config->get_string("api.listen") : opts.api_listen;
      auto access = access_options(*config, *keys);
      if (!access) return fail(access.error());
      api_options.api.access = std::move(*access);
      api_options.api.blob_dir = config->data_dir() + "/blobs";  // docs/api.md "Blobs"
      api_server = std::make_unique<api::ApiServer>(*consumer_node, api_options);
      if (auto st = api_server->start(); !st)
        return fail(with_context(st.error(), "api: listen on " + api_options.listen));
      std::printf("consumer %s\napi listening on %s\n", npub.c_str(), api_server->url().c_str());
    }
  }
  std::fflush(stdout);

  // Wake once a minute to drop expired events (NIP-40); stop on SIGINT or SIGTERM.
  for (;;) {
    timespec timeout{60, 0};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (relay_role.relay) relay_role.relay->purge_expired();
  }
  spdlog::info("node: stopping");
  if (api_server) api_server->stop();
  if (webhooks) webhooks->stop();
  if (consumer_node) consumer_node->stop();
  if (provider_node) provider_node->stop();
  if (engine) engine->stop();
  if (pool) pool->stop();
  io.stop();
  relay_role.stop();
  std::printf("node stopped\n");
  return 0;
}

}  // namespace

void add_node_commands(CLI::App& app, CommandContext& ctx) {
  static NodeOptions opts;
  auto* node = app.add_subcommand(
      "node", "Run an Infernet node (the daemon), any mix of roles; stops cleanly on SIGINT or SIGTERM");
  node->add_flag("--relay", opts.relay, "Run the embedded Nostr relay (NIP-01/09/11/40/42/45)");
  node->add_flag("--provider", opts.provider, "Run jobs for consumers on an engine (provider.* settings)");
  node->add_flag("--consumer", opts.consumer,
                 "Keep the job database and serve the local REST/WebSocket API (consumer.*, api.* settings)");
  node->add_option("--listen", opts.listen,
                   "HOST:PORT for the relay (config relay.listen; port 0: the OS picks)");
  node->add_option("--database", opts.database, "SQLite file for the relay (config relay.database)");
  node->add_option("--api-listen", opts.api_listen,
                   "HOST:PORT for the API (config api.listen; port 0: the OS picks)");
  node->callback([&ctx] { ctx.exit_code = run_node(ctx, opts); });
}

}  // namespace infernet::cli
