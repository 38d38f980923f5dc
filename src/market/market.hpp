// The market: which providers may take a job (hard requirements), how the eligible ones are ranked (a score
// from price, reputation, measured speed, latency and load, weighted by a strategy), and what a job could
// cost at each (the worst case the consumer compares with max_cost_msat, and the terms that make it up).
// docs/market.md is its specification in prose.
//
// Pure functions over announcements and the consumer's own observations: no I/O, no clock, no locks. Every
// function is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/generation.hpp"
#include "core/result.hpp"
#include "protocol/protocol.hpp"

namespace infernet::market {

// How eligible providers are ranked. Every strategy puts providers with a free slot before those that
// would queue the job, and never relaxes a hard requirement.
enum class Strategy {
  kBalanced,  // weighted score of price, reputation, speed, latency and load (the default)
  kCheapest,  // lowest worst-case price first; the balanced score breaks ties
  kFastest,   // measured speed, latency and load; price only as the budget allows
};

// "balanced", "cheapest", "fastest" and back. parse_strategy's error (kInvalidInput) names `field`.
const char* to_string(Strategy s);
Result<Strategy> parse_strategy(std::string_view s, std::string_view field = "strategy");

// Upper bound on the input tokens of a prompt or conversation, for a consumer that has no tokenizer: every
// token of a byte-level BPE or SentencePiece tokenizer with byte fallback covers at least one byte, so a
// text of n bytes is at most n tokens; a conversation adds kChatTemplateTokens per message for the chat
// template's role markers and once more for the assistant's turn it opens, and every input kSpecialTokens
// for BOS and the like. 32 covers ChatML spelled out in bytes ("<|im_start|>user\n...<|im_end|>\n" is 24
// plus the role), as a vocabulary without the markers as special tokens renders it. Saturates at
// UINT32_MAX.
constexpr uint32_t kChatTemplateTokens = 32;
constexpr uint32_t kSpecialTokens = 8;
uint32_t input_token_bound(std::string_view prompt, const std::vector<ChatMessage>& messages);

// The consumer's own record of a provider's outcomes (docs/market.md, "Reputation").
struct Reputation {
  uint64_t completed = 0;  // results accepted and paid
  uint64_t failed = 0;     // errors, rejections after acceptance, dropped out (stopped announcing)
  uint64_t slow = 0;       // did not accept in time, or stalled (no token within the stall timeout)
  uint64_t wrong = 0;      // a result that failed the consumer's checks (over the price, over max_tokens)

