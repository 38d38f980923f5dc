#include "consumer/job_store.hpp"

#include <algorithm>
#include <future>
#include <utility>

#include <boost/json.hpp>

#include "consumer/job_store_schema.hpp"

namespace infernet::consumer {
namespace {

using store::Database;
using store::Statement;

constexpr size_t kMaxIdleReaders = 8;

// Statements are kept for a connection's lifetime, so each use must end with a reset on every path: a
// half-stepped SELECT would pin its read snapshot.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& s) : s_(s) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { s_.reset(); }

 private:
  Statement& s_;
};

Status bind_one(Statement& s, int i, int64_t v) {
  return s.bind_int64(i, v);
}
Status bind_one(Statement& s, int i, uint64_t v) {
  return s.bind_int64(i, static_cast<int64_t>(v));
}
Status bind_one(Statement& s, int i, uint32_t v) {
  return s.bind_int64(i, v);
}
Status bind_one(Statement& s, int i, bool v) {
  return s.bind_int64(i, v ? 1 : 0);
}
Status bind_one(Statement& s, int i, const std::string& v) {
  return s.bind_text(i, v);
}
Status bind_one(Statement& s, int i, const char* v) {
  return s.bind_text(i, v);
}
template <class T>
Status bind_one(Statement& s, int i, const std::optional<T>& v) {
  return v ? bind_one(s, i, *v) : s.bind_null(i);
}

// Binds the arguments to positions 1..n, stopping at the first error.
template <class... Args>
Status bind_all(Statement& s, const Args&... args) {
  Status result;
  int i = 0;
  ((result = result ? bind_one(s, ++i, args) : result), ...);
  return result;
}

// Runs a statement that returns no rows, mapping a uniqueness violation to kAlreadyExists.
Status run(Statement& s) {
  auto step = s.step();
  if (!step) {
    Error e = step.error();
    if (e.message.find("UNIQUE constraint failed") != std::string::npos) e.code = ErrorCode::kAlreadyExists;
    return tl::unexpected(std::move(e));
  }
  return {};
}

template <class... Args>
Status bind_and_run(Statement& s, const Args&... args) {
  ResetOnExit reset(s);
  if (auto b = bind_all(s, args...); !b) return b;
  return run(s);
}

std::string text(const Statement& s, int column) {
  return std::string(s.column_text(column));
}

constexpr std::string_view kJobColumns =
    "id, client_request_id, spec, state, provider, attempt, output, error, input_tokens, output_tokens, "
    "cost_msat, created_at, updated_at";

Result<JobRecord> read_job(const Statement& s) {
  JobRecord r;
  r.id = text(s, 0);
  r.client_request_id = s.column_is_null(1) ? "" : text(s, 1);
  auto spec = spec_from_json(s.column_text(2));
  if (!spec) return tl::unexpected(with_context(spec.error(), "job " + r.id + ": stored spec"));
  r.spec = std::move(*spec);
  auto state = parse_job_state(s.column_text(3));
  if (!state) return tl::unexpected(with_context(state.error(), "job " + r.id));
  r.state = *state;
  r.provider = text(s, 4);
  r.attempt = static_cast<uint32_t>(s.column_int64(5));
  r.output = text(s, 6);
  r.error = text(s, 7);
  r.usage.input_tokens = static_cast<uint32_t>(s.column_int64(8));
  r.usage.output_tokens = static_cast<uint32_t>(s.column_int64(9));
  r.cost_msat = static_cast<uint64_t>(s.column_int64(10));
  r.created_at = s.column_int64(11);
  r.updated_at = s.column_int64(12);
  return r;
}

// Steps through every row, converting each with `read`.
template <class T, class Read>
Result<std::vector<T>> read_rows(Statement& s, Read read) {
  std::vector<T> out;
  for (;;) {
    auto step = s.step();
    if (!step) return tl::unexpected(step.error());
    if (*step == Statement::Step::kDone) return out;
    auto row = read(s);
    if (!row) return tl::unexpected(row.error());
    out.push_back(std::move(*row));
  }
}

}  // namespace

// ---- the spec as JSON ----

