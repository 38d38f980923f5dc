// Test-only: an in-process relay on a loopback port, and scripted fake providers that speak the job protocol
// through their own RelayPool, so the consumer node is tested against real relays and real sealed messages
// without depending on the provider node.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "consumer/consumer.hpp"
#include "core/clock.hpp"
#include "net/io_pool.hpp"
#include "net/server.hpp"
#include "protocol/protocol.hpp"
#include "relay/event_store.hpp"
#include "relay/relay.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::consumer::testing {

using namespace std::chrono_literals;

// Polls `pred` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A clock the test moves while the node's threads read it.
class SettableClock final : public Clock {
 public:
  explicit SettableClock(int64_t now) : now_(now) {}
  int64_t now_unix() const override { return now_.load(); }
  void set(int64_t now) { now_.store(now); }

 private:
  std::atomic<int64_t> now_;
};

// The embedded relay on 127.0.0.1, port chosen by the OS, storing into `dir`.
class TestRelay {
 public:
  explicit TestRelay(const std::filesystem::path& dir, relay::RelayOptions options = {}) {
    auto s = relay::EventStore::open({.path = (dir / "relay.db").string()});
    EXPECT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
    relay_ = std::make_unique<relay::Relay>(std::move(options), *store_, clock_);
    net::ServerHandlers handlers;
    relay::Relay* r = relay_.get();
    handlers.http = [r](const net::HttpRequest& req) { return r->handle_http(req); };
    handlers.websocket = [r](std::shared_ptr<net::WebSocketConnection> c, const net::HttpRequest& req) {
      return r->accept(std::move(c), req);
    };
    server_ = std::make_unique<net::Server>(net::ServerOptions{}, handlers);
    auto st = server_->start();
    EXPECT_TRUE(st) << st.error().to_string();
    url_ = "ws://127.0.0.1:" + std::to_string(server_->port());
  }
  ~TestRelay() {
    server_->stop();
    relay_->stop();
    store_->close();
  }
  const std::string& url() const { return url_; }

 private:
  SystemClock clock_;
  std::unique_ptr<relay::EventStore> store_;
  std::unique_ptr<relay::Relay> relay_;
  std::unique_ptr<net::Server> server_;
  std::string url_;
};

// What a fake provider does with a job request.
enum class Script {
  kComplete,          // accepted, running, the output in chunks, the result
  kReject,            // rejected "busy"
  kBusyOnce,          // attempt 1 rejected "busy" with retry-after 1 s; later attempts as kComplete
  kSilent,            // nothing at all
  kAcceptThenSilent,  // accepted, then nothing
  kManual,            // nothing: the test sends the messages
};

// A provider played by the test: announces, receives requests, answers as scripted.
class FakeProvider {
 public:
  struct Settings {
    std::string name = "fake";
    std::vector<std::string> models = {"fake-echo"};
    uint64_t per_job_msat = 10;
    uint64_t per_1k_output_msat = 0;
    uint32_t slots = 4;
    Script script = Script::kComplete;
    std::vector<std::string> chunks = {"alpha ", "beta ", "gamma"};  // the output, as streamed
    size_t streamed_chunks = SIZE_MAX;  // how many of the chunks go out as progress; the result has all
    uint64_t cost_msat = 10;            // charged in the result
    std::chrono::milliseconds chunk_delay{0};
    std::optional<uint64_t> offer_msat;  // answer quote requests with this price
    // Answer reservation requests: accepted at this discount; refused "no-reservations" when unset.
    std::optional<uint32_t> reservation_discount;
    uint64_t per_1k_input_msat = 0;
    // Answer token count requests with this count, or refused with this code; neither: no answer.
    std::optional<uint32_t> token_count;
    std::string token_count_refusal;
  };

