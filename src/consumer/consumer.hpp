// The consumer node: the user's side of Infernet. It keeps the job database (SQLite: jobs, their events,
// results, providers and models seen, receipts), finds providers, sends jobs over relays, follows them to a
// result, and reassigns them when a provider fails. The REST API (src/api) is a thin layer over this class.
//
// Job lifecycle (docs/protocol.md): submitted -> assigned -> running -> completed | failed | canceled |
// expired ("matched" while offers are collected for an open-quote job). Every transition is written to the
// database before anything is sent, so a consumer killed at any point and restarted resumes every unfinished
// job (or fails it with a reason); nothing is lost.
//
// Thread-safety: every method may be called from any thread. Watch callbacks run on the node's threads and
// must not block; they may call the node's methods (unwatch() included).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "market/market.hpp"
#include "nostr/keys.hpp"
#include "protocol/protocol.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::consumer {

enum class JobState { kSubmitted, kMatched, kAssigned, kRunning, kCompleted, kFailed, kCanceled, kExpired };

// "submitted", "matched", ... and back. parse_job_state errors name the bad value.
const char* to_string(JobState s);
Result<JobState> parse_job_state(std::string_view s);
bool is_final(JobState s);

// What a user asks for. Validated by submit(): errors name the field.
struct JobSpec {
  std::string client_request_id;      // optional; the same id submitted again returns the same job
  std::string model;                  // required
  std::string prompt;                 // a raw prompt, at most protocol::kMaxPromptBytes, or
  std::vector<ChatMessage> messages;  // a conversation: exactly one of the two
  uint32_t max_tokens = 256;          // 1..65536
  SamplingParams sampling;            // checked by check_sampling (core/generation.hpp)
  bool deterministic = false;         // ask for reproducible text (the model's announced determinism)
  uint64_t max_cost_msat = 0;         // budget cap; 0: none
  std::string priority = "medium";    // low | medium | high | urgent ("normal": medium)
  int64_t deadline = 0;               // finish by (API name also finish_by): unix seconds; 0: none
  int64_t start_by = 0;               // accepted by a provider by then, or expired: unix seconds; 0: none
  std::string provider;               // optional hex pubkey or npub: send only to this provider (direct)
  bool open_quotes = false;           // ask every provider of the model for an offer and take the best
  // Hardware the provider must have (matched against its announced GPUs, see gpu_name_matches): a GPU whose
  // name matches gpu_type, or "cpu" for a provider without GPUs; "" for any. At most 64 bytes.
  std::string gpu_type;
  uint64_t min_gpu_memory_mb = 0;  // a GPU with at least this much memory; 0: no minimum
  // The model file a provider must serve (hex sha256, as announced); "" for any file of that name.
  std::string model_sha256;
  // How to rank eligible providers: "balanced", "cheapest", "fastest"; "" for the node's default
  // (ConsumerOptions::strategy, config consumer.strategy). docs/market.md.
  std::string strategy;
  // Diagnostics recorded as the job's first `note` events (e.g. input keys the API ignored). Not stored in
  // the spec; at most 32 of at most 1024 bytes each.
  std::vector<std::string> notes;
};

// True when `wanted` (a job's gpu_type, e.g. "NVIDIA_A100") names the GPU `name` (as announced, e.g. "NVIDIA
// A100-SXM4-80GB"): compared without case, with '_' and '-' read as spaces, `wanted` must appear in `name` as
// whole words. Thread-safe.
bool gpu_name_matches(std::string_view wanted, std::string_view name);

struct JobRecord {
  std::string id;  // the consumer's job id (random, hex)
  std::string client_request_id;
  JobSpec spec;
  JobState state = JobState::kSubmitted;
  std::string provider;  // hex pubkey of the current or last provider, "" before assignment
  uint32_t attempt = 0;  // 0 before the first assignment
  std::string output;    // the output so far (streamed), or the final output
  std::string error;     // why it failed, expired or was canceled
  protocol::Usage usage;
  uint64_t cost_msat = 0;
  int64_t created_at = 0;  // unix milliseconds
  int64_t updated_at = 0;
};