std::string spec_to_json(const JobSpec& spec) {
  boost::json::object o;
  o["client_request_id"] = spec.client_request_id;
  o["model"] = spec.model;
  o["prompt"] = spec.prompt;
  if (!spec.messages.empty()) {
    boost::json::array messages;
    for (const ChatMessage& m : spec.messages)
      messages.push_back({{"role", m.role}, {"content", m.content}});
    o["messages"] = std::move(messages);
  }
  o["max_tokens"] = spec.max_tokens;
  const SamplingParams& p = spec.sampling;
  o["temperature"] = p.temperature;
  o["seed"] = p.seed;
  o["top_k"] = p.top_k;
  o["top_p"] = p.top_p;
  o["min_p"] = p.min_p;
  o["repeat_penalty"] = p.repeat_penalty;
  o["repeat_last_n"] = p.repeat_last_n;
  if (!p.stop.empty()) o["stop"] = boost::json::value_from(p.stop);
  if (spec.deterministic) o["deterministic"] = true;
  o["max_cost_msat"] = spec.max_cost_msat;
  o["priority"] = spec.priority;
  o["deadline"] = spec.deadline;
  if (spec.start_by != 0) o["start_by"] = spec.start_by;
  o["provider"] = spec.provider;
  o["open_quotes"] = spec.open_quotes;
  if (!spec.gpu_type.empty()) o["gpu_type"] = spec.gpu_type;
  if (spec.min_gpu_memory_mb != 0) o["min_gpu_memory_mb"] = spec.min_gpu_memory_mb;
  if (!spec.model_sha256.empty()) o["model_sha256"] = spec.model_sha256;
  if (!spec.strategy.empty()) o["strategy"] = spec.strategy;
  return boost::json::serialize(o);
}

Result<JobSpec> spec_from_json(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return make_error(ErrorCode::kInvalidInput, "spec: not a JSON object");
  const auto& o = v.as_object();
  JobSpec spec;
  auto str = [&](const char* key, std::string& out) -> Status {
    if (const auto* f = o.if_contains(key)) {
      if (!f->is_string())
        return make_error(ErrorCode::kInvalidInput, std::string(key) + ": must be a string");
      out = std::string(f->as_string());
    }
    return {};
  };
  auto num = [&](const char* key, auto& out) -> Status {
    if (const auto* f = o.if_contains(key)) {
      auto n = boost::json::try_value_to<std::remove_reference_t<decltype(out)>>(*f);
      if (!n) return make_error(ErrorCode::kInvalidInput, std::string(key) + ": must be a number in range");
      out = *n;
    }
    return {};
  };
  Status st;
  for (auto [key, field] :
       {std::pair{"client_request_id", &spec.client_request_id}, std::pair{"model", &spec.model},
        std::pair{"prompt", &spec.prompt}, std::pair{"priority", &spec.priority},
        std::pair{"provider", &spec.provider}, std::pair{"gpu_type", &spec.gpu_type},
        std::pair{"model_sha256", &spec.model_sha256}, std::pair{"strategy", &spec.strategy}}) {
    if (st = str(key, *field); !st) return tl::unexpected(st.error());
  }
  if (st = num("max_tokens", spec.max_tokens); !st) return tl::unexpected(st.error());
  SamplingParams& p = spec.sampling;
  if (st = num("temperature", p.temperature); !st) return tl::unexpected(st.error());
  if (st = num("seed", p.seed); !st) return tl::unexpected(st.error());
  if (st = num("top_k", p.top_k); !st) return tl::unexpected(st.error());
  if (st = num("top_p", p.top_p); !st) return tl::unexpected(st.error());
  if (st = num("min_p", p.min_p); !st) return tl::unexpected(st.error());
  if (st = num("repeat_penalty", p.repeat_penalty); !st) return tl::unexpected(st.error());
  if (st = num("repeat_last_n", p.repeat_last_n); !st) return tl::unexpected(st.error());
  // The spec was checked before it was stored, so a wrong type here is a corrupt row, reported by name.
  if (const auto* f = o.if_contains("stop")) {
    auto stop = boost::json::try_value_to<std::vector<std::string>>(*f);
    if (!stop) return make_error(ErrorCode::kInvalidInput, "stop: must be a list of strings");
    p.stop = std::move(*stop);
  }
  if (const auto* f = o.if_contains("messages")) {
    if (!f->is_array()) return make_error(ErrorCode::kInvalidInput, "messages: must be a list");
    for (const auto& m : f->as_array()) {
      const auto* mo = m.if_object();
      const auto* role = mo != nullptr ? mo->if_contains("role") : nullptr;
      const auto* content = mo != nullptr ? mo->if_contains("content") : nullptr;
      if (role == nullptr || content == nullptr || !role->is_string() || !content->is_string())
        return make_error(ErrorCode::kInvalidInput, "messages: each must have a role and content");
      spec.messages.push_back({std::string(role->as_string()), std::string(content->as_string())});
    }
  }
  if (const auto* f = o.if_contains("deterministic")) {
    if (!f->is_bool()) return make_error(ErrorCode::kInvalidInput, "deterministic: must be a boolean");
    spec.deterministic = f->as_bool();
  }
  if (st = num("max_cost_msat", spec.max_cost_msat); !st) return tl::unexpected(st.error());
  if (st = num("deadline", spec.deadline); !st) return tl::unexpected(st.error());
  if (st = num("start_by", spec.start_by); !st) return tl::unexpected(st.error());
  if (st = num("min_gpu_memory_mb", spec.min_gpu_memory_mb); !st) return tl::unexpected(st.error());
  if (const auto* f = o.if_contains("open_quotes")) {
    if (!f->is_bool()) return make_error(ErrorCode::kInvalidInput, "open_quotes: must be a boolean");
    spec.open_quotes = f->as_bool();
  }
  return spec;
}

