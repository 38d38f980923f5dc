// The provider's part of the market against a real relay (provider_test_network.hpp): reservations, and
// token counts for estimates.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/fake/fake_engine.hpp"
#include "provider/internal/job_records.hpp"
#include "provider/internal/reservations.hpp"
#include "provider/provider.hpp"
#include "provider/provider_test_network.hpp"

namespace infernet::provider {
namespace {

using namespace std::chrono_literals;
using testing::Inbox;
using testing::kWait;
using testing::ProviderTest;

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
    return ask(r, &protocol::ReservationAnswer::reservation_id, r.reservation_id);
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

// ---- Token counts ----

class TokenCountTest : public ProviderTest {
 protected:
  std::optional<protocol::TokenCountAnswer> count(const protocol::TokenCountRequest& r) {
    return ask(r, &protocol::TokenCountAnswer::request_id, r.request_id);
  }
  // Count requests are ephemeral: one sent before the provider's subscription is live is lost, not stored.
  // Probes until the provider answers one.
  void wait_listening() {
    for (int i = 0; i < 10; ++i) {
      const std::string id = std::to_string(i) + "-probe";
      send(protocol::TokenCountRequest{id, "fake-echo", "probe", {}});
      if (inbox_->wait([&] { return answered(id); }, 1s)) return;
    }
    FAIL() << "the provider never answered a token count";
  }
  bool answered(const std::string& id) {
    for (const auto& a : inbox_->all<protocol::TokenCountAnswer>()) {
      if (a.request_id == id) return true;
    }
    return false;
  }
  // Answers whose id ends with `suffix`.
  std::vector<protocol::TokenCountAnswer> answers(const std::string& suffix) {
    std::vector<protocol::TokenCountAnswer> out;
    for (const auto& a : inbox_->all<protocol::TokenCountAnswer>()) {
      if (a.request_id.ends_with(suffix)) out.push_back(a);
    }
    return out;
  }
};

TEST_F(TokenCountTest, AnswersWithTheEnginesCountOrSaysWhyNot) {
  listen();
  start_provider();
  wait_listening();
  auto words = count({"c1", "fake-echo", "count these four words", {}});
  ASSERT_TRUE(words);
  EXPECT_TRUE(words->ok) << words->error;
  EXPECT_EQ(words->input_tokens, 4u);
  auto chat = count({"c2", "fake-echo", "", {{"user", "two words"}}});
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->input_tokens, 2u);
  auto unknown = count({"c3", "no-such-model", "hi", {}});
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(unknown->ok);
  EXPECT_EQ(unknown->error_code, "unknown-model");
  EXPECT_EQ(unknown->error, "model: this provider does not serve 'no-such-model'");
  EXPECT_EQ(node_->stats().token_counts, 2u + answers("-probe").size());
  EXPECT_EQ(node_->stats().accepted, 0u) << "a count is not a job";
}

TEST_F(TokenCountTest, AFloodOfCountsIsAnsweredBusyBeyondItsRate) {
  listen();
  start_provider();
  wait_listening();
  // Sealed first, then published at once (within the relay's burst), so that they arrive within a second
  // or two: at most 50 a second are counted.
  constexpr size_t kSent = 200;
  std::vector<nostr::Event> events;
  for (size_t i = 0; i < kSent; ++i)
    events.push_back(seal_to_provider(
        protocol::TokenCountRequest{std::to_string(i) + "-flood", "fake-echo", "a b", {}}, consumer_keys_));
  std::vector<std::future<std::vector<relay::PublishOutcome>>> published;
  for (const auto& e : events)
    published.push_back(consumer_pool_->publish(e));
  for (auto& p : published)
    ASSERT_TRUE(p.get().at(0).accepted);
  ASSERT_TRUE(inbox_->wait([&] { return answers("-flood").size() >= kSent; }, 10s));
  size_t busy = 0;
  for (const auto& a : answers("-flood"))
    busy += a.error_code == "busy" ? 1 : 0;
  EXPECT_GT(busy, 0u);
  EXPECT_LE(node_->stats().token_counts, kSent - busy + answers("-probe").size());
}

TEST_F(TokenCountTest, ACountFromAnotherEngineIsRefusedAsUnsupported) {
  // An engine that can only count by running (the proxy's case), played by a fake engine wrapper.
  class RunOnly final : public engine::Engine {
   public:
    explicit RunOnly(std::unique_ptr<engine::Engine> inner) : inner_(std::move(inner)) {}
    std::string name() const override { return "run-only"; }
    std::vector<engine::ModelDescription> models() const override { return inner_->models(); }
    Status submit(engine::GenerateRequest r, engine::GenerateCallbacks c) override {
      return inner_->submit(std::move(r), std::move(c));
    }
    void cancel(const std::string& id) override { inner_->cancel(id); }
    void stop() override { inner_->stop(); }

   private:
    std::unique_ptr<engine::Engine> inner_;
  };
  engine_ = std::make_unique<RunOnly>(engine::make_fake_engine({.models = {"fake-echo"}}));
  listen();
  start_provider();
  auto a = count({"u1", "fake-echo", "hi", {}});
  for (int i = 0; i < 10 && !a; ++i)  // sent before the subscription was live: lost, so ask again
    a = count({std::to_string(i) + "-u", "fake-echo", "hi", {}});
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->ok);
  EXPECT_EQ(a->error_code, "unsupported");
  EXPECT_EQ(a->error, "the run-only engine counts a prompt's tokens only by running it");
}

}  // namespace
}  // namespace infernet::provider
