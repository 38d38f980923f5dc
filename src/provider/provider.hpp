// The provider node: announces what it serves, takes jobs addressed to it into a bounded queue with a fixed
// number of slots, rejects with a reason what it cannot serve (busy with retry-after, unknown model, price too
// low, deadline), runs jobs on an engine, streams progress, posts the result and honours cancellation. Its own
// SQLite record of every job means a restarted provider neither runs a job twice nor loses a finished result:
// a request seen again is answered from the record (the stored result is re-sent), and a job that was running
// when the process died is answered with an error result ("provider-restarted") so the consumer reassigns it.
//
// Thread-safety: start() and stop() from one thread; everything else happens on the node's threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "engine/engine.hpp"
#include "nostr/keys.hpp"
#include "protocol/protocol.hpp"
#include "relay/relay_pool.hpp"

namespace infernet::provider {

struct ProviderOptions {
  std::string database;  // SQLite file of the provider's job records
  std::string name;
  protocol::Prices prices;
  uint32_t slots = 2;   // must match the engine's
  uint32_t queue = 8;   // jobs waiting beyond the slots; more are rejected "busy"
  std::chrono::seconds heartbeat{10};  // announcement refresh; its expiration is 3 heartbeats
};

// What the provider reports about itself, for tests and /metrics.
struct ProviderStats {
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t canceled = 0;
  uint32_t running = 0;
  uint32_t queued = 0;
};

class ProviderNode {
 public:
  static Result<std::unique_ptr<ProviderNode>> open(const ProviderOptions& options, relay::RelayPool& pool,
                                                    engine::Engine& engine, const nostr::Keypair& keys,
                                                    const Clock& clock);
  virtual ~ProviderNode() = default;
  // Detects the hardware, announces, subscribes to job messages addressed to us and to quote requests.
  virtual Status start() = 0;
  // Stops announcing and taking jobs; running jobs are canceled and recorded. Idempotent.
  virtual void stop() = 0;
  virtual ProviderStats stats() const = 0;
};

// CPU model and cores, memory, and GPUs from `nvidia-smi` when it is installed.
protocol::Hardware detect_hardware();

}  // namespace infernet::provider
