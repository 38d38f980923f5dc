// The consumer's job database: jobs, their event history, attempts, results, receipts, the providers seen and
// the ids of the protocol events already handled (replay protection that survives a restart).
//
// Writes go through one store::BatchWriter: each JobChange is one unit that either commits whole or not at
// all, many of them share a transaction, and the caller learns the outcome only after COMMIT, so whatever it
// does next (publish a message, answer a client) happens after the change is durable. Changes commit in the
// order they were queued. Reads use a pool of read-only connections and see committed state only.
//
// Thread-safety: every method may be called from any thread, except that apply_and_wait() and close() must
// not be called from an on_committed callback (they wait for the writer thread that runs it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "store/batch_writer.hpp"

namespace infernet::consumer {

// The most rows one list() returns: a page of at most 1000 plus one more, which tells a pager that another
// page exists without a second query.
constexpr size_t kMaxJobListRows = 1001;

// One assignment of a job to a provider.
struct AttemptRecord {
  std::string job_id;
  uint32_t attempt = 0;
  std::string provider;          // hex pubkey
  std::string request_event_id;  // hex id of the kJobRequest event sent for it
  std::string state;             // "assigned", "accepted", "running", "completed", "rejected", "dropped", ...
  std::string reason;            // why it ended, when it did not complete
  uint64_t resume_bytes = 0;     // output already delivered when it started (sent as resume_text)
  int64_t started_at = 0;        // unix ms
  int64_t updated_at = 0;
};

// A kJobResult received and acted on.
struct ResultRecord {
  std::string job_id;
  uint32_t attempt = 0;
  std::string event_id;  // hex
  std::string provider;
  bool ok = false;
  std::string output;
  std::string error_code;
  std::string error;
  protocol::Usage usage;
  uint64_t cost_msat = 0;
  int64_t received_at = 0;  // unix ms
};

// A kJobReceipt sent.
struct ReceiptRecord {
  std::string job_id;
  uint32_t attempt = 0;
  std::string provider;
  uint64_t cost_msat = 0;
  std::string result_event_id;
  std::string receipt_event_id;
  int64_t created_at = 0;  // unix ms
};

// A provider announcement as stored: the signed event itself, so a restarted node re-verifies it.
struct StoredProvider {
  std::string pubkey;  // hex
  std::string name;
  std::string event_json;
  int64_t last_seen = 0;  // unix seconds (the announcement's created_at)
  int64_t expires_at = 0;
};

// This consumer's record of a provider for one model (docs/market.md, "Reputation").
struct ReputationRecord {
  std::string pubkey;  // hex
  std::string model;
  market::Observed observed;
  int64_t updated_at = 0;  // unix ms
};

// The changes to one job that commit together. Fields left empty are not touched; at least one of
// `insert`, a job field or an event should be present.
struct JobChange {
  std::string job_id;
  std::optional<JobRecord> insert;  // a new job (its id, spec, state and times); the other fields update it
  std::optional<JobState> state;
  std::optional<std::string> provider;
  std::optional<uint32_t> attempt;
  std::optional<std::string> error;
  std::optional<std::string> output;  // replaces the output
  std::string append_output;          // appended to the output (after `output`, when both are set)
  std::optional<protocol::Usage> usage;
  std::optional<uint64_t> cost_msat;
  int64_t updated_at = 0;        // written whenever a job field changes
  std::vector<JobEvent> events;  // appended; seq numbers are the caller's (per job, from 1, no gaps)
  std::vector<AttemptRecord> attempt_rows;  // each inserted or replaced by (job_id, attempt)
  std::optional<ResultRecord> result;
  std::optional<ReceiptRecord> receipt;
  std::vector<std::pair<std::string, int64_t>> seen;  // (event id hex, its created_at) handled by this change
  std::vector<Notification> notifications;            // inserted; ids are the caller's (increasing)
};

class JobStore {
 private:
  struct Passkey {};
  struct WriterStatements;
  struct ReadConnection;
  class ReaderLease;

 public:
  // Opens or creates the database at `path` (a file: readers need their own connections) and brings its
  // schema up to date. Errors: kInvalidInput for an empty or in-memory path; kIo when the file cannot be
  // opened or is not a database; kUnsupported when a newer build wrote it.
  static Result<std::unique_ptr<JobStore>> open(const std::string& path);

