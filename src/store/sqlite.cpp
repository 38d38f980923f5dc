#include "store/sqlite.hpp"

#include <sqlite3.h>

#include <string>
#include <unordered_map>
#include <utility>

namespace infernet::store {
namespace {

bool busy_code(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// `context` says what we were doing ("prepare", "open /path"), SQLite's message says what went wrong.
Error sqlite_error(int rc, std::string_view detail, std::string_view context) {
  std::string message(busy_code(rc) ? kBusyPrefix : std::string_view("sqlite: "));
  message += detail;
  if (!context.empty()) {
    message += " (";
    message += context;
    message += ')';
  }
  return Error{ErrorCode::kIo, std::move(message)};
}

Error connection_error(sqlite3* db, int rc, std::string_view context) {
  // sqlite3_errmsg describes the most recent failure on the connection, which is more specific than the
  // generic text for the code ("no such table: x" rather than "SQL logic error").
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return sqlite_error(rc, detail, context);
}

}  // namespace

bool is_busy(const Error& e) {
  return e.code == ErrorCode::kIo && e.message.find(kBusyPrefix) != std::string::npos;
}

// ---- Statement ----

void Statement::Finalizer::operator()(sqlite3_stmt* stmt) const {
  sqlite3_finalize(stmt);
}

Error Statement::last_error(std::string_view context) const {
  return connection_error(db_, sqlite3_extended_errcode(db_), context);
}

Status Statement::bind_int64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_.get(), index, value);
  if (rc != SQLITE_OK) return tl::unexpected(last_error("bind"));
  return {};
}

Status Statement::bind_text(int index, std::string_view value) {
  // A default string_view has a null data pointer, which SQLite would bind as NULL rather than "".
  const char* data = value.data() != nullptr ? value.data() : "";
  int rc = sqlite3_bind_text64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return tl::unexpected(last_error("bind"));
  return {};
}

Status Statement::bind_blob(int index, std::span<const uint8_t> value) {
  // SQLite treats a null pointer as NULL rather than an empty blob; give it a valid one.
  static constexpr uint8_t kEmpty = 0;
  const void* data = value.empty() ? &kEmpty : value.data();
  int rc = sqlite3_bind_blob64(stmt_.get(), index, data, value.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return tl::unexpected(last_error("bind"));
  return {};
}

Status Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_.get(), index);
  if (rc != SQLITE_OK) return tl::unexpected(last_error("bind"));
  return {};
}

Result<Statement::Step> Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return Step::kRow;
  if (rc == SQLITE_DONE) return Step::kDone;
  Error e = last_error("step");
  // A failed statement must be reset before it can run again; doing it here keeps the object reusable.
  sqlite3_reset(stmt_.get());
  return tl::unexpected(std::move(e));
}

int64_t Statement::column_int64(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::string_view Statement::column_text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);  // after column_text, as SQLite documents
  if (text == nullptr) return {};
  return {reinterpret_cast<const char*>(text), static_cast<size_t>(size)};
}

std::span<const uint8_t> Statement::column_blob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);
  if (blob == nullptr) return {};
  return {static_cast<const uint8_t*>(blob), static_cast<size_t>(size)};
}

bool Statement::column_is_null(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::string_view Statement::sql() const {
  const char* text = sqlite3_sql(stmt_.get());
  return text != nullptr ? std::string_view(text) : std::string_view();
}

// ---- Database ----

void Database::Closer::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

Result<Database> Database::open(const std::string& path, const DatabaseOptions& options) {
  // SQLite's memory statistics take a process-wide mutex on every allocation; nothing here reads them.
  // Only possible before SQLite initializes; if something else initialized it first this is a no-op.
  static const bool kMemstatusOff = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)kMemstatusOff;
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread at a time (see the header), so SQLite's per-connection
  // lock is pure overhead on the writer's hot path.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // sqlite3_open_v2 returns a handle even on failure, which must be closed.
  Database db(raw);
  if (rc != SQLITE_OK) return tl::unexpected(connection_error(raw, rc, "open " + path));
  sqlite3_extended_result_codes(raw, 1);
  rc = sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  if (rc != SQLITE_OK) return tl::unexpected(connection_error(raw, rc, "open " + path));

  // journal_mode is persistent in the file; setting it again on a database already in WAL is a no-op. The
  // first statement that touches the file is also where a non-database file is discovered.
  auto wal = db.prepare("PRAGMA journal_mode=WAL");
  if (!wal) return tl::unexpected(with_context(wal.error(), "open " + path));
  auto mode = wal->step();
  if (!mode) return tl::unexpected(with_context(mode.error(), "open " + path));
  std::string pragmas = "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;";
  if (options.read_only) pragmas += " PRAGMA query_only=ON;";
  if (options.cache_size_kib > 0)
    pragmas += " PRAGMA cache_size=-" + std::to_string(options.cache_size_kib) + ";";
  if (auto s = db.exec(pragmas); !s) return tl::unexpected(with_context(s.error(), "open " + path));
  return db;
}