// One entry of a job's history. Sequence numbers are per job, from 1, without gaps; a client that saw event
// n re-attaches with after_seq = n and misses nothing.
//
// Types and their data (a JSON object; docs/api.md):
//   state     {"state", "provider"?, "attempt"?, "reason"?}   provider and attempt with assigned and running
//   progress  {"attempt", "seq_in_attempt", "text", "tokens"}  text extends the output
//   result    {"attempt", "provider", "ok", "cost_msat", "input_tokens", "output_tokens"}
//   error     {"attempt", "provider", "code", "message"}       a provider's error, or a refused charge
//   note      {"message", "provider"?, "name"?}                a diagnostic: why a provider was passed over,
//                                                             dropped, or why the job waits
struct JobEvent {
  uint64_t seq = 0;
  std::string job_id;
  std::string type;
  std::string data;
  int64_t at = 0;  // unix milliseconds
};

// A change of a job's status worth telling a user about, across all jobs (docs/api.md, "Notifications").
// Ids are global, start at 1 and grow in the order the changes committed (gaps are possible, order is
// never broken), and survive restarts: a client that saw id n asks for after_id = n and misses nothing.
//
// Types: job.submitted, job.started (first assigned to a provider), job.completed, job.failed,
// job.canceled, job.expired, job.error (a provider reported an error; the job may go on elsewhere) and
// budget.threshold (spending reached 50, 80 or 100 percent of max_cost_msat; each once per job) and
// budget.account (the account's charges reached 50, 80 or 100 percent of its daily or monthly budget; each
// once per period; data adds "period" and "limit_msat"; job_id is the job whose charge reached it).
// data: a JSON object {"state", "model", "provider", "attempt", "cost_msat", "max_cost_msat", ...} plus
// "reason" (final states), "code" and "message" (job.error), "threshold_percent", "spent_msat" and
// "estimated" (budget.threshold).
struct Notification {
  uint64_t id = 0;
  std::string type;
  std::string job_id;
  int64_t at = 0;  // unix milliseconds
  std::string data;
};

// Every notification type, in the order above.
const std::vector<std::string>& notification_types();

// Jobs are listed in (created_at, id) order, newest or oldest first. Both keys are fixed at creation and
// the pair is unique, so a position in that order stays valid while jobs are added: paging by "after this
// position" never skips or repeats a job.
enum class ListOrder { kNewestFirst, kOldestFirst };

// A position in the list order: the last job of the previous page.
struct JobCursor {
  int64_t created_at = 0;
  std::string id;

  bool operator==(const JobCursor&) const = default;
};

struct JobQuery {
  std::optional<JobState> state;
  std::optional<std::string> model;
  std::optional<int64_t> since;    // created_at >= since (unix ms)
  std::optional<int64_t> until;    // created_at <= until
  std::optional<JobCursor> after;  // only jobs past this position, in `order`
  ListOrder order = ListOrder::kNewestFirst;
  size_t limit = 100;
};

struct ProviderRecord {
  std::string pubkey;  // hex
  std::string name;
  int64_t last_seen = 0;  // unix seconds of the newest announcement
  int64_t expires_at = 0;
  bool alive = false;  // announced recently enough to be given jobs
  protocol::Announcement announcement;
  market::Reputation reputation;  // this consumer's record of its outcomes, over every model
};

struct ModelSummary {
  std::string name;
  std::vector<std::string> providers;  // hex pubkeys serving it (alive)
  uint64_t min_price_per_1k_output_msat = 0;
};

