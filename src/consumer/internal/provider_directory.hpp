// What the consumer knows of providers: their latest announcements, whether each is alive, and the choice of
// a provider for a job (model, budget, capacity, price), with the reason every other provider was passed
// over, so "why is my job waiting?" has an answer.
//
// Not thread-safe: the node holds its lock around every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consumer/consumer.hpp"
#include "market/market.hpp"
#include "protocol/protocol.hpp"

namespace infernet::consumer::internal {

// Providers (hex) that answered "busy" and when their retry-after ends; they are passed over until then.
using RestingProviders = std::map<std::string, std::chrono::steady_clock::time_point>;

// What a job asks of a provider: the market's needs, and the providers already tried for it.
struct MatchRequest {
  market::JobNeeds needs;
  const std::set<std::string>* tried = nullptr;  // providers (hex) already tried for the job
};

using market::hardware_problem;

struct Rejection {
  std::string provider;  // hex
  std::string name;
  std::string reason;
};

struct Match {
  std::optional<std::string> provider;  // hex of the chosen one
  uint64_t estimated_price_msat = 0;    // its worst case for the job
  // Providers of the model ruled out, and why (not those merely ranked lower).
  std::vector<Rejection> rejected;
  // Every provider of the model with its verdict: those not alive or already tried as rejected, then the
  // market's assessment of the rest.
  std::vector<market::Assessment> assessed;
};

// Our own jobs currently on a provider (assigned or running), counted by the node.
using InFlight = std::function<uint32_t(const std::string& provider)>;

class ProviderDirectory {
 public:
  // Providers whose newest announcement is older than 3 heartbeats are not alive.
  explicit ProviderDirectory(std::chrono::seconds heartbeat) : heartbeat_(heartbeat) {}

  // Records an announcement; false when a newer one from the same provider is known already (it is then
  // ignored). `ours_now`: our jobs on that provider as the announcement arrives, so its reported load can be
  // corrected for jobs of ours that finished or started since.
  bool update(const protocol::ProviderAnnouncement& a, uint32_t ours_now);

  // "" when alive, else why not ("announcement expired 12 s ago", "silent for 45 s").
  std::string liveness_problem(const std::string& provider, int64_t now) const;
  bool known(const std::string& provider) const { return providers_.count(provider) != 0; }
  const protocol::ProviderAnnouncement* find(const std::string& provider) const;

  // Chooses among alive providers serving the model and not tried yet, by the market's rules
  // (market::choose: hard requirements, budget, capacity, then the job's strategy).
  Match match(const MatchRequest& request, int64_t now, const InFlight& ours) const;

  // per_job + per_1k_input * words / 1000 + per_1k_output * output_tokens / 1000, times the priority's
  // percent (100 when the provider names none); rounded up, saturating. An estimate of what was spent so far
  // (budget notifications), not a bound.
  static uint64_t estimate_price(const protocol::Prices& prices, const std::string& priority,
                                 uint32_t input_words, uint32_t output_tokens);

  // What this consumer measured of a provider for a model, and its reputation over every model.
  market::Observed observed(const std::string& provider, const std::string& model) const;
  market::Reputation reputation(const std::string& provider) const;
  // The record of that provider for that model alone; null when there is none.
  const market::Observed* recorded(const std::string& provider, const std::string& model) const;
  // The provider answered "busy" and asked not to be sent jobs before `until` (unix seconds).
  void set_busy_until(const std::string& provider, int64_t until) { busy_until_[provider] = until; }
  void set_observed(const std::string& provider, const std::string& model, const market::Observed& o);

  std::vector<ProviderRecord> records(int64_t now) const;
  std::vector<ModelSummary> models(int64_t now) const;

 private:
  struct Entry {
    protocol::ProviderAnnouncement announcement;
    uint32_t ours_at_announcement = 0;
  };
  // Jobs waiting or running there, as estimated from its announcement and our own count.
  static uint32_t estimated_load(const Entry& e, uint32_t ours_now);

  std::chrono::seconds heartbeat_;
  std::map<std::string, Entry> providers_;                                    // by hex pubkey
  std::map<std::pair<std::string, std::string>, market::Observed> observed_;  // by (provider, model)
  std::map<std::string, int64_t> busy_until_;                                 // by provider
};

}  // namespace infernet::consumer::internal
