#include "relay/relay_pool.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/encoding.hpp"
#include "relay/message.hpp"

namespace infernet::relay {
namespace asio = boost::asio;
namespace {

// publish_retrying(): the first wait before publishing again an event relays refused as rate-limited (it
// doubles each time), and how many times in all the event is published.
constexpr auto kRateLimitedBackoff = std::chrono::milliseconds(200);
constexpr int kRateLimitedTries = 6;

constexpr uint32_t kAuthKind = 22242;
constexpr auto kEoseWait = std::chrono::seconds(10);

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct IdHash {
  size_t operator()(const nostr::EventId& id) const noexcept {
    size_t h;
    std::memcpy(&h, id.data(), sizeof(h));
    return h;
  }
};

}  // namespace

struct RelayPool::State : std::enable_shared_from_this<RelayPool::State> {
  struct Link {
    std::string url;
    std::shared_ptr<net::WebSocketClient> client;
    bool open = false;
    bool authenticated = false;
    uint64_t connects = 0;
    unsigned attempts = 0;
    std::string last_error;
    std::string auth_event_id;  // hex id of our AUTH answer awaiting OK
    std::unique_ptr<asio::steady_timer> retry;
  };
  struct Pending {
    std::string id;
    std::string wire;  // ["EVENT", ...]
    std::vector<std::optional<PublishOutcome>> outcomes;
    std::vector<bool> waiting_for_auth;
    std::function<void(std::vector<PublishOutcome>)> done;
    std::unique_ptr<asio::steady_timer> timer;
  };
  struct Subscription {
    std::vector<nostr::Filter> filters;
    SubscriptionCallbacks callbacks;
    std::unordered_set<nostr::EventId, IdHash> seen;
    std::deque<nostr::EventId> seen_order;
    std::vector<std::optional<int64_t>> newest_seen;  // per link
    std::vector<bool> eose;                           // per link, since its last REQ
    std::vector<bool> closed_for_auth;                // per link
    bool eose_reported = false;
    std::unique_ptr<asio::steady_timer> eose_timer;
  };

  State(asio::io_context& io_context, RelayPoolOptions opts, std::optional<nostr::Keypair> keys)
      : io(io_context), options(std::move(opts)), auth_keys(std::move(keys)) {}

  asio::io_context& io;
  RelayPoolOptions options;
  std::optional<nostr::Keypair> auth_keys;

  mutable std::mutex mu;
  // guarded by mu
  std::vector<Link> links;
  std::map<SubscriptionHandle, Subscription> subscriptions;
  std::map<std::string, std::shared_ptr<Pending>> pending;
  SubscriptionHandle next_handle = 1;
  bool stopped = false;

  static std::string wire_id(SubscriptionHandle h) { return "p" + std::to_string(h); }

  // The subscription a relay names by its wire id ("p<handle>"), or nullptr. Call with mu held.
  Subscription* find_by_wire_id(const std::string& id) {
    if (id.size() < 2 || id[0] != 'p') return nullptr;
    auto it = subscriptions.find(std::strtoull(id.c_str() + 1, nullptr, 10));
    return it == subscriptions.end() ? nullptr : &it->second;
  }

  // REQ for one subscription on one link, resuming after the newest event already seen there.
  std::string req_for(SubscriptionHandle h, Subscription& sub, size_t link) {
    std::vector<nostr::Filter> filters = sub.filters;
    if (sub.newest_seen[link]) {
      for (auto& f : filters) {
        f.since = std::max(f.since.value_or(0), *sub.newest_seen[link]);
        f.limit.reset();  // a limit could cut off what was published while we were away
      }
    }
    sub.eose[link] = false;
    sub.closed_for_auth[link] = false;
    return client_req_message(wire_id(h), filters);
  }

  void connect(size_t i) {
    std::weak_ptr<State> weak = shared_from_this();
    net::WebSocketClientHandlers handlers;
    handlers.on_open = [weak, i] {
      if (auto s = weak.lock()) s->on_open(i);
    };
    handlers.on_text = [weak, i](std::string_view text) {
      if (auto s = weak.lock()) s->on_text(i, text);
    };
    handlers.on_close = [weak, i](const Error& e) {
      if (auto s = weak.lock()) s->on_close(i, e);
    };
    std::shared_ptr<net::WebSocketClient> client;
    {
      std::lock_guard lock(mu);
      if (stopped) return;
      auto created = net::WebSocketClient::create(io, links[i].url, handlers, options.client);
      if (!created) {
        links[i].last_error = created.error().message;
        return;
      }
      client = *created;
      links[i].client = client;
    }
    client->connect();
  }

