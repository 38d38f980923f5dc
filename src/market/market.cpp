#include "market/market.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace infernet::market {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > kMax - b ? kMax : a + b;
}

// ceil(a * b / divisor) in 128 bits, saturated to 64: rounding up keeps every term an upper bound of what a
// provider computing exactly (or rounding down) charges.
__extension__ using Wide = unsigned __int128;
uint64_t scaled_up(uint64_t a, uint64_t b, uint64_t divisor) {
  const Wide product = static_cast<Wide>(a) * b;
  const Wide v = product / divisor + (product % divisor != 0 ? 1 : 0);
  return v > kMax ? kMax : static_cast<uint64_t>(v);
}

uint32_t saturating_u32(uint64_t v) {
  return v > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                  : static_cast<uint32_t>(v);
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

const protocol::ModelInfo* served_model(const protocol::Announcement& a, const std::string& model) {
  for (const auto& m : a.models) {
    if (m.name == model) return &m;
  }
  return nullptr;
}

bool same_hex(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Weights of the score's parts per strategy: price, reliability, speed, latency, free capacity.
struct Weights {
  double price, reliability, speed, latency, capacity;
};
constexpr Weights kBalancedWeights{0.35, 0.25, 0.15, 0.10, 0.15};
constexpr Weights kFastestWeights{0.0, 0.10, 0.45, 0.25, 0.20};

// A measured value relative to the best measured among the eligible (1 = the best); 0.5 when unmeasured,
// so a stranger is neither preferred nor shunned for speed it has had no chance to show.
double relative(double value, double best, bool higher_is_better) {
  if (value <= 0 || best <= 0) return 0.5;
  return higher_is_better ? value / best : best / value;
}

}  // namespace

const char* to_string(Strategy s) {
  switch (s) {
    case Strategy::kCheapest:
      return "cheapest";
    case Strategy::kFastest:
      return "fastest";
    case Strategy::kBalanced:
      break;
  }
  return "balanced";
}

Result<Strategy> parse_strategy(std::string_view s, std::string_view field) {
  if (s == "balanced") return Strategy::kBalanced;
  if (s == "cheapest") return Strategy::kCheapest;
  if (s == "fastest") return Strategy::kFastest;
  return tl::unexpected(
      Error{ErrorCode::kInvalidInput, std::string(field) + ": must be balanced, cheapest or fastest"});
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kChosen:
      return "chosen";
    case Verdict::kEligible:
      return "eligible";
    case Verdict::kDelayed:
      return "delayed";
    case Verdict::kRejected:
      break;
  }
  return "rejected";
}

uint32_t input_token_bound(std::string_view prompt, const std::vector<ChatMessage>& messages) {
  uint64_t bound = kSpecialTokens + prompt.size();
  for (const auto& m : messages)
    bound += kChatTemplateTokens + m.role.size() + m.content.size();
  if (!messages.empty()) bound += kChatTemplateTokens;  // the generation prompt: the assistant's turn
  return saturating_u32(bound);
}

double Reputation::reliability() const {
  const double good = static_cast<double>(completed) + 1.0;
  const double all = static_cast<double>(completed + failed + slow) + 3.0 * static_cast<double>(wrong) + 2.0;
  return good / all;
}

Cost cost_at(const protocol::Prices& prices, const std::string& priority, uint32_t input_tokens,
             uint32_t output_tokens, double seconds) {
  Cost c;
  c.input_tokens = input_tokens;
  c.output_tokens = output_tokens;
  c.per_job_msat = prices.per_job_msat;
  c.input_msat = scaled_up(prices.per_1k_input_msat, input_tokens, 1000);
  c.output_msat = scaled_up(prices.per_1k_output_msat, output_tokens, 1000);
  if (prices.per_second_msat > 0 && seconds > 0) {
    c.seconds = seconds;
    // Whole milliseconds, rounded up, as the provider counts engine time in whole milliseconds.
    const double ms = std::ceil(seconds * 1000.0);
    const uint64_t ms_int = ms >= 1.8e19 ? kMax : static_cast<uint64_t>(ms);
    c.time_msat = scaled_up(prices.per_second_msat, ms_int, 1000);
  }
  if (auto it = prices.priority_percent.find(priority); it != prices.priority_percent.end()) {
    c.priority_percent = it->second;
  }
  uint64_t base = saturating_add(c.per_job_msat, c.input_msat);
  base = saturating_add(base, c.output_msat);
  base = saturating_add(base, c.time_msat);
  c.total_msat = scaled_up(base, c.priority_percent, 100);
  return c;
}

