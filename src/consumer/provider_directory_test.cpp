// The hardware a job asks for (resources.gpu_type, min_gpu_memory_mb) as a hard requirement of the provider
// choice, and the spec fields that carry it.
#include "consumer/internal/provider_directory.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "consumer/internal/job_spec.hpp"
#include "consumer/job_store.hpp"
#include "nostr/keys.hpp"

namespace infernet::consumer::internal {
namespace {

constexpr int64_t kNow = 1'700'000'000;

protocol::ProviderAnnouncement announcement(const std::string& name, std::vector<protocol::GpuInfo> gpus) {
  protocol::ProviderAnnouncement a{nostr::Keypair::generate().public_key(), kNow, kNow + 300, {}};
  a.announcement.name = name;
  a.announcement.hardware = {"test cpu", 8, 16384, std::move(gpus)};
  a.announcement.models = {{"m", "", "fake", 0, "", 4096, "fake", {"text-generation"}}};
  a.announcement.capacity = {2, 8, 0, 0};
  return a;
}

class HardwareMatch : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto a : {announcement("a100", {{"NVIDIA A100-SXM4-80GB", 81920}}),
                   announcement("t4", {{"Tesla T4", 15360}, {"NVIDIA GeForce RTX 4090", 24564}}),
                   announcement("cpu", {})}) {
      keys_[a.announcement.name] = a.provider.hex();
      directory_.update(a, 0);
    }
  }

  Match match(std::string gpu_type, uint64_t min_memory = 0) {
    MatchRequest r;
    r.needs.model = "m";
    r.needs.max_tokens = 16;
    r.needs.gpu_type = std::move(gpu_type);
    r.needs.min_gpu_memory_mb = min_memory;
    return directory_.match(r, kNow, [](const std::string&) { return 0u; });
  }

  std::string reason_for(const Match& m, const std::string& name) {
    for (const auto& r : m.rejected) {
      if (r.provider == keys_[name]) return r.reason;
    }
    return "(not rejected)";
  }

  ProviderDirectory directory_{std::chrono::seconds(10)};
  std::map<std::string, std::string> keys_;
};

TEST(GpuNameMatches, WholeWordsWithoutCaseWithUnderscoresAndDashesAsSpaces) {
  EXPECT_TRUE(gpu_name_matches("NVIDIA_A100", "NVIDIA A100-SXM4-80GB"));
  EXPECT_TRUE(gpu_name_matches("a100", "NVIDIA A100-SXM4-80GB"));
  EXPECT_TRUE(gpu_name_matches("nvidia-a100-sxm4", "NVIDIA A100-SXM4-80GB"));
  EXPECT_TRUE(gpu_name_matches("RTX_4090", "NVIDIA GeForce RTX 4090"));
  EXPECT_TRUE(gpu_name_matches("  T4 ", "Tesla T4"));
  EXPECT_FALSE(gpu_name_matches("A10", "NVIDIA A100-SXM4-80GB")) << "A10 is another GPU";
  EXPECT_FALSE(gpu_name_matches("NVIDIA_H100", "NVIDIA A100-SXM4-80GB"));
  EXPECT_FALSE(gpu_name_matches("", "NVIDIA A100"));
  EXPECT_FALSE(gpu_name_matches("_", "NVIDIA A100"));
}

TEST_F(HardwareMatch, AGpuTypeChoosesOnlyProvidersWithThatGpu) {
  Match m = match("NVIDIA_A100");
  ASSERT_TRUE(m.provider);
  EXPECT_EQ(*m.provider, keys_["a100"]);
  EXPECT_EQ(reason_for(m, "t4"),
            "hardware: no GPU matching gpu_type NVIDIA_A100 (has: Tesla T4 15360 MB, NVIDIA GeForce RTX 4090 "
            "24564 MB)");
  EXPECT_EQ(reason_for(m, "cpu"), "hardware: no GPU matching gpu_type NVIDIA_A100 (has: no GPU)");

  m = match("rtx-4090");
  ASSERT_TRUE(m.provider);
  EXPECT_EQ(*m.provider, keys_["t4"]) << "any of a provider's GPUs may match";
}

TEST_F(HardwareMatch, CpuChoosesProvidersWithoutGpus) {
  Match m = match("CPU");
  ASSERT_TRUE(m.provider);
  EXPECT_EQ(*m.provider, keys_["cpu"]);
  EXPECT_EQ(reason_for(m, "a100"),
            "hardware: gpu_type cpu asks for a provider without GPUs (has: NVIDIA A100-SXM4-80GB 81920 MB)");
}

TEST_F(HardwareMatch, MinimumMemoryNeedsOneGpuWithThatMuch) {
  Match m = match("", 20000);
  ASSERT_TRUE(m.provider);  // the t4 box's 4090 has 24564 MB; both qualify, the a100 too
  EXPECT_EQ(reason_for(m, "cpu"), "hardware: no GPU with at least 20000 MB (has: no GPU)");
  m = match("T4", 20000);
  EXPECT_FALSE(m.provider) << "the T4 has 15360 MB; the 4090's memory does not count for a T4";
  EXPECT_EQ(
      reason_for(m, "t4"),
      "hardware: no GPU matching gpu_type T4 with at least 20000 MB (has: Tesla T4 15360 MB, NVIDIA GeForce "
      "RTX 4090 24564 MB)");
  m = match("", 90000);
  EXPECT_FALSE(m.provider);
  EXPECT_EQ(m.rejected.size(), 3u);
}

