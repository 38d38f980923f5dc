// The consumer node against an in-process relay and providers played by the test (consumer_test_network.hpp):
// jobs completing with streamed output, validation, failover on rejection and silence, forged and replayed
// messages, restarts, cancellation, watching, open quotes, deadlines and budgets.
#include "consumer/consumer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "consumer/consumer_test_network.hpp"
#include "consumer/job_store.hpp"
#include "nostr/nip19.hpp"

namespace infernet::consumer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::eventually;
using testing::FakeProvider;
using testing::Script;

std::string field(const std::string& json, const char* name) {
  auto v = boost::json::parse(json);
  const auto* f = v.as_object().if_contains(name);
  if (f == nullptr) return "";
  if (f->is_string()) return std::string(f->as_string());
  return boost::json::serialize(*f);
}

class ConsumerNodeTest : public testing::ConsumerNetworkTest {
 protected:
  ConsumerNodeTest() : ConsumerNetworkTest("infernet-consumer-") {}
  void SetUp() override {
    ConsumerNetworkTest::SetUp();
    options_.quote_window = 300ms;
  }

  static JobSpec spec(const std::string& prompt = "say something") {
    JobSpec s;
    s.model = "fake-echo";
    s.prompt = prompt;
    s.max_tokens = 16;
    return s;
  }

  // Waits until the job reaches `state`; returns it as it is then.
  JobRecord wait_state(const std::string& id, JobState state, std::chrono::milliseconds timeout = 5000ms) {
    JobRecord last;
    eventually(
        [&] {
          auto r = node_->get(id);
          if (r) last = *r;
          return r && r->state == state;
        },
        timeout);
    EXPECT_EQ(to_string(last.state), std::string(to_string(state)))
        << "job " << id << " error: " << last.error;
    return last;
  }

  std::vector<JobEvent> events_of(const std::string& id) {
    auto e = node_->events(id, 0);
    EXPECT_TRUE(e) << e.error().to_string();
    return e ? *e : std::vector<JobEvent>{};
  }

  std::vector<std::string> states_of(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& e : events_of(id)) {
      if (e.type == "state") out.push_back(field(e.data, "state"));
    }
    return out;
  }

  // The texts of a job's progress events, in order, and whether each came from the result.
  std::vector<std::pair<std::string, bool>> progress_of(const std::string& id) {
    std::vector<std::pair<std::string, bool>> out;
    for (const auto& e : events_of(id)) {
      if (e.type == "progress")
        out.emplace_back(field(e.data, "text"), e.data.find("\"from_result\":true") != std::string::npos);
    }
    return out;
  }

  static void expect_contiguous(const std::vector<JobEvent>& events) {
    for (size_t i = 0; i < events.size(); ++i)
      EXPECT_EQ(events[i].seq, i + 1) << "event " << i;
  }
};

TEST_F(ConsumerNodeTest, AJobCompletesWithStreamedProgress) {
  auto& provider = add_provider({});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job) << job.error().to_string();
  EXPECT_EQ(job->state, JobState::kSubmitted);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.output, "alpha beta gamma");
  EXPECT_EQ(done.provider, provider.pubkey());
  EXPECT_EQ(done.attempt, 1u);
  EXPECT_EQ(done.cost_msat, 10u);
  EXPECT_EQ(done.usage.output_tokens, 3u);

  auto events = events_of(job->id);
  expect_contiguous(events);
  EXPECT_EQ(states_of(job->id), (std::vector<std::string>{"submitted", "assigned", "running", "completed"}));
  std::string streamed;
  for (const auto& e : events) {
    if (e.type == "progress") streamed += field(e.data, "text");
  }
  EXPECT_EQ(streamed, "alpha beta gamma");
  // The provider was paid the cost it asked, against the result it sent.
  ASSERT_TRUE(provider.wait_receipts(1));
  EXPECT_EQ(provider.receipts()[0].cost_msat, 10u);
  EXPECT_EQ(provider.receipts()[0].job_id, job->id);
  const auto request = provider.requests().at(0);
  EXPECT_EQ(request.prompt, "say something");
  EXPECT_EQ(request.attempt, 1u);
  EXPECT_TRUE(request.resume_text.empty());

  auto models = node_->models();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].name, "fake-echo");
  EXPECT_EQ(models[0].providers, std::vector<std::string>{provider.pubkey()});
}

