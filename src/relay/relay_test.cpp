// The relay's handling of REQ and COUNT on its query threads, driven without sockets: the test plays the
// network thread by calling the session handler directly, and a gated connection lets it hold a query in the
// middle of sending its results.
#include "relay/relay.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/encoding.hpp"
#include "nostr/keys.hpp"

namespace infernet::relay {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A WebSocket connection that records what the relay sends. While the gate is closed, sending an EVENT
// message blocks (as a query thread would on a slow socket, in effect), so a test can act while a query is
// half-way through its results.
class GatedConnection final : public net::WebSocketConnection {
 public:
  bool send(std::string text) override {
    std::unique_lock lock(mu_);
    if (text.starts_with("[\"EVENT\"")) {
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return open_ || passes_ > 0; });
      if (!open_) --passes_;
      --blocked_;
    }
    sent_.push_back(std::move(text));
    cv_.notify_all();
    return true;
  }
  void close(uint16_t, std::string) override {}
  uint64_t id() const override { return 7; }
  const std::string& remote_address() const override { return address_; }
  size_t queued_bytes() const override { return 0; }

  void open_gate() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Lets one EVENT message through the closed gate.
  void pass_one() {
    std::lock_guard lock(mu_);
    ++passes_;
    cv_.notify_all();
  }
  // Waits until `n` sends are held at the gate.
  bool wait_blocked(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return blocked_ >= n; });
  }
  // Waits until a message starting with `prefix` has been sent.
  bool wait_for(const std::string& prefix) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] {
      for (const auto& m : sent_)
        if (m.starts_with(prefix)) return true;
      return false;
    });
  }
  std::vector<std::string> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }
  size_t count(const std::string& prefix) {
    size_t n = 0;
    for (const auto& m : sent())
      n += m.starts_with(prefix) ? 1 : 0;
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int passes_ = 0;
  int blocked_ = 0;
  std::vector<std::string> sent_;
  std::string address_ = "127.0.0.1";
};

class RelayQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-relay-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = EventStore::open({.path = (dir_ / "relay.db").string()});
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
    auto key = nostr::Keypair::generate();
    for (int i = 0; i < 5; ++i) {
      auto e =
          nostr::sign_event({clock_.now_unix() - 10 + i, 1, {{"t", "q"}}, "event " + std::to_string(i)}, key);
      ASSERT_TRUE(store_->add_and_wait(e));
    }
  }
  void TearDown() override {
    handler_.reset();
    relay_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  void start(size_t query_threads, size_t max_subscriptions = 50) {
    RelayOptions options;
    options.query_threads = query_threads;
    options.limits.max_subscriptions = max_subscriptions;
    relay_ = std::make_unique<Relay>(options, *store_, clock_);
    handler_ = relay_->accept(connection_, net::HttpRequest{});
  }

  // Delivers a message as a network thread would; false when the handler did not return within 5 s (it
  // was waiting for the query it started).
  bool deliver(const std::string& text) {
    auto done = std::async(std::launch::async, [&] { handler_->on_text(text); });
    if (done.wait_for(5s) == std::future_status::ready) return true;
    connection_->open_gate();  // lets the stuck handler finish, so the test fails instead of hanging
    return false;
  }

  fs::path dir_;
  SystemClock clock_;
  std::unique_ptr<EventStore> store_;
  std::shared_ptr<GatedConnection> connection_ = std::make_shared<GatedConnection>();
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<net::WebSocketHandler> handler_;
};

