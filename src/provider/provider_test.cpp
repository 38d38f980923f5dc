// The provider node against a real relay on loopback: an in-process relay (net::Server + relay::Relay +
// EventStore on a temp file), one RelayPool for the provider and one for a test consumer that seals its
// requests with protocol::seal and opens the replies with protocol::open.
#include "provider/provider.hpp"

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
#include "engine/llama/llama_engine.hpp"
#include "net/io_pool.hpp"
#include "net/server.hpp"
#include "provider/internal/job_records.hpp"
#include "relay/event_store.hpp"
#include "relay/relay.hpp"

namespace infernet::provider {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kWait = 3s;

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
    mine.kinds = std::vector<uint32_t>{protocol::kOffer, protocol::kJobStatus, protocol::kJobResult,
                                       protocol::kJobProgress, protocol::kReservationAnswer};
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

TEST_F(ProviderTest, AnnouncesModelsPricesAndCapacity) {
  listen();
  start_provider();
  ASSERT_TRUE(inbox_->wait([&] {
    std::lock_guard lock(inbox_->mu);
    return !inbox_->announcements.empty();
  }));
  nostr::Event event;
  {
    std::lock_guard lock(inbox_->mu);
    event = inbox_->announcements.front();
  }
  auto parsed = protocol::parse_announcement(event);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(parsed->provider, provider_keys_.public_key());
  const auto& a = parsed->announcement;
  EXPECT_EQ(a.name, "test provider");
  ASSERT_EQ(a.models.size(), 1u);
  EXPECT_EQ(a.models[0].name, "fake-echo");
  EXPECT_EQ(a.models[0].engine, "fake");
  EXPECT_EQ(a.engines, std::vector<std::string>{"fake"});
  EXPECT_EQ(a.prices.per_1k_output_msat, 2000u);
  EXPECT_EQ(a.prices.per_job_msat, 10u);
  EXPECT_EQ(a.capacity.slots, 2u);
  EXPECT_EQ(a.capacity.queue, 2u);
  EXPECT_EQ(a.capacity.busy, 0u);
  EXPECT_EQ(parsed->expires_at, parsed->created_at + 3 * options_.heartbeat.count());
  EXPECT_GT(a.hardware.cpu_cores, 0u);
}

TEST_F(ProviderTest, RunsAJobAndStreamsItsOutput) {
  listen();
  start_provider(2ms);  // 40 tokens over about 80 ms: long enough to stream
  send(request("job-1", "alpha beta gamma", 40));
  auto result = wait_result("job-1");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok) << result->error_code << ": " << result->error;
  const std::string expected = engine::fake_echo_output("alpha beta gamma", 40);
  EXPECT_EQ(result->output, expected);
  EXPECT_EQ(result->usage.input_tokens, 3u);
  EXPECT_EQ(result->usage.output_tokens, 40u);
  // per_job + per_1k_input * 3 / 1000 + per_1k_output * 40 / 1000 (no per-second price).
  EXPECT_EQ(result->cost_msat, 10u + 1000u * 3 / 1000 + 2000u * 40 / 1000);

  // A slot was free: "running" is the acceptance, and no "accepted" is sent.
  ASSERT_TRUE(wait_status("job-1", protocol::JobStatusCode::kRunning));
  EXPECT_EQ(inbox_->all<protocol::JobStatus>("job-1").size(), 1u);
  // Progress is ephemeral and batched: seq 1, 2, ... whose texts are the output's beginning, in fewer events
  // than tokens; the result carries the rest.
  auto progress = inbox_->all<protocol::JobProgress>("job-1");
  ASSERT_FALSE(progress.empty());
  std::sort(progress.begin(), progress.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  std::string streamed;
  for (size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i].seq, i + 1);
    streamed += progress[i].text;
  }
  EXPECT_TRUE(expected.starts_with(streamed)) << streamed;
  EXPECT_LT(progress.size(), 40u);
  // The fake engine's tokens are words, each followed by a space: the count so far matches the text so far.
  EXPECT_EQ(static_cast<uint32_t>(std::count(streamed.begin(), streamed.end(), ' ')), progress.back().tokens);

  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.completed == 1; }));
  auto stats = node_->stats();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.running + stats.queued, 0u);
}

