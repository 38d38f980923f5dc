// infernet node: the long-running daemon. Today it runs the relay role; provider and consumer roles join it
// in the same process later.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "apps/infernet/command_context.hpp"
#include "core/clock.hpp"
#include "net/server.hpp"
#include "relay/event_store.hpp"
#include "relay/relay.hpp"

namespace infernet::cli {
namespace {

struct NodeOptions {
  bool relay = false;
  std::string listen;
  std::string database;
};

struct HostPort {
  std::string host;
  uint16_t port;
};

// "127.0.0.1:7447", "[::1]:7447", "0.0.0.0:0".
Result<HostPort> parse_listen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return make_error(ErrorCode::kInvalidInput, "relay.listen: expected HOST:PORT, got '" + text + "'");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  long port = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    return make_error(ErrorCode::kInvalidInput, "relay.listen: bad port in '" + text + "'");
  }
  return HostPort{host, static_cast<uint16_t>(port)};
}

int run_node(const CommandContext& ctx, const NodeOptions& opts) {
  if (!opts.relay) return fail("node: choose a role with --relay");
  // Signals are taken by sigwait below; blocking them before any thread starts keeps them off the pool
  // threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = ctx.load_config();
  if (!config) return fail(config.error());
  auto listen = parse_listen(opts.listen.empty() ? config->get_string("relay.listen") : opts.listen);
  if (!listen) return fail(listen.error());
  std::string database = !opts.database.empty() ? opts.database : config->get_string("relay.database");
  if (database.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(config->data_dir(), ec);
    ::chmod(config->data_dir().c_str(), 0700);
    database = config->data_dir() + "/relay.db";
  }
  auto relay_options = relay::relay_options_from_config(*config);
  if (!relay_options) return fail(relay_options.error());

  auto store = relay::EventStore::open({.path = database});
  if (!store) return fail(with_context(store.error(), "relay database " + database));
  SystemClock clock;
  relay::Relay relay(*relay_options, **store, clock);

  net::ServerOptions server_options;
  server_options.host = listen->host;
  server_options.port = listen->port;
  server_options.threads = static_cast<size_t>(std::max<int64_t>(1, config->get_int("relay.threads")));
  server_options.max_message_bytes = relay_options->limits.max_message_bytes;
  server_options.max_outbound_bytes = static_cast<size_t>(config->get_int("relay.max_outbound_bytes"));
  net::ServerHandlers handlers;
  handlers.http = [&relay](const net::HttpRequest& r) { return relay.handle_http(r); };
  handlers.websocket = [&relay](std::shared_ptr<net::WebSocketConnection> c, const net::HttpRequest& r) {
    return relay.accept(std::move(c), r);
  };
  net::Server server(server_options, handlers);
  if (auto st = server.start(); !st) return fail(with_context(st.error(), "relay: listen on " + opts.listen));
  std::string host = listen->host.find(':') != std::string::npos ? "[" + listen->host + "]" : listen->host;
  std::string url = "ws://" + host + ":" + std::to_string(server.port());
  if (relay_options->public_url.empty()) relay.set_public_url(url);
  std::printf("relay listening on %s (database %s)\n", url.c_str(), database.c_str());
  std::fflush(stdout);

  // Wake once a minute to drop expired events (NIP-40); stop on SIGINT or SIGTERM.
  for (;;) {
    timespec timeout{60, 0};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) break;
    relay.purge_expired();
  }
  spdlog::info("relay: stopping");
  server.stop();
  (*store)->close();
  std::printf("relay stopped\n");
  return 0;
}

}  // namespace

void add_node_commands(CLI::App& app, CommandContext& ctx) {
  static NodeOptions opts;
  auto* node =
      app.add_subcommand("node", "Run an Infernet node (the daemon); stops cleanly on SIGINT or SIGTERM");
  node->add_flag("--relay", opts.relay, "Run the embedded Nostr relay (NIP-01/09/11/40/42/45)");
  node->add_option("--listen", opts.listen,
                   "HOST:PORT for the relay (config relay.listen; port 0: the OS picks)");
  node->add_option("--database", opts.database, "SQLite file for the relay (config relay.database)");
  node->callback([&ctx] { ctx.exit_code = run_node(ctx, opts); });
}

}  // namespace infernet::cli
