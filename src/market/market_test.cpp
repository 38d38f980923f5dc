// The market's rules: hard requirements, worst-case cost, strategies, and the budget cap under any sequence
// of price announcements.
#include "market/market.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <random>

namespace infernet::market {
namespace {

protocol::Announcement provider(const std::string& name, uint64_t per_1k_output, uint32_t slots = 2,
                                uint32_t queue = 4) {
  protocol::Announcement a;
  a.name = name;
  a.hardware = {"cpu", 8, 16384, {}};
  a.engines = {"fake"};
  a.models = {{"m", "ab12", "fake", 0, "", 4096, "fake", {"text-generation"}, ""}};
  a.prices.per_1k_output_msat = per_1k_output;
  a.capacity = {slots, queue, 0, 0};
  return a;
}

JobNeeds needs(uint64_t cap = 0) {
  JobNeeds n;
  n.model = "m";
  n.input_tokens = 100;
  n.max_tokens = 1000;
  n.max_cost_msat = cap;
  return n;
}

const Assessment& find(const Choice& c, const std::string& name) {
  for (const auto& a : c.assessed) {
    if (a.name == name) return a;
  }
  static Assessment none;
  ADD_FAILURE() << name << " not assessed";
  return none;
}

TEST(Strategy, ParsesItsNamesAndNamesTheFieldOnError) {
  EXPECT_EQ(*parse_strategy("cheapest"), Strategy::kCheapest);
  EXPECT_EQ(*parse_strategy("fastest"), Strategy::kFastest);
  EXPECT_EQ(*parse_strategy("balanced"), Strategy::kBalanced);
  auto bad = parse_strategy("quick", "consumer.strategy");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "consumer.strategy: must be balanced, cheapest or fastest");
  EXPECT_STREQ(to_string(Strategy::kFastest), "fastest");
}

TEST(InputTokenBound, IsTheBytesPlusTemplateAndSpecialTokens) {
  EXPECT_EQ(input_token_bound("hello world", {}), 11u + kSpecialTokens);
  EXPECT_EQ(input_token_bound("", {{"user", "hi"}, {"assistant", "yo"}}),
            kSpecialTokens + 3 * kChatTemplateTokens + 4 + 2 + 9 + 2);
}

TEST(Cost, EveryTermRoundsUpAndThePriorityMultiplies) {
  protocol::Prices p;
  p.per_job_msat = 7;
  p.per_1k_input_msat = 3;    // 3 * 1001 / 1000 = 3.003 -> 4
  p.per_1k_output_msat = 10;  // 10 * 50 / 1000 = 0.5 -> 1
  p.per_second_msat = 1000;   // 1.0004 s -> 1001 ms -> 1001
  p.priority_percent = {{"high", 150}};
  Cost c = cost_at(p, "high", 1001, 50, 1.0004);
  EXPECT_EQ(c.per_job_msat, 7u);
  EXPECT_EQ(c.input_msat, 4u);
  EXPECT_EQ(c.output_msat, 1u);
  EXPECT_EQ(c.time_msat, 1001u);
  EXPECT_EQ(c.priority_percent, 150u);
  EXPECT_EQ(c.total_msat, (7u + 4 + 1 + 1001) * 3 / 2 + 1);  // 1519.5 -> 1520
  EXPECT_EQ(cost_at(p, "low", 1001, 50, 1.0004).priority_percent, 100u);
}

TEST(Cost, SaturatesInsteadOfOverflowing) {
  protocol::Prices p;
  p.per_job_msat = std::numeric_limits<uint64_t>::max() - 1;
  p.per_1k_output_msat = std::numeric_limits<uint64_t>::max();
  p.priority_percent = {{"normal", 400}};
  EXPECT_EQ(cost_at(p, "normal", 0, 65536, 0).total_msat, std::numeric_limits<uint64_t>::max());
}

TEST(WorstCase, PerSecondPricesAreUnboundedWithoutADeadline) {
  protocol::Prices p;
  p.per_second_msat = 10;
  JobNeeds n = needs();
  EXPECT_FALSE(worst_case_cost(p, n).bounded);
  n.max_seconds = 30;
  Cost c = worst_case_cost(p, n);
  EXPECT_TRUE(c.bounded);
  EXPECT_EQ(c.time_msat, 300u);
  // The expected cost uses the measured speed: 1000 tokens at 100 tokens/s is 10 s.
  EXPECT_EQ(expected_cost(p, n, 100).time_msat, 100u);
  EXPECT_EQ(expected_cost(p, n, 0).seconds, 1000 / kAssumedTokensPerSecond);
}

TEST(Requirements, EachFailureHasItsReason) {
  auto a = provider("p", 100);
  a.hardware.gpus = {{"Tesla T4", 15360}};
  JobNeeds n = needs();
  Cost cost;
  EXPECT_EQ(requirement_problem(a, n, &cost), "");
  EXPECT_EQ(cost.total_msat, 100u);

  n.model = "other";
  EXPECT_EQ(requirement_problem(a, n, nullptr), "does not serve model other");
  n = needs();
  n.model_sha256 = "CD34";
  EXPECT_EQ(requirement_problem(a, n, nullptr), "model: serves m with sha256 ab12..., not CD34...");
  n.model_sha256 = "AB12";  // hex compares without case
  EXPECT_EQ(requirement_problem(a, n, nullptr), "");
  n = needs();
  n.engine = "llama";
  EXPECT_EQ(requirement_problem(a, n, nullptr), "engine: serves m with fake, not llama");
  n = needs();
  n.gpu_type = "A100";
  EXPECT_EQ(requirement_problem(a, n, nullptr),
            "hardware: no GPU matching gpu_type A100 (has: Tesla T4 15360 MB)");
  n = needs();
  n.min_gpu_memory_mb = 16000;
  EXPECT_EQ(requirement_problem(a, n, nullptr),
            "hardware: no GPU with at least 16000 MB (has: Tesla T4 15360 MB)");
  n = needs(99);
  EXPECT_EQ(requirement_problem(a, n, nullptr), "worst-case price 100 msat exceeds max_cost_msat 99");
  a.prices.per_second_msat = 1;
  n = needs(1000);
  EXPECT_NE(requirement_problem(a, n, nullptr).find("no deadline to bound its time"), std::string::npos);
}

TEST(Choose, FreeSlotsFirstThenTheStrategy) {
  auto cheap_full = provider("cheap-full", 10, 1, 4);
  auto dear = provider("dear", 300);
  auto mid = provider("mid", 100);
  std::vector<Candidate> c{{"01", &cheap_full, 1, {}}, {"02", &dear, 0, {}}, {"03", &mid, 0, {}}};
  JobNeeds n = needs();
  Choice got = choose(n, c);
  ASSERT_TRUE(got.chosen);
  EXPECT_EQ(got.assessed[*got.chosen].name, "mid");
  EXPECT_EQ(find(got, "cheap-full").verdict, Verdict::kDelayed);
  EXPECT_EQ(find(got, "cheap-full").reason, "no free slot: 1 slots busy, 0 jobs queued ahead");
  EXPECT_EQ(find(got, "dear").verdict, Verdict::kEligible);

  // Full: slots and queue.
  c[0].load = 5;
  got = choose(n, c);
  EXPECT_EQ(find(got, "cheap-full").verdict, Verdict::kRejected);
  EXPECT_EQ(find(got, "cheap-full").reason, "busy: about 5 jobs for 1 slots and 4 queue places");
}

TEST(Choose, AProviderThatAskedToRetryLaterIsDelayedAndNotChosen) {
  auto busy = provider("busy", 10);
  auto other = provider("other", 500);
  std::vector<Candidate> c{{"01", &busy, 0, {}, 5}, {"02", &other, 0, {}}};
  auto got = choose(needs(), c);
  ASSERT_TRUE(got.chosen);
  EXPECT_EQ(got.assessed[*got.chosen].name, "other");
  EXPECT_EQ(find(got, "busy").verdict, Verdict::kDelayed);
  EXPECT_EQ(find(got, "busy").reason, "busy: asked to retry after 5 s");
  // Alone, it is still not chosen: the job waits rather than knock again.
  got = choose(needs(), {c[0]});
  EXPECT_FALSE(got.chosen);
}

TEST(Choose, FastestPrefersMeasuredSpeedCheapestPrefersPrice) {
  auto slow_cheap = provider("slow-cheap", 50);
  auto fast_dear = provider("fast-dear", 200);
  Observed slow{{}, 5, 900};
  Observed fast{{}, 80, 40};
  std::vector<Candidate> c{{"01", &slow_cheap, 0, slow}, {"02", &fast_dear, 0, fast}};
  JobNeeds n = needs();
  n.strategy = Strategy::kFastest;
  auto got = choose(n, c);
  EXPECT_EQ(got.assessed[*got.chosen].name, "fast-dear");
  n.strategy = Strategy::kCheapest;
  got = choose(n, c);
  EXPECT_EQ(got.assessed[*got.chosen].name, "slow-cheap");
}

TEST(Choose, BalancedWeighsReputation) {
  auto a = provider("unreliable", 100);
  auto b = provider("reliable", 110);
  Observed bad{{1, 6, 2, 1}, 0, 0};
  Observed good{{20, 0, 0, 0}, 0, 0};
  std::vector<Candidate> c{{"01", &a, 0, bad}, {"02", &b, 0, good}};
  auto got = choose(needs(), c);
  EXPECT_EQ(got.assessed[*got.chosen].name, "reliable");
  EXPECT_GT(find(got, "reliable").score, find(got, "unreliable").score);
  // Same record: the cheaper wins.
  c[1].observed = bad;
  got = choose(needs(), c);
  EXPECT_EQ(got.assessed[*got.chosen].name, "unreliable");
}

TEST(Reputation, StrangersAreNeutralWrongResultsCountThreeTimes) {
  EXPECT_DOUBLE_EQ(Reputation{}.reliability(), 0.5);
  EXPECT_GT((Reputation{5, 0, 0, 0}.reliability()), 0.8);
  EXPECT_LT((Reputation{1, 0, 0, 1}.reliability()), (Reputation{1, 1, 0, 0}.reliability()));
}

TEST(Choose, TiesGoToTheSmallerKeySoTheChoiceIsDeterministic) {
  auto a = provider("a", 100);
  auto b = provider("b", 100);
  std::vector<Candidate> c{{"ff", &a, 0, {}}, {"00", &b, 0, {}}};
  auto got = choose(needs(), c);
  EXPECT_EQ(got.assessed[*got.chosen].provider, "00");
}

// Providers re-announce prices at any moment; jobs are matched between announcements. Whatever the order,
// no job may go to a provider whose worst case (at the prices the consumer knew when choosing) is over the
// job's cap, and the worst case must bound what the provider could charge for any output length and time.
TEST(BudgetCap, NoInterleavingOfAnnouncementsSendsAJobOverItsCap) {
  std::mt19937_64 rng(20240607);
  int chosen_jobs = 0;
  for (int round = 0; round < 200; ++round) {
    std::vector<protocol::Announcement> known(8);
    std::vector<std::string> keys;
    for (size_t i = 0; i < known.size(); ++i) {
      known[i] = provider("p" + std::to_string(i), 0);
      keys.push_back(std::string(1, static_cast<char>('a' + i)));
    }
    for (int step = 0; step < 100; ++step) {
      if (rng() % 2 == 0) {
        // A price announcement from a random provider.
        auto& p = known[rng() % known.size()].prices;
        p.per_job_msat = rng() % 500;
        p.per_1k_input_msat = rng() % 2000;
        p.per_1k_output_msat = rng() % 5000;
        p.per_second_msat = rng() % 4 == 0 ? rng() % 100 : 0;
        p.priority_percent = {{"high", static_cast<uint32_t>(100 + rng() % 300)},
                              {"low", static_cast<uint32_t>(50 + rng() % 50)}};
        continue;
      }
      JobNeeds n;
      n.model = "m";
      n.input_tokens = static_cast<uint32_t>(rng() % 4000);
      n.max_tokens = static_cast<uint32_t>(1 + rng() % 2000);
      n.max_cost_msat = 1 + rng() % 20000;
      n.priority = rng() % 3 == 0 ? "high" : (rng() % 2 == 0 ? "low" : "normal");
      n.max_seconds = rng() % 2 == 0 ? 0 : static_cast<double>(rng() % 120);
      n.strategy = static_cast<Strategy>(rng() % 3);
      std::vector<Candidate> c;
      for (size_t i = 0; i < known.size(); ++i)
        c.push_back({keys[i], &known[i], static_cast<uint32_t>(rng() % 8), {}});
      Choice got = choose(n, c);
      if (!got.chosen) continue;
      ++chosen_jobs;
      const auto& chosen = got.assessed[*got.chosen];
      const auto& prices = known[chosen.provider[0] - 'a'].prices;
      ASSERT_TRUE(chosen.worst_case.bounded);
      ASSERT_LE(chosen.worst_case.total_msat, n.max_cost_msat);
      // Any actual outcome within the job's limits costs no more than the worst case.
      for (uint32_t out : {0u, n.max_tokens / 2, n.max_tokens}) {
        const double seconds = n.max_seconds * (out == n.max_tokens ? 1.0 : 0.5);
        ASSERT_LE(cost_at(prices, n.priority, n.input_tokens, out, seconds).total_msat, n.max_cost_msat)
            << "round " << round << " step " << step;
      }
    }
  }
  EXPECT_GT(chosen_jobs, 1000);  // the property was exercised, not vacuously true
}

}  // namespace
}  // namespace infernet::market