TEST_F(ProviderTest, AShortRunStreamsNothingAndItsResultCarriesTheOutput) {
  listen();
  start_provider();  // no token delay: four tokens take microseconds
  send(request("quick", "one two", 4));
  auto result = wait_result("quick");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok) << result->error_code << ": " << result->error;
  EXPECT_EQ(result->output, engine::fake_echo_output("one two", 4));
  // Two events for the whole job: running, result.
  ASSERT_TRUE(wait_status("quick", protocol::JobStatusCode::kRunning));
  EXPECT_EQ(inbox_->all<protocol::JobStatus>("quick").size(), 1u);
  EXPECT_TRUE(inbox_->all<protocol::JobProgress>("quick").empty());
}

TEST_F(ProviderTest, RunsABurstOfJobsThroughItsSlots) {
  options_.slots = 4;
  options_.queue = 60;
  listen();
  start_provider();
  constexpr int kJobs = 50;
  for (int i = 0; i < kJobs; ++i)
    send(request("burst-" + std::to_string(i), "w" + std::to_string(i) + " x", 8));
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.completed == kJobs; }));
  ASSERT_TRUE(inbox_->wait([&] { return inbox_->all<protocol::JobResult>().size() == kJobs; }));
  for (const auto& r : inbox_->all<protocol::JobResult>()) {
    ASSERT_TRUE(r.ok) << r.job_id << ": " << r.error;
    const std::string n = r.job_id.substr(std::string("burst-").size());
    EXPECT_EQ(r.output, engine::fake_echo_output("w" + n + " x", 8));
  }
  EXPECT_EQ(node_->stats().rejected, 0u);
}

TEST_F(ProviderTest, RejectsAnUnknownModel) {
  listen();
  start_provider();
  auto r = request("job-x", "hello", 5);
  r.model = "gpt-7";
  send(r);
  auto status = wait_status("job-x", protocol::JobStatusCode::kRejected);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->reason_code, "unknown-model");
  EXPECT_NE(status->reason.find("gpt-7"), std::string::npos);
  EXPECT_EQ(node_->stats().rejected, 1u);
  EXPECT_EQ(node_->stats().accepted, 0u);
}

TEST_F(ProviderTest, RejectsAPriceBelowTheEstimateAndTakesOneAtIt) {
  listen();
  start_provider();
  // Estimate: 10 + 1000 * 2 / 1000 + 2000 * 10 / 1000 = 32 msat.
  auto low = request("cheap", "two words", 10);
  low.max_cost_msat = 31;
  send(low);
  auto status = wait_status("cheap", protocol::JobStatusCode::kRejected);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->reason_code, "price-too-low");

  auto enough = request("fair", "two words", 10);
  enough.max_cost_msat = 32;
  send(enough);
  auto result = wait_result("fair");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
  EXPECT_LE(result->cost_msat, 32u);
}

TEST_F(ProviderTest, RejectsAPassedDeadline) {
  listen();
  start_provider();
  auto late = request("late", "x", 1);
  late.deadline = clock_.now_unix() - 1;
  send(late);
  auto status = wait_status("late", protocol::JobStatusCode::kRejected);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->reason_code, "deadline");
}

TEST_F(ProviderTest, RejectsAJobThatCannotStartByItsStartBy) {
  listen();
  start_provider();
  auto late = request("late-start", "x", 1);
  late.start_by = clock_.now_unix() - 1;
  send(late);
  auto status = wait_status("late-start", protocol::JobStatusCode::kRejected);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->reason_code, "deadline");
  EXPECT_NE(status->reason.find("start-by time"), std::string::npos) << status->reason;
  // With a free slot and time left it runs.
  auto soon = request("soon", "x", 1);
  soon.start_by = clock_.now_unix() + 60;
  send(soon);
  auto result = wait_result("soon");
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ok);
}

// A relay taking 5 events a second from a connection (bursts of 10).
class RateLimitedRelayProviderTest : public ProviderTest {
 protected:
  relay::RelayOptions relay_options() const override {
    relay::RelayOptions o;
    o.limits.max_events_per_second = 5;
    return o;
  }
};

