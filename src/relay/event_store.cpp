#include "relay/event_store.hpp"

#include <algorithm>
#include <charconv>
#include <future>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "core/encoding.hpp"
#include "relay/internal/event_store_sql.hpp"

namespace infernet::relay {
namespace {

using nostr::Event;
using nostr::KindClass;
using store::Database;
using store::Statement;

constexpr uint32_t kDeletionKind = 5;
// Idle read connections kept for reuse; more are opened under load and closed after.
constexpr size_t kMaxIdleReaders = 32;
// Each event inserts into about a dozen B-trees at random places (id, pubkey and tag-value keys); with
// SQLite's default 2 MiB cache most of those pages are re-read from the OS on every batch. Measured on 50k
// events: about 1.5x the writer's throughput.
constexpr int kWriterCacheKib = 64 * 1024;
// Fewer, larger checkpoints (16 MiB of log with 4 KiB pages) coalesce pages written again and again and
// fsync less often; measured 15-20% more throughput than SQLite's 1000 under sustained ingest.
constexpr int kCheckpointPages = 4000;

Status bind_one(Statement& s, int i, int64_t v) {
  return s.bind_int64(i, v);
}
Status bind_one(Statement& s, int i, std::string_view v) {
  return s.bind_text(i, v);
}
Status bind_one(Statement& s, int i, std::span<const uint8_t> v) {
  return s.bind_blob(i, v);
}
Status bind_one(Statement& s, int i, const std::optional<std::string>& v) {
  return v ? s.bind_text(i, *v) : s.bind_null(i);
}
Status bind_one(Statement& s, int i, const std::optional<int64_t>& v) {
  return v ? s.bind_int64(i, *v) : s.bind_null(i);
}

// Binds the arguments to positions 1..n, stopping at the first error.
template <class... Args>
Status bind_all(Statement& s, const Args&... args) {
  Status result;
  int i = 0;
  ((result = result ? bind_one(s, ++i, args) : result), ...);
  return result;
}

// Statements are kept for a connection's lifetime, so each use must end with a reset, on every path: a
// half-stepped SELECT would otherwise pin its read snapshot.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& s) : s_(s) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { s_.reset(); }

 private:
  Statement& s_;
};

Result<bool> has_row(Statement& s) {
  auto step = s.step();
  if (!step) return tl::unexpected(step.error());
  return *step == Statement::Step::kRow;
}

Status run_to_done(Statement& s) {
  auto step = s.step();
  if (!step) return tl::unexpected(step.error());
  return {};
}

std::optional<int64_t> parse_int64(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// An "a" tag's coordinate, "<kind>:<pubkey hex>:<d>"; d may itself contain ':'.
struct Coordinate {
  uint32_t kind = 0;
  std::array<uint8_t, 32> pubkey{};
  std::string_view d;
};

std::optional<Coordinate> parse_coordinate(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto kind = parse_int64(text.substr(0, colon));
  if (!kind || *kind < 0 || *kind > nostr::kMaxKind) return std::nullopt;
  Coordinate c;
  c.kind = static_cast<uint32_t>(*kind);
  std::string_view rest = text.substr(colon + 1);
  if (rest.size() < 64 || !hex_decode_fixed(rest.substr(0, 64), c.pubkey)) return std::nullopt;
  rest.remove_prefix(64);
  if (!rest.empty()) {
    if (rest.front() != ':') return std::nullopt;
    c.d = rest.substr(1);
  }
  return c;
}

struct IdRow {
  int64_t rowid;
  int64_t created_at;
  nostr::EventId id;
};

}  // namespace

// ---- the writer's statements ----

struct EventStore::WriterStatements {
  Statement find_id;
  Statement find_deleted_id;
  Statement find_deleted_coord;
  Statement find_replaceable;
  Statement find_addressable;
  Statement insert_event;
  Statement insert_tag;
  Statement delete_tags;
  Statement delete_event;
  Statement find_for_deletion;
  Statement find_replaceable_until;
  Statement find_addressable_until;
  Statement remember_deleted_id;
  Statement remember_deleted_coord;
  Statement find_expired;