TEST_F(ConsumerNodeTest, WhatTheStreamDidNotCarryComesFromTheResult) {
  // The provider streams only "alpha " (the rest was never sent, or a relay dropped it); its result carries
  // the whole output. The job's stream still adds up to the output, each piece once.
  add_provider({.streamed_chunks = 1});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job) << job.error().to_string();
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.output, "alpha beta gamma");
  using Piece = std::pair<std::string, bool>;  // text, from the result
  EXPECT_EQ(progress_of(job->id), (std::vector<Piece>{{"alpha ", false}, {"beta gamma", true}}));
}

TEST_F(ConsumerNodeTest, ARunThatStreamedNothingGetsItsOutputFromTheResult) {
  add_provider({.streamed_chunks = 0});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job) << job.error().to_string();
  wait_state(job->id, JobState::kCompleted);
  using Piece = std::pair<std::string, bool>;  // text, from the result
  EXPECT_EQ(progress_of(job->id), (std::vector<Piece>{{"alpha beta gamma", true}}));
  EXPECT_EQ(states_of(job->id), (std::vector<std::string>{"submitted", "assigned", "running", "completed"}));
}

TEST_F(ConsumerNodeTest, ValidationErrorsNameTheFieldAndStoreNothing) {
  open_node();
  struct Case {
    std::function<void(JobSpec&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](JobSpec& s) { s.model.clear(); }, "model: required"},
      {[](JobSpec& s) { s.prompt.clear(); }, "prompt: required"},
      {[](JobSpec& s) { s.prompt.assign(protocol::kMaxPromptBytes + 1, 'x'); }, "prompt: at most"},
      {[](JobSpec& s) { s.max_tokens = 0; }, "max_tokens: must be 1..65536"},
      {[](JobSpec& s) { s.max_tokens = 65537; }, "max_tokens: must be 1..65536"},
      {[](JobSpec& s) { s.sampling.temperature = 2.5; }, "temperature: must be from 0 to 2"},
      {[](JobSpec& s) { s.priority = "critical"; }, "priority: must be low, medium, high or urgent"},
      {[](JobSpec& s) { s.provider = "npub1notakey"; }, "provider: not a valid npub or hex key"},
      {[](JobSpec& s) { s.provider = std::string(64, 'g'); }, "provider: not a valid npub or hex key"},
      {[](JobSpec& s) { s.deadline = 1000; }, "deadline: already passed"},
      {[](JobSpec& s) { s.client_request_id.assign(200, 'c'); }, "client_request_id: at most"},
      {[](JobSpec& s) { s.prompt = "\xff\xfe"; }, "prompt: not valid UTF-8"},
  };
  for (const auto& c : cases) {
    JobSpec s = spec();
    c.change(s);
    auto r = node_->submit(s);
    ASSERT_FALSE(r) << c.message;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_TRUE(r.error().message.starts_with(c.message)) << r.error().message;
  }
  EXPECT_TRUE(node_->list({})->empty());
  // A valid npub is accepted and stored as hex.
  auto provider_keys = nostr::Keypair::generate();
  JobSpec direct = spec();
  direct.provider = nostr::nip19::encode_npub(provider_keys.public_key().bytes());
  auto r = node_->submit(direct);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->spec.provider, provider_keys.public_key().hex());
}

TEST_F(ConsumerNodeTest, ARepeatedClientRequestIdReturnsTheSameJob) {
  open_node();
  JobSpec s = spec();
  s.client_request_id = "req-42";
  auto first = node_->submit(s);
  ASSERT_TRUE(first) << first.error().to_string();
  auto second = node_->submit(s);
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(first->id, second->id);
  EXPECT_EQ(node_->list({})->size(), 1u);
  // Still after a restart, from the database.
  open_node();
  auto third = node_->submit(s);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->id, first->id);
}

// Many clients submitting at once, some repeating one client_request_id: every job is stored once, and the
// repeated id yields one job. Prints the rate (no provider, so each submit is validated, stored, matched
// against the directory and left waiting).
TEST_F(ConsumerNodeTest, ConcurrentSubmitsAreEachStoredOnce) {
  open_node();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 60;
  std::mutex mu;
  std::set<std::string> ids;
  std::set<std::string> shared_ids;
  int failures = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        JobSpec s = spec("job " + std::to_string(t) + "." + std::to_string(i));
        s.client_request_id = i == 0 ? "shared" : "c" + std::to_string(t) + "." + std::to_string(i);
        auto r = node_->submit(s);
        std::lock_guard lock(mu);
        if (!r) {
          ADD_FAILURE() << r.error().to_string();
          ++failures;
          continue;
        }
        ids.insert(r->id);
        if (i == 0) shared_ids.insert(r->id);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(shared_ids.size(), 1u);
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * (kPerThread - 1) + 1));
  JobQuery all;
  all.limit = 1000;
  EXPECT_EQ(node_->list(all)->size(), ids.size());
  std::printf("consumer node: %d submits in %.3f s (%.0f/s)\n", kThreads * kPerThread, seconds,
              kThreads * kPerThread / seconds);
}

