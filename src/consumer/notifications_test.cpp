// Notifications of the consumer node (ConsumerNode::notifications and watch_all) against an in-process relay
// and providers played by the test: the types a job's life produces, budget thresholds from estimates and
// from the result, one global order that continues after a restart, and watchers that re-attach.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <vector>

#include <boost/json.hpp>

#include "consumer/consumer.hpp"
#include "consumer/consumer_test_network.hpp"

namespace infernet::consumer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::eventually;
using testing::FakeProvider;
using testing::Script;

boost::json::object data_of(const Notification& n) {
  return boost::json::parse(n.data).as_object();
}

class NotificationsTest : public testing::ConsumerNetworkTest {
 protected:
  NotificationsTest() : ConsumerNetworkTest("infernet-notifications-") {}

  bool provider_alive() {
    return eventually([&] {
      for (const auto& p : node_->providers()) {
        if (p.alive) return true;
      }
      return false;
    });
  }

  static JobSpec spec(uint32_t max_tokens = 16, uint64_t max_cost_msat = 0) {
    JobSpec s;
    s.model = "fake-echo";
    s.prompt = "say something";
    s.max_tokens = max_tokens;
    s.max_cost_msat = max_cost_msat;
    return s;
  }

  std::vector<Notification> stored(uint64_t after = 0) {
    auto n = node_->notifications(after, 1000);
    EXPECT_TRUE(n) << n.error().to_string();
    return n ? *n : std::vector<Notification>{};
  }

  // The types of a job's notifications, in order.
  std::vector<std::string> types_of(const std::string& job_id) {
    std::vector<std::string> out;
    for (const auto& n : stored()) {
      if (n.job_id == job_id) out.push_back(n.type);
    }
    return out;
  }

  // Waits until the job has a notification of `type`.
  bool wait_for(const std::string& job_id, const std::string& type) {
    return eventually([&] {
      for (const auto& t : types_of(job_id)) {
        if (t == type) return true;
      }
      return false;
    });
  }
};

TEST_F(NotificationsTest, ACompletedJobIsSubmittedStartedAndCompleted) {
  add_provider({});
  open_node();
  ASSERT_TRUE(provider_alive());
  auto job = node_->submit(spec());
  ASSERT_TRUE(job) << job.error().to_string();
  ASSERT_TRUE(wait_for(job->id, "job.completed"));
  auto all = stored();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(types_of(job->id), (std::vector<std::string>{"job.submitted", "job.started", "job.completed"}));
  for (size_t i = 1; i < all.size(); ++i)
    EXPECT_GT(all[i].id, all[i - 1].id);
  auto completed = data_of(all[2]);
  EXPECT_EQ(completed.at("state").as_string(), "completed");
  EXPECT_EQ(completed.at("model").as_string(), "fake-echo");
  EXPECT_EQ(completed.at("cost_msat").as_int64(), 10);
  EXPECT_EQ(data_of(all[1]).at("state").as_string(), "assigned");
  // A page after the first one leaves it out.
  EXPECT_EQ(stored(all[0].id).size(), 2u);
}