Cost worst_case_cost(const protocol::Prices& prices, const JobNeeds& needs) {
  Cost c = cost_at(prices, needs.priority, needs.input_tokens, needs.max_tokens, needs.max_seconds);
  if (prices.per_second_msat > 0 && needs.max_seconds <= 0) {
    c.bounded = false;
    c.total_msat = kMax;
  }
  return c;
}

Cost expected_cost(const protocol::Prices& prices, const JobNeeds& needs, double tokens_per_second) {
  const double speed = tokens_per_second > 0 ? tokens_per_second : kAssumedTokensPerSecond;
  return cost_at(prices, needs.priority, needs.input_tokens, needs.max_tokens, needs.max_tokens / speed);
}

bool gpu_name_matches(std::string_view wanted, std::string_view name) {
  const std::string w = gpu_words(wanted);
  const std::string n = gpu_words(name);
  if (w.empty()) return false;
  for (size_t at = n.find(w); at != std::string::npos; at = n.find(w, at + 1)) {
    const bool starts_word = at == 0 || n[at - 1] == ' ';
    const bool ends_word = at + w.size() == n.size() || n[at + w.size()] == ' ';
    if (starts_word && ends_word) return true;
  }
  return false;
}

bool is_cpu_only(std::string_view gpu_type) {
  return gpu_type.size() == 3 && (gpu_type[0] | 0x20) == 'c' && (gpu_type[1] | 0x20) == 'p' &&
         (gpu_type[2] | 0x20) == 'u';
}

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

std::string requirement_problem(const protocol::Announcement& a, const JobNeeds& needs, Cost* cost) {
  const protocol::ModelInfo* model = served_model(a, needs.model);
  if (model == nullptr) return "does not serve model " + needs.model;
  const Cost worst = worst_case_cost(a.prices, needs);
  if (cost != nullptr) *cost = worst;
  if (!needs.model_sha256.empty() && !same_hex(model->sha256, needs.model_sha256)) {
    return "model: serves " + needs.model + " with sha256 " +
           (model->sha256.empty() ? std::string("(none announced)") : model->sha256.substr(0, 16) + "...") +
           ", not " + needs.model_sha256.substr(0, 16) + "...";
  }
  if (!needs.engine.empty() && model->engine != needs.engine) {
    return "engine: serves " + needs.model + " with " + model->engine + ", not " + needs.engine;
  }
  if (auto problem = hardware_problem(a.hardware, needs.gpu_type, needs.min_gpu_memory_mb);
      !problem.empty()) {
    return "hardware: " + problem;
  }
  if (needs.max_cost_msat != 0) {
    if (!worst.bounded) {
      return "price: charges " + std::to_string(a.prices.per_second_msat) +
             " msat per second and the job has no deadline to bound its time, so its cost could exceed "
             "max_cost_msat " +
             std::to_string(needs.max_cost_msat);
    }
    if (worst.total_msat > needs.max_cost_msat) {
      return "worst-case price " + std::to_string(worst.total_msat) + " msat exceeds max_cost_msat " +
             std::to_string(needs.max_cost_msat);
    }
  }
  return "";
}