TEST_F(ConsumerNodeTest, ARejectedJobIsReassignedToTheNextProvider) {
  // The cheaper provider is tried first and rejects.
  auto& cheap = add_provider({.name = "cheap", .per_job_msat = 1, .script = Script::kReject});
  auto& dear = add_provider({.name = "dear", .per_job_msat = 5});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, dear.pubkey());
  EXPECT_EQ(done.attempt, 2u);
  EXPECT_EQ(done.output, "alpha beta gamma");
  ASSERT_EQ(cheap.requests().size(), 1u);
  ASSERT_EQ(dear.requests().size(), 1u);
  EXPECT_EQ(dear.requests()[0].attempt, 2u);
  bool noted = false;
  for (const auto& e : events_of(job->id)) {
    if (e.type == "note" && field(e.data, "provider") == cheap.pubkey() &&
        field(e.data, "message").find("rejected by the provider: busy") != std::string::npos) {
      noted = true;
    }
  }
  EXPECT_TRUE(noted) << "the rejection is recorded";
  EXPECT_EQ(states_of(job->id),
            (std::vector<std::string>{"submitted", "assigned", "assigned", "running", "completed"}));
}

TEST_F(ConsumerNodeTest, ABusyProviderIsAskedAgainOnlyAfterItsRetryAfter) {
  auto& only = add_provider({.name = "only", .per_job_msat = 1, .script = Script::kBusyOnce});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  const auto start = std::chrono::steady_clock::now();
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(done.provider, only.pubkey());
  EXPECT_EQ(done.attempt, 2u);
  ASSERT_EQ(only.requests().size(), 2u);
  // It said "retry after 1 s": the second request did not go sooner.
  EXPECT_GE(waited, 1s);
  bool told = false;
  for (const auto& e : events_of(job->id)) {
    if (e.type == "note" && field(e.data, "message").find("busy: asked to retry after") != std::string::npos)
      told = true;
  }
  EXPECT_TRUE(told) << "the wait is explained";
}

TEST_F(ConsumerNodeTest, AReservationIsRecordedAndJobsGoToTheReservedProvider) {
  auto& cheap = add_provider({.name = "cheap", .per_job_msat = 1});
  auto& reserved = add_provider({.name = "reserved", .per_job_msat = 50, .reservation_discount = 30});
  auto& refusing = add_provider({.name = "refusing", .per_job_msat = 40});
  open_node();
  ASSERT_TRUE(providers_alive(3));
  EXPECT_EQ(node_->reserve({.provider = "npub1nope", .slots = 1, .hours = 1}).error().message,
            "provider: not a valid npub or hex key");
  EXPECT_EQ(node_->reserve({.provider = reserved.pubkey(), .slots = 0, .hours = 1}).error().message,
            "slots: must be from 1 to 1024");
  EXPECT_EQ(node_->reserve({.provider = reserved.pubkey(), .slots = 1, .hours = 9000}).error().message,
            "hours: must be from 1 to 8760");
  auto refused = node_->reserve({.provider = refusing.pubkey(), .slots = 1, .hours = 1});
  ASSERT_TRUE(refused) << refused.error().message;
  auto asked = node_->reserve({.provider = reserved.pubkey(), .slots = 1, .hours = 2});
  ASSERT_TRUE(asked) << asked.error().message;
  EXPECT_EQ(asked->state, "requested");
  auto state_of = [&](const std::string& id) {
    auto all = node_->reservations();
    EXPECT_TRUE(all) << all.error().message;
    for (const auto& r : *all)
      if (r.id == id) return r;
    return ReservationRecord{};
  };
  ASSERT_TRUE(eventually([&] { return state_of(asked->id).state == "accepted"; }));
  ASSERT_TRUE(eventually([&] { return state_of(refused->id).state == "refused"; }));
  EXPECT_EQ(state_of(refused->id).reason, "no-reservations");
  const ReservationRecord held = state_of(asked->id);
  EXPECT_EQ(held.provider, reserved.pubkey());
  EXPECT_EQ(held.discount_percent, 30u);
  EXPECT_EQ(held.end - held.start, 2 * 3600);

  // The job goes to the reserved provider although another is cheaper.
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  EXPECT_EQ(wait_state(job->id, JobState::kCompleted).provider, reserved.pubkey());
  EXPECT_TRUE(cheap.requests().empty());

  // Recorded: a reopened node still holds it and still uses it.
  open_node();
  ASSERT_TRUE(providers_alive(3));
  EXPECT_EQ(state_of(asked->id).state, "accepted");
  auto again = node_->submit(spec("again"));
  ASSERT_TRUE(again);
  EXPECT_EQ(wait_state(again->id, JobState::kCompleted).provider, reserved.pubkey());
  EXPECT_TRUE(cheap.requests().empty());
}