TEST_F(NotificationsTest, BudgetThresholdsAreEstimatedWhileRunningAndExactAtTheResult) {
  // 10 msat per job and per output token: after 2 tokens the estimate is 30 of 60 (50%); the result
  // charges 50 (83%): 80% is crossed there, 100% never.
  add_provider({.per_job_msat = 10, .per_1k_output_msat = 10'000, .cost_msat = 50});
  open_node();
  ASSERT_TRUE(provider_alive());
  auto job = node_->submit(spec(3, 60));
  ASSERT_TRUE(job) << job.error().to_string();
  ASSERT_TRUE(wait_for(job->id, "job.completed"));
  EXPECT_EQ(types_of(job->id), (std::vector<std::string>{"job.submitted", "job.started", "budget.threshold",
                                                         "budget.threshold", "job.completed"}));
  std::vector<boost::json::object> thresholds;
  for (const auto& n : stored()) {
    if (n.type == "budget.threshold") thresholds.push_back(data_of(n));
  }
  ASSERT_EQ(thresholds.size(), 2u);
  EXPECT_EQ(thresholds[0].at("threshold_percent").as_int64(), 50);
  EXPECT_EQ(thresholds[0].at("spent_msat").as_int64(), 30);
  EXPECT_TRUE(thresholds[0].at("estimated").as_bool());
  EXPECT_EQ(thresholds[1].at("threshold_percent").as_int64(), 80);
  EXPECT_EQ(thresholds[1].at("spent_msat").as_int64(), 50);
  EXPECT_FALSE(thresholds[1].at("estimated").as_bool());
}

// Account budgets (docs/market-failover.md): a job's worst case must fit in what is left; charges count;
// each level of the daily budget is notified once.
TEST_F(NotificationsTest, AccountBudgetsRefuseWhatDoesNotFitAndNotifyEachLevelOnce) {
  options_.budget_daily_msat = 100;
  add_provider({.per_job_msat = 10, .cost_msat = 55});
  open_node();
  ASSERT_TRUE(provider_alive());
  auto first = node_->submit(spec(16, 60));
  ASSERT_TRUE(first) << first.error().to_string();
  ASSERT_TRUE(wait_for(first->id, "job.completed"));
  std::vector<boost::json::object> levels;
  for (const auto& n : stored()) {
    if (n.type == "budget.account") levels.push_back(data_of(n));
  }
  ASSERT_EQ(levels.size(), 1u);
  EXPECT_EQ(levels[0].at("period").as_string(), "daily");
  EXPECT_EQ(levels[0].at("threshold_percent").as_int64(), 50);
  EXPECT_EQ(levels[0].at("spent_msat").as_int64(), 55);
  EXPECT_EQ(levels[0].at("limit_msat").as_int64(), 100);

  auto big = node_->submit(spec(16, 50));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kLimitExceeded);
  EXPECT_EQ(big.error().message,
            "budget: max_cost_msat 50 is more than the 45 msat left of the account budget");
  // A job without a cap gets what is left as its cap; the provider's 55 is then over it, and not charged.
  auto uncapped = node_->submit(spec(16, 0));
  ASSERT_TRUE(uncapped) << uncapped.error().to_string();
  EXPECT_EQ(uncapped->spec.max_cost_msat, 45u);
  ASSERT_TRUE(wait_for(uncapped->id, "job.failed"));
  auto budget = node_->budget();
  ASSERT_EQ(budget.size(), 2u);
  EXPECT_EQ(budget[0].period, "daily");
  EXPECT_EQ(budget[0].spent_msat, 55u);
  EXPECT_EQ(budget[0].reserved_msat, 0u);
  EXPECT_EQ(budget[0].remaining_msat, 45u);
  EXPECT_EQ(budget[1].limit_msat, 0u);
  EXPECT_EQ(budget[1].spent_msat, 55u);
}

TEST_F(NotificationsTest, AnOverBudgetChargeReportsEveryThresholdTheErrorAndTheFailure) {
  add_provider({.per_job_msat = 10, .cost_msat = 1000});
  open_node();
  ASSERT_TRUE(provider_alive());
  auto job = node_->submit(spec(16, 50));
  ASSERT_TRUE(job);
  ASSERT_TRUE(wait_for(job->id, "job.failed"));
  EXPECT_EQ(types_of(job->id),
            (std::vector<std::string>{"job.submitted", "job.started", "job.error", "budget.threshold",
                                      "budget.threshold", "budget.threshold", "job.failed"}));
  for (const auto& n : stored()) {
    if (n.type == "job.error") {
      EXPECT_EQ(data_of(n).at("code").as_string(), "over-budget");
    }
    if (n.type == "job.failed") {
      EXPECT_TRUE(data_of(n).at("reason").as_string().starts_with("provider charged over budget"));
    }
  }
}

TEST_F(NotificationsTest, ABudgetLevelReportedBeforeARestartIsNotReportedAgain) {
  auto& provider = add_provider(
      {.per_job_msat = 10, .per_1k_output_msat = 10'000, .script = Script::kManual, .cost_msat = 50});
  options_.stall_timeout = 10s;
  open_node();
  ASSERT_TRUE(provider_alive());
  auto job = node_->submit(spec(5, 60));
  ASSERT_TRUE(job) << job.error().to_string();
  ASSERT_TRUE(provider.wait_requests(1));
  const auto request = provider.requests()[0];
  const auto consumer = keys_.public_key();
  // 2 tokens: 10 + 2 * 10 = 30 msat, half the budget.
  provider.send(protocol::JobProgress{request.job_id, 1, 1, "alpha ", 2, 0.4}, consumer);
  ASSERT_TRUE(wait_for(job->id, "budget.threshold"));

  node_.reset();
  provider.send(provider.result_for(request), consumer);  // charges 50 msat: 83%
  open_node();
  ASSERT_TRUE(wait_for(job->id, "job.completed"));
  std::vector<int64_t> levels;
  for (const auto& n : stored()) {
    if (n.type == "budget.threshold") levels.push_back(data_of(n).at("threshold_percent").as_int64());
  }
  EXPECT_EQ(levels, (std::vector<int64_t>{50, 80}));
}

TEST_F(NotificationsTest, ACanceledJobIsNotifiedOnce) {
  add_provider({.script = Script::kSilent});
  options_.accept_timeout = 10s;
  open_node();
  ASSERT_TRUE(provider_alive());
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(wait_for(job->id, "job.started"));
  ASSERT_TRUE(node_->cancel(job->id));
  ASSERT_TRUE(node_->cancel(job->id));
  ASSERT_TRUE(wait_for(job->id, "job.canceled"));
  EXPECT_EQ(types_of(job->id), (std::vector<std::string>{"job.submitted", "job.started", "job.canceled"}));
}

TEST_F(NotificationsTest, WatchersReattachAcrossARestartWithoutGapsOrDuplicates) {
  add_provider({});
  open_node();
  ASSERT_TRUE(provider_alive());
  std::mutex mu;
  std::vector<uint64_t> seen;
  auto record = [&](const Notification& n) {
    std::lock_guard lock(mu);
    seen.push_back(n.id);
  };
  auto first = node_->watch_all(0, record);
  ASSERT_TRUE(first) << first.error().to_string();
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(node_->submit(spec()));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return seen.size() == 9;
  }));
  node_->unwatch_all(*first);
  uint64_t last = 0;
  {
    std::lock_guard lock(mu);
    last = seen[4];  // re-attach from the middle: the rest comes again from the database
    seen.resize(5);
  }

  open_node();  // a restart: ids continue after the stored ones
  ASSERT_TRUE(provider_alive());
  auto second = node_->watch_all(last, record);
  ASSERT_TRUE(second) << second.error().to_string();
  auto job = node_->submit(spec());
  ASSERT_TRUE(job);
  ASSERT_TRUE(wait_for(job->id, "job.completed"));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return seen.size() == 12;
  }));
  node_->unwatch_all(*second);
  auto all = stored();
  ASSERT_EQ(all.size(), 12u);
  std::lock_guard lock(mu);
  for (size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(seen[i], all[i].id) << i;
  for (size_t i = 1; i < all.size(); ++i)
    EXPECT_GT(all[i].id, all[i - 1].id);
  EXPECT_EQ(all.back().job_id, job->id);
}

}  // namespace
}  // namespace infernet::consumer