  JobStore(Passkey, std::string path, std::unique_ptr<WriterStatements> statements,
           std::unique_ptr<store::BatchWriter> writer);
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;
  ~JobStore();  // close()

  // Queues a change. `on_committed` (may be empty) runs on the writer thread once the change's fate is
  // known: success only after COMMIT. Errors returned at once (without calling it): kLimitExceeded when the
  // writer's queue is full; kIo after close().
  Status apply(JobChange change, std::function<void(const Status&)> on_committed);
  // apply() and wait until the change is durable. Errors: as apply(), or the write's own (kIo; kAlreadyExists
  // when an inserted job's id or client_request_id exists).
  Status apply_and_wait(JobChange change);
  // Inserts or replaces a provider's announcement (queued like apply()).
  Status save_provider(StoredProvider provider);
  // Inserts or replaces a provider's record for a model (queued like apply(); job_store_reputation.cpp).
  Status save_reputation(ReputationRecord record);
  // Every record, by pubkey and model. Errors: kIo.
  Result<std::vector<ReputationRecord>> reputations();
  // Forgets replay-protection ids older than `created_before` (unix seconds).
  Status prune_seen(int64_t created_before);

  // Reads. Errors: kIo; kNotFound for get().
  Result<JobRecord> get(const std::string& job_id);
  Result<std::optional<JobRecord>> find_by_client_request_id(const std::string& client_request_id);
  // In query.order by (created_at, id), past query.after when set, at most min(query.limit, kMaxJobListRows).
  Result<std::vector<JobRecord>> list(const JobQuery& query);
  // Events with seq > after_seq in seq order, at most `limit`.
  Result<std::vector<JobEvent>> events(const std::string& job_id, uint64_t after_seq, size_t limit = 100000);
  // The highest seq of a job's events, 0 when it has none.
  Result<uint64_t> last_seq(const std::string& job_id);
  // The newest event of a type, if any.
  Result<std::optional<JobEvent>> last_event(const std::string& job_id, const std::string& type);
  // Jobs not in a final state, oldest first.
  Result<std::vector<JobRecord>> unfinished();
  Result<std::vector<AttemptRecord>> attempts(const std::string& job_id);
  Result<std::optional<ResultRecord>> result(const std::string& job_id, uint32_t attempt);
  Result<std::vector<ReceiptRecord>> receipts(const std::string& job_id);
  // The sum of the receipts (charges) created at or after `since_ms` (unix ms): the account budgets.
  Result<uint64_t> charged_since(int64_t since_ms);
  Result<std::vector<StoredProvider>> providers();
  // Ids (hex) of handled events whose created_at >= since.
  Result<std::vector<std::string>> seen_since(int64_t since);
  // Reads the whole (pruned) table: for tests and tools, not for a hot path.
  Result<bool> was_seen(const std::string& event_id);
  // Notifications with id > after_id in id order, at most `limit` (job_store_notifications.cpp).
  Result<std::vector<Notification>> notifications(uint64_t after_id, size_t limit);
  // The highest notification id, 0 when there is none.
  Result<uint64_t> last_notification_id();
  // The highest budget.threshold percent notified for a job, 0 when none was.
  Result<uint32_t> budget_threshold_notified(const std::string& job_id);

  // Inserts or replaces a reservation (by id). Without `on_committed` it waits for the commit; with it, it
  // returns once queued and `on_committed` runs on the writer thread. Errors: kIo.
  Status save_reservation(const ReservationRecord& r, std::function<void(const Status&)> on_committed = {});
  // Every reservation, newest first, at most `limit`. Errors: kIo.
  Result<std::vector<ReservationRecord>> reservations(size_t limit = 1000);

  // Writes everything queued, then refuses writes (kIo). Reads keep working. Idempotent.
  void close();

 private:
  class ChangeJob;

  Result<std::unique_ptr<ReadConnection>> acquire_reader();
  Result<ReaderLease> lease();
  void release_reader(std::unique_ptr<ReadConnection> reader);

  const std::string path_;
  std::unique_ptr<WriterStatements> statements_;  // used only on the writer thread
  std::unique_ptr<store::BatchWriter> writer_;
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<ReadConnection>> idle_readers_;  // guarded by readers_mu_
};

// The JobSpec as stored (a JSON object) and back. spec_from_json errors name the field.
std::string spec_to_json(const JobSpec& spec);
Result<JobSpec> spec_from_json(std::string_view json);

}  // namespace infernet::consumer