// ---- the writer's statements ----

struct JobStore::WriterStatements {
  Statement insert_job;
  Statement update_job;
  Statement insert_event;
  Statement save_attempt;
  Statement save_result;
  Statement save_receipt;
  Statement insert_seen;
  Statement save_provider;
  Statement prune_seen;
  Statement insert_notification;

  static Result<std::unique_ptr<WriterStatements>> prepare(Database& db) {
    auto st = std::make_unique<WriterStatements>();
    const std::pair<Statement WriterStatements::*, std::string_view> sql[] = {
        {&WriterStatements::insert_job,
         "INSERT INTO jobs (id, client_request_id, model, spec, state, provider, attempt, output, error, "
         "input_tokens, output_tokens, cost_msat, created_at, updated_at) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        // NULL leaves a column as it is; ?6 is appended to the output (after ?5 replaced it, if given).
        {&WriterStatements::update_job,
         "UPDATE jobs SET state = coalesce(?1, state), provider = coalesce(?2, provider), "
         "attempt = coalesce(?3, attempt), error = coalesce(?4, error), "
         "output = CASE WHEN ?5 IS NULL AND ?6 = '' THEN output ELSE coalesce(?5, output) || ?6 END, "
         "input_tokens = coalesce(?7, input_tokens), output_tokens = coalesce(?8, output_tokens), "
         "cost_msat = coalesce(?9, cost_msat), updated_at = ?10 WHERE id = ?11"},
        {&WriterStatements::insert_event,
         "INSERT INTO job_events (job_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)"},
        {&WriterStatements::save_attempt,
         "INSERT OR REPLACE INTO attempts (job_id, attempt, provider, request_event_id, state, reason, "
         "resume_bytes, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&WriterStatements::save_result,
         "INSERT OR REPLACE INTO results (job_id, attempt, event_id, provider, ok, output, error_code, "
         "error, "
         "input_tokens, output_tokens, cost_msat, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&WriterStatements::save_receipt,
         "INSERT OR REPLACE INTO receipts (job_id, attempt, provider, cost_msat, result_event_id, "
         "receipt_event_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"},
        {&WriterStatements::insert_seen, "INSERT OR IGNORE INTO seen_events (id, created_at) VALUES (?, ?)"},
        // An older announcement arriving late (another relay, a resubscription) never replaces a newer one.
        {&WriterStatements::save_provider,
         "INSERT INTO providers (pubkey, name, announcement, last_seen, expires_at) VALUES (?, ?, ?, ?, ?) "
         "ON CONFLICT (pubkey) DO UPDATE SET name = excluded.name, announcement = excluded.announcement, "
         "last_seen = excluded.last_seen, expires_at = excluded.expires_at "
         "WHERE excluded.last_seen >= providers.last_seen"},
        {&WriterStatements::prune_seen, "DELETE FROM seen_events WHERE created_at < ?"},
        {&WriterStatements::insert_notification,
         "INSERT INTO notifications (id, type, job_id, data, at) VALUES (?, ?, ?, ?, ?)"},
    };
    for (const auto& [member, text] : sql) {
      auto stmt = db.prepare(text, true);
      if (!stmt) return tl::unexpected(stmt.error());
      (*st).*member = std::move(*stmt);
    }
    return st;
  }
};

// ---- one change on its way to the writer ----

class JobStore::ChangeJob final : public store::WriteJob {
 public:
  ChangeJob(WriterStatements& statements, JobChange change, std::function<void(const Status&)> done)
      : statements_(statements), change_(std::move(change)), done_(std::move(done)) {}

