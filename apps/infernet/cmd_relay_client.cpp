// infernet publish|req: talk to any set of relays through the node's relay pool, by hand.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "apps/infernet/command_context.hpp"
#include "core/encoding.hpp"
#include "net/io_pool.hpp"
#include "nostr/identity.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::cli {
namespace {

struct PoolCommandOptions {
  std::vector<std::string> relays;
  std::vector<std::string> filters;  // req
  bool follow = false;               // req
  int timeout_seconds = 10;
};

// The node's key answers NIP-42 challenges when there is one; without a key file the pool stays anonymous.
std::optional<nostr::Keypair> optional_keys(const CommandContext& ctx) {
  auto keys = ctx.load_keys();
  if (!keys) return std::nullopt;
  return std::move(*keys);
}

relay::RelayPoolOptions pool_options(const PoolCommandOptions& o) {
  relay::RelayPoolOptions p;
  p.relays = o.relays;
  p.publish_timeout = std::chrono::seconds(o.timeout_seconds);
  return p;
}

int run_publish(const CommandContext& ctx, const PoolCommandOptions& o) {
  auto input = read_stdin();
  if (!input) return fail(input.error());
  std::vector<nostr::Event> events;
  std::stringstream lines(*input);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto e = nostr::parse_event(line);
    if (!e) return fail("event " + std::to_string(events.size() + 1) + ": " + e.error().message);
    if (auto st = nostr::verify_event(*e); !st) {
      return fail("event " + std::to_string(events.size() + 1) + ": " + st.error().message);
    }
    events.push_back(std::move(*e));
  }
  if (events.empty())
    return fail("no events on stdin (one signed event JSON per line; see 'infernet event sign')");
  net::IoPool io(2);
  io.start();
  relay::RelayPool pool(io.io_context(), pool_options(o), optional_keys(ctx));
  if (auto st = pool.start(); !st) return fail(st.error());
  bool all_stored = true;
  for (const auto& e : events) {
    auto outcomes = pool.publish(e).get();
    bool any = false;
    for (const auto& r : outcomes) {
      std::printf("%s %s %s%s%s\n", hex_encode(e.id).c_str(), r.relay.c_str(),
                  r.accepted ? "accepted" : "refused", r.message.empty() ? "" : " ", r.message.c_str());
      any = any || r.accepted;
    }
    all_stored = all_stored && any;
  }
  std::fflush(stdout);
  pool.stop();
  io.stop();
  return all_stored ? 0 : kExitFailure;
}

std::atomic<bool> g_interrupted{false};

int run_req(const CommandContext& ctx, const PoolCommandOptions& o) {
  std::vector<nostr::Filter> filters;
  for (const auto& text : o.filters) {
    auto f = nostr::parse_filter(text);
    if (!f) return fail("filter '" + text + "': " + f.error().message);
    filters.push_back(std::move(*f));
  }
  if (filters.empty()) filters.emplace_back();
  net::IoPool io(2);
  io.start();
  relay::RelayPool pool(io.io_context(), pool_options(o), optional_keys(ctx));
  if (auto st = pool.start(); !st) return fail(st.error());
  std::mutex mu;
  std::condition_variable cv;
  bool eose = false;
  relay::SubscriptionCallbacks callbacks;
  callbacks.on_event = [&](const nostr::Event& e, const std::string&) {
    std::string line = nostr::to_json(e) + "\n";
    std::lock_guard lock(mu);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  };
  callbacks.on_eose = [&] {
    std::lock_guard lock(mu);
    eose = true;
    cv.notify_all();
  };
  callbacks.on_closed = [&](const std::string& relay, const std::string& reason) {
    std::lock_guard lock(mu);
    std::fprintf(stderr, "infernet: %s closed the subscription: %s\n", relay.c_str(), reason.c_str());
  };
  pool.subscribe(std::move(filters), callbacks);
  std::signal(SIGINT, [](int) { g_interrupted = true; });
  std::signal(SIGTERM, [](int) { g_interrupted = true; });
  std::unique_lock lock(mu);
  // Without --follow: stored events, then exit at EOSE. With it: keep printing until interrupted.
  while (!g_interrupted && (o.follow || !eose))
    cv.wait_for(lock, std::chrono::milliseconds(100));
  lock.unlock();
  pool.stop();
  io.stop();
  return 0;
}

}  // namespace

void add_relay_client_commands(CLI::App& app, CommandContext& ctx) {
  static PoolCommandOptions opts;
  auto add_relays = [](CLI::App* cmd) {
    cmd->add_option("--relay", opts.relays, "Relay URL, ws:// or wss:// (repeatable)")
        ->required()
        ->allow_extra_args(false);
    cmd->add_option("--timeout", opts.timeout_seconds,
                    "Seconds to wait for each relay's answer (default 10)");
  };
  auto* publish = app.add_subcommand(
      "publish", "Publish signed events (JSON, one per line on stdin) to relays; prints each relay's answer");
  add_relays(publish);
  publish->callback([&ctx] { ctx.exit_code = run_publish(ctx, opts); });

  auto* req = app.add_subcommand(
      "req",
      "Query relays with NIP-01 filters; prints each event once as a JSON line, deduplicated across relays");
  add_relays(req);
  req->add_option("filter", opts.filters, "Filter as JSON, e.g. '{\"kinds\":[1],\"limit\":10}' (default {})")
      ->allow_extra_args(false);
  req->add_flag("--follow", opts.follow,
                "Keep printing new events after the stored ones, reconnecting as needed");
  req->callback([&ctx] { ctx.exit_code = run_req(ctx, opts); });
}

}  // namespace infernet::cli