TEST_F(ConsumerNodeTest, AProviderThatNeverAcceptsIsDroppedAfterTheAcceptTimeout) {
  options_.accept_timeout = 300ms;
  auto& silent = add_provider({.name = "silent", .per_job_msat = 1, .script = Script::kSilent});
  auto& good = add_provider({.name = "good", .per_job_msat = 5});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, good.pubkey());
  // The dropped provider is told to stop.
  ASSERT_TRUE(silent.wait_cancels(1));
  EXPECT_EQ(silent.cancels()[0].job_id, job->id);
  EXPECT_EQ(silent.cancels()[0].attempt, 1u);
}

TEST_F(ConsumerNodeTest, AProviderSilentAfterAcceptingIsDroppedAfterTheStallTimeout) {
  options_.stall_timeout = 300ms;
  auto& stalled = add_provider({.name = "stalled", .per_job_msat = 1, .script = Script::kAcceptThenSilent});
  auto& good = add_provider({.name = "good", .per_job_msat = 5});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, good.pubkey());
  ASSERT_TRUE(stalled.wait_cancels(1));
  bool noted = false;
  for (const auto& e : events_of(job->id)) {
    noted |= e.type == "note" && field(e.data, "message") == "no progress within 300 ms";
  }
  EXPECT_TRUE(noted);
}

TEST_F(ConsumerNodeTest, AResumedJobContinuesTheOutputDeliveredBefore) {
  options_.stall_timeout = 300ms;
  auto& first = add_provider({.name = "first", .per_job_msat = 1, .script = Script::kManual});
  auto& second =
      add_provider({.name = "second", .per_job_msat = 5, .chunks = {"gamma ", "delta"}, .cost_msat = 7});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(first.wait_requests(1));
  const auto request = first.requests()[0];
  const auto consumer = keys_.public_key();
  first.send(protocol::JobProgress{request.job_id, 1, 1, "alpha ", 1, 0.1}, consumer);
  first.send(protocol::JobProgress{request.job_id, 1, 2, "beta ", 2, 0.2}, consumer);
  // Then it stalls; the second provider is asked to continue from what was delivered.
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  ASSERT_TRUE(second.wait_requests(1));
  EXPECT_EQ(second.requests()[0].resume_text, "alpha beta ");
  EXPECT_EQ(done.output, "alpha beta gamma delta");
  EXPECT_EQ(done.cost_msat, 7u);
  // The job's usage counts the two tokens delivered before and the second provider's two.
  EXPECT_EQ(done.usage.output_tokens, 4u);
}

TEST_F(ConsumerNodeTest, AForgedResultFromAThirdKeyIsIgnored) {
  auto& provider = add_provider({.script = Script::kManual});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(provider.wait_requests(1));
  const auto request = provider.requests()[0];
  // Someone else, knowing the job id, claims a result.
  auto& forger =
      add_provider({.name = "forger", .models = {"other-model"}, .script = Script::kManual}, false);
  protocol::JobResult forged = provider.result_for(request);
  forged.output = "forged output";
  forger.send(forged, keys_.public_key());
  // And the real provider, a result for an attempt that is not the current one.
  protocol::JobResult stale = provider.result_for(request);
  stale.attempt = 7;
  stale.output = "stale output";
  provider.send(stale, keys_.public_key());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(node_->get(job->id)->state, JobState::kAssigned);
  provider.send(provider.result_for(request), keys_.public_key());
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.output, "alpha beta gamma");
  EXPECT_TRUE(forger.receipts().empty());
}

