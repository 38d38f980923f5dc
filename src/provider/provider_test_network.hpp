// Test-only: the provider node against a real relay on loopback: an in-process relay (net::Server +
// relay::Relay + EventStore on a temp file), one RelayPool for the provider and one for a test consumer that
// seals its requests with protocol::seal and opens the replies with protocol::open. The shared fixture of
// the provider's node and market tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/encoding.hpp"
#include "engine/fake/fake_engine.hpp"
#include "net/io_pool.hpp"
#include "net/server.hpp"
#include "provider/provider.hpp"
#include "relay/event_store.hpp"
#include "relay/relay.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::provider::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr auto kWait = 3s;

// What the test consumer received, opened.
struct Inbox {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<protocol::Opened> messages;   // guarded by mu
  std::vector<nostr::Event> announcements;  // guarded by mu

  template <class T>
  std::vector<T> all(const std::string& job_id = "") {
    std::lock_guard lock(mu);
    std::vector<T> out;
    for (const auto& m : messages) {
      if (const T* t = std::get_if<T>(&m.message)) {
        if constexpr (requires { t->job_id; }) {
          if (!job_id.empty() && t->job_id != job_id) continue;
        }
        out.push_back(*t);
      }
    }
    return out;
  }
  bool wait(const std::function<bool()>& done, std::chrono::milliseconds timeout = kWait) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, timeout, [&] {
      lock.unlock();
      bool d = done();
      lock.lock();
      return d;
    });
  }
};

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-provider-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto store = relay::EventStore::open({.path = (dir_ / "relay.db").string()});
    ASSERT_TRUE(store) << store.error().to_string();
    store_ = std::move(*store);
    relay_ = std::make_unique<relay::Relay>(relay_options(), *store_, clock_);
    net::ServerHandlers handlers;
    relay::Relay* r = relay_.get();
    handlers.websocket = [r](std::shared_ptr<net::WebSocketConnection> c, const net::HttpRequest& req) {
      return r->accept(std::move(c), req);
    };
    server_ = std::make_unique<net::Server>(net::ServerOptions{}, handlers);
    ASSERT_TRUE(server_->start());
    url_ = "ws://127.0.0.1:" + std::to_string(server_->port());
    io_.start();
    provider_pool_ = make_pool(provider_keys_);
    consumer_pool_ = make_pool(consumer_keys_);

    options_.database = (dir_ / "provider.db").string();
    options_.name = "test provider";
    options_.prices.per_job_msat = 10;
    options_.prices.per_1k_input_msat = 1000;
    options_.prices.per_1k_output_msat = 2000;
    options_.prices.priority_percent = {{"low", 50}, {"medium", 100}, {"high", 150}, {"urgent", 200}};
    options_.slots = 2;
    options_.queue = 2;
  }

  void TearDown() override {
    node_.reset();
    if (engine_) engine_->stop();
    provider_pool_->stop();
    consumer_pool_->stop();
    io_.stop();
    server_->stop();
    relay_->stop();
    store_->close();
    fs::remove_all(dir_);
  }

  virtual relay::RelayOptions relay_options() const { return {}; }

  std::unique_ptr<relay::RelayPool> make_pool(const nostr::Keypair& keys) {
    relay::RelayPoolOptions o;
    o.relays = {url_};
    o.publish_timeout = 2s;
    auto pool = std::make_unique<relay::RelayPool>(io_.io_context(), o, keys);
    EXPECT_TRUE(pool->start());
    return pool;
  }

  // Starts the engine and a provider node on the test's database.
  void start_provider(std::chrono::milliseconds token_delay = 0ms) {
    if (!engine_) {
      engine_ = engine::make_fake_engine({.models = {"fake-echo"},
                                          .slots = options_.slots,
                                          .queue_capacity = 64,
                                          .token_delay = token_delay});
    }
    auto node = ProviderNode::open(options_, *provider_pool_, *engine_, provider_keys_, clock_);
    ASSERT_TRUE(node) << node.error().to_string();
    node_ = std::move(*node);
    ASSERT_TRUE(node_->start());
  }

  // Subscribes the consumer to what providers send it, and waits until the subscription is live.
  void listen() {
    nostr::Filter mine;
    mine.kinds = std::vector<uint32_t>{
        protocol::kOffer,       protocol::kJobStatus,         protocol::kJobResult,
        protocol::kJobProgress, protocol::kReservationAnswer, protocol::kTokenCountAnswer};
    mine.tags.push_back({"p", {consumer_keys_.public_key().hex()}});
    nostr::Filter announcements;
    announcements.kinds = std::vector<uint32_t>{protocol::kProviderAnnouncement};
    auto live = std::make_shared<std::promise<void>>();
    auto ready = live->get_future();
    auto inbox = inbox_;
    auto keys = consumer_keys_;
    consumer_pool_->subscribe(
        {mine, announcements},
        relay::SubscriptionCallbacks{.on_event =
                                         [inbox, keys](const nostr::Event& e, const std::string&) {
                                           std::lock_guard lock(inbox->mu);
                                           if (e.kind == protocol::kProviderAnnouncement) {
                                             inbox->announcements.push_back(e);
                                           } else if (auto opened = protocol::open(e, keys)) {
                                             inbox->messages.push_back(std::move(*opened));
                                           }
                                           inbox->changed.notify_all();
                                         },
                                     .on_eose = [live] { live->set_value(); }});
    ASSERT_EQ(ready.wait_for(kWait), std::future_status::ready);
  }

  void publish(const nostr::Event& e) {
    auto outcomes = consumer_pool_->publish(e).get();
    ASSERT_EQ(outcomes.size(), 1u);
    ASSERT_TRUE(outcomes[0].accepted) << outcomes[0].message;
  }

  nostr::Event seal_to_provider(const protocol::JobMessage& m, const nostr::Keypair& from) {
    auto e = protocol::seal(m, from, provider_keys_.public_key(), clock_.now_unix());
    EXPECT_TRUE(e) << e.error().to_string();
    return *e;
  }

  protocol::JobRequest request(const std::string& job_id, const std::string& prompt, uint32_t max_tokens) {
    protocol::JobRequest r;
    r.job_id = job_id;
    r.model = "fake-echo";
    r.prompt = prompt;
    r.max_tokens = max_tokens;
    return r;
  }

  nostr::Event send(const protocol::JobMessage& m) {
    auto e = seal_to_provider(m, consumer_keys_);
    publish(e);
    return e;
  }

  // Sends `request` and waits for the Answer whose `id_field` is `id`.
  template <class Answer>
  std::optional<Answer> ask(const protocol::JobMessage& request, std::string Answer::*id_field,
                            const std::string& id) {
    send(request);
    std::optional<Answer> out;
    inbox_->wait([&] {
      for (const auto& a : inbox_->template all<Answer>()) {
        if (a.*id_field == id) out = a;
      }
      return out.has_value();
    });
    return out;
  }

  // The id of the event that carried the job's result.
  std::string result_event_id(const std::string& job_id) {
    std::lock_guard lock(inbox_->mu);
    for (const auto& m : inbox_->messages) {
      const auto* r = std::get_if<protocol::JobResult>(&m.message);
      if (r != nullptr && r->job_id == job_id) return hex_encode(m.event_id);
    }
    return "";
  }

  std::optional<protocol::JobResult> wait_result(const std::string& job_id) {
    std::optional<protocol::JobResult> out;
    inbox_->wait([&] {
      auto r = inbox_->all<protocol::JobResult>(job_id);
      if (!r.empty()) out = r.front();
      return out.has_value();
    });
    return out;
  }

  std::optional<protocol::JobStatus> wait_status(const std::string& job_id, protocol::JobStatusCode code) {
    std::optional<protocol::JobStatus> out;
    inbox_->wait([&] {
      for (const auto& s : inbox_->all<protocol::JobStatus>(job_id)) {
        if (s.status == code) out = s;
      }
      return out.has_value();
    });
    return out;
  }

  bool wait_stats(const std::function<bool(const ProviderStats&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(node_->stats())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  fs::path dir_;
  SystemClock clock_;
  std::unique_ptr<relay::EventStore> store_;
  std::unique_ptr<relay::Relay> relay_;
  std::unique_ptr<net::Server> server_;
  std::string url_;
  net::IoPool io_{2};
  nostr::Keypair provider_keys_ = nostr::Keypair::generate();
  nostr::Keypair consumer_keys_ = nostr::Keypair::generate();
  std::unique_ptr<relay::RelayPool> provider_pool_;
  std::unique_ptr<relay::RelayPool> consumer_pool_;
  ProviderOptions options_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<ProviderNode> node_;
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
};

}  // namespace infernet::provider::testing