// One account-level budget period (consumer.budget_daily_msat, consumer.budget_monthly_msat; UTC calendar).
struct AccountBudgetStatus {
  std::string period;           // "daily" | "monthly"
  uint64_t limit_msat = 0;      // 0: no limit
  uint64_t spent_msat = 0;      // charged (receipts) in this period
  uint64_t reserved_msat = 0;   // max_cost_msat of the jobs still in progress
  uint64_t remaining_msat = 0;  // limit - spent - reserved, at least 0; 0 without a limit
  int64_t resets_at = 0;        // unix seconds: the start of the next UTC day / month
};

// What a job would cost before it is submitted (docs/market.md, "Estimates").
struct Estimate {
  std::string model;
  std::string strategy;  // the strategy that chose
  // The input's tokens: counted by a provider with the model's tokenizer ("tokenizer"), or else the bound.
  uint32_t input_tokens = 0;
  std::string input_tokens_source = "bound";  // "tokenizer" | "bound"
  std::string input_tokens_counted_by;        // (tokenizer) the provider that counted, hex
  std::string input_tokens_note;              // (bound) why no count was used
  // market::input_token_bound of the input: what worst cases and price caps use, because a job's price is
  // agreed before its provider counts (docs/market.md, "Estimates").
  uint32_t input_tokens_bound = 0;
  uint32_t max_tokens = 0;
  std::string priority;
  std::optional<market::Assessment> chosen;  // the provider the job would go to now, with its worst case
  market::Cost expected;                     // at the chosen provider: max_tokens of output, measured speed
  uint64_t min_msat = 0;                     // worst cases across every eligible provider
  uint64_t max_msat = 0;
  size_t eligible = 0;                        // providers that meet every requirement (free or queued)
  std::vector<market::Assessment> providers;  // every provider of the model, with its verdict
};

// Why a job is where it is (docs/market.md, "Why"): every provider of its model as the market sees it now,
// with its verdict, and suggestions computed from the announcements.
struct WhyReport {
  std::string job_id;
  JobState state = JobState::kSubmitted;
  std::string provider;  // the current or last provider (hex), "" before assignment
  std::string error;     // why it failed, expired or was canceled
  std::vector<market::Assessment> providers;
  std::vector<std::string> suggestions;
};

// Reserving slots with a provider (docs/market-pricing.md, "Reservations").
struct ReservationSpec {
  std::string provider;  // hex or npub
  uint32_t slots = 1;    // 1..1024; the provider's terms bound it further
  uint32_t hours = 1;    // 1..8760, from when the provider accepts
};

// A reservation as the consumer records it. state: "requested" (sent, no answer yet), "accepted",
// "refused" (reason says why: the provider's code and sentence).
struct ReservationRecord {
  std::string id;
  std::string provider;  // hex
  uint32_t slots = 0;
  uint32_t hours = 0;
  std::string state;
  std::string reason;
  int64_t start = 0;  // (accepted) unix seconds
  int64_t end = 0;    // (accepted) unix seconds
  uint32_t discount_percent = 0;
  int64_t created_at = 0;  // unix seconds
  int64_t updated_at = 0;

  bool active_at(int64_t t) const { return state == "accepted" && start <= t && t < end; }
};

struct ConsumerOptions {
  std::string database;  // SQLite file (created with its schema when missing)
  std::chrono::milliseconds accept_timeout{5000};
  std::chrono::milliseconds stall_timeout{15000};
  uint32_t max_attempts = 3;
  std::chrono::seconds heartbeat{10};           // providers silent for 3 heartbeats are not given jobs
  std::chrono::milliseconds quote_window{500};  // open quotes: how long offers are collected
  uint64_t budget_daily_msat = 0;               // account budgets; 0: none (docs/market-failover.md)
  uint64_t budget_monthly_msat = 0;
  market::Strategy strategy = market::Strategy::kBalanced;  // for jobs that do not name one
  // How long an estimate waits for a provider to count the input with the model's tokenizer before it
  // falls back to the bound; 0: never ask.
  std::chrono::milliseconds token_count_timeout{1500};
};

