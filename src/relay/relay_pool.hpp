// The client side of the relay network: one node talking to several relays at once.
//
// A RelayPool keeps a WebSocket to each relay, reconnecting with exponential backoff when one drops. It
// publishes every event to all relays and reports each relay's OK; it subscribes on all relays and hands each
// event to the subscriber once (deduplicated by id per subscription); after a reconnect it resubscribes with
// `since` set to the newest created_at it had seen from that relay, so events published while it was away
// arrive too. When a relay asks for NIP-42 AUTH, the pool answers with the node's key and then retries what
// the relay refused for want of it.
//
// Thread-safe: every method may be called from any thread. Callbacks run on the io_context's threads, never
// while the pool holds its lock, and must not block.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/io_pool.hpp"
#include "net/websocket_client.hpp"
#include "nostr/event.hpp"
#include "nostr/filter.hpp"
#include "nostr/keys.hpp"

namespace infernet::relay {

struct RelayPoolOptions {
  std::vector<std::string> relays;  // ws:// or wss:// URLs
  net::ClientOptions client;
  std::chrono::milliseconds min_backoff{250};
  std::chrono::milliseconds max_backoff{30'000};
  // How long a publish waits for a relay's OK (including time spent reconnecting) before reporting a timeout.
  std::chrono::milliseconds publish_timeout{10'000};
  size_t dedupe_window = 100'000;  // ids remembered per subscription
};

struct PublishOutcome {
  std::string relay;
  bool accepted = false;
  std::string message;  // the relay's OK message, or why there was none ("timeout: ...", "error: ...")
};

struct RelayStatus {
  std::string url;
  bool connected = false;
  bool authenticated = false;
  uint64_t connects = 0;  // successful connections so far; more than 1 means it reconnected
  std::string last_error;
};

using SubscriptionHandle = uint64_t;

struct SubscriptionCallbacks {
  std::function<void(const nostr::Event& event, const std::string& relay)> on_event;
  // Once, when every relay connected at the time has sent EOSE for the first time (or the wait timed out).
  std::function<void()> on_eose;
  // A relay closed the subscription (CLOSED) for a reason other than auth-required, which is retried.
  std::function<void(const std::string& relay, const std::string& reason)> on_closed;
};

class RelayPool {
 public:
  // `auth_keys`: the key answering NIP-42 challenges; without one, AUTH requests are ignored.
  RelayPool(net::asio::io_context& io, RelayPoolOptions options, std::optional<nostr::Keypair> auth_keys);
  ~RelayPool();  // stop()
  RelayPool(const RelayPool&) = delete;
  RelayPool& operator=(const RelayPool&) = delete;

  // Errors: kInvalidInput naming the relay URL that does not parse. Connecting happens in the background.
  Status start();
  // Closes every connection; pending publishes complete with "error: pool stopped". Idempotent.
  void stop();

  // Sends to every relay (queued for relays not connected yet). `done` gets one outcome per relay.
  void publish(const nostr::Event& event, std::function<void(std::vector<PublishOutcome>)> done);
  std::future<std::vector<PublishOutcome>> publish(const nostr::Event& event);
  // publish(), and when no relay accepted the event and some refused it as "rate-limited:", again after a
  // backoff (200 ms, doubling), up to 6 times in all: a busy node's events outrun a relay's per-connection
  // limit in bursts, and an event dropped there is a job or a result lost. `done` gets the last attempt's
  // outcomes; it is not called if the io_context stops while a retry waits.
  void publish_retrying(const nostr::Event& event,
                        const std::function<void(std::vector<PublishOutcome>)>& done);

  SubscriptionHandle subscribe(std::vector<nostr::Filter> filters, SubscriptionCallbacks callbacks);
  void unsubscribe(SubscriptionHandle handle);

  std::vector<RelayStatus> status() const;

 private:
  struct State;
  static void publish_on(const std::shared_ptr<State>& state, const nostr::Event& event,
                         std::function<void(std::vector<PublishOutcome>)> done);
  static void publish_attempt(const std::shared_ptr<State>& state, const nostr::Event& event, int attempt,
                              const std::function<void(std::vector<PublishOutcome>)>& done);
  std::shared_ptr<State> state_;
};

}  // namespace infernet::relay
