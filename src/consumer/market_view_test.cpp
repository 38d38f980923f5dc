// The consumer's side of the market against an in-process relay and scripted providers: estimates before
// submission, "why" with each verdict and suggestion, and the reputation it records and keeps.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "consumer/consumer.hpp"
#include "consumer/consumer_test_network.hpp"

namespace infernet::consumer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::eventually;
using testing::FakeProvider;
using testing::Script;

class MarketViewTest : public testing::ConsumerNetworkTest {
 protected:
  MarketViewTest() : ConsumerNetworkTest("infernet-market-") {}

  static JobSpec spec() {
    JobSpec s;
    s.model = "fake-echo";
    s.prompt = "hello";
    s.max_tokens = 100;
    return s;
  }
  JobRecord wait_state(const std::string& id, JobState state) {
    JobRecord last;
    eventually([&] {
      auto r = node_->get(id);
      if (r) last = *r;
      return r && r->state == state;
    });
    EXPECT_EQ(std::string(to_string(last.state)), to_string(state)) << last.error;
    return last;
  }
  // The why report once it names `suggestion` (the node decides on its own threads).
  WhyReport why_with(const std::string& job_id, const std::string& suggestion) {
    WhyReport last;
    eventually([&] {
      auto w = node_->why(job_id);
      if (w) last = *w;
      return w && std::find(w->suggestions.begin(), w->suggestions.end(), suggestion) != w->suggestions.end();
    });
    return last;
  }
  static const market::Assessment* verdict_of(const WhyReport& w, const std::string& name) {
    for (const auto& p : w.providers) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  market::Reputation reputation_of(const std::string& pubkey) {
    for (const auto& p : node_->providers()) {
      if (p.pubkey == pubkey) return p.reputation;
    }
    return {};
  }
};

TEST_F(MarketViewTest, EstimateGivesTheChosenBreakdownAndTheRangeAcrossEligibleProviders) {
  auto& cheap = add_provider({.name = "cheap", .per_job_msat = 10, .per_1k_output_msat = 1000});
  add_provider({.name = "dear", .per_job_msat = 10, .per_1k_output_msat = 2000});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto e = node_->estimate(spec());
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e->input_tokens, 5u + market::kSpecialTokens);
  EXPECT_EQ(e->input_tokens_source, "bound");
  EXPECT_EQ(e->strategy, "balanced");
  ASSERT_TRUE(e->chosen);
  EXPECT_EQ(e->chosen->provider, cheap.pubkey());
  EXPECT_EQ(e->chosen->worst_case.per_job_msat, 10u);
  EXPECT_EQ(e->chosen->worst_case.output_msat, 100u);  // 1000 msat per 1k * 100 tokens
  EXPECT_EQ(e->chosen->worst_case.total_msat, 110u);
  EXPECT_EQ(e->expected.total_msat, 110u);
  EXPECT_EQ(e->eligible, 2u);
  EXPECT_EQ(e->min_msat, 110u);
  EXPECT_EQ(e->max_msat, 210u);
  // A low priority is charged the announced 80 %.
  JobSpec low = spec();
  low.priority = "low";
  EXPECT_EQ(node_->estimate(low)->chosen->worst_case.total_msat, 88u);
  // A cap leaves one eligible; the other is listed as rejected with its reason.
  JobSpec capped = spec();
  capped.max_cost_msat = 150;
  auto c = node_->estimate(capped);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->eligible, 1u);
  EXPECT_EQ(c->max_msat, 110u);
  ASSERT_EQ(c->providers.size(), 2u);
  // A job naming its provider is estimated there only.
  JobSpec direct = spec();
  direct.provider = providers_[1]->pubkey();
  auto d = node_->estimate(direct);
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->chosen);
  EXPECT_EQ(d->chosen->name, "dear");
  EXPECT_EQ(d->eligible, 1u);
  EXPECT_EQ(d->min_msat, 210u);
  // Nothing was stored or sent.
  EXPECT_TRUE(node_->list({})->empty());
  EXPECT_TRUE(cheap.requests().empty());
}

