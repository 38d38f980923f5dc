// The provider node: announces what it serves, takes jobs addressed to it into a bounded queue with a fixed
// number of slots, rejects with a reason what it cannot serve (busy with retry-after, unknown model, price
// too low, deadline), runs jobs on an engine, streams progress, posts the result and honours cancellation.
// Its own SQLite record of every job means a restarted provider neither runs a job twice nor loses a finished
// result: a request seen again is answered from the record (the stored result is re-sent), and a job that was
// running when the process died is answered with an error result ("provider-restarted") so the consumer
// reassigns it.
//
// What a consumer can rely on:
//  - Rejections (JobStatus kRejected) carry reason_code "unknown-model", "deadline" (passed), "price-too-low"
//    (the estimate is over max_cost_msat) or "busy" (slots + queue full; retry_after_seconds set), checked in
//    that order.
//  - The estimate is per_job + per_1k_input * input / 1000 + per_1k_output * max_tokens / 1000 at the
//    priority's percentage, with input = whitespace-separated words of the prompt. The result charges the
//    same with the tokens produced plus per_second for the engine time, never more than max_cost_msat.
//  - An accepted job gets, in order: accepted (with queue_position: 0 = starts at once, n = n-th in line),
//    running (at its first token), progress seq 1, 2, ... (pieces batched: at most one event per 50 ms or
//    per 16 tokens), and one result. A cancel from the job's own consumer ends it with error_code
//    "canceled"; cancels from anyone else are ignored.
//  - resume_text: the engine continues after it (max_tokens counts the whole output, resumed part included);
//    usage and cost count only the tokens this attempt generated (docs/market-failover.md).
//  - Quote requests for a served model, within the cap and while there is room, get an Offer valid 30 s.
//  - Queue order: jobs wait in the provider (the engine gets one run per slot) and start reserved first,
//    then urgent, high, medium, low, first come first served within a level. A running job is never
//    preempted.
//  - The budget cap: after each token, if one more token (at the engine time so far) would make the charge
//    exceed max_cost_msat, the run ends there with finish_reason "budget"; no charge exceeds the cap.
//  - Reservations (kReservationRequest): answered accepted or refused with a reason code; accepted ones are
//    recorded and survive restarts. During its window, a reserving consumer's jobs, up to its reserved
//    slots at a time, are taken even when the queue is full, start ahead of all others and are charged the
//    discount. An idle reserved slot serves others; a job is never preempted for a reservation.
//  - The announcement is refreshed every heartbeat (expiring after 3) and, at most once a second, when the
//    load (busy, queued) changes.
//
// Thread-safety: start() and stop() from one thread; everything else happens on the node's threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "engine/engine.hpp"
#include "nostr/keys.hpp"
#include "protocol/protocol.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::provider {

struct ProviderOptions {
  std::string database;  // SQLite file of the provider's job records (a file: ":memory:" is refused)
  std::string name;
  protocol::Prices prices;
  uint32_t slots = 2;                  // must match the engine's
  uint32_t queue = 8;                  // jobs waiting beyond the slots; more are rejected "busy"
  std::chrono::seconds heartbeat{10};  // announcement refresh; its expiration is 3 heartbeats
  // Reserved capacity offered (announced when max_slots > 0): max_slots at most `slots`.
  protocol::ReservationTerms reservations;
};

// What the provider reports about itself, for tests and /metrics.
struct ProviderStats {
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t canceled = 0;
  uint32_t running = 0;   // accepted jobs not finished, up to the slots
  uint32_t queued = 0;    // the rest of them
  uint64_t replayed = 0;  // requests seen again and answered from the record (the stored result re-sent)
  uint64_t offers = 0;    // quote requests answered with an offer
  uint64_t reservations_accepted = 0;
  uint64_t reservations_refused = 0;
  uint64_t token_counts = 0;  // token count requests answered with a count
};

class ProviderNode {
 public:
  // Opens (creating or upgrading) the job record. Nothing is sent until start(). Errors: kInvalidInput naming
  // the option (database, slots, heartbeat); kIo from SQLite.
  static Result<std::unique_ptr<ProviderNode>> open(const ProviderOptions& options, relay::RelayPool& pool,
                                                    engine::Engine& engine, const nostr::Keypair& keys,
                                                    const Clock& clock);
  virtual ~ProviderNode() = default;
  // Detects the hardware, answers the jobs a previous run left unfinished ("provider-restarted"), announces,
  // subscribes to job messages addressed to us and to quote requests. Errors: kAlreadyExists when started
  // twice; kInvalidInput when the engine serves no model; kIo from the record.
  virtual Status start() = 0;
  // Stops announcing and taking jobs; running jobs are canceled and recorded. Idempotent.
  // A job canceled by stop() keeps its queued/running record and gets no result now: the next start() on the
  // same database answers it "provider-restarted", exactly as after a crash, so the consumer reassigns it.
  virtual void stop() = 0;
  virtual ProviderStats stats() const = 0;
};

// CPU model and cores, memory, and GPUs from `nvidia-smi` when it is installed.
protocol::Hardware detect_hardware();

// The GPUs in the output of `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`: one
// "name, MiB" line each. Lines that do not parse are skipped; at most 64 GPUs.
std::vector<protocol::GpuInfo> parse_nvidia_smi_gpus(std::string_view csv);

}  // namespace infernet::provider