class ConsumerNode {
 public:
  // Opens (or creates) the database. Does not talk to relays until start().
  static Result<std::unique_ptr<ConsumerNode>> open(const ConsumerOptions& options, relay::RelayPool& pool,
                                                    const nostr::Keypair& keys, const Clock& clock);
  virtual ~ConsumerNode() = default;

  // Subscribes to announcements and to messages addressed to us, and resumes every unfinished job.
  virtual Status start() = 0;
  // Stops timers and subscriptions; jobs stay in the database. Idempotent.
  virtual void stop() = 0;

  // Validates, stores (state submitted) and dispatches. Errors: kInvalidInput naming the field; nothing is
  // stored then. A repeated client_request_id returns the existing job.
  virtual Result<JobRecord> submit(const JobSpec& spec) = 0;
  virtual Result<JobRecord> get(const std::string& job_id) = 0;  // kNotFound
  virtual Result<std::vector<JobRecord>> list(const JobQuery& query) = 0;
  // Cancels an unfinished job (tells its provider); a finished job is returned unchanged. kNotFound.
  virtual Result<JobRecord> cancel(const std::string& job_id) = 0;
  virtual Result<std::vector<JobEvent>> events(const std::string& job_id, uint64_t after_seq) = 0;

  // Calls `on_event` with every event of the job after `after_seq`: first those stored, then live ones as
  // they happen, in order, none twice. Returns a handle for unwatch(). kNotFound for an unknown job.
  virtual Result<uint64_t> watch(const std::string& job_id, uint64_t after_seq,
                                 std::function<void(const JobEvent&)> on_event) = 0;
  virtual void unwatch(uint64_t handle) = 0;

  // Stored notifications with id > after_id, in id order, at most min(limit, 1000). Errors: kIo.
  virtual Result<std::vector<Notification>> notifications(uint64_t after_id, size_t limit) = 0;
  // The id of the newest stored notification, 0 when there is none. Errors: kIo.
  virtual Result<uint64_t> last_notification_id() = 0;
  // Calls `on_notification` with every notification after `after_id`: first those stored, then live ones as
  // they commit, in id order, none twice. Returns a handle for unwatch_all(). Errors: kIo.
  virtual Result<uint64_t> watch_all(uint64_t after_id,
                                     std::function<void(const Notification&)> on_notification) = 0;
  virtual void unwatch_all(uint64_t handle) = 0;

  virtual std::vector<ProviderRecord> providers() = 0;
  virtual std::vector<ModelSummary> models() = 0;
  // The account budgets, daily then monthly.
  virtual std::vector<AccountBudgetStatus> budget() { return {}; }

  // The cost of `spec` as if submitted now; nothing is stored or sent. Errors: kInvalidInput naming the
  // field (the checks of submit()). Test doubles that do not model the market answer kUnsupported.
  virtual Result<Estimate> estimate(const JobSpec& spec) {
    (void)spec;
    return tl::unexpected(Error{ErrorCode::kUnsupported, "estimate: not supported by this node"});
  }
  // Why job `job_id` is where it is. Errors: kNotFound; kIo. Test doubles answer kUnsupported.
  virtual Result<WhyReport> why(const std::string& job_id) {
    (void)job_id;
    return tl::unexpected(Error{ErrorCode::kUnsupported, "why: not supported by this node"});
  }

  // Records a reservation (state "requested") and sends the request to the provider; its answer updates
  // the record. While accepted and current, jobs go to that provider first (if it serves the model and is
  // alive) and are charged its discount. Errors: kInvalidInput naming the field (provider, slots, hours);
  // kIo. The defaults are for consumers that cannot reserve (kUnsupported).
  virtual Result<ReservationRecord> reserve(const ReservationSpec& /*spec*/) {
    return make_error(ErrorCode::kUnsupported, "this consumer does not make reservations");
  }
  // Every reservation recorded, newest first, at most 1000. Errors: kIo.
  virtual Result<std::vector<ReservationRecord>> reservations() {
    return make_error(ErrorCode::kUnsupported, "this consumer does not make reservations");
  }
};

}  // namespace infernet::consumer