  void on_open(size_t i) {
    std::vector<std::string> out;
    std::shared_ptr<net::WebSocketClient> client;
    {
      std::lock_guard lock(mu);
      Link& link = links[i];
      link.open = true;
      link.authenticated = false;
      link.attempts = 0;
      ++link.connects;
      client = link.client;
      for (auto& [h, sub] : subscriptions)
        out.push_back(req_for(h, sub, i));
      for (auto& [id, p] : pending) {
        if (!p->outcomes[i]) out.push_back(p->wire);
      }
    }
    spdlog::debug("relay pool: connected to {}", links[i].url);
    for (auto& m : out)
      client->send(std::move(m));
  }

  void on_close(size_t i, const Error& e) {
    std::vector<std::function<void()>> reports;
    {
      std::lock_guard lock(mu);
      // A relay that is down counts as settled for subscriptions waiting on EOSE.
      for (auto& [h, sub] : subscriptions) {
        sub.eose[i] = true;
        if (auto r = maybe_report_eose(sub)) reports.push_back(std::move(r));
      }
      schedule_reconnect(i, e);
    }
    for (auto& r : reports)
      r();
  }

  // Call with mu held.
  void schedule_reconnect(size_t i, const Error& e) {
    Link& link = links[i];
    link.open = false;
    link.authenticated = false;
    link.client.reset();
    link.last_error = e.message;
    if (stopped) return;
    // Exponential backoff with jitter, so many nodes do not reconnect to a restarted relay in lockstep.
    auto base = std::min<int64_t>(options.max_backoff.count(), options.min_backoff.count()
                                                                   << std::min(link.attempts, 16u));
    thread_local std::mt19937 rng{std::random_device{}()};
    auto delay =
        std::chrono::milliseconds(base / 2 + std::uniform_int_distribution<int64_t>(0, base / 2)(rng));
    ++link.attempts;
    spdlog::debug("relay pool: {} closed ({}); reconnecting in {} ms", link.url, e.message, delay.count());
    link.retry = std::make_unique<asio::steady_timer>(io, delay);
    std::weak_ptr<State> weak = shared_from_this();
    link.retry->async_wait([weak, i](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto s = weak.lock()) s->connect(i);
    });
  }

  void send_to(size_t i, std::string text) {
    std::shared_ptr<net::WebSocketClient> client;
    {
      std::lock_guard lock(mu);
      if (!links[i].open) return;
      client = links[i].client;
    }
    client->send(std::move(text));
  }

  // Completes a publish if every relay has answered; call with mu held, run the returned action after.
  std::function<void()> finish_if_complete(const std::shared_ptr<Pending>& p) {
    if (!std::all_of(p->outcomes.begin(), p->outcomes.end(), [](const auto& o) { return o.has_value(); })) {
      return {};
    }
    pending.erase(p->id);
    if (p->timer) p->timer->cancel();
    std::vector<PublishOutcome> result;
    for (auto& o : p->outcomes)
      result.push_back(std::move(*o));
    return [done = std::move(p->done), result = std::move(result)]() mutable {
      if (done) done(std::move(result));
    };
  }

  void on_text(size_t i, std::string_view text) {
    auto message = parse_relay_message(text, nostr::EventLimits{});
    if (!message) {
      spdlog::debug("relay pool: {} sent an unreadable message: {}", links[i].url, message.error().message);
      return;
    }
    std::visit([&](auto& m) { handle(i, m); }, *message);
  }