TEST_F(HardwareMatch, NoRequirementKeepsEveryProvider) {
  Match m = match("");
  ASSERT_TRUE(m.provider);
  EXPECT_TRUE(m.rejected.empty());
  EXPECT_EQ(match("NVIDIA_H100").rejected.size(), 3u);
  EXPECT_FALSE(match("NVIDIA_H100").provider);
}

TEST(CheckSpec, HardwarePriorityAndNotes) {
  JobSpec s;
  s.model = "m";
  s.prompt = "p";
  s.priority = "normal";
  s.gpu_type = "NVIDIA_A100";
  s.min_gpu_memory_mb = 40000;
  auto ok = check_spec(s, kNow);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->priority, "medium");
  EXPECT_EQ(ok->gpu_type, "NVIDIA_A100");

  auto bad = s;
  bad.gpu_type = "A100; rm";
  EXPECT_EQ(check_spec(bad, kNow).error().message,
            "resources.gpu_type: only letters, digits, spaces, '_', '-' and '.'");
  bad.gpu_type = std::string(65, 'a');
  EXPECT_EQ(check_spec(bad, kNow).error().message, "resources.gpu_type: at most 64 bytes");
  bad = s;
  bad.gpu_type = "cpu";
  EXPECT_EQ(check_spec(bad, kNow).error().message,
            "resources.min_gpu_memory_mb: cannot be combined with gpu_type cpu");
  bad = s;
  bad.min_gpu_memory_mb = kMaxGpuMemoryMb + 1;
  EXPECT_FALSE(check_spec(bad, kNow));
  bad = s;
  bad.priority = "critical";
  EXPECT_EQ(check_spec(bad, kNow).error().message,
            "priority: must be low, medium, high or urgent (normal is medium)");
  bad = s;
  bad.notes = {std::string(kMaxNoteBytes + 1, 'n')};
  EXPECT_FALSE(check_spec(bad, kNow));
}

TEST(SpecJson, HardwareIsStoredAndNotesAreNot) {
  JobSpec s;
  s.model = "m";
  s.prompt = "p";
  s.gpu_type = "NVIDIA_A100";
  s.min_gpu_memory_mb = 40000;
  s.notes = {"a note"};
  auto back = spec_from_json(spec_to_json(s));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->gpu_type, "NVIDIA_A100");
  EXPECT_EQ(back->min_gpu_memory_mb, 40000u);
  EXPECT_TRUE(back->notes.empty());
  auto old = spec_from_json(R"({"model":"m","prompt":"p"})");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->gpu_type, "");
  EXPECT_EQ(old->min_gpu_memory_mb, 0u);
}

// Announcements arrive in any order (a relay may deliver an older one after a newer one); between them jobs
// are matched. Whatever the sequence, a job never goes to a provider whose worst case at its newest known
// prices exceeds the job's cap, and an older announcement never brings back older (lower) prices.
TEST(BudgetCapInTheDirectory, NoInterleavingOfPriceAnnouncementsSendsAJobOverItsCap) {
  std::mt19937_64 rng(7);
  ProviderDirectory directory{std::chrono::seconds(1000)};
  std::vector<protocol::ProviderAnnouncement> newest;  // what the directory must hold, per provider
  for (int i = 0; i < 6; ++i)
    newest.push_back(announcement("p" + std::to_string(i), {}));
  for (const auto& a : newest)
    directory.update(a, 0);
  int sent = 0;
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 2 == 0) {
      auto& current = newest[rng() % newest.size()];
      protocol::ProviderAnnouncement next = current;
      const bool older = rng() % 4 == 0;  // a stale copy delivered late: must be ignored
      next.created_at = older ? current.created_at - 1 : current.created_at + 1;
      next.announcement.prices.per_job_msat = rng() % 300;
      next.announcement.prices.per_1k_input_msat = rng() % 3000;
      next.announcement.prices.per_1k_output_msat = rng() % 3000;
      next.announcement.prices.per_second_msat = rng() % 5 == 0 ? 1 + rng() % 50 : 0;
      next.announcement.prices.priority_percent = {{"high", static_cast<uint32_t>(100 + rng() % 200)}};
      const bool taken = directory.update(next, 0);
      ASSERT_EQ(taken, !older);
      if (taken) current = next;
      continue;
    }
    MatchRequest r;
    r.needs.model = "m";
    r.needs.input_tokens = static_cast<uint32_t>(rng() % 2000);
    r.needs.max_tokens = static_cast<uint32_t>(1 + rng() % 1000);
    r.needs.max_cost_msat = 1 + rng() % 4000;
    r.needs.priority = rng() % 2 == 0 ? "high" : "normal";
    r.needs.max_seconds = rng() % 2 == 0 ? 0 : static_cast<double>(rng() % 60);
    r.needs.strategy = static_cast<market::Strategy>(rng() % 3);
    Match m = directory.match(r, kNow, [](const std::string&) { return 0u; });
    if (!m.provider) continue;
    ++sent;
    const auto it = std::find_if(newest.begin(), newest.end(),
                                 [&](const auto& a) { return a.provider.hex() == *m.provider; });
    ASSERT_NE(it, newest.end());
    const market::Cost worst = market::worst_case_cost(it->announcement.prices, r.needs);
    ASSERT_TRUE(worst.bounded) << "step " << step;
    ASSERT_LE(worst.total_msat, r.needs.max_cost_msat) << "step " << step;
    ASSERT_EQ(worst.total_msat, m.estimated_price_msat);
  }
  EXPECT_GT(sent, 1000);
}

}  // namespace
}  // namespace infernet::consumer::internal