  Status run(Database& /*db*/) override {
    WriterStatements& s = statements_;
    const JobChange& c = change_;
    if (c.insert) {
      const JobRecord& r = *c.insert;
      std::optional<std::string> request_id;
      if (!r.client_request_id.empty()) request_id = r.client_request_id;
      if (auto st =
              bind_and_run(s.insert_job, r.id, request_id, r.spec.model, spec_to_json(r.spec),
                           to_string(r.state), r.provider, r.attempt, r.output, r.error, r.usage.input_tokens,
                           r.usage.output_tokens, r.cost_msat, r.created_at, r.updated_at);
          !st) {
        return with_job(st, "insert");
      }
    }
    const bool updates = c.state || c.provider || c.attempt || c.error || c.output ||
                         !c.append_output.empty() || c.usage || c.cost_msat;
    if (updates) {
      std::optional<std::string> state;
      if (c.state) state = to_string(*c.state);
      std::optional<uint32_t> input_tokens;
      std::optional<uint32_t> output_tokens;
      if (c.usage) {
        input_tokens = c.usage->input_tokens;
        output_tokens = c.usage->output_tokens;
      }
      if (auto st =
              bind_and_run(s.update_job, state, c.provider, c.attempt, c.error, c.output, c.append_output,
                           input_tokens, output_tokens, c.cost_msat, c.updated_at, c.job_id);
          !st) {
        return with_job(st, "update");
      }
    }
    for (const auto& e : c.events) {
      if (auto st = bind_and_run(s.insert_event, c.job_id, e.seq, e.type, e.data, e.at); !st) {
        return with_job(st, "event " + std::to_string(e.seq));
      }
    }
    for (const auto& a : c.attempt_rows) {
      if (auto st = bind_and_run(s.save_attempt, a.job_id, a.attempt, a.provider, a.request_event_id, a.state,
                                 a.reason, a.resume_bytes, a.started_at, a.updated_at);
          !st) {
        return with_job(st, "attempt " + std::to_string(a.attempt));
      }
    }
    if (const auto& r = c.result) {
      if (auto st = bind_and_run(s.save_result, r->job_id, r->attempt, r->event_id, r->provider, r->ok,
                                 r->output, r->error_code, r->error, r->usage.input_tokens,
                                 r->usage.output_tokens, r->cost_msat, r->received_at);
          !st) {
        return with_job(st, "result");
      }
    }
    if (const auto& r = c.receipt) {
      if (auto st = bind_and_run(s.save_receipt, r->job_id, r->attempt, r->provider, r->cost_msat,
                                 r->result_event_id, r->receipt_event_id, r->created_at);
          !st) {
        return with_job(st, "receipt");
      }
    }
    for (const auto& [id, created_at] : c.seen) {
      if (auto st = bind_and_run(s.insert_seen, id, created_at); !st) return with_job(st, "seen event");
    }
    for (const auto& n : c.notifications) {
      if (auto st = bind_and_run(s.insert_notification, n.id, n.type, n.job_id, n.data, n.at); !st) {
        return with_job(st, "notification " + std::to_string(n.id));
      }
    }
    return {};
  }

  void finish(const Status& outcome) override {
    if (done_) done_(outcome);
  }

 private:
  Status with_job(const Status& st, const std::string& what) const {
    return tl::unexpected(with_context(st.error(), "job " + change_.job_id + ": " + what));
  }

  WriterStatements& statements_;
  JobChange change_;
  std::function<void(const Status&)> done_;
};

// ---- read connections ----

struct JobStore::ReadConnection {
  Database db;

