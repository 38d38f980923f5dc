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

// Lower case, '_' and '-' as spaces, runs of spaces as one, none at the ends: "NVIDIA_A100" -> "nvidia a100".
std::string gpu_words(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '_' || c == '-' || c == ' ' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string describe_gpus(const std::vector<protocol::GpuInfo>& gpus) {
  if (gpus.empty()) return "no GPU";
  std::string out;
  for (const auto& g : gpus) {
    if (!out.empty()) out += ", ";
    out += g.name.substr(0, 64) + " " + std::to_string(g.memory_mb) + " MB";
  }
  return out;
}

}  // namespace

std::string hardware_problem(const protocol::Hardware& hardware, const std::string& gpu_type,
                             uint64_t min_gpu_memory_mb) {
  if (is_cpu_only(gpu_type)) {
    return hardware.gpus.empty()
               ? ""
               : "gpu_type cpu asks for a provider without GPUs (has: " + describe_gpus(hardware.gpus) + ")";
  }
  if (gpu_type.empty() && min_gpu_memory_mb == 0) return "";
  for (const auto& g : hardware.gpus) {
    if ((gpu_type.empty() || gpu_name_matches(gpu_type, g.name)) && g.memory_mb >= min_gpu_memory_mb)
      return "";
  }
  std::string wanted = gpu_type.empty() ? "no GPU" : "no GPU matching gpu_type " + gpu_type;
  if (min_gpu_memory_mb != 0) wanted += " with at least " + std::to_string(min_gpu_memory_mb) + " MB";
  return wanted + " (has: " + describe_gpus(hardware.gpus) + ")";
}

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

uint64_t ProviderDirectory::estimate_price(const protocol::Prices& prices, const MatchRequest& request) {
  long double base = static_cast<long double>(prices.per_job_msat) +
                     static_cast<long double>(prices.per_1k_input_msat) * request.input_words / 1000.0L +
                     static_cast<long double>(prices.per_1k_output_msat) * request.max_tokens / 1000.0L;
  uint32_t percent = 100;
  if (auto it = prices.priority_percent.find(std::string(protocol::canonical_priority(request.priority)));
      it != prices.priority_percent.end()) {
    percent = it->second;
  }
  const long double total = std::ceil(base * percent / 100.0L);
  if (total >= static_cast<long double>(std::numeric_limits<uint64_t>::max())) {
    return std::numeric_limits<uint64_t>::max();
  }
  return static_cast<uint64_t>(total);
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
  // (no free slot, price, load, key): the smallest wins.
  std::optional<std::tuple<bool, uint64_t, uint32_t, std::string>> best;
  for (const auto& [key, entry] : providers_) {
    const auto& a = entry.announcement.announcement;
    if (!serves(a, request.model)) continue;
    const std::string& provider = key;  // clang before 16 cannot capture a structured binding
    auto reject = [&](std::string reason) { m.rejected.push_back({provider, a.name, std::move(reason)}); };
    if (request.tried != nullptr && request.tried->count(key) != 0) {
      reject("already tried for this job");
      continue;
    }
    if (request.resting != nullptr) {
      if (auto r = request.resting->find(key); r != request.resting->end()) {
        const auto left = r->second - std::chrono::steady_clock::now();
        if (left.count() > 0) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
          reject("busy: asked to retry after " + std::to_string((ms + 999) / 1000) + " s");
          continue;
        }
      }
    }
    if (auto problem = hardware_problem(a.hardware, request.gpu_type, request.min_gpu_memory_mb);
        !problem.empty()) {
      reject("hardware: " + problem);
      continue;
    }
    if (auto problem = liveness_problem(key, now); !problem.empty()) {
      reject("not alive: " + problem);
      continue;
    }
    const uint64_t price = estimate_price(a.prices, request);
    if (request.max_cost_msat != 0 && price > request.max_cost_msat) {
      reject("estimated price " + std::to_string(price) + " msat exceeds max_cost_msat " +
             std::to_string(request.max_cost_msat));
      continue;
    }
    const uint32_t load = estimated_load(entry, ours(key));
    const auto& c = a.capacity;
    // A provider announcing no slots says nothing about its capacity; let it answer for itself.
    if (c.slots != 0 && load >= c.slots + c.queue) {
      reject("busy: about " + std::to_string(load) + " jobs for " + std::to_string(c.slots) + " slots and " +
             std::to_string(c.queue) + " queue places");
      continue;
    }
    const bool no_free_slot = c.slots != 0 && load >= c.slots;
    auto candidate = std::make_tuple(no_free_slot, price, load, key);
    if (!best || candidate < *best) best = std::move(candidate);
  }
  if (best) {
    m.provider = std::get<3>(*best);
    m.estimated_price_msat = std::get<1>(*best);
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
  const std::string w = internal::gpu_words(wanted);
  const std::string n = internal::gpu_words(name);
  if (w.empty()) return false;
  for (size_t at = n.find(w); at != std::string::npos; at = n.find(w, at + 1)) {
    const bool starts_word = at == 0 || n[at - 1] == ' ';
    const bool ends_word = at + w.size() == n.size() || n[at + w.size()] == ' ';
    if (starts_word && ends_word) return true;
  }
  return false;
}

}  // namespace infernet::consumer