  // Prepared once, when the store opens: the writer's hot path never parses SQL.
  static Result<std::unique_ptr<WriterStatements>> prepare(Database& db) {
    auto st = std::make_unique<WriterStatements>();
    const std::pair<Statement WriterStatements::*, std::string_view> sql[] = {
        {&WriterStatements::find_id, "SELECT 1 FROM events WHERE id = ?"},
        {&WriterStatements::find_deleted_id, "SELECT 1 FROM deleted_ids WHERE id = ? AND pubkey = ?"},
        {&WriterStatements::find_deleted_coord,
         "SELECT 1 FROM deleted_coords WHERE kind = ? AND pubkey = ? AND d_tag = ? AND deleted_until >= ?"},
        {&WriterStatements::find_replaceable,
         "SELECT rowid, created_at, id FROM events WHERE pubkey = ? AND kind = ?"},
        {&WriterStatements::find_addressable,
         "SELECT rowid, created_at, id FROM events WHERE pubkey = ? AND kind = ? AND d_tag = ?"},
        {&WriterStatements::insert_event,
         "INSERT INTO events (id, pubkey, created_at, kind, d_tag, expiration, json) VALUES (?, ?, ?, ?, ?, "
         "?, ?)"},
        {&WriterStatements::insert_tag,
         "INSERT INTO tags (event, name, value, created_at) VALUES (?, ?, ?, ?)"},
        {&WriterStatements::delete_tags, "DELETE FROM tags WHERE event = ?"},
        {&WriterStatements::delete_event, "DELETE FROM events WHERE rowid = ?"},
        {&WriterStatements::find_for_deletion, "SELECT rowid, pubkey, kind FROM events WHERE id = ?"},
        {&WriterStatements::find_replaceable_until,
         "SELECT rowid FROM events WHERE pubkey = ? AND kind = ? AND created_at <= ?"},
        {&WriterStatements::find_addressable_until,
         "SELECT rowid FROM events WHERE pubkey = ? AND kind = ? AND d_tag = ? AND created_at <= ?"},
        {&WriterStatements::remember_deleted_id,
         "INSERT OR IGNORE INTO deleted_ids (id, pubkey) VALUES (?, ?)"},
        {&WriterStatements::remember_deleted_coord,
         "INSERT INTO deleted_coords (kind, pubkey, d_tag, deleted_until) VALUES (?, ?, ?, ?) "
         "ON CONFLICT (kind, pubkey, d_tag) DO UPDATE SET deleted_until = max(deleted_until, "
         "excluded.deleted_until)"},
        {&WriterStatements::find_expired, "SELECT rowid FROM events WHERE expiration <= ?"},
    };
    for (const auto& [member, text] : sql) {
      auto stmt = db.prepare(text, true);
      if (!stmt) return tl::unexpected(stmt.error());
      (*st).*member = std::move(*stmt);
    }
    return st;
  }
};

// ---- one add() on its way to the writer ----

class EventStore::AddJob final : public store::WriteJob {
 public:
  // Everything derived from the event is computed here, on the caller's thread, so the single writer
  // thread only runs SQL.
  AddJob(EventStore& store, Event event, std::string json, std::function<void(Result<AddResult>)> done)
      : event(std::move(event)), json(std::move(json)), store_(store), done_(std::move(done)) {
    if (nostr::classify_kind(this->event.kind) == KindClass::kAddressable) {
      d_tag = std::string(this->event.tag_value("d").value_or(""));
    }
    if (auto value = this->event.tag_value("expiration")) expiration = parse_int64(*value);
    // Single-letter tags are what filters can ask for; index each (name, first value) once.
    const auto& tags = this->event.tags;
    for (uint32_t i = 0; i < tags.size(); ++i) {
      if (tags[i].size() >= 2 && tags[i][0].size() == 1) indexed_tags.push_back(i);
    }
    auto key = [&](uint32_t i) { return std::tie(tags[i][0], tags[i][1]); };
    std::sort(indexed_tags.begin(), indexed_tags.end(),
              [&](uint32_t a, uint32_t b) { return key(a) < key(b); });
    indexed_tags.erase(std::unique(indexed_tags.begin(), indexed_tags.end(),
                                   [&](uint32_t a, uint32_t b) { return key(a) == key(b); }),
                       indexed_tags.end());
  }

  Status run(Database& db) override {
    auto r = store_.write_event(db, *this);
    if (!r) return tl::unexpected(r.error());
    result_ = *r;
    return {};
  }

  void finish(const Status& outcome) override {
    if (!done_) return;
    if (outcome) {
      done_(result_);
    } else {
      done_(tl::unexpected(outcome.error()));
    }
  }

