// The consumer node's machinery behind ConsumerNode: the jobs it follows in memory, how it dispatches them,
// what it does with each message received, and its timers. Split over consumer_node.cpp (life cycle and the
// public calls), dispatch.cpp (choosing providers, sending, reassigning, timeouts) and receive.cpp
// (announcements and job messages).
//
// Concurrency: one mutex (mu_) guards every piece of in-memory job state. Decisions are taken under it and
// turned into a PendingWrite: the job database change plus what to publish once it is durable. Writes are
// queued to the JobStore under the lock, so a job's changes commit in the order they were decided; after the
// commit the notifier thread publishes the messages and hands the events to watchers. Nothing waits for the
// database while holding mu_. Relay callbacks hold the core by weak_ptr, so a node destroyed while a
// callback runs stays alive until it returns.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "consumer/consumer.hpp"
#include "consumer/internal/account_budget.hpp"
#include "consumer/internal/provider_directory.hpp"
#include "consumer/internal/watch_hub.hpp"
#include "consumer/job_store.hpp"

namespace infernet::consumer::internal {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

// Unix milliseconds, for the job database's timestamps.
int64_t now_ms();

// Where a waiting job stands in line: priority (high first), then age.
using WaitingKey = std::tuple<int, int64_t, std::string>;

// A job that is not final, as the node follows it.
struct ActiveJob {
  JobRecord record;  // mirrors the database, including changes queued but not yet committed
  uint64_t next_seq = 1;
  std::set<std::string> tried;          // providers (hex) the job was sent to
  std::shared_future<Status> inserted;  // the insert of submit(), for a repeated client_request_id
  std::optional<WaitingKey> waiting;    // set while no provider has it (submitted, or between rounds)
  std::set<std::string> noted;          // notes already written, so a waiting job does not repeat them
  uint32_t input_words = 0;             // of the prompt, for estimates of what was spent
  uint32_t input_tokens = 0;            // market::input_token_bound of the input, for worst-case prices
  uint32_t budget_notified = 0;         // the highest budget.threshold percent notified
  uint64_t budget_reserved = 0;         // what it holds of the account budget (its max_cost_msat)

  // The current attempt.
  bool attempt_open = false;       // sent, and neither finished nor abandoned
  int64_t attempt_started_at = 0;  // unix ms
  std::string request_event_id;
  size_t resume_bytes = 0;  // output delivered before this attempt (sent as resume_text)
  bool accepted = false;
  int64_t first_answer_at = 0;  // unix ms of the acceptance or first token of this attempt (latency)
  int64_t first_token_at = 0;   // unix ms of the first progress of this attempt (speed)
  uint32_t queue_position = 0;  // jobs ahead of it in the provider's queue, as accepted
  uint64_t progress_seq = 0;    // last chunk applied in this attempt
  std::map<uint64_t, protocol::JobProgress> early_chunks;  // arrived before a chunk they follow
  std::optional<SteadyTime> timeout_at;                    // accept or stall deadline
  // Failover (docs/market-failover.md): the gaps between this attempt's progress events set how long a
  // streaming attempt may go quiet; earlier attempts' tokens count in the job's usage.
  std::optional<SteadyTime> last_progress_at;
  SteadyClock::duration longest_gap{};
  uint32_t attempt_tokens = 0;  // this attempt's newest progress count
  uint32_t earlier_tokens = 0;  // delivered by earlier attempts (their last progress counts)

  // Open quotes.
  std::string quote_id;
  uint32_t quote_rounds = 0;
  std::optional<SteadyTime> quote_closes_at;
  std::optional<SteadyTime> next_quote_round;  // a round without a usable offer waits this long
  std::vector<std::pair<std::string, protocol::Offer>> offers;  // (provider hex, offer)
};

// Changes to one job that commit together, and the messages to publish once they have.
struct PendingWrite {
  JobChange change;
  std::vector<nostr::Event> publish;
  bool finished = false;  // the job reached a final state: forget it once queued
};

// What a notification says besides the job's own fields (notifications.cpp).
struct NotificationDetail {
  std::string reason;  // final states
  std::string code;    // job.error
  std::string message;
  uint32_t threshold_percent = 0;  // budget.threshold
  uint64_t spent_msat = 0;
  bool estimated = false;
  std::string period;  // budget.account: "daily" | "monthly"
  uint64_t limit_msat = 0;
};

// Event ids already handled, bounded (oldest forgotten first). The database's seen_events covers restarts.
class SeenIds {
 public:
  explicit SeenIds(size_t capacity) : capacity_(capacity) {}
  bool contains(const std::string& id) const { return ids_.count(id) != 0; }
  void insert(const std::string& id);
  void clear();

