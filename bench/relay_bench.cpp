// Load generator for a Nostr relay: the same program measures our relay and the peer (@nostr-relay/core) in
// one run (bench/run-relay.sh). It reports, for the relay at the given URL:
//   ingest   accepted events/s over 4 publishing connections (each event acknowledged with OK true);
//   fan-out  events/s delivered to 50 subscribers, and publish-to-receipt latency p50/p99, both saturated and
//            paced at 100 events/s;
//   eose     time from REQ to EOSE for a query returning 5,000 stored events.
// Output: one JSON object on stdout. Events are signed up front so signing never limits the relay.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>

#include "core/encoding.hpp"
#include "net/io_pool.hpp"
#include "net/websocket_client.hpp"
#include "nostr/event.hpp"

namespace {

using namespace infernet;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One WebSocket with a blocking-style API for the load generator: connect, send, and a callback per message.
class Conn {
 public:
  Conn(net::asio::io_context& io, const std::string& url, std::function<void(std::string_view)> on_text) {
    net::WebSocketClientHandlers h;
    h.on_open = [this] {
      std::lock_guard lock(mu_);
      open_ = true;
      cv_.notify_all();
    };
    h.on_text = std::move(on_text);
    h.on_close = [this](const Error& e) {
      std::lock_guard lock(mu_);
      closed_ = true;
      error_ = e.message;
      cv_.notify_all();
    };
    net::ClientOptions options;
    options.max_outbound_bytes = 512 << 20;
    options.max_message_bytes = 64 << 20;
    client_ = *net::WebSocketClient::create(io, url, h, options);
    client_->connect();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [this] { return open_ || closed_; });
    if (!open_) {
      std::fprintf(stderr, "relay_bench: cannot connect to %s: %s\n", url.c_str(), error_.c_str());
      std::exit(1);
    }
  }
  // on_close runs on the io threads and touches this object, so wait for it before going away.
  ~Conn() {
    client_->close();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
  }
  void send(std::string text) { client_->send(std::move(text)); }

 private:
  std::shared_ptr<net::WebSocketClient> client_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  bool closed_ = false;
  std::string error_;
};

std::vector<nostr::Event> make_events(size_t n, const std::string& tag, size_t authors, int64_t created_at) {
  std::vector<nostr::Keypair> keys;
  for (size_t i = 0; i < authors; ++i)
    keys.push_back(nostr::Keypair::generate());
  std::vector<nostr::Event> events(n);
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) {
        events[i] = nostr::sign_event({created_at,
                                       1,
                                       {{"t", tag}},
                                       "benchmark event " + std::to_string(i) + " " + std::string(120, 'x')},
                                      keys[i % authors]);
      }
    });
  }
  for (auto& th : pool)
    th.join();
  return events;
}

std::string event_wire(const nostr::Event& e) {
  return "[\"EVENT\"," + nostr::to_json(e) + "]";
}

// Publishes over `connections` sockets, each keeping up to `window` events unacknowledged; returns
// accepted/s.
double ingest(net::asio::io_context& io, const std::string& url, const std::vector<nostr::Event>& events,
              size_t connections, size_t window, size_t* accepted_out) {
  // Senders sleep on a condition variable while their window is full (polling would take CPU from the relay,
  // which shares the machine), and are woken when half the window has been acknowledged.
  struct Window {
    std::mutex mu;
    std::condition_variable cv;
    size_t inflight = 0;
  };
  std::atomic<size_t> acked{0}, accepted{0};
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<std::unique_ptr<Window>> windows;
  std::mutex done_mu;
  std::condition_variable done_cv;
  for (size_t c = 0; c < connections; ++c) {
    windows.push_back(std::make_unique<Window>());
    auto* w = windows.back().get();
    conns.push_back(std::make_unique<Conn>(io, url, [&, w](std::string_view m) {
      if (!m.starts_with("[\"OK\"")) return;
      if (m.find("\",true,") != std::string_view::npos) accepted.fetch_add(1);
      {
        std::lock_guard lock(w->mu);
        if (--w->inflight == window / 2) w->cv.notify_one();
      }
      if (acked.fetch_add(1) + 1 == events.size()) {
        std::lock_guard lock(done_mu);
        done_cv.notify_all();
      }
    }));
  }
  auto start = Clock::now();
  std::vector<std::thread> senders;
  for (size_t c = 0; c < connections; ++c) {
    senders.emplace_back([&, c] {
      Window& w = *windows[c];
      for (size_t i = c; i < events.size(); i += connections) {
        {
          std::unique_lock lock(w.mu);
          w.cv.wait(lock, [&] { return w.inflight < window; });
          ++w.inflight;
        }
        conns[c]->send(event_wire(events[i]));
      }
    });
  }
  for (auto& t : senders)
    t.join();
  {
    std::unique_lock lock(done_mu);
    done_cv.wait_for(lock, std::chrono::seconds(600), [&] { return acked.load() >= events.size(); });
  }
  double elapsed = seconds_since(start);
  *accepted_out = accepted.load();
  return static_cast<double>(accepted.load()) / elapsed;
}

struct FanoutResult {
  double delivered_per_second;
  double p50_ms;
  double p99_ms;
  size_t delivered;
};