TEST_F(RelayQueryTest, QueryDoesNotHoldUpTheConnectionsThread) {
  start(1);
  // The query's first result is held at the gate; the handler must already have returned.
  ASSERT_TRUE(deliver(R"(["REQ","s",{"#t":["q"]}])"));
  ASSERT_TRUE(connection_->wait_blocked(1));
  // The connection's next message is handled while the query is still sending.
  ASSERT_TRUE(deliver(R"(["CLOSE","other"])"));
  connection_->open_gate();
  ASSERT_TRUE(connection_->wait_for(R"(["EOSE","s"])"));
  EXPECT_EQ(connection_->count(R"(["EVENT","s")"), 5u);
}

TEST_F(RelayQueryTest, ClosedSubscriptionStopsItsQuery) {
  start(1);
  ASSERT_TRUE(deliver(R"(["REQ","s",{"#t":["q"]}])"));
  ASSERT_TRUE(connection_->wait_blocked(1));
  ASSERT_TRUE(deliver(R"(["CLOSE","s"])"));
  ASSERT_TRUE(deliver(R"(["COUNT","c",{"#t":["q"]}])"));
  connection_->open_gate();
  // The COUNT runs after the REQ on the single query thread, so once it is answered the REQ's query is over.
  ASSERT_TRUE(connection_->wait_for(R"(["COUNT","c",{"count":5}])"));
  EXPECT_EQ(connection_->count(R"(["EVENT","s")"), 1u);  // the one already at the gate
  EXPECT_EQ(connection_->count(R"(["EOSE","s")"), 0u);
}

TEST_F(RelayQueryTest, ReplacedSubscriptionGetsOnlyTheNewResults) {
  start(1);
  ASSERT_TRUE(deliver(R"(["REQ","s",{"#t":["q"]}])"));
  ASSERT_TRUE(connection_->wait_blocked(1));
  ASSERT_TRUE(deliver(R"(["REQ","s",{"#t":["q"],"limit":2}])"));
  connection_->open_gate();
  ASSERT_TRUE(connection_->wait_for(R"(["EOSE","s")"));
  // One event of the old query (held at the gate) and the new query's two, then exactly one EOSE.
  EXPECT_EQ(connection_->count(R"(["EVENT","s")"), 3u);
  EXPECT_EQ(connection_->count(R"(["EOSE","s")"), 1u);
}

TEST_F(RelayQueryTest, TooManyQueriesInProgressAreRefused) {
  start(1, 2);
  ASSERT_TRUE(deliver(R"(["REQ","a",{"#t":["q"]}])"));
  ASSERT_TRUE(connection_->wait_blocked(1));
  ASSERT_TRUE(deliver(R"(["COUNT","b",{"#t":["q"]}])"));  // queued behind "a"
  ASSERT_TRUE(deliver(R"(["REQ","c",{"#t":["q"]}])"));
  EXPECT_TRUE(connection_->wait_for(R"(["CLOSED","c","rate-limited: )"));
  connection_->open_gate();
  EXPECT_TRUE(connection_->wait_for(R"(["EOSE","a"])"));
  EXPECT_TRUE(connection_->wait_for(R"(["COUNT","b",{"count":5}])"));
}

TEST_F(RelayQueryTest, MultiLetterTagFiltersMatchNothingStoredOrLive) {
  start(1);
  connection_->open_gate();
  auto key = nostr::Keypair::generate();
  auto tagged = nostr::sign_event({clock_.now_unix(), 1, {{"tt", "x"}, {"t", "q"}}, "multi"}, key);
  ASSERT_TRUE(store_->add_and_wait(tagged));
  ASSERT_TRUE(deliver(R"(["REQ","multi",{"#tt":["x"]}])"));
  ASSERT_TRUE(deliver(R"(["REQ","single",{"#t":["later"]}])"));
  ASSERT_TRUE(connection_->wait_for(R"(["EOSE","multi"])"));
  ASSERT_TRUE(connection_->wait_for(R"(["EOSE","single"])"));
  auto live = nostr::sign_event({clock_.now_unix(), 1, {{"tt", "x"}}, "live multi"}, key);
  auto marker = nostr::sign_event({clock_.now_unix(), 1, {{"t", "later"}}, "marker"}, key);
  ASSERT_TRUE(deliver("[\"EVENT\"," + nostr::to_json(live) + "]"));
  ASSERT_TRUE(deliver("[\"EVENT\"," + nostr::to_json(marker) + "]"));
  // Events are broadcast in commit order, so once the marker has arrived the first event was matched too.
  ASSERT_TRUE(connection_->wait_for(R"(["EVENT","single")"));
  EXPECT_EQ(connection_->count(R"(["EVENT","multi")"), 0u);
}

TEST_F(RelayQueryTest, AnEventCommittedButNotYetBroadcastReachesANewSubscriptionOnce) {
  start(1);
  auto key = nostr::Keypair::generate();
  auto event_with_tag = [&](const std::string& t) {
    return nostr::sign_event({clock_.now_unix(), 1, {{"t", t}}, "about " + t}, key);
  };
  ASSERT_TRUE(deliver(R"(["REQ","live",{"#t":["block","first"]}])"));
  ASSERT_TRUE(connection_->wait_for(R"(["EOSE","live"])"));
  // The writer's callbacks for `block` stall on the gate, so `first` and `second` queue up behind it and are
  // then committed together in one batch.
  ASSERT_TRUE(deliver("[\"EVENT\"," + nostr::to_json(event_with_tag("block")) + "]"));
  ASSERT_TRUE(connection_->wait_blocked(1));
  const auto second = event_with_tag("second");
  ASSERT_TRUE(deliver("[\"EVENT\"," + nostr::to_json(event_with_tag("first")) + "]"));
  ASSERT_TRUE(deliver("[\"EVENT\"," + nostr::to_json(second) + "]"));
  connection_->pass_one();
  // Now the batch holding both is committed and its callbacks stall broadcasting `first`: `second` is
  // stored but not yet broadcast when a new subscription asks for it.
  ASSERT_TRUE(connection_->wait_blocked(1));
  auto req =
      std::async(std::launch::async, [&] { handler_->on_text(R"(["REQ","late",{"#t":["second"]}])"); });
  std::this_thread::sleep_for(200ms);  // as far as the REQ gets while the batch's callbacks are stalled
  connection_->open_gate();
  req.wait();
  ASSERT_TRUE(connection_->wait_for(R"(["EOSE","late"])"));
  ASSERT_TRUE(connection_->wait_for(R"(["OK",")" + hex_encode(second.id)));
  std::this_thread::sleep_for(100ms);  // time for a second copy to show
  EXPECT_EQ(connection_->count(R"(["EVENT","late")"), 1u);
}

TEST_F(RelayQueryTest, StopAnswersLaterQueriesWithClosed) {
  start(1);
  connection_->open_gate();
  relay_->stop();
  ASSERT_TRUE(deliver(R"(["REQ","s",{"#t":["q"]}])"));
  EXPECT_TRUE(connection_->wait_for(R"(["CLOSED","s","error: the relay is shutting down"])"));
}

}  // namespace
}  // namespace infernet::relay