TEST_F(MarketViewTest, EstimateCountsTheInputWithTheChosenProvidersTokenizer) {
  auto& cheap = add_provider({.name = "cheap",
                              .per_job_msat = 10,
                              .per_1k_output_msat = 1000,
                              .per_1k_input_msat = 1000,
                              .token_count = 2});
  auto& dear =
      add_provider({.name = "dear", .per_job_msat = 10, .per_1k_output_msat = 2000, .token_count = 7});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto e = node_->estimate(spec());
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e->input_tokens_source, "tokenizer") << e->input_tokens_note;
  EXPECT_EQ(e->input_tokens, 2u);
  EXPECT_EQ(e->input_tokens_counted_by, cheap.pubkey());
  EXPECT_EQ(e->input_tokens_bound, 5u + market::kSpecialTokens);
  // The price is agreed on the bound; the expectation uses the count.
  ASSERT_TRUE(e->chosen);
  EXPECT_EQ(e->chosen->worst_case.input_tokens, 5u + market::kSpecialTokens);
  EXPECT_EQ(e->chosen->worst_case.input_msat, 13u);
  EXPECT_EQ(e->expected.input_tokens, 2u);
  EXPECT_EQ(e->expected.input_msat, 2u);
  EXPECT_EQ(e->expected.total_msat, 112u);
  ASSERT_EQ(cheap.count_requests().size(), 1u);
  EXPECT_EQ(cheap.count_requests()[0].prompt, "hello");
  EXPECT_EQ(cheap.count_requests()[0].model, "fake-echo");
  EXPECT_TRUE(dear.count_requests().empty()) << "only the chosen provider is asked";

  // The same input again is answered from memory; another input is asked for.
  EXPECT_EQ(node_->estimate(spec())->input_tokens, 2u);
  EXPECT_EQ(cheap.count_requests().size(), 1u);
  JobSpec chat = spec();
  chat.prompt.clear();
  chat.messages = {{"user", "hello there"}};
  auto c = node_->estimate(chat);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->input_tokens_source, "tokenizer");
  ASSERT_EQ(cheap.count_requests().size(), 2u);
  EXPECT_EQ(cheap.count_requests()[1].messages, chat.messages);
  // A job naming its provider is counted there.
  JobSpec direct = spec();
  direct.provider = dear.pubkey();
  auto d = node_->estimate(direct);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->input_tokens, 7u);
  EXPECT_EQ(d->input_tokens_counted_by, dear.pubkey());
}

TEST_F(MarketViewTest, EstimateUsesTheBoundWhenNoProviderCountsAndSaysWhy) {
  auto& silent = add_provider({.name = "silent"});
  auto& proxy = add_provider({.name = "proxy", .models = {"m-proxy"}, .token_count_refusal = "unsupported"});
  auto& liar = add_provider({.name = "liar", .models = {"m-liar"}, .token_count = 1000});
  open_node();
  ASSERT_TRUE(providers_alive(3));
  auto quiet = node_->estimate(spec());
  ASSERT_TRUE(quiet) << quiet.error().to_string();
  EXPECT_EQ(quiet->input_tokens_source, "bound");
  EXPECT_EQ(quiet->input_tokens, 5u + market::kSpecialTokens);
  EXPECT_NE(quiet->input_tokens_note.find("no token count from " + silent.pubkey() + " within 300 ms"),
            std::string::npos)
      << quiet->input_tokens_note;

  // A refusal, and a count no tokenizer can give (more tokens than the input's bound), are not used.
  JobSpec to_proxy = spec();
  to_proxy.model = "m-proxy";
  auto refused = node_->estimate(to_proxy);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->input_tokens_source, "bound");
  EXPECT_NE(refused->input_tokens_note.find("did not count: unsupported"), std::string::npos)
      << refused->input_tokens_note;
  EXPECT_EQ(proxy.count_requests().size(), 1u);
  JobSpec to_liar = spec();
  to_liar.model = "m-liar";
  auto lied = node_->estimate(to_liar);
  ASSERT_TRUE(lied);
  EXPECT_EQ(lied->input_tokens_source, "bound");
  EXPECT_NE(lied->input_tokens_note.find("counted 1000 tokens, more than the input's bound of 13"),
            std::string::npos)
      << lied->input_tokens_note;

  // With counting off, nobody is asked.
  options_.token_count_timeout = 0ms;
  open_node();
  ASSERT_TRUE(providers_alive(3));
  auto off = node_->estimate(to_liar);
  ASSERT_TRUE(off);
  EXPECT_EQ(off->input_tokens_source, "bound");
  EXPECT_NE(off->input_tokens_note.find("token counts are off"), std::string::npos) << off->input_tokens_note;
  EXPECT_EQ(liar.count_requests().size(), 1u);
}