  void handle(size_t i, RelayEvent& m) {
    // A relay is an untrusted peer: the event must be genuine and must match what was asked for.
    if (!nostr::verify_event(m.event)) return;
    std::function<void()> deliver;
    {
      std::lock_guard lock(mu);
      Subscription* found = find_by_wire_id(m.subscription_id);
      if (found == nullptr) return;
      Subscription& sub = *found;
      if (!nostr::matches_any(sub.filters, m.event)) return;
      auto& newest = sub.newest_seen[i];
      if (!newest || *newest < m.event.created_at) newest = m.event.created_at;
      if (!sub.seen.insert(m.event.id).second) return;
      sub.seen_order.push_back(m.event.id);
      if (sub.seen_order.size() > options.dedupe_window) {
        sub.seen.erase(sub.seen_order.front());
        sub.seen_order.pop_front();
      }
      deliver = [cb = sub.callbacks.on_event, event = std::move(m.event), url = links[i].url] {
        if (cb) cb(event, url);
      };
    }
    deliver();
  }

  void handle(size_t i, RelayOk& m) {
    std::function<void()> after;
    std::vector<std::string> resend;
    {
      std::lock_guard lock(mu);
      Link& link = links[i];
      if (!link.auth_event_id.empty() && m.event_id == link.auth_event_id) {
        link.auth_event_id.clear();
        link.authenticated = m.accepted;
        if (m.accepted) {
          // Retry what the relay refused before we had authenticated.
          for (auto& [id, p] : pending) {
            if (p->waiting_for_auth[i]) resend.push_back(p->wire);
          }
          for (auto& [h, sub] : subscriptions) {
            if (sub.closed_for_auth[i]) resend.push_back(req_for(h, sub, i));
          }
        }
      } else if (auto it = pending.find(m.event_id); it != pending.end()) {
        auto p = it->second;
        if (!m.accepted && m.message.starts_with("auth-required:") && auth_keys && !p->waiting_for_auth[i]) {
          p->waiting_for_auth[i] = true;  // answered again once AUTH succeeds
        } else if (!p->outcomes[i]) {
          p->outcomes[i] = PublishOutcome{link.url, m.accepted, m.message};
          after = finish_if_complete(p);
        }
      }
    }
    for (auto& r : resend)
      send_to(i, std::move(r));
    if (after) after();
  }

  void handle(size_t i, RelayEose& m) {
    std::function<void()> report;
    {
      std::lock_guard lock(mu);
      Subscription* found = find_by_wire_id(m.subscription_id);
      if (found == nullptr) return;
      Subscription& sub = *found;
      sub.eose[i] = true;
      report = maybe_report_eose(sub);
    }
    if (report) report();
  }

  // on_eose fires once every relay has settled: sent EOSE, or failed to connect since the subscription began.
  // Call with mu held.
  std::function<void()> maybe_report_eose(Subscription& sub) {
    if (sub.eose_reported) return {};
    for (size_t k = 0; k < links.size(); ++k) {
      if (!sub.eose[k]) return {};
    }
    sub.eose_reported = true;
    if (sub.eose_timer) sub.eose_timer->cancel();
    return sub.callbacks.on_eose;
  }

  void handle(size_t i, RelayClosed& m) {
    std::function<void()> report;
    {
      std::lock_guard lock(mu);
      Subscription* found = find_by_wire_id(m.subscription_id);
      if (found == nullptr) return;
      Subscription& sub = *found;
      if (m.message.starts_with("auth-required:") && auth_keys) {
        sub.closed_for_auth[i] = true;  // resubscribed once AUTH succeeds
        return;
      }
      sub.eose[i] = true;
      auto eose = maybe_report_eose(sub);
      report = [cb = sub.callbacks.on_closed, url = links[i].url, msg = m.message, eose] {
        if (cb) cb(url, msg);
        if (eose) eose();
      };
    }
    report();
  }

  void handle(size_t i, RelayAuthChallenge& m) {
    if (!auth_keys) return;
    nostr::EventDraft draft{unix_now(), kAuthKind, {{"relay", links[i].url}, {"challenge", m.challenge}}, ""};
    nostr::Event auth = nostr::sign_event(std::move(draft), *auth_keys);
    {
      std::lock_guard lock(mu);
      links[i].auth_event_id = hex_encode(auth.id);
    }
    send_to(i, client_auth_message(nostr::to_json(auth)));
  }

  void handle(size_t i, RelayNotice& m) {
    spdlog::debug("relay pool: NOTICE from {}: {}", links[i].url, m.message);
  }
  void handle(size_t, RelayCount&) {}
};