  // Prepared statements are kept per connection, keyed by SQL text (store::Database::cached): queries of one
  // shape share a text, so a steady workload is served without compiling SQL again.
  Result<Statement*> statement(const std::string& sql) { return db.cached(sql); }
};

// A read connection borrowed from the pool for one query, handed back when the lease ends.
class JobStore::ReaderLease {
 public:
  ReaderLease(JobStore& store, std::unique_ptr<ReadConnection> reader)
      : store_(&store), reader_(std::move(reader)) {}
  ReaderLease(ReaderLease&&) noexcept = default;
  ReaderLease& operator=(ReaderLease&&) = delete;
  ~ReaderLease() {
    if (reader_) store_->release_reader(std::move(reader_));
  }
  ReadConnection* operator->() const { return reader_.get(); }

 private:
  JobStore* store_;
  std::unique_ptr<ReadConnection> reader_;
};

// ---- JobStore ----

Result<std::unique_ptr<JobStore>> JobStore::open(const std::string& path) {
  if (path.empty()) return make_error(ErrorCode::kInvalidInput, "job database: path is empty");
  if (path == ":memory:" || path.starts_with("file::memory:")) {
    return make_error(ErrorCode::kInvalidInput,
                      "job database: an in-memory database cannot be shared by the writer and readers");
  }
  const std::string context = "job database " + path;
  auto db = Database::open(path);
  if (!db) return tl::unexpected(with_context(db.error(), context));
  if (auto s = store::migrate(*db, internal::job_store_schema()); !s) {
    return tl::unexpected(with_context(s.error(), context));
  }
  auto statements = WriterStatements::prepare(*db);
  if (!statements) return tl::unexpected(with_context(statements.error(), context));
  auto writer = std::make_unique<store::BatchWriter>(std::move(*db), store::BatchWriterOptions{});
  auto js = std::make_unique<JobStore>(Passkey{}, path, std::move(*statements), std::move(writer));
  // Open one reader now, so a problem with read connections shows at start-up rather than at a query.
  auto reader = js->acquire_reader();
  if (!reader) return tl::unexpected(with_context(reader.error(), context));
  js->release_reader(std::move(*reader));
  return js;
}

JobStore::JobStore(Passkey, std::string path, std::unique_ptr<WriterStatements> statements,
                   std::unique_ptr<store::BatchWriter> writer)
    : path_(std::move(path)), statements_(std::move(statements)), writer_(std::move(writer)) {}

JobStore::~JobStore() {
  close();
}

void JobStore::close() {
  writer_->stop();
}

Status JobStore::apply(JobChange change, std::function<void(const Status&)> on_committed) {
  return writer_->submit(
      std::make_unique<ChangeJob>(*statements_, std::move(change), std::move(on_committed)));
}

Status JobStore::apply_and_wait(JobChange change) {
  std::promise<Status> outcome;
  auto queued = apply(std::move(change), [&outcome](const Status& s) { outcome.set_value(s); });
  if (!queued) return queued;
  return outcome.get_future().get();
}

Status JobStore::save_provider(StoredProvider p) {
  WriterStatements* s = statements_.get();
  return writer_->submit(
      [s, p = std::move(p)](Database&) {
        return bind_and_run(s->save_provider, p.pubkey, p.name, p.event_json, p.last_seen, p.expires_at);
      },
      nullptr);
}

Status JobStore::prune_seen(int64_t created_before) {
  WriterStatements* s = statements_.get();
  return writer_->submit(
      [s, created_before](Database&) { return bind_and_run(s->prune_seen, created_before); }, nullptr);
}

Result<std::unique_ptr<JobStore::ReadConnection>> JobStore::acquire_reader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      auto reader = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return reader;
    }
  }
  auto db = Database::open(path_, {.read_only = true});
  if (!db) return tl::unexpected(db.error());
  return std::make_unique<ReadConnection>(ReadConnection{std::move(*db)});
}

void JobStore::release_reader(std::unique_ptr<ReadConnection> reader) {
  std::lock_guard lock(readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(reader));
}