Status Database::exec(std::string_view sql) {
  std::string text(sql);  // sqlite3_exec wants a NUL-terminated string
  char* message = nullptr;
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return tl::unexpected(sqlite_error(sqlite3_extended_errcode(db_.get()), detail, "exec"));
}

struct Database::StatementCache {
  // Transparent, so a lookup by string_view builds no string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Statement, Hash, std::equal_to<>> by_sql;
};

Database::Database(sqlite3* db) : db_(db), cache_(std::make_unique<StatementCache>()) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

Result<Statement*> Database::cached(std::string_view sql) {
  auto& map = cache_->by_sql;
  if (auto it = map.find(sql); it != map.end()) {
    it->second.reset();
    return &it->second;
  }
  auto stmt = prepare(sql, true);
  if (!stmt) return tl::unexpected(stmt.error());
  // A full cache starts over rather than tracking use: callers run a handful of fixed statements, so a
  // full cache means SQL text built from data, which a cache could not help anyway.
  if (map.size() >= kStatementCacheSize) map.clear();
  return &map.emplace(std::string(sql), std::move(*stmt)).first->second;
}

Result<Statement> Database::prepare(std::string_view sql, bool persistent) {
  sqlite3_stmt* stmt = nullptr;
  unsigned flags = persistent ? SQLITE_PREPARE_PERSISTENT : 0;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), flags, &stmt, nullptr);
  if (rc != SQLITE_OK) return tl::unexpected(connection_error(db_.get(), rc, "prepare"));
  if (stmt == nullptr) return make_error(ErrorCode::kIo, "sqlite: no SQL statement in the text (prepare)");
  return Statement(stmt, db_.get());
}

int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_.get());
}

int64_t Database::changes() const {
  return sqlite3_changes64(db_.get());
}

bool Database::in_transaction() const {
  return sqlite3_get_autocommit(db_.get()) == 0;
}

int Database::max_variables() const {
  return sqlite3_limit(db_.get(), SQLITE_LIMIT_VARIABLE_NUMBER, -1);
}

std::string Database::path() const {
  const char* name = sqlite3_db_filename(db_.get(), "main");
  return name != nullptr ? std::string(name) : std::string();
}

Status Database::checkpoint() {
  int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc != SQLITE_OK) return tl::unexpected(connection_error(db_.get(), rc, "checkpoint"));
  return {};
}

// ---- Transaction ----

Result<Transaction> Transaction::begin(Database& db) {
  if (auto s = db.exec("BEGIN IMMEDIATE"); !s) return tl::unexpected(s.error());
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  // After some errors SQLite has already rolled back; a second ROLLBACK would only report "no transaction".
  if (db_ != nullptr && db_->in_transaction()) (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  if (db_ == nullptr) return make_error(ErrorCode::kInternal, "sqlite: commit of a finished transaction");
  if (auto s = db_->exec("COMMIT"); !s) return s;
  db_ = nullptr;
  return {};
}

// ---- migrations ----

namespace {

Result<int64_t> user_version(Database& db) {
  auto stmt = db.prepare("PRAGMA user_version");
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = stmt->step();
  if (!row) return tl::unexpected(row.error());
  return stmt->column_int64(0);
}

}  // namespace

Status migrate(Database& db, std::span<const std::string_view> steps) {
  const auto target = static_cast<int64_t>(steps.size());
  for (;;) {
    auto tx = Transaction::begin(db);
    if (!tx) return tl::unexpected(with_context(tx.error(), "migrate"));
    // Read inside the write transaction so two processes migrating the same file cannot both run a step.
    auto version = user_version(db);
    if (!version) return tl::unexpected(with_context(version.error(), "migrate"));
    if (*version > target) {
      return make_error(ErrorCode::kUnsupported,
                        "sqlite: database schema version " + std::to_string(*version) +
                            " is newer than this build knows (" + std::to_string(target) + ")");
    }
    if (*version == target) return {};
    auto index = static_cast<size_t>(*version);
    if (auto s = db.exec(steps[index]); !s) {
      return tl::unexpected(with_context(s.error(), "migrate step " + std::to_string(index + 1)));
    }
    if (auto s = db.exec("PRAGMA user_version = " + std::to_string(index + 1)); !s) {
      return tl::unexpected(with_context(s.error(), "migrate"));
    }
    if (auto s = tx->commit(); !s) return tl::unexpected(with_context(s.error(), "migrate"));
  }
}

}  // namespace infernet::store