// 50 subscribers on a fresh tag; one publisher sends `events` either as fast as it can (pace 0) or at `pace`
// events/s. Latency is from handing an event to the socket to each subscriber's receipt.
FanoutResult fanout(net::asio::io_context& io, const std::string& url, size_t subscribers,
                    const std::vector<nostr::Event>& events, double pace, const std::string& tag) {
  std::mutex mu;
  std::vector<double> latencies;
  latencies.reserve(events.size() * subscribers);
  std::vector<Clock::time_point> sent_at(events.size());
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < events.size(); ++i)
    index_of[hex_encode(events[i].id)] = i;
  std::atomic<size_t> delivered{0}, eose{0};
  std::vector<std::unique_ptr<Conn>> subs;
  for (size_t s = 0; s < subscribers; ++s) {
    subs.push_back(std::make_unique<Conn>(io, url, [&](std::string_view m) {
      auto now = Clock::now();
      if (m.starts_with("[\"EOSE\"")) {
        eose.fetch_add(1);
        return;
      }
      auto pos = m.find("\"id\":\"");
      if (!m.starts_with("[\"EVENT\"") || pos == std::string_view::npos) return;
      auto it = index_of.find(std::string(m.substr(pos + 6, 64)));
      if (it == index_of.end()) return;
      std::lock_guard lock(mu);
      latencies.push_back(std::chrono::duration<double, std::milli>(now - sent_at[it->second]).count());
      delivered.fetch_add(1);
    }));
    subs.back()->send("[\"REQ\",\"fan\",{\"#t\":[\"" + tag + "\"],\"limit\":0}]");
  }
  while (eose.load() < subscribers)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::atomic<size_t> acked{0};
  Conn publisher(io, url, [&](std::string_view m) {
    if (m.starts_with("[\"OK\"")) acked.fetch_add(1);
  });
  size_t expected = events.size() * subscribers;
  auto start = Clock::now();
  for (size_t i = 0; i < events.size(); ++i) {
    if (pace > 0) std::this_thread::sleep_until(start + std::chrono::duration<double>(i / pace));
    {
      std::lock_guard lock(mu);
      sent_at[i] = Clock::now();
    }
    publisher.send(event_wire(events[i]));
  }
  while (delivered.load() < expected && seconds_since(start) < 120) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  double elapsed = seconds_since(start);
  std::lock_guard lock(mu);
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty()
               ? -1.0
               : latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  return {static_cast<double>(delivered.load()) / elapsed, pct(0.50), pct(0.99), delivered.load()};
}

double time_to_eose(net::asio::io_context& io, const std::string& url, const std::string& filter,
                    size_t* events_out) {
  std::atomic<size_t> events{0};
  std::atomic<bool> done{false};
  Conn c(io, url, [&](std::string_view m) {
    if (m.starts_with("[\"EVENT\"")) events.fetch_add(1);
    if (m.starts_with("[\"EOSE\"")) done = true;
  });
  auto start = Clock::now();
  c.send("[\"REQ\",\"q\"," + filter + "]");
  while (!done && seconds_since(start) < 120)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  *events_out = events.load();
  return seconds_since(start) * 1000;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: relay_bench URL [INGEST_EVENTS] [FANOUT_EVENTS]\n");
    return 2;
  }
  std::string url = argv[1];
  size_t ingest_events = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 40000;
  size_t fanout_events = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 500;
  net::IoPool io(2);
  io.start();
  std::string run = hex_encode(nostr::Keypair::generate().public_key().bytes()).substr(0, 12);

  // Ingest: distinct authors; the first 5,000 share one author for the EOSE query below.
  auto events = make_events(ingest_events, "ingest-" + run, 64, unix_now());
  auto eose_events = make_events(5000, "eose-" + run, 1, unix_now() - 10);
  size_t accepted = 0;
  double ingest_rate = ingest(io.io_context(), url, events, 4, 256, &accepted);
  size_t eose_stored = 0;
  ingest(io.io_context(), url, eose_events, 4, 256, &eose_stored);

  auto sat_events = make_events(fanout_events, "fan-sat-" + run, 8, unix_now());
  auto sat = fanout(io.io_context(), url, 50, sat_events, 0, "fan-sat-" + run);
  auto paced_events = make_events(std::min<size_t>(fanout_events, 500), "fan-paced-" + run, 8, unix_now());
  auto paced = fanout(io.io_context(), url, 50, paced_events, 100, "fan-paced-" + run);

  size_t eose_got = 0;
  double eose_ms =
      time_to_eose(io.io_context(), url, "{\"#t\":[\"eose-" + run + "\"],\"limit\":5000}", &eose_got);
  io.stop();

  boost::json::object out{
      {"url", url},
      {"ingest_events", ingest_events},
      {"ingest_accepted", accepted},
      {"ingest_per_second", ingest_rate},
      {"fanout_saturated_per_second", sat.delivered_per_second},
      {"fanout_saturated_p50_ms", sat.p50_ms},
      {"fanout_saturated_p99_ms", sat.p99_ms},
      {"fanout_saturated_delivered", sat.delivered},
      {"fanout_paced_p50_ms", paced.p50_ms},
      {"fanout_paced_p99_ms", paced.p99_ms},
      {"fanout_paced_delivered", paced.delivered},
      {"eose_ms", eose_ms},
      {"eose_events", eose_got},
  };
  std::printf("%s\n", boost::json::serialize(out).c_str());
  return 0;
}