TEST_F(RateLimitedRelayProviderTest, StatusesAndResultsTheRelayRefusesAsRateLimitedAreSentAgain) {
  options_.slots = 4;
  options_.queue = 8;
  listen();
  start_provider();
  // Eight jobs make seventeen events from the provider (its announcement, then running and a result each):
  // more than the relay's burst, so some are refused at first and must be sent again.
  constexpr int kJobs = 8;
  for (int i = 0; i < kJobs; ++i)
    send(request("limited-" + std::to_string(i), "w x", 2));
  ASSERT_TRUE(inbox_->wait([&] { return inbox_->all<protocol::JobResult>().size() == kJobs; }, 20s))
      << inbox_->all<protocol::JobResult>().size() << " results arrived";
}

TEST_F(ProviderTest, RejectsBusyWhenSlotsAndQueueAreFull) {
  options_.slots = 1;
  options_.queue = 1;
  listen();
  start_provider(10ms);
  send(request("a", "w", 1000));
  send(request("b", "w", 1000));
  ASSERT_TRUE(wait_status("b", protocol::JobStatusCode::kAccepted));
  EXPECT_EQ(wait_status("b", protocol::JobStatusCode::kAccepted)->queue_position, 1u);
  auto stats = node_->stats();
  EXPECT_EQ(stats.running, 1u);
  EXPECT_EQ(stats.queued, 1u);
  send(request("c", "w", 1000));
  auto status = wait_status("c", protocol::JobStatusCode::kRejected);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->reason_code, "busy");
  EXPECT_GE(status->retry_after_seconds, 1u);
  // The announcement follows the load.
  ASSERT_TRUE(inbox_->wait([&] {
    std::lock_guard lock(inbox_->mu);
    for (const auto& e : inbox_->announcements) {
      auto a = protocol::parse_announcement(e);
      if (a && a->announcement.capacity.busy == 1 && a->announcement.capacity.queued == 1) return true;
    }
    return false;
  }));
}

TEST_F(ProviderTest, CancelStopsTheJobOnlyForItsConsumer) {
  listen();
  start_provider(5ms);
  send(request("long", "tick tock", 1000));
  ASSERT_TRUE(inbox_->wait([&] { return !inbox_->all<protocol::JobProgress>("long").empty(); }));

  // Someone else naming the same job id is not its consumer.
  protocol::JobCancel cancel{.job_id = "long", .attempt = 1, .reason = "changed my mind"};
  publish(seal_to_provider(cancel, nostr::Keypair::generate()));
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(inbox_->all<protocol::JobResult>("long").empty());

  send(cancel);
  auto result = wait_result("long");
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->error_code, "canceled");
  EXPECT_LT(result->usage.output_tokens, 1000u);
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.canceled == 1; }));
  EXPECT_EQ(node_->stats().completed, 0u);
}

TEST_F(ProviderTest, ContinuesAfterResumeText) {
  listen();
  start_provider();
  auto r = request("resumed", "one two three", 12);
  r.attempt = 2;
  r.resume_text = engine::fake_echo_output("one two three", 5);
  send(r);
  auto result = wait_result("resumed");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok);
  EXPECT_EQ(result->attempt, 2u);
  EXPECT_EQ(r.resume_text + result->output, engine::fake_echo_output("one two three", 12));
  // Charged once per token: the resumed ones are input of this attempt, not its output.
  EXPECT_EQ(result->usage.output_tokens, 7u);
  EXPECT_EQ(result->usage.input_tokens, 3u + 5u);
}

TEST_F(ProviderTest, TheSameJobSentAgainIsNotRunTwice) {
  listen();
  start_provider();
  send(request("once", "a b", 8));
  auto first = wait_result("once");
  ASSERT_TRUE(first);
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.completed == 1; }));
  // The same consumer, job id and attempt in a new event: answered from the record.
  send(request("once", "a b", 8));
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.replayed == 1; }));
  auto stats = node_->stats();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(inbox_->all<protocol::JobStatus>("once").size(), 1u);  // running: nothing new
  // What is re-sent is the recorded result event itself: valid, and the one the consumer received.
  auto reader = internal::JobRecordReader::open(options_.database);
  ASSERT_TRUE(reader);
  auto record = reader->find("", consumer_keys_.public_key().hex(), "once", 1);
  ASSERT_TRUE(record && *record);
  auto stored = nostr::parse_event((*record)->result_event);
  ASSERT_TRUE(stored) << stored.error().to_string();
  EXPECT_TRUE(nostr::verify_event(*stored));
  EXPECT_EQ(hex_encode(stored->id), result_event_id("once"));
}

