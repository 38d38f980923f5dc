#include "relay/relay.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "core/encoding.hpp"
#include "core/random.hpp"
#include "nostr/identity.hpp"

namespace infernet::relay {
namespace {

constexpr uint32_t kAuthKind = 22242;
constexpr int64_t kAuthWindowSeconds = 600;

// "invalid: ..." -> "invalid", for counting rejects by reason.
std::string reason_prefix(const std::string& message) {
  auto colon = message.find(':');
  return colon == std::string::npos ? message : message.substr(0, colon);
}

std::string prefix_for(const Error& e) {
  switch (e.code) {
    case ErrorCode::kLimitExceeded:
      return "invalid: too large: ";
    default:
      return "invalid: ";
  }
}

std::optional<int64_t> expiration_of(const nostr::Event& e) {
  auto v = e.tag_value("expiration");
  if (!v) return std::nullopt;
  int64_t t = 0;
  for (char c : *v) {
    if (c < '0' || c > '9' || t > (INT64_MAX - 9) / 10) return std::nullopt;
    t = t * 10 + (c - '0');
  }
  return v->empty() ? std::nullopt : std::optional<int64_t>(t);
}

// "wss://Host:443/" and "wss://host:443" name the same relay.
std::string normalize_url(std::string_view url) {
  std::string s(url);
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<std::set<uint32_t>> parse_kind_list(const std::string& key, const std::string& text) {
  std::set<uint32_t> kinds;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) continue;
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > 65535) {
      std::string message = key;
      message += ": '";
      message += item;
      message += "' is not a kind (0-65535)";
      return make_error(ErrorCode::kInvalidInput, std::move(message));
    }
    kinds.insert(static_cast<uint32_t>(v));
  }
  return kinds;
}

}  // namespace

Result<RelayOptions> relay_options_from_config(const Config& config) {
  RelayOptions o;
  auto size_of = [&](const char* key) {
    return static_cast<size_t>(std::max<int64_t>(0, config.get_int(key)));
  };
  o.limits.max_message_bytes = size_of("relay.max_message_bytes");
  o.limits.max_subscriptions = size_of("relay.max_subscriptions");
  o.limits.max_filters = size_of("relay.max_filters");
  o.limits.max_limit = size_of("relay.max_limit");
  o.limits.max_events_per_second = static_cast<double>(config.get_int("relay.max_events_per_second"));
  o.limits.max_future_seconds = config.get_int("relay.max_future_seconds");
  o.limits.max_past_seconds = config.get_int("relay.max_past_seconds");
  o.auth.required = config.get_bool("relay.auth_required");
  auto read = parse_kind_list("relay.auth_read_kinds", config.get_string("relay.auth_read_kinds"));
  if (!read) return tl::unexpected(read.error());
  o.auth.read_kinds = std::move(*read);
  auto write = parse_kind_list("relay.auth_write_kinds", config.get_string("relay.auth_write_kinds"));
  if (!write) return tl::unexpected(write.error());
  o.auth.write_kinds = std::move(*write);
  std::stringstream ss(config.get_string("relay.allowed_pubkeys"));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    auto pk = nostr::parse_public_key(item);
    if (!pk) return make_error(ErrorCode::kInvalidInput, "relay.allowed_pubkeys: " + pk.error().message);
    o.auth.allowed_pubkeys.insert(pk->bytes());
  }
  o.info.name = config.get_string("relay.name");
  o.info.description = config.get_string("relay.description");
  o.info.contact = config.get_string("relay.contact");
  o.public_url = config.get_string("relay.public_url");
  o.query_threads = std::max<size_t>(1, size_of("relay.query_threads"));
  return o;
}

// The threads that answer REQ and COUNT from the database. Network threads hand them work and go on; a
// query's answers are sent from here (WebSocketConnection::send is thread-safe).
struct Relay::QueryThreads {
  explicit QueryThreads(size_t n) {
    for (size_t i = 0; i < n; ++i)
      threads.emplace_back([this] { run(); });
  }
  ~QueryThreads() { stop(); }

  // False once stopped; the work is then dropped.
  bool post(std::function<void()> work) {
    std::lock_guard lock(mu);
    if (stopping) return false;
    queue.push_back(std::move(work));
    cv.notify_one();
    return true;
  }

  // Runs what is queued, then joins.
  void stop() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }

  void run() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [this] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        work = std::move(queue.front());
        queue.pop_front();
      }
      work();
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;  // guarded by mu
  bool stopping = false;                    // guarded by mu
  std::vector<std::thread> threads;
};