TEST_F(ConsumerNodeTest, ANodeRestartedMidJobPicksUpTheResultPublishedWhileItWasDown) {
  auto& provider = add_provider({.script = Script::kManual});
  options_.stall_timeout = 10s;
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.client_request_id = "restart-1";
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  ASSERT_TRUE(provider.wait_requests(1));
  const auto request = provider.requests()[0];
  const auto consumer = keys_.public_key();
  provider.send(protocol::JobStatus{request.job_id, 1, protocol::JobStatusCode::kRunning, "", "", 0, 0},
                consumer);
  wait_state(job->id, JobState::kRunning);

  node_.reset();  // the node goes away mid-job
  provider.send(protocol::JobProgress{request.job_id, 1, 1, "alpha ", 1, 0.5}, consumer);  // lost: ephemeral
  provider.send(provider.result_for(request), consumer);

  open_node();
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.output, "alpha beta gamma");
  auto events = events_of(job->id);
  expect_contiguous(events);
  EXPECT_EQ(states_of(job->id), (std::vector<std::string>{"submitted", "assigned", "running", "completed"}));
  ASSERT_TRUE(provider.wait_receipts(1));
  // The same client request id still names the same job.
  auto again = node_->submit(s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, job->id);
}

TEST_F(ConsumerNodeTest, AReplayedResultIsIgnored) {
  options_.accept_timeout = 10s;
  auto& provider = add_provider({});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  wait_state(job->id, JobState::kCompleted);
  ASSERT_TRUE(provider.wait_receipts(1));
  // A job left unfinished (sent to a key that never answers) makes a restarted node ask the relay again for
  // what was published since shortly before it: the first job's result among them.
  JobSpec waiting = spec();
  waiting.provider = nostr::Keypair::generate().public_key().hex();
  auto unfinished = node_->submit(waiting);
  ASSERT_TRUE(unfinished);
  wait_state(unfinished->id, JobState::kAssigned);
  const size_t events_before = events_of(job->id).size();
  open_node();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(events_of(job->id).size(), events_before);
  EXPECT_EQ(provider.receipts().size(), 1u) << "no second receipt for the same result";
  EXPECT_EQ(node_->get(job->id)->state, JobState::kCompleted);
  node_.reset();
  // The handled event ids are on disk.
  auto store = JobStore::open(options_.database);
  ASSERT_TRUE(store);
  auto result = (*store)->result(job->id, 1);
  ASSERT_TRUE(result && *result);
  EXPECT_TRUE(*(*store)->was_seen((*result)->event_id));
}

TEST_F(ConsumerNodeTest, CancelTellsTheProvider) {
  auto& provider = add_provider({.script = Script::kManual});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(provider.wait_requests(1));
  wait_state(job->id, JobState::kAssigned);
  auto canceled = node_->cancel(job->id);
  ASSERT_TRUE(canceled) << canceled.error().to_string();
  EXPECT_EQ(canceled->state, JobState::kCanceled);
  EXPECT_EQ(canceled->error, "canceled by the user");
  ASSERT_TRUE(provider.wait_cancels(1));
  EXPECT_EQ(provider.cancels()[0].job_id, job->id);
  EXPECT_EQ(provider.cancels()[0].attempt, 1u);
  // The provider's answer to the cancel changes nothing; canceling again returns the job unchanged.
  protocol::JobResult aborted{
      .job_id = job->id, .attempt = 1, .ok = false, .error_code = "canceled", .error = "stopped"};
  provider.send(aborted, keys_.public_key());
  std::this_thread::sleep_for(100ms);
  auto again = node_->cancel(job->id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->state, JobState::kCanceled);
  EXPECT_EQ(states_of(job->id).back(), "canceled");
  EXPECT_EQ(node_->cancel("no-such-job").error().code, ErrorCode::kNotFound);
}

TEST_F(ConsumerNodeTest, ARequestRefusedAsInvalidInputFailsWithoutTouringOtherProviders) {
  // The cheaper provider is asked first and refuses the request as one its model cannot run; the other would
  // complete anything it is sent, and is sent nothing.
  auto& refusing = add_provider({.name = "refusing", .per_job_msat = 1, .script = Script::kManual});
  auto& willing = add_provider({.name = "willing", .per_job_msat = 50});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(refusing.wait_requests(1));
  protocol::JobResult refused{
      .job_id = job->id,
      .attempt = 1,
      .ok = false,
      .error_code = "invalid-input",
      .error = "prompt: 300 tokens does not fit model m's context of 256 tokens per job"};
  refusing.send(refused, keys_.public_key());
  wait_state(job->id, JobState::kFailed);
  auto got = node_->get(job->id);
  ASSERT_TRUE(got);
  EXPECT_NE(got->error.find("does not fit"), std::string::npos) << got->error;
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(willing.requests().empty());
}