TEST_F(ProviderTest, ARestartAnswersJobsLeftRunningAndDoesNotRerunThem) {
  listen();
  start_provider(10ms);
  send(request("cut", "w", 1000));
  ASSERT_TRUE(wait_status("cut", protocol::JobStatusCode::kRunning));
  node_->stop();
  EXPECT_TRUE(inbox_->all<protocol::JobResult>("cut").empty());

  // The next process on the same record answers the job instead of leaving the consumer waiting...
  start_provider(10ms);
  auto result = wait_result("cut");
  ASSERT_TRUE(result);
  EXPECT_FALSE(result->ok);
  EXPECT_EQ(result->error_code, "provider-restarted");
  // ...and, reading the request again from the relay, re-sends that answer rather than running it.
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.replayed == 1; }));
  EXPECT_EQ(node_->stats().accepted, 0u);
}

TEST_F(ProviderTest, AFinishedJobReadAgainAfterARestartIsNotRerun) {
  listen();
  start_provider();
  send(request("done", "x y", 4));
  auto result = wait_result("done");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok);
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.completed == 1; }));
  node_->stop();
  start_provider();
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.replayed == 1; }));
  EXPECT_EQ(node_->stats().accepted, 0u);
  EXPECT_EQ(inbox_->all<protocol::JobResult>("done").size(), 1u);
}

TEST_F(ProviderTest, IgnoresARequestItCannotOpen) {
  listen();
  start_provider();
  // Sealed to another key, then tagged for the provider and signed again: it reaches the provider, which
  // cannot decrypt it.
  auto forged = protocol::seal(request("forged", "x", 3), consumer_keys_,
                               nostr::Keypair::generate().public_key(), clock_.now_unix());
  ASSERT_TRUE(forged);
  nostr::EventDraft draft{
      forged->created_at, forged->kind, {{"p", provider_keys_.public_key().hex()}}, forged->content};
  publish(nostr::sign_event(draft, consumer_keys_));
  send(request("real", "x", 3));
  ASSERT_TRUE(wait_result("real"));
  EXPECT_TRUE(inbox_->all<protocol::JobStatus>("forged").empty());
  EXPECT_TRUE(inbox_->all<protocol::JobResult>("forged").empty());
  EXPECT_EQ(node_->stats().accepted, 1u);
  EXPECT_EQ(node_->stats().rejected, 0u);
}

TEST_F(ProviderTest, AnswersAQuoteWithAnOffer) {
  listen();
  start_provider();
  protocol::QuoteRequest q;
  q.quote_id = "q1";
  q.model = "fake-echo";
  q.input_tokens = 100;
  q.max_tokens = 500;
  q.priority = "high";
  auto e = protocol::make_quote_request(q, consumer_keys_, clock_.now_unix());
  ASSERT_TRUE(e);
  publish(*e);
  q.quote_id = "q2";
  q.model = "unknown";
  publish(*protocol::make_quote_request(q, consumer_keys_, clock_.now_unix()));
  ASSERT_TRUE(inbox_->wait([&] { return !inbox_->all<protocol::Offer>().empty(); }));
  ASSERT_TRUE(wait_stats([](const ProviderStats& s) { return s.offers == 1; }));
  auto offers = inbox_->all<protocol::Offer>();
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].quote_id, "q1");
  EXPECT_EQ(offers[0].model, "fake-echo");
  // (10 + 1000 * 100 / 1000 + 2000 * 500 / 1000) at the "high" priority's 150%.
  EXPECT_EQ(offers[0].price_msat, (10u + 100u + 1000u) * 150 / 100);
  EXPECT_EQ(offers[0].queue_position, 0u);
  EXPECT_GE(offers[0].expires_at, clock_.now_unix() + 25);
}

