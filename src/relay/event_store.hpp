// The relay's event repository: NIP-01 storage rules, NIP-09 deletions and NIP-40 expiration over SQLite.
//
// Writes go through one store::BatchWriter (one connection, one thread, one transaction per batch); each
// add() learns its outcome in a callback that runs only after that transaction committed, so a relay answers
// ["OK", id, true, ...] for data that survives the process being killed. Reads use a pool of read-only
// connections, one per concurrently querying thread, and see the last committed state (WAL snapshots).
//
// Storage rules (NIP-01, NIP-09, NIP-40):
// - regular events are stored once per id;
// - replaceable kinds (0, 3, 10000-19999) keep only the latest event per (pubkey, kind), addressable kinds
//   (30000-39999) per (pubkey, kind, first "d" tag value, "" when missing); "latest" is the higher
//   created_at, and on equal created_at the lower id. A superseded version is deleted in the transaction
//   that stores its successor;
// - a deletion request (kind 5) is stored, and deletes the events its "e" tags name and the versions its
//   "a" tags ("kind:pubkey:d") name up to its created_at, but only events of its own author and never
//   another deletion request. What it names stays deleted: that event arriving (again) later is refused;
// - events whose "expiration" tag is <= now are never returned, and purge_expired() removes them.
// Ephemeral kinds (20000-29999) are never stored; the relay forwards them without calling the store.
//
// Thread-safety: every member function may be called from any thread, except that add_and_wait(),
// purge_expired() and close() must not be called from an add() callback (they wait for the writer thread
// that runs it). query() and count() run SQLite on the calling thread and may wait for the disk; a caller on
// an event loop that must never block hands them to a worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "nostr/event.hpp"
#include "nostr/filter.hpp"
#include "store/batch_writer.hpp"

namespace infernet::relay {

struct EventStoreOptions {
  // The SQLite file; created with its schema when missing. Not ":memory:": readers need their own
  // connections to the same database.
  std::string path;
  // Events accepted but not yet written; add() answers kLimitExceeded beyond this.
  size_t writer_queue_capacity = 65536;
  // Most events written in one transaction.
  size_t max_batch = 4096;
};

enum class AddResult {
  kStored,
  kDuplicate,   // an event with this id is stored already
  kSuperseded,  // a newer version of this replaceable/addressable event is stored
  kDeleted,     // a stored deletion request (NIP-09) covers this event
};

class EventStore {
 private:
  struct Passkey {};  // keeps construction to open()
  struct WriterStatements;
  struct ReadConnection;

 public:
  // Opens or creates the database at options.path and brings its schema up to date.
  // Errors: kInvalidInput for an empty path or ":memory:"; kIo when the file cannot be opened or created,
  // is not a database, or its schema cannot be created; kUnsupported when a newer build wrote the file.
  static Result<std::unique_ptr<EventStore>> open(const EventStoreOptions& options);

  EventStore(Passkey, std::string path, std::unique_ptr<std::shared_mutex> commit_lock,
             std::unique_ptr<WriterStatements> statements, std::unique_ptr<store::BatchWriter> writer);
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  // Closes (see close()).
  ~EventStore();

  // Queues a verified, non-ephemeral event for the writer. `done` (may be empty) runs on the writer thread
  // after the batch's COMMIT, with the outcome, or with an error (kIo) when the write or the commit failed;
  // it should return quickly, since the next batch waits for it. The event's JSON is serialized here, on the
  // caller's thread. Does not check the id or signature: the caller has verified them.
  // Errors, returned at once and without calling `done`: kInvalidInput for an ephemeral kind;
  // kLimitExceeded when the writer's queue is full (answer "rate-limited"); kIo after close().
  Status add(nostr::Event event, std::function<void(Result<AddResult>)> done);
  // The same, for a caller that already holds the event's JSON (a relay serializes it to broadcast anyway):
  // `json` must be nostr::to_json(event), which is what queries will return.
  Status add(nostr::Event event, std::string json, std::function<void(Result<AddResult>)> done);

  // add() and wait for the outcome. For tests and tools.
  Result<AddResult> add_and_wait(nostr::Event event);

  // A pinned read snapshot of the committed events: a read connection held in an open read transaction
  // until the Snapshot is destroyed, which ends the transaction and hands the connection back to the pool
  // (keep it short: an open snapshot holds WAL checkpoints back).
  class Snapshot {
   public:
    Snapshot(Snapshot&& other) noexcept;
    Snapshot& operator=(Snapshot&&) = delete;
    ~Snapshot();

   private:
    friend class EventStore;
    Snapshot(EventStore& store, std::unique_ptr<ReadConnection> reader);
    EventStore* store_;
    std::unique_ptr<ReadConnection> reader_;
  };

  // Pins a snapshot. `while_pinned` (may be empty) runs under the store's commit lock, which each batch of
  // writes holds from its COMMIT until every add() callback of the batch has returned. So for each event an
  // add() callback reports stored, either the snapshot holds it and the callback returned before
  // while_pinned ran, or the snapshot lacks it and the callback runs after while_pinned returned. A relay
  // registers a live subscription in while_pinned and then queries the snapshot: no event reaches the
  // subscriber both stored and live, and none is missed. Errors: kIo.
  Result<Snapshot> snapshot(const std::function<void()>& while_pinned = {});

  // The JSON text of the stored events that match any of the filters, newest first, ties by lowest id, with
  // no event twice. Each filter contributes at most min(its limit, max_limit) events (max_limit when it has
  // none). Events whose expiration is <= now are left out. Filters that cannot match (an empty list, limit 0,
  // a multi-letter tag name) contribute nothing. Errors: kIo (kLimitExceeded when a filter has more values
  // than SQLite can bind).
  Result<std::vector<std::string>> query(std::span<const nostr::Filter> filters, int64_t now,
                                         size_t max_limit);
  // The same, read from a snapshot taken earlier by this store.
  Result<std::vector<std::string>> query(Snapshot& snapshot, std::span<const nostr::Filter> filters,
                                         int64_t now, size_t max_limit);

  // How many distinct stored events match any of the filters (NIP-45), ignoring limits and leaving out the
  // expired. Errors: as query().
  Result<size_t> count(std::span<const nostr::Filter> filters, int64_t now);

  // Deletes every event whose expiration is <= now, through the writer, and waits for the commit.
  // Errors: kIo; kLimitExceeded when the writer's queue is full.
  Status purge_expired(int64_t now);

  // Writes everything queued, then refuses writes (kIo). Queries keep working. Idempotent.
  void close();

 private:
  class AddJob;

  // A read connection that goes back to the pool when the Snapshot ends; snapshot() then pins it.
  Result<Snapshot> lease_reader();

  Result<AddResult> write_event(store::Database& db, const AddJob& job);
  Status apply_deletion(const nostr::Event& deletion);
  Status delete_row(int64_t rowid);
  Result<std::unique_ptr<ReadConnection>> acquire_reader();
  void release_reader(std::unique_ptr<ReadConnection> reader);

  const std::string path_;
  // Order matters for destruction: the writer (and its thread) goes first, then the statements and the
  // lock it used.
  std::unique_ptr<std::shared_mutex> commit_lock_;  // see snapshot()
  std::unique_ptr<WriterStatements> statements_;    // used only on the writer thread
  std::unique_ptr<store::BatchWriter> writer_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<ReadConnection>> idle_readers_;  // guarded by readers_mu_
};

}  // namespace infernet::relay
