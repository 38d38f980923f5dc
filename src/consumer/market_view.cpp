// The consumer's side of the market: the needs of a job as the market module sees them, the reputation and
// speed it records from each attempt, and the two questions a user asks before and after submitting:
// "what will it cost?" (estimate) and "why is it waiting?" (why).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "consumer/internal/job_spec.hpp"
#include "consumer/internal/node_core.hpp"

namespace infernet::consumer::internal {
namespace {

// Weight of a new speed or latency sample against what was measured before.
constexpr double kSampleWeight = 0.3;
// A generation shorter than this says more about the clock than about the provider's speed.
constexpr int64_t kMinSpeedSampleMs = 20;

double blend(double before, double sample) {
  return before <= 0 ? sample : before * (1 - kSampleWeight) + sample * kSampleWeight;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string label(const market::Assessment& a) {
  return a.name.empty() ? a.provider.substr(0, 12) : a.name;
}

// Suggestions from the assessments of a job's model (docs/market.md, "Why").
std::vector<std::string> suggest(const JobSpec& spec, const std::vector<market::Assessment>& assessed,
                                 const std::vector<ProviderRecord>& records, int64_t now,
                                 double best_tokens_per_second) {
  std::vector<std::string> out;
  size_t alive = 0;
  size_t usable = 0;
  std::vector<uint64_t> over_price;
  size_t unbounded = 0;
  size_t hardware = 0;
  for (const auto& a : assessed) {
    if (!starts_with(a.reason, "not alive")) ++alive;
    if (a.verdict != market::Verdict::kRejected) ++usable;
    if (starts_with(a.reason, "worst-case price")) over_price.push_back(a.worst_case.total_msat);
    if (starts_with(a.reason, "price: charges")) ++unbounded;
    if (starts_with(a.reason, "hardware:")) ++hardware;
  }
  if (alive == 0) {
    std::set<std::string> models;
    for (const auto& r : records) {
      if (!r.alive) continue;
      for (const auto& m : r.announcement.models)
        models.insert(m.name);
    }
    std::string list;
    for (const auto& m : models)
      list += (list.empty() ? "" : ", ") + m;
    out.push_back("no alive provider serves model " + spec.model +
                  (list.empty() ? "" : "; models available: " + list));
  } else if (alive == 1) {
    out.push_back("only one provider serves model " + spec.model);
  }
  if (!over_price.empty()) {
    const uint64_t to = *std::max_element(over_price.begin(), over_price.end());
    const uint64_t first = *std::min_element(over_price.begin(), over_price.end());
    std::string s = "raising the price cap to " + std::to_string(to) + " msat reaches " +
                    std::to_string(over_price.size()) + " more provider" +
                    (over_price.size() == 1 ? "" : "s");
    if (first != to) s += " (" + std::to_string(first) + " msat reaches the cheapest of them)";
    out.push_back(s);
  }
  if (unbounded != 0) {
    out.push_back("setting a deadline bounds the time of " + std::to_string(unbounded) + " provider" +
                  (unbounded == 1 ? "" : "s") + " that charge per second, so they fit under the price cap");
  }
  if (hardware != 0 && hardware == alive && !spec.gpu_type.empty()) {
    std::set<std::string> gpus;
    for (const auto& r : records) {
      if (!r.alive) continue;
      for (const auto& g : r.announcement.hardware.gpus)
        gpus.insert(g.name);
      if (r.announcement.hardware.gpus.empty()) gpus.insert("cpu");
    }
    std::string list;
    for (const auto& g : gpus)
      list += (list.empty() ? "" : ", ") + g;
    out.push_back("no provider has GPU type " + spec.gpu_type +
                  "; available: " + (list.empty() ? "none" : list));
  }
  for (const auto& a : assessed) {
    if (a.verdict != market::Verdict::kDelayed) continue;
    if (spec.priority == "low") {
      out.push_back("low priority is queued behind " + std::to_string(a.load) + " jobs at " + label(a));
    } else {
      out.push_back(label(a) + " has no free slot: " + std::to_string(a.load) + " jobs for " +
                    std::to_string(a.slots) + " slots");
    }
  }
  if (usable == 0 && alive != 0 && over_price.empty() && hardware != alive) {
    size_t busy = 0;
    for (const auto& a : assessed)
      busy += starts_with(a.reason, "busy:") ? 1 : 0;
    if (busy != 0 && busy + (assessed.size() - alive) == assessed.size()) {
      out.push_back("every provider of " + spec.model + " is busy; the job waits for a free slot");
    }
  }
  if (spec.deadline != 0) {
    const int64_t left = spec.deadline - now;
    const double speed =
        best_tokens_per_second > 0 ? best_tokens_per_second : market::kAssumedTokensPerSecond;
    const double needed = spec.max_tokens / speed;
    if (left <= 0 || static_cast<double>(left) < needed) {
      out.push_back("the deadline leaves too little time: " + std::to_string(std::max<int64_t>(0, left)) +
                    " s left, about " + std::to_string(static_cast<int64_t>(needed + 0.999)) +
                    " s needed for " + std::to_string(spec.max_tokens) + " tokens at " +
                    std::to_string(static_cast<int64_t>(speed)) + " tokens/s");
    }
  }
  return out;
}

}  // namespace

market::JobNeeds NodeCore::needs_of(const JobSpec& spec, uint32_t input_tokens) const {
  market::JobNeeds n;
  n.model = spec.model;
  n.model_sha256 = spec.model_sha256;
  n.gpu_type = spec.gpu_type;
  n.min_gpu_memory_mb = spec.min_gpu_memory_mb;
  n.max_cost_msat = spec.max_cost_msat;
  n.input_tokens = input_tokens;
  n.max_tokens = spec.max_tokens;
  n.priority = spec.priority;
  if (spec.deadline != 0)
    n.max_seconds = static_cast<double>(std::max<int64_t>(0, spec.deadline - clock_.now_unix()));
  n.strategy = options_.strategy;
  if (auto s = market::parse_strategy(spec.strategy); !spec.strategy.empty() && s) n.strategy = *s;
  return n;
}

Match NodeCore::match_now(const JobSpec& spec, uint32_t input_tokens,
                          const std::set<std::string>* tried) const {
  MatchRequest request{needs_of(spec, input_tokens), tried};
  // A deadline that has passed leaves no time: a per-second provider must not be read as unbounded.
  if (spec.deadline != 0 && request.needs.max_seconds <= 0) request.needs.max_seconds = 0.001;
  return directory_.match(request, clock_.now_unix(), [this](const std::string& provider) {
    auto it = in_flight_.find(provider);
    return it == in_flight_.end() ? 0u : it->second;
  });
}

void NodeCore::record_outcome(ActiveJob& job, const std::string& attempt_state, uint32_t output_tokens) {
  const std::string& provider = job.record.provider;
  const std::string& model = job.record.spec.model;
  if (provider.empty()) return;
  // This model's row only: observed() would add the other models' counts.
  const market::Observed* before = directory_.recorded(provider, model);
  market::Observed row = before != nullptr ? *before : market::Observed{};
  market::Reputation& r = row.reputation;
  const int64_t now = now_ms();
  if (attempt_state == "completed") {
    if (output_tokens > job.record.spec.max_tokens) {
      ++r.wrong;  // more tokens than asked for: a result that failed our checks
    } else {
      ++r.completed;
    }
    if (job.first_token_at != 0 && output_tokens >= 2 && now - job.first_token_at >= kMinSpeedSampleMs) {
      row.tokens_per_second = blend(row.tokens_per_second, (output_tokens - 1) * 1000.0 /
                                                               static_cast<double>(now - job.first_token_at));
    }
  } else if (attempt_state == "failed" || attempt_state == "dropped") {
    ++r.failed;
  } else if (attempt_state == "timed-out") {
    ++r.slow;
  } else if (attempt_state == "over-budget") {
    ++r.wrong;
  } else if (job.first_answer_at == 0) {
    return;  // rejected, canceled or expired before it answered: nothing learned
  }
  if (job.first_answer_at != 0 && job.attempt_started_at != 0 &&
      job.first_answer_at >= job.attempt_started_at) {
    row.accept_ms = blend(row.accept_ms, static_cast<double>(job.first_answer_at - job.attempt_started_at));
  }
  directory_.set_observed(provider, model, row);
  if (auto st = store_->save_reputation({provider, model, row, now}); !st) {
    spdlog::warn("consumer: reputation of {} not stored: {}", provider, st.error().message);
  }
}

Status NodeCore::load_reputations() {
  auto rows = store_->reputations();
  if (!rows) return tl::unexpected(with_context(rows.error(), "loading provider reputations"));
  for (const auto& row : *rows) {
    directory_.set_observed(row.pubkey, row.model, row.observed);
  }
  return {};
}

Result<Estimate> NodeCore::estimate(const JobSpec& raw) {
  auto spec = check_spec(raw, clock_.now_unix());
  if (!spec) return tl::unexpected(spec.error());
  std::unique_lock lock(mu_);
  const uint32_t input_tokens = market::input_token_bound(spec->prompt, spec->messages);
  Match m = match_now(*spec, input_tokens, nullptr);
  if (!spec->provider.empty()) {
    // A direct job goes to its provider or nowhere; the market only says whether that one qualifies.
    for (auto& a : m.assessed) {
      if (a.provider != spec->provider && a.verdict != market::Verdict::kRejected) {
        a.verdict = market::Verdict::kRejected;
        a.reason = "the job names another provider";
      } else if (a.provider == spec->provider && a.verdict == market::Verdict::kEligible) {
        a.verdict = market::Verdict::kChosen;
      }
    }
  }
  market::JobNeeds needs = needs_of(*spec, input_tokens);
  Estimate e;
  e.model = spec->model;
  e.strategy = market::to_string(needs.strategy);
  e.input_tokens = e.input_tokens_bound = input_tokens;
  e.max_tokens = spec->max_tokens;
  e.priority = spec->priority;
  bool first = true;
  for (const auto& a : m.assessed) {
    if (a.verdict == market::Verdict::kRejected) continue;
    ++e.eligible;
    e.min_msat = first ? a.worst_case.total_msat : std::min(e.min_msat, a.worst_case.total_msat);
    e.max_msat = first ? a.worst_case.total_msat : std::max(e.max_msat, a.worst_case.total_msat);
    first = false;
    if (a.verdict == market::Verdict::kChosen) e.chosen = a;
  }
  e.providers = std::move(m.assessed);
  // The input counted by the model's tokenizer: the chosen provider's, else the best-ranked eligible one's.
  // Worst cases stay on the bound (a job's price is agreed before its provider counts); the expected cost
  // uses the count.
  std::string counter = e.chosen ? e.chosen->provider : "";
  if (counter.empty()) {
    auto eligible = std::find_if(e.providers.begin(), e.providers.end(),
                                 [](const auto& a) { return a.verdict != market::Verdict::kRejected; });
    if (eligible != e.providers.end()) counter = eligible->provider;
  }
  if (counter.empty()) {
    e.input_tokens_note = "no eligible provider to count the input with the model's tokenizer";
  } else if (auto counted = count_input(lock, *spec, input_tokens, counter); counted) {
    e.input_tokens = needs.input_tokens = *counted;
    e.input_tokens_source = "tokenizer";
    e.input_tokens_counted_by = counter;
  } else {
    e.input_tokens_note = counted.error().message;
  }
  if (e.chosen) {
    if (const auto* known = directory_.find(e.chosen->provider)) {
      e.expected =
          market::expected_cost(known->announcement.prices, needs,
                                directory_.observed(e.chosen->provider, spec->model).tokens_per_second);
    }
  }
  return e;
}

Result<WhyReport> NodeCore::why(const std::string& job_id) {
  std::optional<JobRecord> active;
  std::set<std::string> tried;
  uint32_t queued_behind = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = jobs_.find(job_id); it != jobs_.end()) {
      active = it->second.record;
      tried = it->second.tried;
      if (it->second.record.state == JobState::kAssigned) queued_behind = it->second.queue_position;
    }
  }
  // A job followed in memory is newer there than in the database (changes queued, not yet committed).
  Result<JobRecord> record = active ? Result<JobRecord>(std::move(*active)) : store_->get(job_id);
  if (!record) return tl::unexpected(record.error());
  if (tried.empty() && record->attempt != 0) {
    auto attempts = store_->attempts(job_id);
    if (!attempts) return tl::unexpected(attempts.error());
    for (const auto& a : *attempts)
      tried.insert(a.provider);
  }
  WhyReport report;
  report.job_id = record->id;
  report.state = record->state;
  report.provider = record->provider;
  report.error = record->error;
  std::lock_guard lock(mu_);
  const int64_t now = clock_.now_unix();
  Match m =
      match_now(record->spec, market::input_token_bound(record->spec.prompt, record->spec.messages), &tried);
  const bool with_provider = record->state == JobState::kAssigned || record->state == JobState::kRunning;
  double fastest = 0;
  for (auto& a : m.assessed) {
    fastest = std::max(fastest, directory_.observed(a.provider, record->spec.model).tokens_per_second);
    // The market's pick for a job that already has a provider is only a ranking; the job's own provider
    // is the chosen one.
    if (with_provider && a.verdict == market::Verdict::kChosen) a.verdict = market::Verdict::kEligible;
    if (a.provider == record->provider && with_provider) {
      a.verdict = market::Verdict::kChosen;
      a.reason = "the job is " + std::string(to_string(record->state)) + " there (attempt " +
                 std::to_string(record->attempt) + ")";
      if (queued_behind != 0) {
        a.reason += ", queued behind " + std::to_string(queued_behind) + " jobs";
        report.suggestions.push_back(
            (record->spec.priority == "low" ? "low priority is queued behind "
                                            : "the job is queued behind ") +
            std::to_string(queued_behind) + " jobs at " + label(a) +
            (record->spec.priority == "high" ? "" : "; a higher priority goes first"));
      }
    }
  }
  if (!is_final(record->state) && !with_provider) {
    report.suggestions = suggest(record->spec, m.assessed, directory_.records(now), now, fastest);
  } else if (record->state == JobState::kExpired) {
    report.suggestions = {"the deadline leaves too little time: the job expired (" + record->error + ")"};
  }
  report.providers = std::move(m.assessed);
  return report;
}

}  // namespace infernet::consumer::internal