TEST_F(ProviderTest, RecordsTheConsumersReceipt) {
  listen();
  start_provider();
  send(request("paid", "a", 2));
  auto result = wait_result("paid");
  ASSERT_TRUE(result);
  send(protocol::JobReceipt{.job_id = "paid",
                            .attempt = 1,
                            .cost_msat = result->cost_msat,
                            .result_event_id = result_event_id("paid")});
  auto reader = internal::JobRecordReader::open(options_.database);
  ASSERT_TRUE(reader);
  std::optional<internal::JobRecord> record;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    auto found = reader->find("", consumer_keys_.public_key().hex(), "paid", 1);
    ASSERT_TRUE(found);
    if (*found && (*found)->receipt_cost_msat) {
      record = **found;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(record);
  EXPECT_EQ(*record->receipt_cost_msat, result->cost_msat);
  EXPECT_EQ(record->state, internal::JobRecordState::kCompleted);
  EXPECT_EQ(record->cost_msat, result->cost_msat);
}

TEST_F(ProviderTest, OpenRefusesAnInMemoryDatabase) {
  options_.database = ":memory:";
  auto engine = engine::make_fake_engine({});
  auto node = ProviderNode::open(options_, *provider_pool_, *engine, provider_keys_, clock_);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(node.error().message.find("database"), std::string::npos);
}

// ---- Priorities and the budget cap ----

TEST_F(ProviderTest, QueuedJobsStartInPriorityOrderAndPayTheirMultiplier) {
  options_.slots = 1;
  options_.queue = 8;
  listen();
  start_provider(20ms);
  // The only slot is busy for about 0.6 s, long enough for the rest to be recorded behind it.
  send(request("first", "w x", 30));
  ASSERT_TRUE(wait_status("first", protocol::JobStatusCode::kRunning));
  const std::vector<std::pair<std::string, std::string>> sent = {{"low-1", "low"},   {"medium-1", "normal"},
                                                                 {"high-1", "high"}, {"urgent-1", "urgent"},
                                                                 {"low-2", "low"},   {"urgent-2", "urgent"}};
  for (const auto& [id, priority] : sent) {
    auto r = request(id, "w x", 2);
    r.priority = priority;
    send(r);
  }
  for (const auto& [id, priority] : sent)
    ASSERT_TRUE(wait_status(id, protocol::JobStatusCode::kAccepted)) << id;
  // Places in line count the jobs of the same or a higher priority that came first.
  EXPECT_EQ(wait_status("urgent-1", protocol::JobStatusCode::kAccepted)->queue_position, 1u);
  EXPECT_EQ(wait_status("low-2", protocol::JobStatusCode::kAccepted)->queue_position, 5u);
  EXPECT_EQ(node_->stats().running, 1u);
  ASSERT_TRUE(inbox_->wait([&] { return inbox_->all<protocol::JobResult>().size() == 7; }, 10s));
  std::vector<std::string> order;
  for (const auto& r : inbox_->all<protocol::JobResult>()) {
    EXPECT_TRUE(r.ok) << r.job_id << ": " << r.error;
    order.push_back(r.job_id);
  }
  // The running job is not preempted; then urgent, high, medium, low, first come first served in a level.
  EXPECT_EQ(order, (std::vector<std::string>{"first", "urgent-1", "urgent-2", "high-1", "medium-1", "low-1",
                                             "low-2"}));
  // 10 + 1000 * 2 / 1000 + 2000 * 2 / 1000 = 16 msat at list price.
  EXPECT_EQ(wait_result("urgent-1")->cost_msat, 32u);
  EXPECT_EQ(wait_result("high-1")->cost_msat, 24u);
  EXPECT_EQ(wait_result("medium-1")->cost_msat, 16u);
  EXPECT_EQ(wait_result("low-1")->cost_msat, 8u);
}

TEST_F(ProviderTest, ACanceledQueuedJobLeavesTheLineAndTheNextStarts) {
  options_.slots = 1;
  options_.queue = 4;
  listen();
  start_provider(20ms);
  send(request("first", "w x", 15));
  ASSERT_TRUE(wait_status("first", protocol::JobStatusCode::kRunning));
  auto urgent = request("urgent", "w x", 2);
  urgent.priority = "urgent";
  send(request("low", "w x", 2));
  send(urgent);
  ASSERT_TRUE(wait_status("urgent", protocol::JobStatusCode::kAccepted));
  send(protocol::JobCancel{.job_id = "urgent", .attempt = 1, .reason = "changed my mind"});
  auto canceled = wait_result("urgent");
  ASSERT_TRUE(canceled);
  EXPECT_EQ(canceled->error_code, "canceled");
  auto low = wait_result("low");
  ASSERT_TRUE(low);
  EXPECT_TRUE(low->ok);
}

TEST_F(ProviderTest, StopsBeforeTheNextTokenWouldPassTheCapAndSaysBudget) {
  options_.prices.per_second_msat = 1000;  // 1 msat per millisecond of engine time
  listen();
  start_provider(10ms);
  // The estimate (10 + 2 + 100 = 112 msat) leaves out engine time, which passes the cap after about ten
  // tokens of 10 ms.
  auto r = request("capped", "w x", 50);
  r.max_cost_msat = 150;
  send(r);
  auto result = wait_result("capped");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok) << result->error;
  EXPECT_EQ(result->finish_reason, "budget");
  EXPECT_GT(result->usage.output_tokens, 0u);
  EXPECT_LT(result->usage.output_tokens, 50u);
  EXPECT_LE(result->cost_msat, 150u);
  // The tokens charged for are the tokens delivered: the output is the uncapped output cut there.
  EXPECT_EQ(result->output, engine::fake_echo_output("w x", result->usage.output_tokens));
  // The output tokens alone, without time, stay within the cap: the stop came from the next token's cost.
  EXPECT_LE(10u + 2u + 2u * result->usage.output_tokens, 150u);
}