TEST_F(ConsumerNodeTest, WatchersReattachingFromTheirLastSeqSeeNoGapsOrDuplicates) {
  std::vector<std::string> chunks;
  for (int i = 0; i < 30; ++i)
    chunks.push_back("w" + std::to_string(i) + " ");
  add_provider({.chunks = chunks, .chunk_delay = 5ms});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);

  std::mutex mu;
  std::vector<uint64_t> seen;
  uint64_t handle = 0;
  bool detached = false;
  // The first watcher leaves after a few events; the second takes over from the last one it saw.
  auto first = node_->watch(job->id, 0, [&](const JobEvent& e) {
    std::lock_guard lock(mu);
    if (detached) return;
    seen.push_back(e.seq);
    if (seen.size() == 8) detached = true;
  });
  ASSERT_TRUE(first);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return detached;
  }));
  node_->unwatch(*first);
  uint64_t last = 0;
  {
    std::lock_guard lock(mu);
    last = seen.back();
  }
  bool finished = false;
  auto second = node_->watch(job->id, last, [&](const JobEvent& e) {
    std::lock_guard lock(mu);
    seen.push_back(e.seq);
    if (e.type == "state" && field(e.data, "state") == "completed") finished = true;
  });
  ASSERT_TRUE(second);
  handle = *second;
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return finished;
  }));
  node_->unwatch(handle);
  auto events = events_of(job->id);
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), events.size());
  for (size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], i + 1);
  EXPECT_EQ(node_->watch("no-such-job", 0, [](const JobEvent&) {}).error().code, ErrorCode::kNotFound);
}

TEST_F(ConsumerNodeTest, AJobWaitsForAProviderAndSaysWhy) {
  open_node();
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : events_of(job->id)) {
      if (e.type == "note" &&
          field(e.data, "message").find("no alive provider announces model fake-echo") != std::string::npos) {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(node_->get(job->id)->state, JobState::kSubmitted);
  // A provider announcing the model picks it up.
  auto& provider = add_provider({});
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, provider.pubkey());
}

TEST_F(ConsumerNodeTest, AProviderOverTheBudgetIsPassedOverWithAReason) {
  auto& dear = add_provider({.name = "dear", .per_job_msat = 500});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.max_cost_msat = 100;
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : events_of(job->id)) {
      if (e.type == "note" && field(e.data, "provider") == dear.pubkey() &&
          field(e.data, "message") == "passed over: worst-case price 500 msat exceeds max_cost_msat 100") {
        return true;
      }
    }
    return false;
  }));
  EXPECT_TRUE(dear.requests().empty());
  EXPECT_EQ(node_->get(job->id)->state, JobState::kSubmitted);
}

TEST_F(ConsumerNodeTest, AResultChargingOverTheBudgetFailsTheJobWithoutAReceipt) {
  auto& greedy = add_provider({.per_job_msat = 10, .cost_msat = 1000});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.max_cost_msat = 50;
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  JobRecord failed = wait_state(job->id, JobState::kFailed);
  EXPECT_TRUE(failed.error.starts_with("provider charged over budget")) << failed.error;
  EXPECT_EQ(failed.cost_msat, 0u);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(greedy.receipts().empty());
}

TEST_F(ConsumerNodeTest, OpenQuotesTakeTheCheapestOffer) {
  auto& dear = add_provider({.name = "dear", .script = Script::kManual, .offer_msat = 90});
  auto& cheap = add_provider({.name = "cheap", .offer_msat = 40});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  JobSpec s = spec();
  s.open_quotes = true;
  s.max_cost_msat = 100;
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, cheap.pubkey());
  ASSERT_EQ(cheap.requests().size(), 1u);
  EXPECT_FALSE(cheap.requests()[0].quote_id.empty());
  EXPECT_TRUE(dear.requests().empty());
  EXPECT_EQ(states_of(job->id),
            (std::vector<std::string>{"submitted", "matched", "assigned", "running", "completed"}));
}