namespace {

// Prepares (or reuses) `sql` on a leased reader, binds the arguments and collects the rows.
template <class T, class Lease, class Read, class... Args>
Result<std::vector<T>> query_rows(Lease& reader, const std::string& sql, Read read, const Args&... args) {
  auto stmt = reader->statement(sql);
  if (!stmt) return tl::unexpected(stmt.error());
  ResetOnExit reset(**stmt);
  if (auto b = bind_all(**stmt, args...); !b) return tl::unexpected(b.error());
  return read_rows<T>(**stmt, read);
}

Result<JobEvent> read_event(const Statement& s) {
  JobEvent e;
  e.job_id = text(s, 0);
  e.seq = static_cast<uint64_t>(s.column_int64(1));
  e.type = text(s, 2);
  e.data = text(s, 3);
  e.at = s.column_int64(4);
  return e;
}

Result<AttemptRecord> read_attempt(const Statement& s) {
  AttemptRecord a;
  a.job_id = text(s, 0);
  a.attempt = static_cast<uint32_t>(s.column_int64(1));
  a.provider = text(s, 2);
  a.request_event_id = text(s, 3);
  a.state = text(s, 4);
  a.reason = text(s, 5);
  a.resume_bytes = static_cast<uint64_t>(s.column_int64(6));
  a.started_at = s.column_int64(7);
  a.updated_at = s.column_int64(8);
  return a;
}

}  // namespace

Result<JobStore::ReaderLease> JobStore::lease() {
  auto reader = acquire_reader();
  if (!reader) return tl::unexpected(reader.error());
  return ReaderLease(*this, std::move(*reader));
}

Result<JobRecord> JobStore::get(const std::string& job_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<JobRecord>(*reader, "SELECT " + std::string(kJobColumns) + " FROM jobs WHERE id = ?",
                                    read_job, job_id);
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return make_error(ErrorCode::kNotFound, "job " + job_id + ": not found");
  return std::move(rows->front());
}

Result<std::optional<JobRecord>> JobStore::find_by_client_request_id(const std::string& client_request_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<JobRecord>(
      *reader, "SELECT " + std::string(kJobColumns) + " FROM jobs WHERE client_request_id = ?", read_job,
      client_request_id);
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move(rows->front()));
}

Result<std::vector<JobRecord>> JobStore::list(const JobQuery& query) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  // Only the filters present go into the SQL, so SQLite can pick the index of the column each one names
  // (each text is cached per reader).
  std::string sql = "SELECT " + std::string(kJobColumns) + " FROM jobs WHERE 1";
  std::optional<std::string> state;
  if (query.state) {
    sql += " AND state = ?";
    state = to_string(*query.state);
  }
  if (query.model) sql += " AND model = ?";
  if (query.since) sql += " AND created_at >= ?";
  if (query.until) sql += " AND created_at <= ?";
  const bool newest_first = query.order == ListOrder::kNewestFirst;
  // A row-value comparison, so SQLite seeks the (created_at, id) indexes straight to the cursor.
  if (query.after) sql += newest_first ? " AND (created_at, id) < (?, ?)" : " AND (created_at, id) > (?, ?)";
  sql += newest_first ? " ORDER BY created_at DESC, id DESC LIMIT ?" : " ORDER BY created_at, id LIMIT ?";
  auto stmt = (*reader)->statement(sql);
  if (!stmt) return tl::unexpected(stmt.error());
  ResetOnExit reset(**stmt);
  int i = 0;
  Status b;
  if (state && b) b = (*stmt)->bind_text(++i, *state);
  if (query.model && b) b = (*stmt)->bind_text(++i, *query.model);
  if (query.since && b) b = (*stmt)->bind_int64(++i, *query.since);
  if (query.until && b) b = (*stmt)->bind_int64(++i, *query.until);
  if (query.after && b) b = (*stmt)->bind_int64(++i, query.after->created_at);
  if (query.after && b) b = (*stmt)->bind_text(++i, query.after->id);
  if (b) b = (*stmt)->bind_int64(++i, static_cast<int64_t>(std::min(query.limit, kMaxJobListRows)));
  if (!b) return tl::unexpected(b.error());
  return read_rows<JobRecord>(**stmt, read_job);
}

Result<std::vector<JobEvent>> JobStore::events(const std::string& job_id, uint64_t after_seq, size_t limit) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<JobEvent>(
      *reader,
      "SELECT job_id, seq, type, data, at FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
      read_event, job_id, static_cast<uint64_t>(std::min<uint64_t>(after_seq, INT64_MAX)),
      static_cast<uint64_t>(std::min<size_t>(limit, INT64_MAX)));
}

