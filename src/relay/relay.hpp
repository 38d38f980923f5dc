// The embedded Nostr relay: NIP-01 storage and subscriptions, NIP-09 deletion, NIP-11 information, NIP-40
// expiration, NIP-42 authentication, NIP-45 counts, limits and Prometheus metrics.
//
// The relay is glue between the network (net::Server hands it each WebSocket connection and HTTP request),
// the EventStore (durable, one batching writer) and the SubscriptionIndex (live matching). A connection's
// messages arrive in order on that connection's strand, where they are parsed, checked and verified; an
// event's OK is sent from the store's writer thread only after its batch has committed, so "OK true" means
// the event survives a SIGKILL. REQ and COUNT are answered from the database by the relay's own query
// threads, so that a query reading thousands of rows never holds up a network thread. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "net/http.hpp"
#include "net/server.hpp"
#include "relay/event_store.hpp"
#include "relay/message.hpp"
#include "relay/subscription_index.hpp"

namespace infernet::relay {

struct RelayLimits {
  size_t max_message_bytes = 128 * 1024;
  size_t max_subscriptions = 50;  // per connection
  size_t max_filters = 10;        // per REQ
  size_t max_limit = 5000;        // cap on a filter's limit, and the limit of a filter without one
  size_t max_subscription_id_length = 64;
  size_t max_event_tags = 2000;
  double max_events_per_second = 200;  // per connection, with a burst of twice that
  int64_t max_future_seconds = 900;    // created_at may be at most this far ahead of now
  int64_t max_past_seconds = 0;        // 0: no lower bound on created_at
};

struct RelayAuthPolicy {
  bool required = false;                              // every REQ and EVENT needs NIP-42 auth first
  std::set<uint32_t> read_kinds;                      // kinds only authenticated connections may read
  std::set<uint32_t> write_kinds;                     // kinds only authenticated connections may publish
  std::set<std::array<uint8_t, 32>> allowed_pubkeys;  // non-empty: a private relay; only these may publish
};

struct RelayInfo {
  std::string name = "infernet relay";
  std::string description = "The embedded relay of an Infernet node.";
  std::string contact;
  std::string pubkey;  // hex, optional
};

struct RelayOptions {
  RelayLimits limits;
  RelayAuthPolicy auth;
  RelayInfo info;
  // Threads answering REQ and COUNT from the database (at least 1).
  size_t query_threads = 2;
  // The URL clients use, for checking the "relay" tag of NIP-42 AUTH events. Set after the port is known.
  std::string public_url;
};

// Reads the relay.* keys. Errors: kInvalidInput naming the key (a bad kind list or pubkey).
Result<RelayOptions> relay_options_from_config(const Config& config);

class Relay {
 public:
  Relay(RelayOptions options, EventStore& store, const Clock& clock);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  void set_public_url(std::string url);

  // net::ServerHandlers::websocket and ::http.
  std::unique_ptr<net::WebSocketHandler> accept(std::shared_ptr<net::WebSocketConnection> connection,
                                                const net::HttpRequest& request);
  net::HttpResponse handle_http(const net::HttpRequest& request);

  // The NIP-11 document and the Prometheus text, also served over HTTP.
  std::string information_document() const;
  std::string metrics_text() const;

  // Waits for the queries in progress and stops the query threads; later REQ and COUNT get
  // CLOSED "error: shutting down". Call after the server has stopped. Idempotent; the destructor calls it.
  void stop();

  // Removes expired events (NIP-40); call periodically.
  void purge_expired();

  // Counts for metrics; public for tests.
  struct Metrics {
    std::atomic<uint64_t> connections{0};
    std::atomic<uint64_t> connections_total{0};
    std::atomic<uint64_t> events_received{0};
    std::atomic<uint64_t> events_stored{0};
    std::atomic<uint64_t> events_sent{0};
    std::atomic<uint64_t> slow_consumers_dropped{0};
    mutable std::mutex mu;
    std::map<std::string, uint64_t>
        rejected;  // guarded by mu; by reason prefix ("invalid", "rate-limited", ...)
  };
  const Metrics& metrics() const { return metrics_; }

 private:
  class Session;
  friend class Session;
  struct QueryThreads;

  void count_reject(const std::string& reason);
  // Sends an event to every live subscription that matches (all connections, this relay).
  void broadcast(const nostr::Event& event, const std::string& json);

  RelayOptions options_;
  MessageLimits message_limits_;
  EventStore& store_;
  const Clock& clock_;
  SubscriptionIndex index_;
  Metrics metrics_;

  mutable std::mutex mu_;
  std::unordered_map<ConnectionId, std::shared_ptr<net::WebSocketConnection>> connections_;  // guarded by mu_
  std::unordered_set<ConnectionId> authenticated_;                                           // guarded by mu_
  std::string public_url_;                                                                   // guarded by mu_

  // Declared last: stopped (joined) first on destruction, while everything its queries use still exists.
  std::unique_ptr<QueryThreads> queries_;
};

}  // namespace infernet::relay
