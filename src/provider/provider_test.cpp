// The provider node against a real relay on loopback (provider_test_network.hpp): announcements, jobs and
// their streams, rejections, cancellation, restarts, quotes, receipts, priorities and the budget cap.
#include "provider/provider.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/encoding.hpp"
#include "engine/fake/fake_engine.hpp"
#include "engine/llama/llama_engine.hpp"
#include "provider/internal/job_records.hpp"
#include "provider/provider_test_network.hpp"

namespace infernet::provider {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::Inbox;
using testing::kWait;
using testing::ProviderTest;

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

}  // namespace
}  // namespace infernet::provider