  FakeProvider(net::asio::io_context& io, const std::string& relay_url, Settings settings)
      : keys_(nostr::Keypair::generate()), settings_(std::move(settings)) {
    relay::RelayPoolOptions options;
    options.relays = {relay_url};
    pool_ = std::make_unique<relay::RelayPool>(io, options, keys_);
    EXPECT_TRUE(pool_->start());
    nostr::Filter mine;
    mine.kinds = std::vector<uint32_t>{protocol::kJobRequest, protocol::kJobCancel, protocol::kJobReceipt,
                                       protocol::kReservationRequest, protocol::kTokenCountRequest};
    mine.tags.push_back({"p", {keys_.public_key().hex()}});
    nostr::Filter quotes;
    quotes.kinds = std::vector<uint32_t>{protocol::kQuoteRequest};
    relay::SubscriptionCallbacks callbacks;
    callbacks.on_event = [this](const nostr::Event& e, const std::string&) { on_event(e); };
    callbacks.on_eose = [this] {
      std::lock_guard lock(mu_);
      subscribed_ = true;
      cv_.notify_all();
    };
    pool_->subscribe({mine, quotes}, std::move(callbacks));
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, 5s, [this] { return subscribed_; }));
  }

  ~FakeProvider() {
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mu_);
      workers.swap(workers_);
    }
    for (auto& t : workers)
      t.join();
    pool_->stop();
  }

  const nostr::Keypair& keys() const { return keys_; }
  std::string pubkey() const { return keys_.public_key().hex(); }
  std::string output() const {
    std::string out;
    for (const auto& c : settings_.chunks)
      out += c;
    return out;
  }

  // Publishes the announcement and waits for the relay's OK.
  void announce(int64_t now, int64_t ttl_seconds = 120) {
    protocol::Announcement a;
    a.name = settings_.name;
    a.hardware = {"test cpu", 2, 1024, {}};
    a.engines = {"fake"};
    for (const auto& m : settings_.models)
      a.models.push_back({m, "", "fake", 0, "", 4096, "fake", {"text-generation"}});
    a.prices.per_job_msat = settings_.per_job_msat;
    a.prices.per_1k_output_msat = settings_.per_1k_output_msat;
    a.prices.per_1k_input_msat = settings_.per_1k_input_msat;
    a.prices.priority_percent = {{"low", 80}, {"medium", 100}, {"high", 150}, {"urgent", 200}};
    a.capacity = {settings_.slots, 8, 0, 0};
    auto event = protocol::make_announcement(a, keys_, now, ttl_seconds);
    ASSERT_TRUE(event) << event.error().to_string();
    publish_and_wait(*event);
  }

  // Seals `m` to `to` and publishes it; waits for the relay's OK when `wait` (not for ephemeral events
  // that must keep their order with stored ones, which the relay forwards without storing).
  nostr::Event send(const protocol::JobMessage& m, const nostr::PublicKey& to, bool wait = true) {
    auto event = protocol::seal(m, keys_, to, SystemClock().now_unix());
    EXPECT_TRUE(event) << event.error().to_string();
    if (wait) {
      publish_and_wait(*event);
    } else {
      pool_->publish(*event, [](std::vector<relay::PublishOutcome>) {});
    }
    return *event;
  }

  void publish_and_wait(const nostr::Event& event) {
    auto outcomes = pool_->publish(event).get();
    ASSERT_FALSE(outcomes.empty());
    EXPECT_TRUE(outcomes.front().accepted) << outcomes.front().message;
  }

  // What it received.
  std::vector<protocol::JobRequest> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<protocol::JobCancel> cancels() {
    std::lock_guard lock(mu_);
    return cancels_;
  }
  std::vector<protocol::JobReceipt> receipts() {
    std::lock_guard lock(mu_);
    return receipts_;
  }
  std::vector<protocol::TokenCountRequest> count_requests() {
    std::lock_guard lock(mu_);
    return count_requests_;
  }
  std::optional<nostr::PublicKey> consumer() {
    std::lock_guard lock(mu_);
    return consumer_;
  }
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(); });
  }
  bool wait_requests(size_t n) {
    return wait([&] { return requests_.size() >= n; });
  }
  bool wait_cancels(size_t n) {
    return wait([&] { return cancels_.size() >= n; });
  }
  bool wait_receipts(size_t n) {
    return wait([&] { return receipts_.size() >= n; });
  }

  // The result of a request, as the kComplete script sends it.
  protocol::JobResult result_for(const protocol::JobRequest& r) const {
    protocol::JobResult result;
    result.job_id = r.job_id;
    result.attempt = r.attempt;
    result.ok = true;
    result.output = output();
    result.usage = {3, static_cast<uint32_t>(settings_.chunks.size())};
    result.cost_msat = settings_.cost_msat;
    return result;
  }

 private:
  void on_event(const nostr::Event& e) {
    if (e.kind == protocol::kQuoteRequest) {
      on_quote(e);
      return;
    }
    auto opened = protocol::open(e, keys_);
    if (!opened) {
      ADD_FAILURE() << "provider could not open an event: " << opened.error().to_string();
      return;
    }
    std::lock_guard lock(mu_);
    consumer_ = opened->sender;
    if (const auto* r = std::get_if<protocol::JobRequest>(&opened->message)) {
      requests_.push_back(*r);
      // The script runs on its own thread: it waits for the relay between messages.
      workers_.emplace_back([this, r = *r, to = opened->sender] { run_script(r, to); });
    } else if (const auto* c = std::get_if<protocol::JobCancel>(&opened->message)) {
      cancels_.push_back(*c);
    } else if (const auto* rc = std::get_if<protocol::JobReceipt>(&opened->message)) {
      receipts_.push_back(*rc);
    } else if (const auto* rr = std::get_if<protocol::ReservationRequest>(&opened->message)) {
      protocol::ReservationAnswer a;
      a.reservation_id = rr->reservation_id;
      if (settings_.reservation_discount) {
        const int64_t now = SystemClock().now_unix();
        a = {rr->reservation_id,
             true,
             "",
             "",
             rr->slots,
             now,
             now + 3600 * int64_t{rr->hours},
             *settings_.reservation_discount};
      } else {
        a.reason_code = "no-reservations";
      }
      workers_.emplace_back([this, a, to = opened->sender] { send(a, to); });
    } else if (const auto* tc = std::get_if<protocol::TokenCountRequest>(&opened->message)) {
      count_requests_.push_back(*tc);
      protocol::TokenCountAnswer a{tc->request_id, settings_.token_count.has_value(),
                                   settings_.token_count.value_or(0), settings_.token_count_refusal,
                                   settings_.token_count_refusal.empty() ? "" : "scripted refusal"};
      if (a.ok || !a.error_code.empty())
        workers_.emplace_back([this, a, to = opened->sender] { send(a, to, /*wait=*/false); });
    }
    cv_.notify_all();
  }

  void on_quote(const nostr::Event& e) {
    if (!settings_.offer_msat) return;
    auto q = protocol::parse_quote_request(e);
    if (!q) return;
    auto sender = nostr::PublicKey::from_bytes(e.pubkey);
    if (!sender) return;
    protocol::Offer offer{q->quote_id, q->model, *settings_.offer_msat, 10, 0, SystemClock().now_unix() + 60};
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, offer, to = *sender] { send(offer, to); });
  }

  void run_script(const protocol::JobRequest& r, const nostr::PublicKey& to) {
    using protocol::JobStatus;
    using protocol::JobStatusCode;
    switch (settings_.script) {
      case Script::kReject:
        send(JobStatus{r.job_id, r.attempt, JobStatusCode::kRejected, "busy", "no free slot", 5, 0}, to);
        return;
      case Script::kBusyOnce:
        if (r.attempt == 1) {
          send(JobStatus{r.job_id, r.attempt, JobStatusCode::kRejected, "busy", "no free slot", 1, 0}, to);
          return;
        }
        break;
      case Script::kSilent:
      case Script::kManual:
        return;
      case Script::kAcceptThenSilent:
        send(JobStatus{r.job_id, r.attempt, JobStatusCode::kAccepted, "", "", 0, 0}, to);
        return;
      case Script::kComplete:
        break;
    }
    send(JobStatus{r.job_id, r.attempt, JobStatusCode::kAccepted, "", "", 0, 0}, to);
    send(JobStatus{r.job_id, r.attempt, JobStatusCode::kRunning, "", "", 0, 0}, to);
    uint64_t seq = 0;
    for (const auto& chunk : settings_.chunks) {
      if (seq == settings_.streamed_chunks) break;
      ++seq;
      send(protocol::JobProgress{r.job_id, r.attempt, seq, chunk, static_cast<uint32_t>(seq), 0}, to);
      if (settings_.chunk_delay.count() > 0) std::this_thread::sleep_for(settings_.chunk_delay);
    }
    send(result_for(r), to);
  }

  nostr::Keypair keys_;
  Settings settings_;
  std::unique_ptr<relay::RelayPool> pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool subscribed_ = false;                                  // guarded by mu_
  std::vector<protocol::JobRequest> requests_;               // guarded by mu_
  std::vector<protocol::JobCancel> cancels_;                 // guarded by mu_
  std::vector<protocol::JobReceipt> receipts_;               // guarded by mu_
  std::vector<protocol::TokenCountRequest> count_requests_;  // guarded by mu_
  std::optional<nostr::PublicKey> consumer_;                 // guarded by mu_
  std::vector<std::thread> workers_;                         // guarded by mu_
};