 private:
  size_t capacity_;
  std::unordered_set<std::string> ids_;
  std::deque<std::string> order_;
};

// Runs functions one at a time, in order, on its own thread: what happens after a commit (publishing,
// watchers) without holding up the database writer.
class Notifier {
 public:
  Notifier();
  ~Notifier();  // runs what is queued, then joins
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  void post(std::function<void()> fn);
  // Returns once everything posted before the call has run.
  void drain();

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  uint64_t posted_ = 0;                      // guarded by mu_
  uint64_t done_ = 0;                        // guarded by mu_
  std::thread thread_;
};

class NodeCore : public std::enable_shared_from_this<NodeCore> {
 public:
  NodeCore(ConsumerOptions options, relay::RelayPool& pool, const nostr::Keypair& keys, const Clock& clock,
           std::unique_ptr<JobStore> store);
  ~NodeCore();
  NodeCore(const NodeCore&) = delete;
  NodeCore& operator=(const NodeCore&) = delete;

  Status start();
  void stop();
  // Reads the highest notification id stored, so new ones continue after it. Called once, before start().
  Status load_notification_position();
  Result<JobRecord> submit(const JobSpec& spec);
  Result<JobRecord> get(const std::string& job_id);
  Result<std::vector<JobRecord>> list(const JobQuery& query);
  Result<JobRecord> cancel(const std::string& job_id);
  Result<std::vector<JobEvent>> events(const std::string& job_id, uint64_t after_seq);
  Result<uint64_t> watch(const std::string& job_id, uint64_t after_seq,
                         std::function<void(const JobEvent&)> cb);
  void unwatch(uint64_t handle);
  Result<std::vector<Notification>> notifications(uint64_t after_id, size_t limit);
  Result<uint64_t> last_notification_id();
  Result<uint64_t> watch_all(uint64_t after_id, std::function<void(const Notification&)> cb);
  void unwatch_all(uint64_t handle);
  std::vector<ProviderRecord> providers();
  std::vector<ModelSummary> models();
  std::vector<AccountBudgetStatus> budget();
  Result<Estimate> estimate(const JobSpec& spec);
  Result<WhyReport> why(const std::string& job_id);
  // ---- reservations.cpp ----
  Result<ReservationRecord> reserve(const ReservationSpec& spec);
  Result<std::vector<ReservationRecord>> reservations();

 private:
  // ---- consumer_node.cpp ----
  Status load();  // providers, unfinished jobs and recent event ids, from the database; under mu_
  Result<ActiveJob> load_job(JobRecord record);
  void forget_jobs();  // the in-memory side of every job; under mu_
  Result<JobRecord> existing_for_client_id(const std::string& client_request_id);

  // ---- the write path (consumer_node.cpp) ----
  void add_event(ActiveJob& job, PendingWrite& w, std::string type, std::string data);
  void set_state(ActiveJob& job, PendingWrite& w, JobState state, const std::string& reason = "");
  // A note, unless the same one (numbers aside) was written for this job before.
  void note(ActiveJob& job, PendingWrite& w, const std::string& message, const std::string& provider = "",
            const std::string& name = "");
  void save_attempt(ActiveJob& job, PendingWrite& w, const std::string& state,
                    const std::string& reason = "");
  // Queues the write; `done` runs on the writer thread after the commit. Forgets a finished job, so `job`
  // must not be used afterwards.
  void commit(ActiveJob& job, PendingWrite w, std::function<void(const Status&)> done = {});
  void publish_after_commit(std::vector<nostr::Event> events, const std::string& job_id,
                            std::vector<JobEvent> job_events, std::vector<Notification> notifications);
  // Publishes to the relays; an event every relay refused as rate-limited is tried again later
  // (RelayPool::publish_retrying).
  void publish(const nostr::Event& event);
  // Forgets replay-protection ids too old to come back (relays are asked only for recent events).
  void prune_seen_events();

