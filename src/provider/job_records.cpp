#include "provider/internal/job_records.hpp"

#include <array>
#include <string>

namespace infernet::provider::internal {
namespace {

constexpr std::array<std::string_view, 2> kMigrations = {
    R"sql(
CREATE TABLE jobs (
  request_id TEXT PRIMARY KEY,
  consumer TEXT NOT NULL,
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  model TEXT NOT NULL,
  state TEXT NOT NULL,
  result_event TEXT NOT NULL DEFAULT '',
  cost_msat INTEGER NOT NULL DEFAULT 0,
  receipt_cost_msat INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (consumer, job_id, attempt)
);
CREATE INDEX jobs_unfinished ON jobs (created_at) WHERE state IN ('queued', 'running');
CREATE TABLE node_state (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql",
    // 2: reserved capacity (provider/internal/reservations.hpp).
    R"sql(
CREATE TABLE reservations (
  consumer TEXT NOT NULL,
  id TEXT NOT NULL,
  slots INTEGER NOT NULL,
  start_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  discount_percent INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (consumer, id)
);
CREATE INDEX reservations_end ON reservations (end_at);
)sql"};

constexpr const char* kColumns =
    "request_id, consumer, job_id, attempt, model, state, result_event, cost_msat, receipt_cost_msat, "
    "created_at, updated_at";

Status bind_all(store::Statement& stmt, std::initializer_list<std::string_view> texts) {
  int i = 1;
  for (auto t : texts) {
    if (auto st = stmt.bind_text(i++, t); !st) return st;
  }
  return {};
}

Status run_to_done(store::Statement& stmt) {
  auto step = stmt.step();
  if (!step) return tl::unexpected(step.error());
  return {};
}

int64_t as_int64(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX));
}

Result<JobRecord> read_row(const store::Statement& stmt) {
  JobRecord r;
  r.request_id = std::string(stmt.column_text(0));
  r.consumer = std::string(stmt.column_text(1));
  r.job_id = std::string(stmt.column_text(2));
  r.attempt = static_cast<uint32_t>(stmt.column_int64(3));
  r.model = std::string(stmt.column_text(4));
  auto state = parse_job_record_state(stmt.column_text(5));
  if (!state) return tl::unexpected(with_context(state.error(), "jobs.state of " + r.request_id));
  r.state = *state;
  r.result_event = std::string(stmt.column_text(6));
  r.cost_msat = static_cast<uint64_t>(stmt.column_int64(7));
  if (!stmt.column_is_null(8)) r.receipt_cost_msat = static_cast<uint64_t>(stmt.column_int64(8));
  r.created_at = stmt.column_int64(9);
  r.updated_at = stmt.column_int64(10);
  return r;
}

}  // namespace

const char* to_string(JobRecordState s) {
  switch (s) {
    case JobRecordState::kQueued:
      return "queued";
    case JobRecordState::kRunning:
      return "running";
    case JobRecordState::kCompleted:
      return "completed";
    case JobRecordState::kFailed:
      return "failed";
    case JobRecordState::kCanceled:
      return "canceled";
  }
  return "unknown";
}

Result<JobRecordState> parse_job_record_state(std::string_view s) {
  for (auto state : {JobRecordState::kQueued, JobRecordState::kRunning, JobRecordState::kCompleted,
                     JobRecordState::kFailed, JobRecordState::kCanceled}) {
    if (s == to_string(state)) return state;
  }
  return make_error(ErrorCode::kInvalidInput, "unknown job state '" + std::string(s) + "'");
}

bool is_finished(JobRecordState s) {
  return s != JobRecordState::kQueued && s != JobRecordState::kRunning;
}

Status migrate_job_records(store::Database& db) {
  return store::migrate(db, kMigrations);
}

Status insert_job_record(store::Database& db, const JobRecord& record) {
  auto prepared =
      db.cached(std::string("INSERT INTO jobs (") + kColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = bind_all(*stmt, {record.request_id, record.consumer, record.job_id}); !st) return st;
  if (auto st = stmt->bind_int64(4, record.attempt); !st) return st;
  if (auto st = stmt->bind_text(5, record.model); !st) return st;
  if (auto st = stmt->bind_text(6, to_string(record.state)); !st) return st;
  if (auto st = stmt->bind_text(7, record.result_event); !st) return st;
  if (auto st = stmt->bind_int64(8, as_int64(record.cost_msat)); !st) return st;
  if (record.receipt_cost_msat) {
    if (auto st = stmt->bind_int64(9, as_int64(*record.receipt_cost_msat)); !st) return st;
  } else if (auto st = stmt->bind_null(9); !st) {
    return st;
  }
  if (auto st = stmt->bind_int64(10, record.created_at); !st) return st;
  if (auto st = stmt->bind_int64(11, record.updated_at); !st) return st;
  return run_to_done(*stmt);
}

