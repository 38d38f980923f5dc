#include "consumer/internal/provider_directory.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "consumer/internal/job_spec.hpp"

namespace infernet::consumer::internal {
namespace {

bool serves(const protocol::Announcement& a, const std::string& model) {
  return std::any_of(a.models.begin(), a.models.end(), [&](const auto& m) { return m.name == model; });
}

}  // namespace

bool ProviderDirectory::update(const protocol::ProviderAnnouncement& a, uint32_t ours_now) {
  const std::string key = a.provider.hex();
  auto it = providers_.find(key);
  if (it != providers_.end() && it->second.announcement.created_at > a.created_at) return false;
  providers_.insert_or_assign(key, Entry{a, ours_now});
  return true;
}

const protocol::ProviderAnnouncement* ProviderDirectory::find(const std::string& provider) const {
  auto it = providers_.find(provider);
  return it == providers_.end() ? nullptr : &it->second.announcement;
}

std::string ProviderDirectory::liveness_problem(const std::string& provider, int64_t now) const {
  auto it = providers_.find(provider);
  if (it == providers_.end()) return "no announcement seen";
  const auto& a = it->second.announcement;
  if (a.expires_at != 0 && a.expires_at <= now) {
    return "announcement expired " + std::to_string(now - a.expires_at) + " s ago";
  }
  const int64_t silent = now - a.created_at;
  if (silent > 3 * heartbeat_.count()) {
    return "silent for " + std::to_string(silent) + " s (more than 3 heartbeats)";
  }
  return "";
}

uint64_t ProviderDirectory::estimate_price(const protocol::Prices& prices, const std::string& priority,
                                           uint32_t input_words, uint32_t output_tokens) {
  return market::cost_at(prices, priority, input_words, output_tokens, 0).total_msat;
}

market::Observed ProviderDirectory::observed(const std::string& provider, const std::string& model) const {
  auto it = observed_.find({provider, model});
  market::Observed o = it == observed_.end() ? market::Observed{} : it->second;
  o.reputation = reputation(provider);
  return o;
}

market::Reputation ProviderDirectory::reputation(const std::string& provider) const {
  market::Reputation r;
  for (auto it = observed_.lower_bound({provider, ""}); it != observed_.end() && it->first.first == provider;
       ++it) {
    r.completed += it->second.reputation.completed;
    r.failed += it->second.reputation.failed;
    r.slow += it->second.reputation.slow;
    r.wrong += it->second.reputation.wrong;
  }
  return r;
}

const market::Observed* ProviderDirectory::recorded(const std::string& provider,
                                                    const std::string& model) const {
  auto it = observed_.find({provider, model});
  return it == observed_.end() ? nullptr : &it->second;
}

void ProviderDirectory::set_observed(const std::string& provider, const std::string& model,
                                     const market::Observed& o) {
  observed_[{provider, model}] = o;
}

uint32_t ProviderDirectory::estimated_load(const Entry& e, uint32_t ours_now) {
  const auto& c = e.announcement.announcement.capacity;
  // The announced load counts our jobs of that moment; replace them with our jobs of now.
  const uint32_t announced = c.busy + c.queued;
  const uint32_t others = announced > e.ours_at_announcement ? announced - e.ours_at_announcement : 0;
  return others + ours_now;
}

Match ProviderDirectory::match(const MatchRequest& request, int64_t now, const InFlight& ours) const {
  Match m;
  const std::string& model = request.needs.model;
  std::vector<market::Candidate> candidates;
  for (const auto& [key, entry] : providers_) {
    const auto& a = entry.announcement.announcement;
    if (!serves(a, model)) continue;
    std::string problem;
    if (request.tried != nullptr && request.tried->count(key) != 0) {
      problem = "already tried for this job";
    } else if (auto gone = liveness_problem(key, now); !gone.empty()) {
      problem = "not alive: " + gone;
    }
    if (!problem.empty()) {
      market::Assessment as;
      as.provider = key;
      as.name = a.name;
      as.reason = problem;
      as.slots = a.capacity.slots;
      m.assessed.push_back(std::move(as));
      continue;
    }
    uint32_t retry_after = 0;
    if (auto busy = busy_until_.find(key); busy != busy_until_.end() && busy->second > now) {
      retry_after = static_cast<uint32_t>(busy->second - now);
    }
    candidates.push_back({key, &a, estimated_load(entry, ours(key)), observed(key, model), retry_after});
  }
  market::Choice choice = market::choose(request.needs, candidates);
  if (choice.chosen) {
    m.provider = choice.assessed[*choice.chosen].provider;
    m.estimated_price_msat = choice.assessed[*choice.chosen].worst_case.total_msat;
  }
  for (auto& as : choice.assessed)
    m.assessed.push_back(std::move(as));
  for (const auto& as : m.assessed) {
    if (as.verdict == market::Verdict::kRejected) m.rejected.push_back({as.provider, as.name, as.reason});
  }
  return m;
}

std::vector<ProviderRecord> ProviderDirectory::records(int64_t now) const {
  std::vector<ProviderRecord> out;
  out.reserve(providers_.size());
  for (const auto& [key, entry] : providers_) {
    ProviderRecord r;
    r.pubkey = key;
    r.name = entry.announcement.announcement.name;
    r.last_seen = entry.announcement.created_at;
    r.expires_at = entry.announcement.expires_at;
    r.alive = liveness_problem(key, now).empty();
    r.announcement = entry.announcement.announcement;
    r.reputation = reputation(key);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<ModelSummary> ProviderDirectory::models(int64_t now) const {
  std::map<std::string, ModelSummary> by_name;
  for (const auto& [key, entry] : providers_) {
    if (!liveness_problem(key, now).empty()) continue;
    const auto& a = entry.announcement.announcement;
    for (const auto& model : a.models) {
      auto [it, inserted] = by_name.try_emplace(model.name);
      ModelSummary& s = it->second;
      if (inserted) {
        s.name = model.name;
        s.min_price_per_1k_output_msat = a.prices.per_1k_output_msat;
      }
      if (std::find(s.providers.begin(), s.providers.end(), key) == s.providers.end())
        s.providers.push_back(key);
      s.min_price_per_1k_output_msat = std::min(s.min_price_per_1k_output_msat, a.prices.per_1k_output_msat);
    }
  }
  std::vector<ModelSummary> out;
  out.reserve(by_name.size());
  for (auto& [name, summary] : by_name)
    out.push_back(std::move(summary));
  return out;
}

}  // namespace infernet::consumer::internal

namespace infernet::consumer {

bool gpu_name_matches(std::string_view wanted, std::string_view name) {
  return market::gpu_name_matches(wanted, name);
}

}  // namespace infernet::consumer