  // ---- notifications.cpp; all under mu_ ----
  void notify(ActiveJob& job, PendingWrite& w, const char* type, const NotificationDetail& detail);
  // job.started on the first assignment, job.<state> on a final state.
  void notify_state(ActiveJob& job, PendingWrite& w, JobState state, const std::string& reason);
  // An "error" event and its job.error notification.
  void provider_error(ActiveJob& job, PendingWrite& w, uint32_t attempt, const std::string& provider,
                      const std::string& code, const std::string& message);
  // budget.threshold for every threshold `spent_msat` reached that was not notified yet.
  void check_budget(ActiveJob& job, PendingWrite& w, uint64_t spent_msat, bool estimated);
  // check_budget with the price of the output so far at the current provider's announced prices.
  void estimate_spending(ActiveJob& job, PendingWrite& w, uint32_t output_tokens);
  // Counts a charge against the account budgets and notifies the thresholds it reached.
  void charge_account(ActiveJob& job, PendingWrite& w, uint64_t cost_msat);

  // ---- market_view.cpp; all under mu_ ----
  // What the market needs to know of a job (its strategy defaulted from options_.strategy).
  market::JobNeeds needs_of(const JobSpec& spec, uint32_t input_tokens) const;
  Match match_now(const JobSpec& spec, uint32_t input_tokens, const std::set<std::string>* tried) const;
  // The reputation and measurements of the attempt's provider, from how the attempt ended (its
  // attempt_state: "completed", "failed", "timed-out", ...), kept in the directory and the database.
  void record_outcome(ActiveJob& job, const std::string& attempt_state, uint32_t output_tokens);
  Status load_reputations();

  // ---- dispatch.cpp; all under mu_ ----
  void dispatch(ActiveJob& job, PendingWrite& w);
  void send_to(ActiveJob& job, PendingWrite& w, const std::string& provider, const std::string& quote_id);
  // Ends the current attempt (attempt row state and reason) and tries the next provider, or fails the job.
  void reassign(ActiveJob& job, PendingWrite& w, const std::string& attempt_state, const std::string& reason,
                bool cancel_at_provider);
  void end_attempt(ActiveJob& job, PendingWrite& w, const std::string& attempt_state,
                   const std::string& reason, bool cancel_at_provider);
  void finish(ActiveJob& job, PendingWrite& w, JobState state, const std::string& reason);
  void wait_for_provider(ActiveJob& job, PendingWrite& w, const std::string& why);
  void start_quote_round(ActiveJob& job, PendingWrite& w);
  void close_quote_round(ActiveJob& job, PendingWrite& w);
  void dispatch_waiting();
  void timer_loop();
  void check_timers();
  std::chrono::milliseconds tick() const;
  // How long the job's current attempt may go without progress from now on (docs/market-failover.md).
  SteadyClock::duration stall_limit(const ActiveJob& job) const;
  // "" while the job's provider keeps heartbeating, else why it counts as gone.
  std::string heartbeat_problem(const std::string& provider, int64_t unix_now) const;

  // ---- receive.cpp ----
  void on_announcement(const nostr::Event& event);
  void on_job_message(const nostr::Event& event);
  void on_announcements_loaded();
  void handle(const protocol::Opened& o, const protocol::JobStatus& m, const std::string& event_id);
  void handle(const protocol::Opened& o, const protocol::JobProgress& m, const std::string& event_id);
  void handle(const protocol::Opened& o, const protocol::JobResult& m, const std::string& event_id);
  void handle(const protocol::Opened& o, const protocol::Offer& m, const std::string& event_id);
  // The job a message is about when it comes from that job's current provider and attempt; else logs why
  // it is ignored and returns null.
  ActiveJob* addressed_job(const protocol::Opened& o, const std::string& job_id, uint32_t attempt,
                           const char* what);
  void apply_chunk(ActiveJob& job, PendingWrite& w, const protocol::JobProgress& chunk);