Status mark_job_running(store::Database& db, std::string_view request_id, int64_t now) {
  auto prepared = db.cached(
      "UPDATE jobs SET state = 'running', updated_at = ? WHERE request_id = ? AND state = 'queued'");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = stmt->bind_int64(1, now); !st) return st;
  if (auto st = stmt->bind_text(2, request_id); !st) return st;
  return run_to_done(*stmt);
}

Result<bool> finish_job_record(store::Database& db, std::string_view request_id, JobRecordState state,
                               std::string_view result_event, uint64_t cost_msat, int64_t now) {
  auto prepared = db.cached(
      "UPDATE jobs SET state = ?, result_event = ?, cost_msat = ?, updated_at = ? "
      "WHERE request_id = ? AND state IN ('queued', 'running')");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = stmt->bind_text(1, to_string(state)); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_text(2, result_event); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_int64(3, as_int64(cost_msat)); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_int64(4, now); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_text(5, request_id); !st) return tl::unexpected(st.error());
  if (auto st = run_to_done(*stmt); !st) return tl::unexpected(st.error());
  return db.changes() > 0;
}

Result<bool> record_receipt(store::Database& db, std::string_view consumer, std::string_view job_id,
                            uint32_t attempt, uint64_t cost_msat, int64_t now) {
  auto prepared = db.cached(
      "UPDATE jobs SET receipt_cost_msat = ?, updated_at = ? WHERE consumer = ? AND job_id = ? AND attempt = "
      "?");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = stmt->bind_int64(1, as_int64(cost_msat)); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_int64(2, now); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_text(3, consumer); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_text(4, job_id); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_int64(5, attempt); !st) return tl::unexpected(st.error());
  if (auto st = run_to_done(*stmt); !st) return tl::unexpected(st.error());
  return db.changes() > 0;
}

Status save_last_seen(store::Database& db, int64_t created_at) {
  auto prepared = db.cached(
      "INSERT INTO node_state (name, value) VALUES ('last_seen', ?) "
      "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = stmt->bind_int64(1, created_at); !st) return st;
  return run_to_done(*stmt);
}

Result<JobRecordReader> JobRecordReader::open(const std::string& path) {
  auto db = store::Database::open(path, {.read_only = true});
  if (!db) return tl::unexpected(db.error());
  return JobRecordReader(std::move(*db));
}

Result<std::optional<JobRecord>> JobRecordReader::find(std::string_view request_id, std::string_view consumer,
                                                       std::string_view job_id, uint32_t attempt) {
  std::lock_guard lock(*find_mu_);
  auto prepared =
      db_.cached(std::string("SELECT ") + kColumns +
                 " FROM jobs WHERE request_id = ? OR (consumer = ? AND job_id = ? AND attempt = ?) "
                 "LIMIT 1");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = bind_all(*stmt, {request_id, consumer, job_id}); !st) return tl::unexpected(st.error());
  if (auto st = stmt->bind_int64(4, attempt); !st) return tl::unexpected(st.error());
  auto step = stmt->step();
  if (!step) return tl::unexpected(step.error());
  if (*step == store::Statement::Step::kDone) return std::optional<JobRecord>();
  auto row = read_row(*stmt);
  // A cached SELECT left on its row would hold its read snapshot, and keep checkpoints from finishing.
  stmt->reset();
  if (!row) return tl::unexpected(row.error());
  return std::optional<JobRecord>(std::move(*row));
}

Result<std::vector<JobRecord>> JobRecordReader::unfinished() {
  auto stmt = db_.prepare(std::string("SELECT ") + kColumns +
                          " FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at");
  if (!stmt) return tl::unexpected(stmt.error());
  std::vector<JobRecord> out;
  for (;;) {
    auto step = stmt->step();
    if (!step) return tl::unexpected(step.error());
    if (*step == store::Statement::Step::kDone) break;
    auto row = read_row(*stmt);
    if (!row) return tl::unexpected(row.error());
    out.push_back(std::move(*row));
  }
  return out;
}

Result<int64_t> JobRecordReader::last_seen() {
  auto stmt = db_.prepare("SELECT value FROM node_state WHERE name = 'last_seen'");
  if (!stmt) return tl::unexpected(stmt.error());
  auto step = stmt->step();
  if (!step) return tl::unexpected(step.error());
  return *step == store::Statement::Step::kRow ? stmt->column_int64(0) : 0;
}

}  // namespace infernet::provider::internal