TEST_F(ConsumerNodeTest, RequestsARelayRefusesAsRateLimitedAreSentAgain) {
  // A relay taking 5 events a second from a connection (a burst of 10): 12 requests in a burst.
  node_.reset();
  pool_->stop();
  relay::RelayOptions strict;
  strict.limits.max_events_per_second = 5;
  fs::create_directories(dir_ / "strict");
  auto limited = std::make_unique<testing::TestRelay>(dir_ / "strict", strict);
  relay::RelayPoolOptions pool_options;
  pool_options.relays = {limited->url()};
  pool_ = std::make_unique<relay::RelayPool>(io_.io_context(), pool_options, keys_);
  ASSERT_TRUE(pool_->start());
  providers_.push_back(std::make_unique<FakeProvider>(
      io_.io_context(), limited->url(), FakeProvider::Settings{.slots = 0, .script = Script::kSilent}));
  FakeProvider& provider = *providers_.back();
  provider.announce(clock_.now_unix());
  options_.accept_timeout = 10s;
  open_node();
  ASSERT_TRUE(providers_alive(1));
  constexpr size_t kJobs = 12;
  for (size_t i = 0; i < kJobs; ++i)
    ASSERT_TRUE(node_->submit(spec("job " + std::to_string(i))));
  EXPECT_TRUE(provider.wait_requests(kJobs)) << provider.requests().size() << " requests arrived";
  node_.reset();
  providers_.clear();
  pool_->stop();
  limited.reset();
}

TEST_F(ConsumerNodeTest, AJobPastItsDeadlineExpires) {
  testing::SettableClock clock(clock_.now_unix());
  open_node(clock);
  JobSpec s = spec();
  s.deadline = clock.now_unix() + 30;
  auto job = node_->submit(s);
  ASSERT_TRUE(job) << job.error().to_string();
  clock.set(clock.now_unix() + 31);
  JobRecord expired = wait_state(job->id, JobState::kExpired);
  EXPECT_EQ(expired.error, "deadline passed before a provider took the job");
}

TEST_F(ConsumerNodeTest, AJobNoProviderAcceptedByStartByExpiresWithTheReason) {
  testing::SettableClock clock(clock_.now_unix());
  open_node(clock);
  JobSpec s = spec();
  s.start_by = clock.now_unix() + 30;
  s.deadline = clock.now_unix() + 600;
  auto job = node_->submit(s);
  ASSERT_TRUE(job) << job.error().to_string();
  clock.set(clock.now_unix() + 29);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(node_->get(job->id)->state, JobState::kSubmitted);
  clock.set(clock.now_unix() + 2);
  JobRecord expired = wait_state(job->id, JobState::kExpired);
  EXPECT_EQ(expired.error, "start_by passed before a provider accepted the job (no provider took it)");
}

TEST_F(ConsumerNodeTest, AJobRunningBeforeStartByIsNotExpiredByIt) {
  testing::SettableClock clock(clock_.now_unix());
  auto& provider = add_provider({.name = "p", .per_job_msat = 1, .script = Script::kManual});
  open_node(clock);
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.start_by = clock.now_unix() + 5;
  auto job = node_->submit(s);
  ASSERT_TRUE(job) << job.error().to_string();
  ASSERT_TRUE(provider.wait_requests(1));
  const auto request = provider.requests()[0];
  EXPECT_EQ(request.start_by, s.start_by);  // the provider is told, and may refuse with "deadline"
  provider.send(protocol::JobStatus{request.job_id, 1, protocol::JobStatusCode::kRunning, "", "", 0, 0},
                keys_.public_key());
  wait_state(job->id, JobState::kRunning);
  clock.set(clock.now_unix() + 6);
  provider.announce(clock.now_unix());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(node_->get(job->id)->state, JobState::kRunning);
  provider.send(provider.result_for(request), keys_.public_key());
  wait_state(job->id, JobState::kCompleted);
}

TEST_F(ConsumerNodeTest, StartByIsCheckedAtSubmission) {
  open_node();
  JobSpec s = spec();
  s.start_by = clock_.now_unix() - 1;
  auto past = node_->submit(s);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().message, "start_by: already passed");
  s.start_by = clock_.now_unix() + 100;
  s.deadline = clock_.now_unix() + 50;
  auto late = node_->submit(s);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().message, "start_by: later than the deadline (finish_by)");
}