Result<uint64_t> JobStore::last_seq(const std::string& job_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<uint64_t>(
      *reader, "SELECT coalesce(max(seq), 0) FROM job_events WHERE job_id = ?",
      [](const Statement& s) -> Result<uint64_t> { return static_cast<uint64_t>(s.column_int64(0)); },
      job_id);
  if (!rows) return tl::unexpected(rows.error());
  return rows->empty() ? 0 : rows->front();
}

Result<std::optional<JobEvent>> JobStore::last_event(const std::string& job_id, const std::string& type) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<JobEvent>(*reader,
                                   "SELECT job_id, seq, type, data, at FROM job_events WHERE job_id = ? AND "
                                   "type = ? ORDER BY seq DESC LIMIT 1",
                                   read_event, job_id, type);
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return std::optional<JobEvent>();
  return std::optional<JobEvent>(std::move(rows->front()));
}

Result<std::vector<JobRecord>> JobStore::unfinished() {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<JobRecord>(
      *reader,
      "SELECT " + std::string(kJobColumns) +
          " FROM jobs WHERE state IN ('submitted', 'matched', 'assigned', 'running') "
          "ORDER BY created_at, id",
      read_job);
}

Result<std::vector<AttemptRecord>> JobStore::attempts(const std::string& job_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<AttemptRecord>(
      *reader,
      "SELECT job_id, attempt, provider, request_event_id, state, reason, resume_bytes, "
      "started_at, updated_at FROM attempts WHERE job_id = ? ORDER BY attempt",
      read_attempt, job_id);
}

Result<std::optional<ResultRecord>> JobStore::result(const std::string& job_id, uint32_t attempt) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<ResultRecord>(
      *reader,
      "SELECT job_id, attempt, event_id, provider, ok, output, error_code, error, input_tokens, "
      "output_tokens, "
      "cost_msat, received_at FROM results WHERE job_id = ? AND attempt = ?",
      [](const Statement& s) -> Result<ResultRecord> {
        ResultRecord r;
        r.job_id = text(s, 0);
        r.attempt = static_cast<uint32_t>(s.column_int64(1));
        r.event_id = text(s, 2);
        r.provider = text(s, 3);
        r.ok = s.column_int64(4) != 0;
        r.output = text(s, 5);
        r.error_code = text(s, 6);
        r.error = text(s, 7);
        r.usage.input_tokens = static_cast<uint32_t>(s.column_int64(8));
        r.usage.output_tokens = static_cast<uint32_t>(s.column_int64(9));
        r.cost_msat = static_cast<uint64_t>(s.column_int64(10));
        r.received_at = s.column_int64(11);
        return r;
      },
      job_id, attempt);
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return std::optional<ResultRecord>();
  return std::optional<ResultRecord>(std::move(rows->front()));
}

Result<std::vector<ReceiptRecord>> JobStore::receipts(const std::string& job_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<ReceiptRecord>(
      *reader,
      "SELECT job_id, attempt, provider, cost_msat, result_event_id, receipt_event_id, created_at FROM "
      "receipts "
      "WHERE job_id = ? ORDER BY attempt",
      [](const Statement& s) -> Result<ReceiptRecord> {
        ReceiptRecord r;
        r.job_id = text(s, 0);
        r.attempt = static_cast<uint32_t>(s.column_int64(1));
        r.provider = text(s, 2);
        r.cost_msat = static_cast<uint64_t>(s.column_int64(3));
        r.result_event_id = text(s, 4);
        r.receipt_event_id = text(s, 5);
        r.created_at = s.column_int64(6);
        return r;
      },
      job_id);
}

Result<uint64_t> JobStore::charged_since(int64_t since_ms) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<uint64_t>(
      *reader, "SELECT coalesce(sum(cost_msat), 0) FROM receipts WHERE created_at >= ?",
      [](const Statement& s) -> Result<uint64_t> { return static_cast<uint64_t>(s.column_int64(0)); },
      since_ms);
  if (!rows) return tl::unexpected(rows.error());
  return rows->empty() ? 0 : rows->front();
}

Result<std::vector<StoredProvider>> JobStore::providers() {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<StoredProvider>(
      *reader, "SELECT pubkey, name, announcement, last_seen, expires_at FROM providers ORDER BY pubkey",
      [](const Statement& s) -> Result<StoredProvider> {
        return StoredProvider{text(s, 0), text(s, 1), text(s, 2), s.column_int64(3), s.column_int64(4)};
      });
}