  const Event event;
  const std::string json;
  std::optional<std::string> d_tag;    // addressable kinds only
  std::optional<int64_t> expiration;   // NIP-40
  std::vector<uint32_t> indexed_tags;  // positions in event.tags

 private:
  EventStore& store_;
  std::function<void(Result<AddResult>)> done_;
  AddResult result_ = AddResult::kStored;
};

// ---- reads ----

struct EventStore::ReadConnection {
  Database db;

  // Prepared statements are kept per connection, keyed by SQL text (store::Database::cached): queries of one
  // shape share a text, so a steady workload is served without compiling SQL again.
  Result<Statement*> statement(const std::string& sql) { return db.cached(sql); }
};

// ---- EventStore ----

Result<std::unique_ptr<EventStore>> EventStore::open(const EventStoreOptions& options) {
  if (options.path.empty()) return make_error(ErrorCode::kInvalidInput, "event store: path is empty");
  if (options.path == ":memory:" || options.path.starts_with("file::memory:")) {
    return make_error(ErrorCode::kInvalidInput,
                      "event store: an in-memory database cannot be shared by the writer and readers");
  }
  const std::string context = "event store " + options.path;
  auto db = Database::open(options.path, {.cache_size_kib = kWriterCacheKib});
  if (!db) return tl::unexpected(with_context(db.error(), context));
  if (auto s = store::migrate(*db, internal::event_store_schema()); !s) {
    return tl::unexpected(with_context(s.error(), context));
  }
  auto statements = WriterStatements::prepare(*db);
  if (!statements) return tl::unexpected(with_context(statements.error(), context));
  auto commit_lock = std::make_unique<std::shared_mutex>();
  auto writer = std::make_unique<store::BatchWriter>(
      std::move(*db), store::BatchWriterOptions{.queue_capacity = options.writer_queue_capacity,
                                                .max_batch = options.max_batch,
                                                .checkpoint_pages = kCheckpointPages,
                                                .commit_lock = commit_lock.get()});
  auto es = std::make_unique<EventStore>(Passkey{}, options.path, std::move(commit_lock),
                                         std::move(*statements), std::move(writer));
  // Open one reader now, so a problem with read connections shows at start-up rather than at a query.
  auto reader = es->acquire_reader();
  if (!reader) return tl::unexpected(with_context(reader.error(), context));
  es->release_reader(std::move(*reader));
  return es;
}

EventStore::EventStore(Passkey, std::string path, std::unique_ptr<std::shared_mutex> commit_lock,
                       std::unique_ptr<WriterStatements> statements,
                       std::unique_ptr<store::BatchWriter> writer)
    : path_(std::move(path)),
      commit_lock_(std::move(commit_lock)),
      statements_(std::move(statements)),
      writer_(std::move(writer)) {}

EventStore::~EventStore() {
  close();
}

void EventStore::close() {
  writer_->stop();
}

Status EventStore::add(Event event, std::function<void(Result<AddResult>)> done) {
  std::string json = nostr::to_json(event);
  return add(std::move(event), std::move(json), std::move(done));
}

Status EventStore::add(Event event, std::string json, std::function<void(Result<AddResult>)> done) {
  if (nostr::classify_kind(event.kind) == KindClass::kEphemeral) {
    return make_error(ErrorCode::kInvalidInput, "kind " + std::to_string(event.kind) +
                                                    ": ephemeral events (20000-29999) are not stored");
  }
  return writer_->submit(std::make_unique<AddJob>(*this, std::move(event), std::move(json), std::move(done)));
}

Result<AddResult> EventStore::add_and_wait(Event event) {
  std::promise<Result<AddResult>> outcome;
  auto queued = add(std::move(event), [&outcome](Result<AddResult> r) { outcome.set_value(std::move(r)); });
  if (!queued) return tl::unexpected(queued.error());
  return outcome.get_future().get();
}

Status EventStore::purge_expired(int64_t now) {
  std::promise<Status> outcome;
  auto queued = writer_->submit(
      [this, now](Database&) -> Status {
        std::vector<int64_t> rowids;
        {
          Statement& find = statements_->find_expired;
          ResetOnExit reset(find);
          if (auto s = bind_all(find, now); !s) return s;
          for (;;) {
            auto row = has_row(find);
            if (!row) return tl::unexpected(row.error());
            if (!*row) break;
            rowids.push_back(find.column_int64(0));
          }
        }
        for (int64_t rowid : rowids) {
          if (auto s = delete_row(rowid); !s) return s;
        }
        return {};
      },
      [&outcome](const Status& s) { outcome.set_value(s); });
  if (!queued) return queued;
  return outcome.get_future().get();
}

Status EventStore::delete_row(int64_t rowid) {
  for (Statement* stmt : {&statements_->delete_tags, &statements_->delete_event}) {
    ResetOnExit reset(*stmt);
    if (auto s = bind_all(*stmt, rowid); !s) return s;
    if (auto s = run_to_done(*stmt); !s) return s;
  }
  return {};
}

Result<AddResult> EventStore::write_event(Database& db, const AddJob& job) {
  WriterStatements& st = *statements_;
  const Event& ev = job.event;
  const std::span<const uint8_t> id(ev.id);
  const std::span<const uint8_t> pubkey(ev.pubkey);
  const auto kind = static_cast<int64_t>(ev.kind);
  {
    ResetOnExit reset(st.find_id);
    if (auto s = bind_all(st.find_id, id); !s) return tl::unexpected(s.error());
    auto found = has_row(st.find_id);
    if (!found) return tl::unexpected(found.error());
    if (*found) return AddResult::kDuplicate;
  }

  const KindClass kind_class = nostr::classify_kind(ev.kind);
  const bool versioned = kind_class == KindClass::kReplaceable || kind_class == KindClass::kAddressable;
  // A deletion request cannot itself be deleted (NIP-09), so none covers one.
  if (ev.kind != kDeletionKind) {
    {
      ResetOnExit reset(st.find_deleted_id);
      if (auto s = bind_all(st.find_deleted_id, id, pubkey); !s) return tl::unexpected(s.error());
      auto found = has_row(st.find_deleted_id);
      if (!found) return tl::unexpected(found.error());
      if (*found) return AddResult::kDeleted;
    }
    if (versioned) {
      ResetOnExit reset(st.find_deleted_coord);
      std::string_view d = job.d_tag ? std::string_view(*job.d_tag) : std::string_view();
      if (auto s = bind_all(st.find_deleted_coord, kind, pubkey, d, ev.created_at); !s) {
        return tl::unexpected(s.error());
      }
      auto found = has_row(st.find_deleted_coord);
      if (!found) return tl::unexpected(found.error());
      if (*found) return AddResult::kDeleted;
    }
  }

  if (versioned) {
    std::vector<IdRow> versions;
    {
      Statement& find = job.d_tag ? st.find_addressable : st.find_replaceable;
      ResetOnExit reset(find);
      Status bound = job.d_tag ? bind_all(find, pubkey, kind, std::string_view(*job.d_tag))
                               : bind_all(find, pubkey, kind);
      if (!bound) return tl::unexpected(bound.error());
      for (;;) {
        auto row = has_row(find);
        if (!row) return tl::unexpected(row.error());
        if (!*row) break;
        IdRow v{find.column_int64(0), find.column_int64(1), {}};
        auto stored_id = find.column_blob(2);
        std::copy_n(stored_id.begin(), std::min(stored_id.size(), v.id.size()), v.id.begin());
        versions.push_back(v);
      }
    }
    for (const auto& v : versions) {
      if (v.created_at > ev.created_at || (v.created_at == ev.created_at && v.id < ev.id)) {
        return AddResult::kSuperseded;
      }
    }
    for (const auto& v : versions) {
      if (auto s = delete_row(v.rowid); !s) return tl::unexpected(s.error());
    }
  }

  {
    ResetOnExit reset(st.insert_event);
    if (auto s = bind_all(st.insert_event, id, pubkey, ev.created_at, kind, job.d_tag, job.expiration,
                          std::string_view(job.json));
        !s) {
      return tl::unexpected(s.error());
    }
    if (auto s = run_to_done(st.insert_event); !s) return tl::unexpected(s.error());
  }
  const int64_t rowid = db.last_insert_rowid();
  for (uint32_t i : job.indexed_tags) {
    const auto& tag = ev.tags[i];
    ResetOnExit reset(st.insert_tag);
    if (auto s =
            bind_all(st.insert_tag, rowid, std::string_view(tag[0]), std::string_view(tag[1]), ev.created_at);
        !s) {
      return tl::unexpected(s.error());
    }
    if (auto s = run_to_done(st.insert_tag); !s) return tl::unexpected(s.error());
  }

  if (ev.kind == kDeletionKind) {
    if (auto s = apply_deletion(ev); !s) return tl::unexpected(s.error());
  }
  return AddResult::kStored;
}

Status EventStore::apply_deletion(const Event& deletion) {
  WriterStatements& st = *statements_;
  const std::span<const uint8_t> author(deletion.pubkey);
  std::vector<int64_t> doomed;
  for (const auto& tag : deletion.tags) {
    if (tag.size() < 2) continue;
    if (tag[0] == "e") {
      nostr::EventId target{};
      if (!hex_decode_fixed(tag[1], target)) continue;
      const std::span<const uint8_t> target_id(target);
      // Remembered even when the event is not here (yet): it is refused if it arrives later.
      {
        ResetOnExit reset(st.remember_deleted_id);
        if (auto s = bind_all(st.remember_deleted_id, target_id, author); !s) return s;
        if (auto s = run_to_done(st.remember_deleted_id); !s) return s;
      }
      ResetOnExit reset(st.find_for_deletion);
      if (auto s = bind_all(st.find_for_deletion, target_id); !s) return s;
      auto row = has_row(st.find_for_deletion);
      if (!row) return tl::unexpected(row.error());
      if (!*row) continue;
      auto stored_author = st.find_for_deletion.column_blob(1);
      bool same_author = std::equal(stored_author.begin(), stored_author.end(), author.begin(), author.end());
      if (same_author && st.find_for_deletion.column_int64(2) != kDeletionKind) {
        doomed.push_back(st.find_for_deletion.column_int64(0));
      }
    } else if (tag[0] == "a") {
      auto coord = parse_coordinate(tag[1]);
      if (!coord || coord->pubkey != deletion.pubkey) continue;
      const KindClass kind_class = nostr::classify_kind(coord->kind);
      if (kind_class != KindClass::kReplaceable && kind_class != KindClass::kAddressable) continue;
      const auto kind = static_cast<int64_t>(coord->kind);
      // Replaceable kinds have one version per (pubkey, kind); their coordinate's d is empty.
      const std::string_view d = kind_class == KindClass::kAddressable ? coord->d : std::string_view();
      {
        ResetOnExit reset(st.remember_deleted_coord);
        if (auto s = bind_all(st.remember_deleted_coord, kind, author, d, deletion.created_at); !s) return s;
        if (auto s = run_to_done(st.remember_deleted_coord); !s) return s;
      }
      Statement& find =
          kind_class == KindClass::kAddressable ? st.find_addressable_until : st.find_replaceable_until;
      ResetOnExit reset(find);
      Status bound = kind_class == KindClass::kAddressable
                         ? bind_all(find, author, kind, d, deletion.created_at)
                         : bind_all(find, author, kind, deletion.created_at);
      if (!bound) return bound;
      for (;;) {
        auto row = has_row(find);
        if (!row) return tl::unexpected(row.error());
        if (!*row) break;
        doomed.push_back(find.column_int64(0));
      }
    }
  }
  // Deleted after the lookups, so no SELECT is stepping over rows that change under it.
  std::sort(doomed.begin(), doomed.end());
  doomed.erase(std::unique(doomed.begin(), doomed.end()), doomed.end());
  for (int64_t rowid : doomed) {
    if (auto s = delete_row(rowid); !s) return s;
  }
  return {};
}

Result<std::unique_ptr<EventStore::ReadConnection>> EventStore::acquire_reader() {
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

void EventStore::release_reader(std::unique_ptr<ReadConnection> reader) {
  std::lock_guard lock(readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(reader));
}

namespace {

Status check_variable_count(const Database& db, const internal::SqlQuery& q) {
  if (q.params.size() > static_cast<size_t>(db.max_variables())) {
    return make_error(ErrorCode::kLimitExceeded,
                      "filter has too many values (" + std::to_string(q.params.size()) +
                          " bound parameters, at most " + std::to_string(db.max_variables()) + ")");
  }
  return {};
}

}  // namespace

EventStore::Snapshot::Snapshot(EventStore& store, std::unique_ptr<ReadConnection> reader)
    : store_(&store), reader_(std::move(reader)) {}

EventStore::Snapshot::Snapshot(Snapshot&& other) noexcept
    : store_(other.store_), reader_(std::move(other.reader_)) {}

EventStore::Snapshot::~Snapshot() {
  if (!reader_) return;
  // A read transaction left open would pin its snapshot and stop WAL checkpoints.
  if (reader_->db.in_transaction()) (void)reader_->db.exec("COMMIT");
  store_->release_reader(std::move(reader_));
}

Result<EventStore::Snapshot> EventStore::lease_reader() {
  auto acquired = acquire_reader();
  if (!acquired) return tl::unexpected(acquired.error());
  return Snapshot(*this, std::move(*acquired));
}

Result<EventStore::Snapshot> EventStore::snapshot(const std::function<void()>& while_pinned) {
  auto leased = lease_reader();
  if (!leased) return tl::unexpected(leased.error());
  Snapshot snap = std::move(*leased);
  Database& db = snap.reader_->db;
  // BEGIN alone takes no snapshot; the first read does. Both happen under the commit lock, so no batch is
  // between its COMMIT and the end of its callbacks meanwhile.
  std::shared_lock lock(*commit_lock_);
  if (auto s = db.exec("BEGIN"); !s) return tl::unexpected(s.error());
  auto pin = snap.reader_->statement("SELECT 1 FROM events LIMIT 1");
  if (!pin) return tl::unexpected(pin.error());
  ResetOnExit reset(**pin);
  if (auto row = has_row(**pin); !row) return tl::unexpected(row.error());
  if (while_pinned) while_pinned();
  return snap;
}

Result<std::vector<std::string>> EventStore::query(std::span<const nostr::Filter> filters, int64_t now,
                                                   size_t max_limit) {
  auto snap = snapshot();
  if (!snap) return tl::unexpected(snap.error());
  return query(*snap, filters, now, max_limit);
}

Result<std::vector<std::string>> EventStore::query(Snapshot& snapshot, std::span<const nostr::Filter> filters,
                                                   int64_t now, size_t max_limit) {
  // Every filter reads the one snapshot, so a write landing between them cannot show half of itself.
  ReadConnection* reader = snapshot.reader_.get();
  if (reader == nullptr)
    return make_error(ErrorCode::kInvalidInput, "event store: query on a moved snapshot");
  struct Row {
    int64_t created_at;
    nostr::EventId id;
    std::string json;
  };
  std::vector<Row> rows;
  for (const auto& filter : filters) {
    const uint64_t limit = std::min<uint64_t>(filter.limit.value_or(max_limit), max_limit);
    auto q = internal::build_select(filter, now, limit);
    if (!q) continue;
    if (auto s = check_variable_count(reader->db, *q); !s) return tl::unexpected(s.error());
    auto stmt = reader->statement(q->sql);
    if (!stmt) return tl::unexpected(stmt.error());
    ResetOnExit reset(**stmt);
    if (auto s = internal::bind_params(**stmt, q->params); !s) return tl::unexpected(s.error());
    for (;;) {
      auto row = has_row(**stmt);
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      Row r{(*stmt)->column_int64(2), {}, std::string((*stmt)->column_text(0))};
      auto id = (*stmt)->column_blob(1);
      std::copy_n(id.begin(), std::min(id.size(), r.id.size()), r.id.begin());
      rows.push_back(std::move(r));
    }
  }
  // One event matched by two filters has the same (created_at, id) twice, so after sorting the copies are
  // neighbours.
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id < b.id;
  });
  rows.erase(std::unique(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.id == b.id; }),
             rows.end());
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows)
    out.push_back(std::move(r.json));
  return out;
}

Result<size_t> EventStore::count(std::span<const nostr::Filter> filters, int64_t now) {
  auto q = internal::build_count(filters, now);
  if (!q) return 0;
  // One statement reads one snapshot of its own: no transaction needs pinning.
  auto leased = lease_reader();
  if (!leased) return tl::unexpected(leased.error());
  ReadConnection* reader = leased->reader_.get();
  if (auto s = check_variable_count(reader->db, *q); !s) return tl::unexpected(s.error());
  auto stmt = reader->statement(q->sql);
  if (!stmt) return tl::unexpected(stmt.error());
  ResetOnExit reset(**stmt);
  if (auto s = internal::bind_params(**stmt, q->params); !s) return tl::unexpected(s.error());
  auto row = has_row(**stmt);
  if (!row) return tl::unexpected(row.error());
  return static_cast<size_t>((*stmt)->column_int64(0));
}

}  // namespace infernet::relay
