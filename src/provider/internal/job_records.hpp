// Internal to the provider module: the provider's own record of every job it accepted (SQLite).
//
// The record is what makes a provider safe to restart: a request seen again (the same event, or the same
// consumer, job id and attempt in a new event) is answered from it instead of being run twice, and a job left
// queued or running by a process that died is found here and answered "provider-restarted".
//
// Writes are functions run by the node's store::BatchWriter inside its transaction (so they may run more
// than once; each derives everything from its arguments). Reads go through a JobRecordReader, a read-only
// connection of its own. Rejected requests are not recorded: a consumer may send the same job again after a
// "busy" and must then be considered afresh.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "provider/internal/reservations.hpp"
#include "store/sqlite.hpp"

namespace infernet::provider::internal {

enum class JobRecordState { kQueued, kRunning, kCompleted, kFailed, kCanceled };

// "queued", "running", ...; parse_job_record_state errors name the bad value.
const char* to_string(JobRecordState s);
Result<JobRecordState> parse_job_record_state(std::string_view s);
bool is_finished(JobRecordState s);

struct JobRecord {
  std::string request_id;  // hex id of the kJobRequest event
  std::string consumer;    // hex pubkey of the requester
  std::string job_id;
  uint32_t attempt = 1;
  std::string model;
  JobRecordState state = JobRecordState::kQueued;
  std::string result_event;                   // the signed kJobResult event as JSON; "" until finished
  uint64_t cost_msat = 0;                     // what the result charged
  std::optional<uint64_t> receipt_cost_msat;  // what the consumer's receipt settled
  int64_t created_at = 0;                     // unix seconds
  int64_t updated_at = 0;
};

// Creates or upgrades the schema. Errors: kIo; kUnsupported for a file written by a newer build.
Status migrate_job_records(store::Database& db);

// ---- Writes (on the writer's connection, inside its transaction) ----

// Errors: kIo, including a constraint violation when the request or the (consumer, job_id, attempt) is
// already recorded.
Status insert_job_record(store::Database& db, const JobRecord& record);
// Marks a queued job running. Finished jobs are left alone.
Status mark_job_running(store::Database& db, std::string_view request_id, int64_t now);
// Stores the outcome of an unfinished job. Returns false, writing nothing, when the job is unknown or
// already finished (its first result stands).
Result<bool> finish_job_record(store::Database& db, std::string_view request_id, JobRecordState state,
                               std::string_view result_event, uint64_t cost_msat, int64_t now);
// Records the consumer's receipt for the job; false when no such job of that consumer exists.
Result<bool> record_receipt(store::Database& db, std::string_view consumer, std::string_view job_id,
                            uint32_t attempt, uint64_t cost_msat, int64_t now);
// Remembers the newest created_at of the job messages handled, where the next start resumes reading.
Status save_last_seen(store::Database& db, int64_t created_at);

// ---- Reads ----

class JobRecordReader {
 public:
  // Opens a read-only connection to the (already migrated) database. Errors: kIo.
  static Result<JobRecordReader> open(const std::string& path);

  // The job whose request is `request_id`, or else the one with the same consumer, job id and attempt.
  // Safe to call from several threads (requests from several relays arrive on several strands).
  Result<std::optional<JobRecord>> find(std::string_view request_id, std::string_view consumer,
                                        std::string_view job_id, uint32_t attempt);
  // Jobs left queued or running, oldest first.
  Result<std::vector<JobRecord>> unfinished();
  // What save_last_seen stored; 0 when nothing was.
  Result<int64_t> last_seen();
  // Reservations not ended by `now` (provider/internal/reservations.hpp).
  Result<std::vector<Reservation>> reservations(int64_t now) { return read_reservations(db_, now); }

 private:
  explicit JobRecordReader(store::Database db)
      : db_(std::move(db)), find_mu_(std::make_unique<std::mutex>()) {}
  store::Database db_;
  std::unique_ptr<std::mutex> find_mu_;  // guards find()'s cached statement; a pointer keeps this movable
};

}  // namespace infernet::provider::internal