// A consumer node on a real relay with fake providers, for tests: the shared fixture of the consumer's
// node, notification and market tests. `dir_prefix` names the test's temporary directory.
class ConsumerNetworkTest : public ::testing::Test {
 protected:
  explicit ConsumerNetworkTest(std::string dir_prefix) : dir_prefix_(std::move(dir_prefix)) {}

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           (dir_prefix_ + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    relay_ = std::make_unique<TestRelay>(dir_);
    io_.start();
    relay::RelayPoolOptions options;
    options.relays = {relay_->url()};
    pool_ = std::make_unique<relay::RelayPool>(io_.io_context(), options, keys_);
    ASSERT_TRUE(pool_->start());
    options_.database = (dir_ / "consumer.db").string();
    options_.accept_timeout = 2000ms;
    options_.stall_timeout = 2000ms;
    // Scripted providers answer token counts only when told to; an estimate waits this long otherwise.
    options_.token_count_timeout = 300ms;
  }

  void TearDown() override {
    node_.reset();
    providers_.clear();
    pool_->stop();
    io_.stop();
    relay_.reset();
    std::filesystem::remove_all(dir_);
  }

  void open_node(const Clock& clock) {
    node_.reset();
    auto node = ConsumerNode::open(options_, *pool_, keys_, clock);
    ASSERT_TRUE(node) << node.error().to_string();
    node_ = std::move(*node);
    ASSERT_TRUE(node_->start());
  }
  void open_node() { open_node(clock_); }

  FakeProvider& add_provider(FakeProvider::Settings settings, bool announce = true) {
    providers_.push_back(
        std::make_unique<FakeProvider>(io_.io_context(), relay_->url(), std::move(settings)));
    if (announce) providers_.back()->announce(clock_.now_unix());
    return *providers_.back();
  }

  // Waits until the node sees `n` alive providers.
  bool providers_alive(size_t n) {
    return eventually([&] {
      size_t alive = 0;
      for (const auto& p : node_->providers())
        alive += p.alive ? 1 : 0;
      return alive >= n;
    });
  }

  const std::string dir_prefix_;
  std::filesystem::path dir_;
  SystemClock clock_;
  nostr::Keypair keys_ = nostr::Keypair::generate();
  std::unique_ptr<TestRelay> relay_;
  net::IoPool io_{2};
  std::unique_ptr<relay::RelayPool> pool_;
  ConsumerOptions options_;
  std::vector<std::unique_ptr<FakeProvider>> providers_;
  std::unique_ptr<ConsumerNode> node_;
};

}  // namespace infernet::consumer::testing