TEST_F(ProviderTest, AJobWithinItsCapEndsAsUsual) {
  listen();
  start_provider();
  auto r = request("fits", "w x", 10);
  r.max_cost_msat = 32;  // exactly the estimate
  send(r);
  auto result = wait_result("fits");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->finish_reason, "length");
  EXPECT_EQ(result->usage.output_tokens, 10u);
  EXPECT_EQ(result->cost_msat, 32u);
}

TEST_F(ProviderTest, WithTheLlamaEngineTheCapCountsTheModelsOwnTokens) {
  if (std::string(INFERNET_TINY_MODEL).empty() || !fs::exists(INFERNET_TINY_MODEL))
    GTEST_SKIP() << "the build's tiny model is missing: " << INFERNET_TINY_MODEL;
  fs::create_directories(dir_ / "models");
  fs::copy_file(INFERNET_TINY_MODEL, dir_ / "models" / "tiny.gguf");
  engine::LlamaEngineOptions o;
  o.models_dir = dir_ / "models";
  o.slots = options_.slots;
  o.threads = 1;  // one thread: ggml's workers spin, and a loaded machine then slows every decode
  o.context = 256;
  auto llama = engine::make_llama_engine(o);
  ASSERT_TRUE(llama) << llama.error().to_string();
  engine_ = std::move(*llama);
  const std::string model = engine_->models().at(0).name;
  // 1 msat per token, in or out. The provider's estimate counts the prompt as one word (1 + 40 = 41 msat,
  // within the cap); the model's tokenizer makes it many tokens, so the cap is met before max_tokens.
  options_.prices = {};
  options_.prices.per_1k_input_msat = 1000;
  options_.prices.per_1k_output_msat = 1000;
  listen();
  start_provider();
  auto r = request("llama-capped", "Once,upon,a,time,there,was", 40);
  r.model = model;
  r.max_cost_msat = 41;
  send(r);
  auto result = wait_result("llama-capped");
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->ok) << result->error;
  EXPECT_EQ(result->finish_reason, "budget");
  EXPECT_GT(result->usage.input_tokens, 1u);
  EXPECT_GT(result->usage.output_tokens, 0u);
  EXPECT_LT(result->usage.output_tokens, 40u);
  // Each token costs 1 msat: stopping before the next one would pass the cap lands exactly on it.
  EXPECT_EQ(result->cost_msat, 41u);
  EXPECT_EQ(result->usage.input_tokens + result->usage.output_tokens, 41u);
}