  uint64_t total() const { return completed + failed + slow + wrong; }
  // (completed + 1) / (total + 2): 0.5 for a stranger, towards 1 with each success, towards 0 with each
  // failure; a `wrong` result counts three times, since it is a broken promise rather than bad luck.
  double reliability() const;
  bool operator==(const Reputation&) const = default;
};

// What this consumer measured of a provider for one model.
struct Observed {
  Reputation reputation;
  double tokens_per_second = 0;  // output tokens per second of generation; 0: never measured
  double accept_ms = 0;          // request sent -> accepted (or first token); 0: never measured
};

// What a job asks of a provider.
struct JobNeeds {
  std::string model;
  std::string model_sha256;  // "": any file of that name; else the announced fingerprint must match
  std::string engine;        // "": any engine
  std::string gpu_type;      // "": any; "cpu": a provider without GPUs; else a GPU name (gpu_name_matches)
  uint64_t min_gpu_memory_mb = 0;
  uint64_t max_cost_msat = 0;  // 0: no cap
  uint32_t input_tokens = 0;   // an upper bound (input_token_bound) or an exact count from a provider
  uint32_t max_tokens = 0;
  std::string priority = "normal";
  // Seconds the job may run at most (time to its finish-by deadline); 0: unbounded. Bounds the per-second
  // term of the worst case.
  double max_seconds = 0;
  Strategy strategy = Strategy::kBalanced;
};

// A job's price at one provider, term by term (each already in msat, before the priority multiplier).
struct Cost {
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;  // max_tokens for the worst case
  uint64_t per_job_msat = 0;
  uint64_t input_msat = 0;   // per_1k_input * input_tokens / 1000, rounded up
  uint64_t output_msat = 0;  // per_1k_output * output_tokens / 1000, rounded up
  double seconds = 0;        // seconds charged by the per-second term
  uint64_t time_msat = 0;    // per_second * seconds, rounded up
  uint32_t priority_percent = 100;
  uint64_t total_msat = 0;  // (sum of the terms) * percent / 100, rounded up, saturating
  bool bounded = true;      // false: per-second pricing with no bound on the time; total is then unknown
};

// The price of a job of `needs.input_tokens` and `output_tokens` at `prices`, charging `seconds` of time.
// Every term rounds up, so it is never below what a provider computing in exact arithmetic charges.
Cost cost_at(const protocol::Prices& prices, const std::string& priority, uint32_t input_tokens,
             uint32_t output_tokens, double seconds);

// The most the job could cost at `prices`: input bound, max_tokens of output, and for per-second prices the
// whole time the job may run (needs.max_seconds). Unbounded (bounded = false) when the provider charges per
// second and the job has no deadline: such a provider cannot be promised to stay under a cap.
Cost worst_case_cost(const protocol::Prices& prices, const JobNeeds& needs);

// The price the consumer expects (the estimate's headline): max_tokens of output and, for per-second
// prices, max_tokens / `tokens_per_second` seconds (kAssumedTokensPerSecond when never measured).
constexpr double kAssumedTokensPerSecond = 20;
Cost expected_cost(const protocol::Prices& prices, const JobNeeds& needs, double tokens_per_second);

// True when `wanted` (a job's gpu_type, e.g. "NVIDIA_A100") names the GPU `name` (as announced): compared
// without case, with '_' and '-' read as spaces; `wanted` must appear in `name` as whole words.
bool gpu_name_matches(std::string_view wanted, std::string_view name);
// True for the gpu_type "cpu" (any case).
bool is_cpu_only(std::string_view gpu_type);
// "" when `hardware` meets gpu_type and min_gpu_memory_mb, else why not ("no GPU matching gpu_type
// NVIDIA_A100 (has: Tesla T4 15360 MB)").
std::string hardware_problem(const protocol::Hardware& hardware, const std::string& gpu_type,
                             uint64_t min_gpu_memory_mb);

// One provider as the chooser sees it. Liveness and "already tried" are the caller's to check first.
struct Candidate {
  std::string provider;  // hex pubkey
  const protocol::Announcement* announcement = nullptr;
  uint32_t load = 0;  // jobs running or waiting there now (estimated by the caller)
  Observed observed;
  // Seconds the provider asked us to wait (it answered "busy" with retry_after); 0: none. Such a provider is
  // delayed and not chosen until then.
  uint32_t retry_after_s = 0;
};

enum class Verdict {
  kChosen,    // the job goes there
  kEligible,  // meets every requirement, ranked lower
  // Meets every requirement but has no free slot, so the job would queue (ranked after free ones); or it
  // asked to be left alone for a while (busy with retry-after; not chosen until then).
  kDelayed,
  kRejected,  // a hard requirement failed, or it is full (slots and queue)
};
const char* to_string(Verdict v);

struct Assessment {
  std::string provider;
  std::string name;
  Verdict verdict = Verdict::kRejected;
  std::string reason;  // kRejected: the first requirement that failed; kDelayed: the queue ahead
  Cost worst_case;     // computed for every provider that serves the model
  double score = 0;    // 0..1, higher is better (eligible and delayed ones)
  uint32_t load = 0;
  uint32_t slots = 0;
};

struct Choice {
  std::optional<size_t> chosen;      // index into `assessed`
  std::vector<Assessment> assessed;  // every candidate that serves the model, in candidate order
};

// "" when the provider meets every hard requirement of the job, else the first that fails: the model
// (name, then sha256), the engine, the hardware, then the worst-case price against the cap. `cost` receives
// the worst case when the model is served. Load is not a requirement here (choose() handles it).
std::string requirement_problem(const protocol::Announcement& a, const JobNeeds& needs, Cost* cost);

// Assesses every candidate serving needs.model and picks the best by needs.strategy: a provider with a
// free slot before one that would queue the job; full providers (load >= slots + queue, when slots are
// announced) are rejected as busy. Ties fall to the smaller pubkey, so the choice is deterministic.
Choice choose(const JobNeeds& needs, const std::vector<Candidate>& candidates);

}  // namespace infernet::market