TEST_F(ConsumerNodeTest, AJobIsReassignedWhenItsProviderStopsAnnouncing) {
  testing::SettableClock clock(clock_.now_unix());
  options_.heartbeat = 10s;
  auto& vanishing = add_provider({.name = "vanishing", .per_job_msat = 1, .script = Script::kManual});
  open_node(clock);
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(vanishing.wait_requests(1));
  const auto request = vanishing.requests()[0];
  vanishing.send(protocol::JobStatus{request.job_id, 1, protocol::JobStatusCode::kRunning, "", "", 0, 0},
                 keys_.public_key());
  wait_state(job->id, JobState::kRunning);
  auto& fresh = add_provider({.name = "fresh", .per_job_msat = 5}, false);
  clock.set(clock.now_unix() + 45);  // more than 3 heartbeats since the first provider's announcement
  fresh.announce(clock.now_unix());
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, fresh.pubkey());
  ASSERT_TRUE(vanishing.wait_cancels(1));
}

// Failover (docs/market-failover.md): a provider that misses a heartbeat while running a job is dropped
// within two heartbeat intervals of its last one, not after the three that make it unfit for new jobs.
TEST_F(ConsumerNodeTest, AProviderThatMissesAHeartbeatMidJobLosesItWithinTwoIntervals) {
  testing::SettableClock clock(clock_.now_unix());
  options_.heartbeat = 10s;
  options_.stall_timeout = 60s;  // capped at two heartbeats of the steady clock: not what fires here
  auto& vanishing = add_provider({.name = "vanishing", .per_job_msat = 1, .script = Script::kManual});
  auto& other = add_provider({.name = "other", .per_job_msat = 5}, false);
  open_node(clock);
  ASSERT_TRUE(providers_alive(1));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(vanishing.wait_requests(1));
  const auto request = vanishing.requests()[0];
  vanishing.send(protocol::JobStatus{request.job_id, 1, protocol::JobStatusCode::kRunning, "", "", 0, 0},
                 keys_.public_key());
  wait_state(job->id, JobState::kRunning);
  const int64_t last_beat = clock.now_unix();
  other.announce(last_beat);
  // One and a half intervals of silence is within what a heartbeat may take.
  clock.set(last_beat + 15);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(node_->get(job->id)->state, JobState::kRunning);
  other.announce(last_beat + 15);
  // Past it: the provider missed a beat, and the job moves before two intervals have passed.
  clock.set(last_beat + 16);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, other.pubkey());
  ASSERT_TRUE(vanishing.wait_cancels(1));
  bool noted = false;
  for (const auto& e : events_of(job->id)) {
    noted |=
        e.type == "note" &&
        field(e.data, "message").find("stopped heartbeating: no heartbeat for 16 s") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

// A streaming provider that goes quiet is dropped after ten times its longest gap so far (at least 1.5 s),
// long before the stall timeout.
TEST_F(ConsumerNodeTest, AStreamThatStopsIsReassignedSoonerThanTheStallTimeout) {
  options_.stall_timeout = 20s;
  options_.heartbeat = 30s;
  auto& dying = add_provider({.name = "dying", .per_job_msat = 1, .script = Script::kManual});
  auto& other = add_provider({.name = "other", .per_job_msat = 5, .chunks = {"gamma "}});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(dying.wait_requests(1));
  const auto request = dying.requests()[0];
  const auto consumer = keys_.public_key();
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    dying.send(protocol::JobProgress{request.job_id, 1, seq, "w" + std::to_string(seq) + " ",
                                     static_cast<uint32_t>(seq), 0.1},
               consumer);
    std::this_thread::sleep_for(50ms);
  }
  const auto silent_from = std::chrono::steady_clock::now();
  JobRecord done = wait_state(job->id, JobState::kCompleted, 10000ms);
  const auto took = std::chrono::steady_clock::now() - silent_from;
  EXPECT_EQ(done.provider, other.pubkey());
  EXPECT_LT(took, 5s);
  EXPECT_EQ(done.output, "w1 w2 w3 w4 w5 gamma ");
  // Each token once: the five delivered by the first attempt and the one of the second.
  EXPECT_EQ(done.usage.output_tokens, 6u);
  bool noted = false;
  for (const auto& e : events_of(job->id)) {
    noted |= e.type == "note" && field(e.data, "message") == "no progress within 1500 ms";
  }
  EXPECT_TRUE(noted);
}

}  // namespace
}  // namespace infernet::consumer