RelayPool::RelayPool(net::asio::io_context& io, RelayPoolOptions options,
                     std::optional<nostr::Keypair> auth_keys)
    : state_(std::make_shared<State>(io, std::move(options), std::move(auth_keys))) {}

RelayPool::~RelayPool() {
  stop();
}

Status RelayPool::start() {
  {
    std::lock_guard lock(state_->mu);
    if (!state_->links.empty()) return make_error(ErrorCode::kAlreadyExists, "relay pool already started");
    for (const auto& url : state_->options.relays) {
      if (auto parsed = net::parse_ws_url(url); !parsed) {
        return make_error(ErrorCode::kInvalidInput, "relay '" + url + "': " + parsed.error().message);
      }
    }
    if (state_->options.relays.empty()) return make_error(ErrorCode::kInvalidInput, "no relays configured");
    state_->links.resize(state_->options.relays.size());
    for (size_t i = 0; i < state_->links.size(); ++i)
      state_->links[i].url = state_->options.relays[i];
  }
  for (size_t i = 0; i < state_->options.relays.size(); ++i)
    state_->connect(i);
  return {};
}

void RelayPool::stop() {
  std::vector<std::shared_ptr<net::WebSocketClient>> clients;
  std::vector<std::function<void()>> finish;
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopped) return;
    state_->stopped = true;
    for (auto& link : state_->links) {
      if (link.retry) link.retry->cancel();
      if (link.client) clients.push_back(link.client);
    }
    for (auto& [id, p] : state_->pending) {
      for (size_t i = 0; i < p->outcomes.size(); ++i) {
        if (!p->outcomes[i])
          p->outcomes[i] = PublishOutcome{state_->links[i].url, false, "error: pool stopped"};
      }
      if (p->timer) p->timer->cancel();
      std::vector<PublishOutcome> result;
      for (auto& o : p->outcomes)
        result.push_back(std::move(*o));
      finish.push_back([done = p->done, result = std::move(result)] {
        if (done) done(result);
      });
    }
    state_->pending.clear();
    for (auto& [h, sub] : state_->subscriptions) {
      if (sub.eose_timer) sub.eose_timer->cancel();
    }
  }
  for (auto& c : clients)
    c->close();
  for (auto& f : finish)
    f();
}

void RelayPool::publish(const nostr::Event& event, std::function<void(std::vector<PublishOutcome>)> done) {
  publish_on(state_, event, std::move(done));
}

void RelayPool::publish_retrying(const nostr::Event& event,
                                 const std::function<void(std::vector<PublishOutcome>)>& done) {
  publish_attempt(state_, event, 1, done);
}

