// Internal to the provider module: the provider node's state and its stages.
//
// Stages and threads (DESIGN.md, "Threads and data flow"):
//  - relay callbacks (io threads) only copy each event into the inbox;
//  - the dispatcher thread opens and checks every event, decides (accept, reject, cancel, offer), reads the
//    job record, and refreshes the announcement (heartbeat, and at most once a second after a change of
//    load);
//  - the record's BatchWriter thread commits each write and only then publishes what depends on it (the
//    acceptance, the result), and hands accepted jobs to the engine;
//  - the engine's threads stream each job's pieces as progress events and seal its result.
// A job's order on the wire is therefore: accepted (after its record) -> running -> progress 1, 2, ... ->
// result (after its record).
//
// Lifetime: NodeCore is held by shared_ptr; every callback it registers (relay, writer, engine) holds a
// weak_ptr, so a callback arriving after the node is gone does nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "engine/engine.hpp"
#include "nostr/keys.hpp"
#include "protocol/protocol.hpp"
#include "provider/internal/job_records.hpp"
#include "provider/provider.hpp"
#include "relay/relay_pool.hpp"
#include "store/batch_writer.hpp"

namespace infernet::provider::internal {

using SteadyClock = std::chrono::steady_clock;

// One accepted job, from acceptance until its result is recorded.
struct ActiveJob {
  ActiveJob(std::string key_, std::string request_id_, const nostr::PublicKey& consumer_,
            protocol::JobRequest request_, uint32_t input_tokens_)
      : key(std::move(key_)),
        request_id(std::move(request_id_)),
        consumer(consumer_),
        request(std::move(request_)),
        input_tokens(input_tokens_) {}

  const std::string key;         // consumer/job_id/attempt; also the engine run's id
  const std::string request_id;  // hex id of the request event
  const nostr::PublicKey consumer;
  const protocol::JobRequest request;
  const uint32_t input_tokens;

  uint64_t arrival = 0;           // guarded by NodeCore::mu_: order of acceptance, FIFO within a priority
  bool cancel_requested = false;  // guarded by NodeCore::mu_
  bool in_engine = false;         // guarded by NodeCore::mu_: submitted, on_done not yet handled
  // Set when accepted: the reservation whose slot the job may take ("" none) and its discount.
  std::string reservation_id;
  uint32_t discount_percent = 0;

  // The output stream, written by the engine's callbacks; guarded by stream_mu.
  std::mutex stream_mu;
  bool running_sent = false;  // the status "running" is out (with the acceptance, when a slot was free)
  bool started = false;       // the engine has delivered its first piece
  SteadyClock::time_point submitted_at{};  // handed to the engine
  SteadyClock::time_point started_at{};
  bool truncated = false;            // stopped at the protocol's output limit
  bool over_budget = false;          // stopped because the next token would cost more than max_cost_msat
  uint32_t engine_input_tokens = 0;  // the prompt's tokens as the engine counted them; 0 until it says
  std::string output;                // everything delivered so far
  std::string pending;               // delivered by the engine, not yet sent as progress
  uint32_t pending_tokens = 0;
  uint32_t tokens = 0;  // output tokens generated so far
  uint64_t seq = 0;     // progress events sent
  SteadyClock::time_point last_flush{};
};

class NodeCore : public std::enable_shared_from_this<NodeCore> {
 public:
  NodeCore(const ProviderOptions& options, relay::RelayPool& pool, engine::Engine& engine,
           const nostr::Keypair& keys, const Clock& clock, std::unique_ptr<store::BatchWriter> writer,
           JobRecordReader reader);
  ~NodeCore();
  NodeCore(const NodeCore&) = delete;
  NodeCore& operator=(const NodeCore&) = delete;

  Status start();
  void stop();
  ProviderStats stats() const;

 private:
  // ---- dispatcher (provider_node.cpp) ----
  void enqueue(const nostr::Event& event);
  void dispatch_loop();
  void handle_event(const nostr::Event& event);
  void handle_request(const protocol::Opened& opened, const protocol::JobRequest& request);
  void handle_cancel(const protocol::Opened& opened, const protocol::JobCancel& cancel);
  void handle_receipt(const protocol::Opened& opened, const protocol::JobReceipt& receipt);
  void handle_quote(const nostr::Event& event);
  void handle_reservation(const protocol::Opened& opened, const protocol::ReservationRequest& request);
  // ---- token_counts.cpp ----
  void handle_token_count(const protocol::Opened& opened, const protocol::TokenCountRequest& request);
  // The reservation under which `consumer`'s job may run now, or null; mu_ held.
  const Reservation* reservation_for(const std::string& consumer_hex, int64_t now) const;
  void reject(const nostr::PublicKey& consumer, const protocol::JobRequest& request, std::string code,
              std::string reason, uint32_t retry_after_seconds = 0);
  // Publishes the announcement; unless `even_if_unchanged` (the heartbeat), only when the load differs from
  // the last one published. start()'s thread, then the dispatcher's.
  void announce(bool even_if_unchanged);
  void request_announce();
  Status recover_unfinished();
  void subscribe(int64_t since);