// ---- Reservations ----

TEST(Reservations, DecidesByTheTermsAndWhatIsHeld) {
  using internal::decide_reservation;
  using internal::Reservation;
  const protocol::ReservationTerms terms{.discount_percent = 25, .max_slots = 2, .max_hours = 4};
  const int64_t now = 1'800'000'000;
  protocol::ReservationRequest r{.reservation_id = "r1", .slots = 1, .hours = 2, .start = 0};
  auto a = decide_reservation(terms, {}, "alice", r, now);
  ASSERT_TRUE(a.accepted) << a.reason;
  EXPECT_EQ(a.start, now);
  EXPECT_EQ(a.end, now + 2 * 3600);
  EXPECT_EQ(a.discount_percent, 25u);
  EXPECT_EQ(decide_reservation({}, {}, "alice", r, now).reason_code, "no-reservations");
  auto big = r;
  big.slots = 3;
  EXPECT_EQ(decide_reservation(terms, {}, "alice", big, now).reason_code, "too-many-slots");
  auto longer = r;
  longer.hours = 5;
  EXPECT_EQ(decide_reservation(terms, {}, "alice", longer, now).reason_code, "too-long");
  auto past = r;
  past.start = now - 3600;
  EXPECT_EQ(decide_reservation(terms, {}, "alice", past, now).reason_code, "invalid");
  // Two slots are held for [now + 1 h, now + 3 h): a window overlapping them is full, a later one is not.
  const std::vector<Reservation> held = {{"b1", "bob", 2, now + 3600, now + 3 * 3600, 25, now}};
  EXPECT_EQ(decide_reservation(terms, held, "alice", r, now).reason_code, "full");
  auto later = r;
  later.start = now + 3 * 3600;
  EXPECT_TRUE(decide_reservation(terms, held, "alice", later, now).accepted);
  // The holder asking again for its own id gets its reservation back.
  auto again = decide_reservation(terms, held, "bob", {.reservation_id = "b1", .slots = 2, .hours = 2}, now);
  EXPECT_TRUE(again.accepted);
  EXPECT_EQ(again.start, now + 3600);
}

class ReservationTest : public ProviderTest {
 protected:
  // Another consumer, with its own inbox.
  void listen_as(const nostr::Keypair& keys, const std::shared_ptr<Inbox>& inbox) {
    nostr::Filter mine;
    mine.kinds =
        std::vector<uint32_t>{protocol::kJobStatus, protocol::kJobResult, protocol::kReservationAnswer};
    mine.tags.push_back({"p", {keys.public_key().hex()}});
    auto live = std::make_shared<std::promise<void>>();
    auto ready = live->get_future();
    consumer_pool_->subscribe(
        {mine}, relay::SubscriptionCallbacks{.on_event =
                                                 [inbox, keys](const nostr::Event& e, const std::string&) {
                                                   std::lock_guard lock(inbox->mu);
                                                   if (auto opened = protocol::open(e, keys))
                                                     inbox->messages.push_back(std::move(*opened));
                                                   inbox->changed.notify_all();
                                                 },
                                             .on_eose = [live] { live->set_value(); }});
    ASSERT_EQ(ready.wait_for(kWait), std::future_status::ready);
  }

  std::optional<protocol::ReservationAnswer> reserve(const protocol::ReservationRequest& r) {
    send(r);
    std::optional<protocol::ReservationAnswer> out;
    inbox_->wait([&] {
      for (const auto& a : inbox_->all<protocol::ReservationAnswer>()) {
        if (a.reservation_id == r.reservation_id) out = a;
      }
      return out.has_value();
    });
    return out;
  }
};