Choice choose(const JobNeeds& needs, const std::vector<Candidate>& candidates) {
  Choice choice;
  std::vector<size_t> ranked;  // indexes into choice.assessed of eligible or delayed ones
  std::vector<double> speeds;
  std::vector<double> latencies;
  for (const auto& c : candidates) {
    if (c.announcement == nullptr || served_model(*c.announcement, needs.model) == nullptr) continue;
    const auto& a = *c.announcement;
    Assessment as;
    as.provider = c.provider;
    as.name = a.name;
    as.load = c.load;
    as.slots = a.capacity.slots;
    as.reason = requirement_problem(a, needs, &as.worst_case);
    const auto& cap = a.capacity;
    if (as.reason.empty() && cap.slots != 0 && c.load >= cap.slots + cap.queue) {
      as.reason = "busy: about " + std::to_string(c.load) + " jobs for " + std::to_string(cap.slots) +
                  " slots and " + std::to_string(cap.queue) + " queue places";
    }
    if (as.reason.empty() && c.retry_after_s > 0) {
      as.verdict = Verdict::kDelayed;
      as.reason = "busy: asked to retry after " + std::to_string(c.retry_after_s) + " s";
    } else if (as.reason.empty()) {
      // A provider announcing no slots says nothing about its capacity; it answers for itself.
      if (cap.slots != 0 && c.load >= cap.slots) {
        as.verdict = Verdict::kDelayed;
        as.reason = "no free slot: " + std::to_string(cap.slots) + " slots busy, " +
                    std::to_string(c.load - cap.slots) + " jobs queued ahead";
      } else {
        as.verdict = Verdict::kEligible;
      }
      ranked.push_back(choice.assessed.size());
    }
    choice.assessed.push_back(std::move(as));
    speeds.push_back(c.observed.tokens_per_second);
    latencies.push_back(c.observed.accept_ms);
  }
  if (ranked.empty()) return choice;

  // Scores relative to the best eligible offer of each kind.
  uint64_t cheapest = kMax;
  double fastest = 0;
  double quickest = 0;
  for (size_t i : ranked) {
    cheapest = std::min(cheapest, choice.assessed[i].worst_case.total_msat);
    fastest = std::max(fastest, speeds[i]);
    if (latencies[i] > 0) quickest = quickest == 0 ? latencies[i] : std::min(quickest, latencies[i]);
  }
  // Candidates and assessments are in the same order; find each assessment's candidate once.
  std::vector<const Candidate*> source;
  for (const auto& c : candidates) {
    if (c.announcement != nullptr && served_model(*c.announcement, needs.model) != nullptr)
      source.push_back(&c);
  }
  const Weights& w = needs.strategy == Strategy::kFastest ? kFastestWeights : kBalancedWeights;
  for (size_t i : ranked) {
    Assessment& as = choice.assessed[i];
    const Candidate& c = *source[i];
    const double price =
        (static_cast<double>(cheapest) + 1.0) / (static_cast<double>(as.worst_case.total_msat) + 1.0);
    const double capacity =
        as.slots == 0 ? 0.5 : (as.load >= as.slots ? 0.0 : 1.0 - static_cast<double>(as.load) / as.slots);
    as.score = w.price * price + w.reliability * c.observed.reputation.reliability() +
               w.speed * relative(speeds[i], fastest, true) +
               w.latency * relative(latencies[i], quickest, false) + w.capacity * capacity;
  }
  auto key = [&](size_t i) {
    const Assessment& as = choice.assessed[i];
    const bool queued = as.verdict == Verdict::kDelayed;
    const uint64_t price = needs.strategy == Strategy::kCheapest ? as.worst_case.total_msat : 0;
    return std::make_tuple(queued, price, -as.score, as.provider);
  };
  const size_t best =
      *std::min_element(ranked.begin(), ranked.end(), [&](size_t x, size_t y) { return key(x) < key(y); });
  choice.assessed[best].verdict = Verdict::kChosen;
  choice.chosen = best;
  return choice;
}

}  // namespace infernet::market