TEST_F(MarketViewTest, EstimateAndSubmitRefuseABadStrategyNamingTheField) {
  open_node();
  JobSpec s = spec();
  s.strategy = "quickest";
  auto e = node_->estimate(s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "strategy: must be balanced, cheapest or fastest");
  EXPECT_FALSE(node_->submit(s));
  s.strategy = "";
  s.max_tokens = 0;
  EXPECT_EQ(node_->estimate(s).error().message, "max_tokens: must be 1..65536");
  s = spec();
  s.model_sha256 = "xyz";
  EXPECT_EQ(node_->estimate(s).error().message, "model_sha256: must be 64 hex digits");
}

TEST_F(MarketViewTest, WhyReportsPriceRejectionsAndTheCapThatReachesThem) {
  add_provider({.name = "dear", .per_job_msat = 500});
  add_provider({.name = "dearer", .per_job_msat = 900});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  JobSpec s = spec();
  s.max_cost_msat = 100;
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  auto w = why_with(job->id,
                    "raising the price cap to 900 msat reaches 2 more providers (500 msat reaches "
                    "the cheapest of them)");
  EXPECT_EQ(w.state, JobState::kSubmitted);
  ASSERT_NE(verdict_of(w, "dear"), nullptr);
  EXPECT_EQ(verdict_of(w, "dear")->verdict, market::Verdict::kRejected);
  EXPECT_EQ(verdict_of(w, "dear")->reason, "worst-case price 500 msat exceeds max_cost_msat 100");
  EXPECT_EQ(verdict_of(w, "dearer")->reason, "worst-case price 900 msat exceeds max_cost_msat 100");
}

TEST_F(MarketViewTest, WhyNamesTheOnlyProviderAndTheGpusThereAre) {
  add_provider({.name = "lonely"});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.gpu_type = "A100";
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  auto w = why_with(job->id, "no provider has GPU type A100; available: cpu");
  EXPECT_NE(std::find(w.suggestions.begin(), w.suggestions.end(), "only one provider serves model fake-echo"),
            w.suggestions.end());
  ASSERT_NE(verdict_of(w, "lonely"), nullptr);
  EXPECT_EQ(verdict_of(w, "lonely")->reason, "hardware: no GPU matching gpu_type A100 (has: no GPU)");
}

TEST_F(MarketViewTest, WhyNamesTheModelsAvailableWhenNoneServesTheJobs) {
  add_provider({.name = "p"});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.model = "nope";
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  auto w = why_with(job->id, "no alive provider serves model nope; models available: fake-echo");
  EXPECT_TRUE(w.providers.empty());
}

TEST_F(MarketViewTest, WhySaysWhenTheDeadlineLeavesTooLittleTime) {
  add_provider({.name = "p", .per_job_msat = 500});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.max_tokens = 1000;
  s.max_cost_msat = 1;
  s.deadline = clock_.now_unix() + 30;
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  auto w = node_->why(job->id);
  ASSERT_TRUE(w);
  bool found = false;
  for (const auto& text : w->suggestions)
    found = found || text.starts_with("the deadline leaves too little time: ");
  EXPECT_TRUE(found) << "1000 tokens at 20 tokens/s need 50 s; 30 s are left";
  // Enough time: no such suggestion.
  s.max_tokens = 100;
  auto quick = node_->submit(s);
  ASSERT_TRUE(quick);
  auto enough = node_->why(quick->id);
  ASSERT_TRUE(enough);
  for (const auto& text : enough->suggestions)
    EXPECT_FALSE(text.starts_with("the deadline leaves too little time")) << text;
}