// One WebSocket client of the relay. Calls arrive on the connection's strand, one at a time.
class Relay::Session final : public net::WebSocketHandler {
 public:
  Session(Relay& relay, std::shared_ptr<net::WebSocketConnection> connection)
      : relay_(relay), connection_(std::move(connection)) {
    std::array<uint8_t, 16> challenge{};
    fill_random(challenge);
    challenge_ = hex_encode(challenge);
    tokens_ = burst();
    last_refill_ = std::chrono::steady_clock::now();
    send(auth_message(challenge_));
  }

  void on_text(std::string_view text) override {
    auto message = parse_client_message(text, relay_.message_limits_);
    if (!message) return refuse(message.error());
    std::visit([this](auto& m) { handle(m); }, *message);
  }

  void on_close() override {
    for (auto& [id, live] : subscriptions_)
      live->store(false);
    relay_.index_.remove_connection(connection_->id());
    std::lock_guard lock(relay_.mu_);
    relay_.connections_.erase(connection_->id());
    relay_.authenticated_.erase(connection_->id());
    relay_.metrics_.connections.fetch_sub(1);
  }

 private:
  double burst() const { return std::max(1.0, 2 * relay_.options_.limits.max_events_per_second); }

  bool take_token() {
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    last_refill_ = now;
    tokens_ = std::min(burst(), tokens_ + elapsed * relay_.options_.limits.max_events_per_second);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

  bool authenticated() const { return !authed_.empty(); }

  bool allowed_writer() const {
    const auto& allowed = relay_.options_.auth.allowed_pubkeys;
    if (allowed.empty()) return true;
    return std::any_of(authed_.begin(), authed_.end(),
                       [&](const auto& pk) { return allowed.count(pk) != 0; });
  }

  void send(std::string text) {
    if (!connection_->send(std::move(text))) relay_.metrics_.slow_consumers_dropped.fetch_add(1);
  }

  void reply_ok(const std::string& id, bool accepted, const std::string& message) {
    if (!accepted) relay_.count_reject(reason_prefix(message));
    send(ok_message(id, accepted, message));
  }

  void refuse(const MessageError& e) {
    std::string prefix = prefix_for(e.error);
    if (e.command == "EVENT" && e.event_id) return reply_ok(*e.event_id, false, prefix + e.error.message);
    if ((e.command == "REQ" || e.command == "COUNT") && e.subscription_id) {
      relay_.count_reject("invalid");
      return send(closed_message(*e.subscription_id, prefix + e.error.message));
    }
    relay_.count_reject("invalid");
    send(notice_message(prefix + e.error.message));
  }

  void handle(EventMessage& m) {
    relay_.metrics_.events_received.fetch_add(1);
    nostr::Event& e = m.event;
    std::string id = hex_encode(e.id);
    const RelayOptions& o = relay_.options_;
    if (!take_token()) {
      return reply_ok(id, false,
                      "rate-limited: more than " +
                          std::to_string(static_cast<int64_t>(o.limits.max_events_per_second)) +
                          " events per second");
    }
    if (e.kind == kAuthKind) return reply_ok(id, false, "invalid: AUTH events are sent with AUTH, not EVENT");
    if ((o.auth.required || o.auth.write_kinds.count(e.kind) != 0 || !o.auth.allowed_pubkeys.empty()) &&
        !authenticated()) {
      return reply_ok(id, false,
                      "auth-required: this relay needs NIP-42 authentication to publish this event");
    }
    if (!allowed_writer())
      return reply_ok(id, false, "restricted: this relay accepts events only from its members");
    if (e.tags.size() > o.limits.max_event_tags) {
      return reply_ok(id, false, "invalid: more than " + std::to_string(o.limits.max_event_tags) + " tags");
    }
    int64_t now = relay_.clock_.now_unix();
    if (e.created_at > now + o.limits.max_future_seconds) {
      return reply_ok(id, false,
                      "invalid: created_at is more than " + std::to_string(o.limits.max_future_seconds) +
                          " seconds in the future");
    }
    if (o.limits.max_past_seconds > 0 && e.created_at < now - o.limits.max_past_seconds) {
      return reply_ok(id, false, "invalid: created_at is too far in the past");
    }
    if (auto exp = expiration_of(e); exp && *exp <= now)
      return reply_ok(id, false, "invalid: event has expired");
    if (auto st = nostr::verify_event(e); !st) return reply_ok(id, false, "invalid: " + st.error().message);

    std::string json = nostr::to_json(e);
    if (nostr::classify_kind(e.kind) == nostr::KindClass::kEphemeral) {
      reply_ok(id, true, "");
      relay_.broadcast(e, json);
      return;
    }
    // The OK goes out from the writer thread once the batch holding this event has committed.
    auto connection = connection_;
    Relay& relay = relay_;
    auto event = std::make_shared<nostr::Event>(std::move(e));
    auto queued = relay_.store_.add(*event, json, [&relay, connection, event, id, json](Result<AddResult> r) {
      std::string message;
      bool accepted = true;
      if (!r) {
        accepted = false;
        message = "error: could not store the event";
        spdlog::error("relay: storing {}: {}", id, r.error().to_string());
      } else if (*r == AddResult::kDuplicate) {
        message = "duplicate: already have this event";
      } else if (*r == AddResult::kSuperseded) {
        message = "duplicate: a newer version of this event is stored";
      } else if (*r == AddResult::kDeleted) {
        accepted = false;
        message = "blocked: this event was deleted by its author";
      }
      if (!accepted) relay.count_reject(reason_prefix(message));
      connection->send(ok_message(id, accepted, message));
      if (r && *r == AddResult::kStored) {
        relay.metrics_.events_stored.fetch_add(1);
        relay.broadcast(*event, json);
      }
    });
    if (!queued) reply_ok(id, false, "rate-limited: the relay is busy writing; try again shortly");
  }

  // Whether this connection may read events of `kind`.
  bool may_read_kind(uint32_t kind) const {
    return authenticated() || relay_.options_.auth.read_kinds.count(kind) == 0;
  }

  // Auth checks shared by REQ and COUNT; returns the reason to refuse, or empty.
  std::string read_refusal(const std::vector<nostr::Filter>& filters) const {
    const RelayOptions& o = relay_.options_;
    if (authenticated()) return "";
    if (o.auth.required) return "auth-required: this relay needs NIP-42 authentication to read";
    if (o.auth.read_kinds.empty()) return "";
    for (const auto& f : filters) {
      if (f.kinds && !f.kinds->empty() &&
          std::all_of(f.kinds->begin(), f.kinds->end(), [&](uint32_t k) { return !may_read_kind(k); })) {
        return "auth-required: these kinds are readable only after NIP-42 authentication";
      }
    }
    return "";
  }

  // Caps limits, and drops filters that ask for a multi-letter tag: NIP-01 indexes only single-letter tags,
  // so such a filter matches no stored event, and it matches no live one either, to be consistent.
  void cap_limits(std::vector<nostr::Filter>& filters) const {
    std::erase_if(filters, [](const nostr::Filter& f) {
      return std::any_of(f.tags.begin(), f.tags.end(), [](const auto& t) { return t.name.size() != 1; });
    });
    for (auto& f : filters) {
      if (!f.limit || *f.limit > relay_.options_.limits.max_limit) f.limit = relay_.options_.limits.max_limit;
    }
  }

  void handle(ReqMessage& m) {
    const ConnectionId cid = connection_->id();
    if (auto why = read_refusal(m.filters); !why.empty()) {
      relay_.count_reject(reason_prefix(why));
      return send(closed_message(m.subscription_id, why));
    }
    if (subscriptions_.count(m.subscription_id) == 0 &&
        subscriptions_.size() >= relay_.options_.limits.max_subscriptions) {
      relay_.count_reject("blocked");
      return send(
          closed_message(m.subscription_id, "blocked: more than " +
                                                std::to_string(relay_.options_.limits.max_subscriptions) +
                                                " open subscriptions on this connection"));
    }
    cap_limits(m.filters);
    if (pending_queries_->load() >= relay_.options_.limits.max_subscriptions) {
      relay_.count_reject("rate-limited");
      return send(
          closed_message(m.subscription_id, "rate-limited: too many queries in progress on this connection"));
    }
    // A repeated id replaces the subscription: the old one's query, if still running, stops sending.
    if (auto it = subscriptions_.find(m.subscription_id); it != subscriptions_.end())
      it->second->store(false);
    auto live = std::make_shared<std::atomic<bool>>(true);
    // The live subscription starts exactly where the stored events end: it is registered while the snapshot
    // the query reads is pinned, under the store's commit lock. An event committed before is in the
    // snapshot and was broadcast before the subscription existed; one committed after is not in it and is
    // broadcast to the subscription. So no event arrives twice (stored and live), and none is missed.
    auto snapshot =
        relay_.store_.snapshot([&] { relay_.index_.subscribe(cid, m.subscription_id, m.filters); });
    if (!snapshot) {
      spdlog::error("relay: opening a read snapshot: {}", snapshot.error().to_string());
      relay_.index_.unsubscribe(cid, m.subscription_id);  // the subscription this REQ would have replaced
      subscriptions_.erase(m.subscription_id);
      return send(closed_message(m.subscription_id, "error: could not query stored events"));
    }
    subscriptions_[m.subscription_id] = live;
    auto pinned = std::make_shared<EventStore::Snapshot>(std::move(*snapshot));
    // Snapshot of this connection's read rights for the query thread (authentication may change later; a
    // later AUTH only widens what a new REQ may read).
    bool filter_kinds = !authenticated() && !relay_.options_.auth.read_kinds.empty();
    Relay& relay = relay_;
    auto connection = connection_;
    auto pending = pending_queries_;
    pending->fetch_add(1);
    bool posted = relay_.queries_->post([&relay, connection, pending, live, filter_kinds, cid, pinned,
                                         sub = m.subscription_id, filters = std::move(m.filters)] {
      // In progress until its last message is sent.
      struct Done {
        std::atomic<size_t>& n;
        ~Done() { n.fetch_sub(1); }
      } done{*pending};
      auto stored =
          relay.store_.query(*pinned, filters, relay.clock_.now_unix(), relay.options_.limits.max_limit);
      // Released as soon as it is read: an open snapshot holds checkpoints back.
      { auto released = std::move(*pinned); }
      if (!live->load()) return;
      if (!stored) {
        spdlog::error("relay: query failed: {}", stored.error().to_string());
        // The subscription stays in the index until CLOSE or disconnect; it receives nothing more after
        // CLOSED because the client drops it.
        relay.index_.unsubscribe(cid, sub);
        connection->send(closed_message(sub, "error: could not query stored events"));
        return;
      }
      const auto& read_kinds = relay.options_.auth.read_kinds;
      for (const auto& json : *stored) {
        if (!live->load()) return;
        if (filter_kinds) {
          auto ev = nostr::parse_event(json);
          if (ev && read_kinds.count(ev->kind) != 0) continue;
        }
        if (!connection->send(event_message(sub, json))) return;
        relay.metrics_.events_sent.fetch_add(1);
      }
      if (live->load()) connection->send(eose_message(sub));
    });
    if (!posted) {
      pending->fetch_sub(1);
      relay_.index_.unsubscribe(cid, m.subscription_id);
      subscriptions_.erase(m.subscription_id);
      send(closed_message(m.subscription_id, "error: the relay is shutting down"));
    }
  }

  void handle(CountMessage& m) {
    if (auto why = read_refusal(m.filters); !why.empty()) return send(closed_message(m.subscription_id, why));
    if (pending_queries_->load() >= relay_.options_.limits.max_subscriptions) {
      relay_.count_reject("rate-limited");
      return send(
          closed_message(m.subscription_id, "rate-limited: too many queries in progress on this connection"));
    }
    Relay& relay = relay_;
    auto connection = connection_;
    auto pending = pending_queries_;
    pending->fetch_add(1);
    bool posted = relay_.queries_->post(
        [&relay, connection, pending, sub = m.subscription_id, filters = std::move(m.filters)] {
          auto n = relay.store_.count(filters, relay.clock_.now_unix());
          connection->send(n ? count_message(sub, *n)
                             : closed_message(sub, "error: could not count stored events"));
          pending->fetch_sub(1);
        });
    if (!posted) {
      pending->fetch_sub(1);
      send(closed_message(m.subscription_id, "error: the relay is shutting down"));
    }
  }

  void handle(CloseMessage& m) {
    if (auto it = subscriptions_.find(m.subscription_id); it != subscriptions_.end()) {
      it->second->store(false);
      subscriptions_.erase(it);
    }
    relay_.index_.unsubscribe(connection_->id(), m.subscription_id);
  }

  void handle(AuthMessage& m) {
    const nostr::Event& e = m.event;
    std::string id = hex_encode(e.id);
    if (e.kind != kAuthKind) return reply_ok(id, false, "invalid: AUTH needs a kind 22242 event");
    if (auto st = nostr::verify_event(e); !st) return reply_ok(id, false, "invalid: " + st.error().message);
    int64_t now = relay_.clock_.now_unix();
    if (e.created_at > now + kAuthWindowSeconds || e.created_at < now - kAuthWindowSeconds) {
      return reply_ok(id, false, "invalid: AUTH event created_at is not within 10 minutes of now");
    }
    auto challenge = e.tag_value("challenge");
    if (!challenge || *challenge != challenge_)
      return reply_ok(id, false, "invalid: AUTH challenge does not match");
    auto relay_tag = e.tag_value("relay");
    std::string ours;
    {
      std::lock_guard lock(relay_.mu_);
      ours = relay_.public_url_;
    }
    if (!relay_tag) return reply_ok(id, false, "invalid: AUTH event has no relay tag");
    if (!ours.empty() && normalize_url(*relay_tag) != normalize_url(ours)) {
      return reply_ok(id, false,
                      "invalid: AUTH event is for relay " + std::string(*relay_tag) + ", not " + ours);
    }
    authed_.insert(e.pubkey);
    {
      std::lock_guard lock(relay_.mu_);
      relay_.authenticated_.insert(connection_->id());
    }
    reply_ok(id, true, "");
  }

  Relay& relay_;
  std::shared_ptr<net::WebSocketConnection> connection_;
  std::string challenge_;
  std::set<std::array<uint8_t, 32>> authed_;
  // Open subscriptions, each with a flag that its query (on a query thread) checks before sending; cleared
  // when the subscription is closed or replaced.
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> subscriptions_;
  // REQ and COUNT handed to the query threads and not yet answered; bounded by max_subscriptions.
  std::shared_ptr<std::atomic<size_t>> pending_queries_ = std::make_shared<std::atomic<size_t>>(0);
  double tokens_ = 0;
  std::chrono::steady_clock::time_point last_refill_;
};

Relay::Relay(RelayOptions options, EventStore& store, const Clock& clock)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      public_url_(options_.public_url),
      queries_(std::make_unique<QueryThreads>(std::max<size_t>(1, options_.query_threads))) {
  message_limits_.max_message_bytes = options_.limits.max_message_bytes;
  message_limits_.max_filters = options_.limits.max_filters;
  message_limits_.max_subscription_id_length = options_.limits.max_subscription_id_length;
  message_limits_.event.max_json_bytes = options_.limits.max_message_bytes;
  message_limits_.event.max_tags = options_.limits.max_event_tags;
}

Relay::~Relay() = default;

void Relay::stop() {
  queries_->stop();
}

void Relay::set_public_url(std::string url) {
  std::lock_guard lock(mu_);
  public_url_ = std::move(url);
}

std::unique_ptr<net::WebSocketHandler> Relay::accept(std::shared_ptr<net::WebSocketConnection> connection,
                                                     const net::HttpRequest& /*request*/) {
  {
    std::lock_guard lock(mu_);
    connections_[connection->id()] = connection;
  }
  metrics_.connections.fetch_add(1);
  metrics_.connections_total.fetch_add(1);
  return std::make_unique<Session>(*this, std::move(connection));
}

void Relay::broadcast(const nostr::Event& event, const std::string& json) {
  std::vector<std::pair<ConnectionId, std::string>> targets;
  index_.match(event, [&](ConnectionId c, const std::string& sub) { targets.emplace_back(c, sub); });
  bool restricted = options_.auth.read_kinds.count(event.kind) != 0 || options_.auth.required;
  for (const auto& [cid, sub] : targets) {
    std::shared_ptr<net::WebSocketConnection> conn;
    {
      std::lock_guard lock(mu_);
      auto it = connections_.find(cid);
      if (it == connections_.end()) continue;
      // Kinds readable only after AUTH never reach a connection that has not authenticated.
      if (restricted && authenticated_.count(cid) == 0) continue;
      conn = it->second;
    }
    if (conn->send(event_message(sub, json))) {
      metrics_.events_sent.fetch_add(1);
    } else {
      metrics_.slow_consumers_dropped.fetch_add(1);
    }
  }
}

void Relay::count_reject(const std::string& reason) {
  std::lock_guard lock(metrics_.mu);
  ++metrics_.rejected[reason];
}

void Relay::purge_expired() {
  if (auto st = store_.purge_expired(clock_.now_unix()); !st) {
    spdlog::warn("relay: purging expired events: {}", st.error().to_string());
  }
}

}  // namespace infernet::relay