void RelayPool::publish_attempt(const std::shared_ptr<State>& state, const nostr::Event& event, int attempt,
                                const std::function<void(std::vector<PublishOutcome>)>& done) {
  std::weak_ptr<State> weak = state;
  publish_on(state, event, [weak, event, attempt, done](std::vector<PublishOutcome> outcomes) {
    const bool accepted =
        std::any_of(outcomes.begin(), outcomes.end(), [](const auto& o) { return o.accepted; });
    const bool limited = std::any_of(outcomes.begin(), outcomes.end(),
                                     [](const auto& o) { return o.message.starts_with("rate-limited"); });
    auto s = weak.lock();
    if (accepted || !limited || attempt >= kRateLimitedTries || !s) {
      if (done) done(std::move(outcomes));
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(s->io, kRateLimitedBackoff * (1 << (attempt - 1)));
    timer->async_wait([weak, timer, event, attempt, done](const boost::system::error_code&) {
      if (auto again = weak.lock()) publish_attempt(again, event, attempt + 1, done);
    });
  });
}

void RelayPool::publish_on(const std::shared_ptr<State>& state, const nostr::Event& event,
                           std::function<void(std::vector<PublishOutcome>)> done) {
  auto p = std::make_shared<State::Pending>();
  p->id = hex_encode(event.id);
  p->wire = client_event_message(nostr::to_json(event));
  p->done = std::move(done);
  std::vector<size_t> open_links;
  {
    std::lock_guard lock(state->mu);
    if (state->stopped) {
      std::vector<PublishOutcome> result;
      for (auto& link : state->links)
        result.push_back({link.url, false, "error: pool stopped"});
      p->done(std::move(result));
      return;
    }
    p->outcomes.resize(state->links.size());
    p->waiting_for_auth.assign(state->links.size(), false);
    if (state->pending.count(p->id) != 0) {
      // The same event in flight twice: answer the second from the first's outcome.
      auto first = state->pending[p->id];
      auto first_done = std::move(first->done);
      first->done = [first_done, second_done = p->done](std::vector<PublishOutcome> r) {
        if (first_done) first_done(r);
        if (second_done) second_done(std::move(r));
      };
      return;
    }
    state->pending[p->id] = p;
    for (size_t i = 0; i < state->links.size(); ++i) {
      if (state->links[i].open) open_links.push_back(i);
    }
    p->timer = std::make_unique<asio::steady_timer>(state->io, state->options.publish_timeout);
    std::weak_ptr<State> weak = state;
    std::string id = p->id;
    p->timer->async_wait([weak, id](const boost::system::error_code& ec) {
      if (ec) return;
      auto s = weak.lock();
      if (!s) return;
      std::function<void()> after;
      {
        std::lock_guard lock(s->mu);
        auto it = s->pending.find(id);
        if (it == s->pending.end()) return;
        auto pending = it->second;
        for (size_t i = 0; i < pending->outcomes.size(); ++i) {
          if (!pending->outcomes[i]) {
            pending->outcomes[i] = PublishOutcome{s->links[i].url, false, "timeout: no OK from the relay"};
          }
        }
        after = s->finish_if_complete(pending);
      }
      if (after) after();
    });
  }
  for (size_t i : open_links)
    state->send_to(i, p->wire);
}

std::future<std::vector<PublishOutcome>> RelayPool::publish(const nostr::Event& event) {
  auto promise = std::make_shared<std::promise<std::vector<PublishOutcome>>>();
  auto future = promise->get_future();
  publish(event, [promise](std::vector<PublishOutcome> r) { promise->set_value(std::move(r)); });
  return future;
}

SubscriptionHandle RelayPool::subscribe(std::vector<nostr::Filter> filters, SubscriptionCallbacks callbacks) {
  std::vector<std::pair<size_t, std::string>> out;
  SubscriptionHandle h;
  {
    std::lock_guard lock(state_->mu);
    h = state_->next_handle++;
    State::Subscription& sub = state_->subscriptions[h];
    sub.filters = std::move(filters);
    sub.callbacks = std::move(callbacks);
    size_t n = state_->links.size();
    sub.newest_seen.assign(n, std::nullopt);
    sub.eose.assign(n, false);
    sub.closed_for_auth.assign(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (state_->links[i].open) out.emplace_back(i, state_->req_for(h, sub, i));
    }
    sub.eose_timer = std::make_unique<asio::steady_timer>(state_->io, kEoseWait);
    std::weak_ptr<State> weak = state_;
    sub.eose_timer->async_wait([weak, h](const boost::system::error_code& ec) {
      if (ec) return;
      auto s = weak.lock();
      if (!s) return;
      std::function<void()> report;
      {
        std::lock_guard lock(s->mu);
        auto it = s->subscriptions.find(h);
        if (it == s->subscriptions.end() || it->second.eose_reported) return;
        it->second.eose_reported = true;  // relays that never answer must not hold the caller forever
        report = it->second.callbacks.on_eose;
      }
      if (report) report();
    });
  }
  for (auto& [i, m] : out)
    state_->send_to(i, std::move(m));
  return h;
}

void RelayPool::unsubscribe(SubscriptionHandle handle) {
  std::vector<size_t> open_links;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->subscriptions.find(handle);
    if (it == state_->subscriptions.end()) return;
    if (it->second.eose_timer) it->second.eose_timer->cancel();
    state_->subscriptions.erase(it);
    for (size_t i = 0; i < state_->links.size(); ++i) {
      if (state_->links[i].open) open_links.push_back(i);
    }
  }
  for (size_t i : open_links)
    state_->send_to(i, client_close_message(State::wire_id(handle)));
}

std::vector<RelayStatus> RelayPool::status() const {
  std::lock_guard lock(state_->mu);
  std::vector<RelayStatus> out;
  for (const auto& link : state_->links) {
    out.push_back({link.url, link.open, link.authenticated, link.connects, link.last_error});
  }
  return out;
}

}  // namespace infernet::relay