TEST_F(MarketViewTest, WhyShowsTheQueueALowPriorityJobWaitsIn) {
  auto& p = add_provider({.name = "queued", .script = Script::kManual});
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.priority = "low";
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  ASSERT_TRUE(p.wait_requests(1));
  const auto r = p.requests()[0];
  p.send(protocol::JobStatus{r.job_id, r.attempt, protocol::JobStatusCode::kAccepted, "", "", 0, 3},
         *p.consumer());
  auto w = why_with(job->id, "low priority is queued behind 3 jobs at queued; a higher priority goes first");
  ASSERT_NE(verdict_of(w, "queued"), nullptr);
  EXPECT_EQ(verdict_of(w, "queued")->verdict, market::Verdict::kChosen);
  EXPECT_EQ(verdict_of(w, "queued")->reason, "the job is assigned there (attempt 1), queued behind 3 jobs");
}

TEST_F(MarketViewTest, AProviderThatAnsweredBusyIsDelayedForItsRetryAfter) {
  auto& busy = add_provider({.name = "busy", .per_job_msat = 5, .script = Script::kReject});
  auto& spare = add_provider({.name = "spare", .per_job_msat = 50, .script = Script::kManual});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  auto first = node_->submit(spec());
  ASSERT_TRUE(first);
  ASSERT_TRUE(busy.wait_requests(1));  // the cheaper one first; it answers busy, retry after 5 s
  ASSERT_TRUE(spare.wait_requests(1));
  auto second = node_->submit(spec());
  ASSERT_TRUE(second);
  ASSERT_TRUE(spare.wait_requests(2));
  EXPECT_EQ(busy.requests().size(), 1u) << "not asked again within its retry-after";
  auto w = node_->why(second->id);
  ASSERT_TRUE(w);
  ASSERT_NE(verdict_of(*w, "busy"), nullptr);
  EXPECT_EQ(verdict_of(*w, "busy")->verdict, market::Verdict::kDelayed);
  EXPECT_TRUE(verdict_of(*w, "busy")->reason.starts_with("busy: asked to retry after "))
      << verdict_of(*w, "busy")->reason;
  EXPECT_EQ(verdict_of(*w, "spare")->verdict, market::Verdict::kChosen);
}

TEST_F(MarketViewTest, AResultWithMoreTokensThanAskedCountsAsWrong) {
  auto& p = add_provider({.name = "verbose"});  // its result reports 3 output tokens
  open_node();
  ASSERT_TRUE(providers_alive(1));
  JobSpec s = spec();
  s.max_tokens = 2;
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  wait_state(job->id, JobState::kCompleted);
  EXPECT_TRUE(eventually([&] { return reputation_of(p.pubkey()).wrong == 1; }));
  EXPECT_EQ(reputation_of(p.pubkey()).completed, 0u);
}

TEST_F(MarketViewTest, ReputationCountsOutcomesAndSurvivesARestart) {
  options_.stall_timeout = 300ms;
  auto& silent = add_provider({.name = "silent", .per_job_msat = 5, .script = Script::kAcceptThenSilent});
  auto& good = add_provider({.name = "good", .per_job_msat = 50});
  open_node();
  ASSERT_TRUE(providers_alive(2));
  JobSpec s = spec();
  s.strategy = "cheapest";
  auto job = node_->submit(s);
  ASSERT_TRUE(job);
  JobRecord done = wait_state(job->id, JobState::kCompleted);
  EXPECT_EQ(done.provider, good.pubkey());
  EXPECT_EQ(reputation_of(silent.pubkey()), (market::Reputation{0, 0, 1, 0}));
  EXPECT_EQ(reputation_of(good.pubkey()), (market::Reputation{1, 0, 0, 0}));
  // Kept in the database: a restarted node knows both.
  open_node();
  ASSERT_TRUE(providers_alive(2));
  EXPECT_TRUE(eventually([&] { return reputation_of(good.pubkey()).completed == 1; }));
  EXPECT_EQ(reputation_of(silent.pubkey()), (market::Reputation{0, 0, 1, 0}));
}

}  // namespace
}  // namespace infernet::consumer