TEST_F(ReservationTest, AReservedJobOvertakesTheQueueAtTheDiscountAndTheReservationSurvivesARestart) {
  options_.slots = 1;
  options_.queue = 1;
  options_.reservations = {.discount_percent = 25, .max_slots = 1, .max_hours = 2};
  listen();
  auto other_keys = nostr::Keypair::generate();
  auto other = std::make_shared<Inbox>();
  listen_as(other_keys, other);
  start_provider(20ms);
  // The announcement carries the terms.
  ASSERT_TRUE(inbox_->wait([&] {
    std::lock_guard lock(inbox_->mu);
    return !inbox_->announcements.empty();
  }));
  {
    std::lock_guard lock(inbox_->mu);
    auto a = protocol::parse_announcement(inbox_->announcements.back());
    ASSERT_TRUE(a);
    EXPECT_EQ(a->announcement.reservations, options_.reservations);
  }

  // Over the provider's limits: refused, nothing held.
  auto too_many = reserve({.reservation_id = "r-big", .slots = 2, .hours = 1});
  ASSERT_TRUE(too_many);
  EXPECT_FALSE(too_many->accepted);
  EXPECT_EQ(too_many->reason_code, "too-many-slots");
  auto too_long = reserve({.reservation_id = "r-long", .slots = 1, .hours = 3});
  ASSERT_TRUE(too_long);
  EXPECT_EQ(too_long->reason_code, "too-long");
  auto held = reserve({.reservation_id = "r-1", .slots = 1, .hours = 1});
  ASSERT_TRUE(held);
  ASSERT_TRUE(held->accepted) << held->reason;
  EXPECT_EQ(held->slots, 1u);
  EXPECT_EQ(held->end - held->start, 3600);
  EXPECT_EQ(held->discount_percent, 25u);
  // The one reservable slot is taken: another consumer is refused.
  publish(seal_to_provider(protocol::ReservationRequest{.reservation_id = "o-1", .slots = 1, .hours = 1},
                           other_keys));
  ASSERT_TRUE(other->wait([&] { return !other->all<protocol::ReservationAnswer>().empty(); }));
  EXPECT_EQ(other->all<protocol::ReservationAnswer>()[0].reason_code, "full");

  // The other consumer fills the slot and the queue...
  publish(seal_to_provider(request("o-run", "w x", 20), other_keys));
  ASSERT_TRUE(other->wait([&] {
    for (const auto& s : other->all<protocol::JobStatus>("o-run"))
      if (s.status == protocol::JobStatusCode::kRunning) return true;
    return false;
  }));
  auto urgent = request("o-wait", "w x", 2);
  urgent.priority = "urgent";
  publish(seal_to_provider(urgent, other_keys));
  ASSERT_TRUE(other->wait([&] { return !other->all<protocol::JobStatus>("o-wait").empty(); }));
  publish(seal_to_provider(request("o-busy", "w x", 2), other_keys));
  ASSERT_TRUE(other->wait([&] { return !other->all<protocol::JobStatus>("o-busy").empty(); }));
  EXPECT_EQ(other->all<protocol::JobStatus>("o-busy")[0].reason_code, "busy");
  // ...and still the reserving consumer's job is taken, and starts before the waiting urgent one.
  send(request("mine", "w x", 2));
  auto mine = wait_result("mine");
  ASSERT_TRUE(mine);
  ASSERT_TRUE(mine->ok) << mine->error;
  EXPECT_TRUE(other->all<protocol::JobResult>("o-wait").empty()) << "the reserved job went first";
  // 16 msat at list price, less 25%.
  EXPECT_EQ(mine->cost_msat, 12u);
  ASSERT_TRUE(other->wait([&] { return !other->all<protocol::JobResult>("o-wait").empty(); }));
  // Urgent, not reserved: 32 msat, no discount.
  EXPECT_EQ(other->all<protocol::JobResult>("o-wait")[0].cost_msat, 32u);

  // Recorded: a restarted provider still honours it, and answers a retry of the request with it.
  node_.reset();
  auto records = internal::JobRecordReader::open(options_.database);
  ASSERT_TRUE(records);
  auto stored = records->reservations(clock_.now_unix());
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].id, "r-1");
  EXPECT_EQ((*stored)[0].consumer, consumer_keys_.public_key().hex());
  start_provider();
  send(request("mine-2", "w x", 2));
  auto again = wait_result("mine-2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->cost_msat, 12u);
}

}  // namespace
}  // namespace infernet::provider