  // ---- token_counts.cpp ----
  // The input's token count from `provider`'s tokenizer, waiting up to options_.token_count_timeout on
  // `lock` (mu_, released while waiting); a count seen before comes from the cache. `bound` is the input's
  // market::input_token_bound: a count above it is refused. Errors say why there is none (no answer in
  // time, the provider's refusal, a count above the bound).
  Result<uint32_t> count_input(std::unique_lock<std::mutex>& lock, const JobSpec& spec, uint32_t bound,
                               const std::string& provider);
  void handle(const protocol::Opened& o, const protocol::TokenCountAnswer& m, const std::string& event_id);

  // ---- reservations.cpp; under mu_ ----
  Status load_reservations();
  void handle(const protocol::Opened& o, const protocol::ReservationAnswer& m, const std::string& event_id);
  // A provider where a reservation of ours is current and that can take the job now (serves its model,
  // alive, not tried, not resting), or nullopt.
  std::optional<std::string> reserved_provider(const ActiveJob& job) const;

  const ConsumerOptions options_;
  relay::RelayPool& pool_;
  const nostr::Keypair keys_;
  const std::string our_hex_;
  const Clock& clock_;
  std::unique_ptr<JobStore> store_;
  WatchHub hub_;
  NotificationHub notification_hub_;
  Notifier notifier_;

  std::mutex mu_;
  bool started_ = false;                                       // guarded by mu_
  bool announcements_loaded_ = false;                          // guarded by mu_
  bool capacity_freed_ = false;                                // guarded by mu_
  std::unordered_map<std::string, ActiveJob> jobs_;            // guarded by mu_
  std::unordered_map<std::string, std::string> by_client_id_;  // guarded by mu_; active jobs only
  std::unordered_map<std::string, uint32_t> in_flight_;        // guarded by mu_; our jobs per provider
  std::unordered_map<std::string, std::string> quotes_;        // guarded by mu_; quote id -> job id
  std::set<WaitingKey> waiting_;                               // guarded by mu_
  ProviderDirectory directory_;                                // guarded by mu_
  AccountBudget budget_;                                       // guarded by mu_
  // When each provider's newest announcement arrived, on our clock (unix s): heartbeats are judged by
  // arrival, so a provider whose clock is behind is not taken for silent.
  std::unordered_map<std::string, int64_t> heard_at_;  // guarded by mu_
  // Providers dropped mid-job (stalled or silent): no new jobs until their next announcement arrives, so
  // that jobs do not queue up on a dead provider for the 3 heartbeats it takes to stop counting as alive.
  std::set<std::string> suspects_;  // guarded by mu_
  // Providers that answered "busy", until their retry_after_seconds pass: no job is sent to them before.
  RestingProviders resting_;  // guarded by mu_
  // Reservations requested or accepted and not ended, by id; guarded by mu_.
  std::map<std::string, ReservationRecord> reservations_;
  // Token counts asked for and not answered yet, by request id; answers wake counted_ (with mu_).
  struct PendingCount {
    std::string provider;  // hex: only its answer counts
    std::optional<protocol::TokenCountAnswer> answer;
  };
  std::map<std::string, PendingCount> pending_counts_;  // guarded by mu_
  std::condition_variable counted_;
  // Counts already answered, by (model, tokenizer, input digest); the oldest is forgotten past a bound.
  std::map<std::string, uint32_t> known_counts_;          // guarded by mu_
  std::deque<std::string> known_counts_order_;            // guarded by mu_
  SeenIds seen_;                                          // guarded by mu_
  uint64_t last_notification_id_ = 0;                     // guarded by mu_
  std::vector<relay::SubscriptionHandle> subscriptions_;  // guarded by mu_

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool timer_stop_ = false;  // guarded by timer_mu_
  std::thread timer_;
};

}  // namespace infernet::consumer::internal