Result<std::vector<std::string>> JobStore::seen_since(int64_t since) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<std::string>(
      *reader, "SELECT id FROM seen_events WHERE created_at >= ?",
      [](const Statement& s) -> Result<std::string> { return text(s, 0); }, since);
}

Result<bool> JobStore::was_seen(const std::string& event_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<int64_t>(
      *reader, "SELECT 1 FROM seen_events WHERE id = ?",
      [](const Statement& s) -> Result<int64_t> { return s.column_int64(0); }, event_id);
  if (!rows) return tl::unexpected(rows.error());
  return !rows->empty();
}

Result<std::vector<Notification>> JobStore::notifications(uint64_t after_id, size_t limit) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<Notification>(
      *reader, "SELECT id, type, job_id, data, at FROM notifications WHERE id > ? ORDER BY id LIMIT ?",
      [](const Statement& s) -> Result<Notification> {
        return Notification{static_cast<uint64_t>(s.column_int64(0)), text(s, 1), text(s, 2),
                            s.column_int64(4), text(s, 3)};
      },
      static_cast<uint64_t>(std::min<uint64_t>(after_id, INT64_MAX)),
      static_cast<uint64_t>(std::min<size_t>(limit, INT64_MAX)));
}

Result<uint64_t> JobStore::last_notification_id() {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<uint64_t>(
      *reader, "SELECT coalesce(max(id), 0) FROM notifications",
      [](const Statement& s) -> Result<uint64_t> { return static_cast<uint64_t>(s.column_int64(0)); });
  if (!rows) return tl::unexpected(rows.error());
  return rows->empty() ? 0 : rows->front();
}

Result<uint32_t> JobStore::budget_threshold_notified(const std::string& job_id) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  auto rows = query_rows<uint32_t>(
      *reader,
      "SELECT coalesce(max(json_extract(data, '$.threshold_percent')), 0) FROM notifications "
      "WHERE job_id = ? AND type = 'budget.threshold'",
      [](const Statement& s) -> Result<uint32_t> { return static_cast<uint32_t>(s.column_int64(0)); },
      job_id);
  if (!rows) return tl::unexpected(rows.error());
  return rows->empty() ? 0 : rows->front();
}

Status JobStore::save_reservation(const ReservationRecord& r,
                                  std::function<void(const Status&)> on_committed) {
  auto done = std::make_shared<std::promise<Status>>();
  auto committed = done->get_future();
  const bool wait = !on_committed;
  auto submitted = writer_->submit(
      [r](Database& db) -> Status {
        auto stmt = db.cached(
            "INSERT OR REPLACE INTO reservations (id, provider, slots, hours, state, reason, start_at, "
            "end_at, "
            "discount_percent, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (!stmt) return tl::unexpected(stmt.error());
        return bind_and_run(**stmt, r.id, r.provider, int64_t{r.slots}, int64_t{r.hours}, r.state, r.reason,
                            r.start, r.end, int64_t{r.discount_percent}, r.created_at, r.updated_at);
      },
      [done, on_committed = std::move(on_committed)](const Status& st) {
        if (on_committed) on_committed(st);
        done->set_value(st);
      });
  if (!submitted) return submitted;
  if (!wait) return {};
  return committed.get();
}

Result<std::vector<ReservationRecord>> JobStore::reservations(size_t limit) {
  auto reader = lease();
  if (!reader) return tl::unexpected(reader.error());
  return query_rows<ReservationRecord>(
      *reader,
      "SELECT id, provider, slots, hours, state, reason, start_at, end_at, discount_percent, created_at, "
      "updated_at FROM reservations ORDER BY created_at DESC, id LIMIT ?",
      [](const Statement& s) -> Result<ReservationRecord> {
        return ReservationRecord{text(s, 0),
                                 text(s, 1),
                                 static_cast<uint32_t>(s.column_int64(2)),
                                 static_cast<uint32_t>(s.column_int64(3)),
                                 text(s, 4),
                                 text(s, 5),
                                 s.column_int64(6),
                                 s.column_int64(7),
                                 static_cast<uint32_t>(s.column_int64(8)),
                                 s.column_int64(9),
                                 s.column_int64(10)};
      },
      static_cast<int64_t>(limit));
}

}  // namespace infernet::consumer