  // ---- jobs (job_runner.cpp) ----
  void accept(const std::shared_ptr<ActiveJob>& job, uint32_t queue_position);
  void on_accept_recorded(const std::shared_ptr<ActiveJob>& job, const nostr::Event& accepted,
                          const Status& recorded);
  // Hands waiting jobs to the engine while a slot is free: reserved jobs first (see reservations), then
  // urgent, high, medium, low, first come first served within a level. A running job is never preempted.
  // Any thread; takes mu_.
  void start_waiting_jobs();
  // Runs a job start_waiting_jobs took a slot for.
  void run_on_engine(const std::shared_ptr<ActiveJob>& job);
  // What the job costs with `output_tokens` after `seconds` of engine time, capped at its max_cost_msat.
  uint64_t charge(const ActiveJob& job, uint32_t input_tokens, uint32_t output_tokens, double seconds) const;
  void on_piece(ActiveJob& job, std::string_view piece, uint32_t tokens);
  void on_done(const std::shared_ptr<ActiveJob>& job, Result<engine::GenerateUsage> outcome);
  void flush_progress(ActiveJob& job);  // job.stream_mu held
  void send_status(const ActiveJob& job, protocol::JobStatusCode code);
  void finish(const std::shared_ptr<ActiveJob>& job, protocol::JobResult result, JobRecordState state);
  void forget(const std::shared_ptr<ActiveJob>& job, std::optional<JobRecordState> counted, double seconds);
  protocol::JobResult canceled_result(const ActiveJob& job) const;

  // ---- shared ----
  void publish(const nostr::Event& event, const char* what);
  uint32_t active_jobs() const;                // mu_ held
  uint32_t eta_ms(uint32_t jobs_ahead) const;  // mu_ held
  // "" when a job asking to start by `start_by` (unix s) can, else why not; takes mu_.
  std::string start_by_problem(int64_t start_by, int64_t now);
  // Accepted jobs not in the engine that start before `job` (which arrived last); mu_ held.
  uint32_t jobs_ahead(const ActiveJob& job) const;

  const ProviderOptions options_;
  relay::RelayPool& pool_;
  engine::Engine& engine_;
  const nostr::Keypair keys_;
  const std::string pubkey_hex_;
  const Clock& clock_;
  std::unique_ptr<store::BatchWriter> writer_;
  JobRecordReader reader_;  // start()'s thread, then the dispatcher's only

  // Fixed by start().
  protocol::Hardware hardware_;
  std::vector<protocol::ModelInfo> models_;
  std::set<std::string> served_;

  bool started_ = false;  // start()/stop() thread only
  bool stopped_ = false;  // start()/stop() thread only
  std::atomic<bool> stopping_{false};
  std::optional<relay::SubscriptionHandle> job_subscription_;
  std::optional<relay::SubscriptionHandle> quote_subscription_;

  // Jobs and counters.
  mutable std::mutex mu_;
  std::condition_variable engine_idle_;  // signaled when a job leaves the engine
  std::unordered_map<std::string, std::shared_ptr<ActiveJob>> jobs_by_key_;      // guarded by mu_
  std::unordered_map<std::string, std::shared_ptr<ActiveJob>> jobs_by_request_;  // guarded by mu_
  uint32_t in_engine_ = 0;                                                       // guarded by mu_
  // Recorded jobs waiting for a slot; guarded by mu_. Small (the queue option bounds it), so picking the
  // next one is a scan.
  std::vector<std::shared_ptr<ActiveJob>> waiting_;
  uint64_t next_arrival_ = 0;  // guarded by mu_
  // Reservations accepted and not ended (pruned as they end); guarded by mu_. Decided on the dispatcher,
  // so a decision sees every earlier one, committed or not.
  std::vector<Reservation> reservations_;
  ProviderStats counts_;  // guarded by mu_
  // Token counts answered in the current second (dispatcher thread only): past kMaxTokenCountsPerSecond the
  // rest are answered "busy", so counting never crowds out jobs.
  int64_t token_count_second_ = 0;
  uint32_t token_counts_this_second_ = 0;
  double average_run_ms_ = 0;  // guarded by mu_; moving average of engine time per finished job

  // The dispatcher's inbox and timers.
  std::mutex inbox_mu_;
  std::condition_variable wake_;
  std::deque<nostr::Event> inbox_;           // guarded by inbox_mu_
  bool dispatcher_stop_ = false;             // guarded by inbox_mu_
  bool announce_wanted_ = false;             // guarded by inbox_mu_: the load changed
  SteadyClock::time_point last_announce_{};  // guarded by inbox_mu_
  uint64_t dropped_events_ = 0;              // guarded by inbox_mu_
  std::thread dispatcher_;

  protocol::Capacity announced_capacity_;  // dispatcher only (start()'s thread before it)
  int64_t last_seen_ = 0;                  // dispatcher only: newest created_at of the job messages handled
  int64_t last_seen_saved_ = 0;            // dispatcher only
};

}  // namespace infernet::provider::internal
