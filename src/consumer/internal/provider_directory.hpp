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
#include "protocol/protocol.hpp"

namespace infernet::consumer::internal {

using RestingProviders = std::map<std::string, std::chrono::steady_clock::time_point>;

// What a job asks of a provider.
struct MatchRequest {
  std::string model;
  uint32_t input_words = 0;
  uint32_t max_tokens = 0;
  std::string priority = "medium";
  uint64_t max_cost_msat = 0;                    // 0: no cap
  const std::set<std::string>* tried = nullptr;  // providers (hex) already tried for the job
  // Providers (hex) that answered "busy" and when their retry-after ends; they are passed over until then.
  const RestingProviders* resting = nullptr;
  std::string gpu_type;  // JobSpec::gpu_type: "" any, "cpu", or a GPU name
  uint64_t min_gpu_memory_mb = 0;
};

// "" when `hardware` meets a job's gpu_type and min_gpu_memory_mb (JobSpec), else why not, for a note
// ("no GPU matching gpu_type NVIDIA_A100 (has: NVIDIA T4 15360 MB)").
std::string hardware_problem(const protocol::Hardware& hardware, const std::string& gpu_type,
                             uint64_t min_gpu_memory_mb);

struct Rejection {
  std::string provider;  // hex
  std::string name;
  std::string reason;
};

struct Match {
  std::optional<std::string> provider;  // hex of the chosen one
  uint64_t estimated_price_msat = 0;
  std::vector<Rejection>
      rejected;  // providers of the model ruled out, and why (not those merely ranked lower)
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

  // Chooses among alive providers serving the model, not tried yet, with the hardware asked for, whose
  // estimated price fits the budget and that have room (estimated): those with a free slot first, then the
  // cheapest, then the least loaded.
  Match match(const MatchRequest& request, int64_t now, const InFlight& ours) const;

  // per_job + per_1k_input * words / 1000 + per_1k_output * max_tokens / 1000, times the priority's percent
  // (100 when the provider names none); rounded up, saturating.
  static uint64_t estimate_price(const protocol::Prices& prices, const MatchRequest& request);

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
  std::map<std::string, Entry> providers_;  // by hex pubkey
};

}  // namespace infernet::consumer::internal
