// A small RAII layer over SQLite: connections, prepared statements, transactions and schema migrations.
//
// Every failure is an Error with code kIo whose message contains "sqlite: " and SQLite's own text, possibly
// after a context such as "migrate: "; a database that is busy or locked by another connection says
// "sqlite busy: " instead, so callers can retry or answer "try again later" (see is_busy). Nothing here
// throws.
//
// Thread-safety: a Database, and the Statements and Transactions made from it, belong to one thread at a
// time. Connections are opened without SQLite's per-connection mutex because each thread (the writer, each
// reader) uses its own; hand a connection to another thread only with a happens-before edge (a queue, a
// thread start). Different Database objects on the same file may be used concurrently from different
// threads and processes: that is what WAL mode is for.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace infernet::store {

// What a busy/locked error's message contains; see is_busy.
inline constexpr std::string_view kBusyPrefix = "sqlite busy: ";

// True when `e` reports SQLITE_BUSY or SQLITE_LOCKED: another connection holds a conflicting lock for longer
// than the busy timeout. Such an error is transient; the same operation may succeed later.
bool is_busy(const Error& e);

class Statement {
 public:
  enum class Step { kRow, kDone };

  Statement() = default;
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;

  // Parameters are numbered from 1, as in SQLite. Text and blobs are copied, so the argument need not
  // outlive the call. Errors: kIo for an index out of range or a statement that is running.
  Status bind_int64(int index, int64_t value);
  Status bind_text(int index, std::string_view value);
  Status bind_blob(int index, std::span<const uint8_t> value);
  Status bind_null(int index);

  // Runs the statement to its next row. Returns kRow while there are rows, then kDone.
  // Errors: kIo (busy: see is_busy; constraint violations, I/O errors, a full disk).
  Result<Step> step();

  // Column getters read the current row (after step() returned kRow); columns are numbered from 0. The
  // views stay valid until the next step(), reset() or destruction.
  int64_t column_int64(int column) const;
  std::string_view column_text(int column) const;
  std::span<const uint8_t> column_blob(int column) const;
  bool column_is_null(int column) const;

  // Makes the statement ready to run again and clears its bindings. Also ends the read snapshot a
  // half-stepped SELECT holds, which otherwise stops WAL checkpoints from completing.
  void reset();

  // The SQL text the statement was prepared from.
  std::string_view sql() const;

  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Error last_error(std::string_view context) const;

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  sqlite3* db_ = nullptr;  // not owned; the Database outlives its statements
};

struct DatabaseOptions {
  int busy_timeout_ms = 5000;
  // Page cache of this connection; 0 keeps SQLite's default (2 MiB). A writer that inserts into several
  // indexes at random places gains from a larger one: each miss is a read from the OS.
  int cache_size_kib = 0;
  // A read-only connection refuses writes (PRAGMA query_only); readers use one so a bug cannot write
  // outside the single writer.
  bool read_only = false;
};

class Database {
 public:
  // Opens (creating if missing) the database at `path`, or a private in-memory database for ":memory:",
  // and sets WAL journaling, synchronous=NORMAL, the busy timeout, foreign_keys=ON and in-memory temp
  // storage. With WAL and synchronous=NORMAL a committed transaction survives the process being killed;
  // after a power loss the last few commits may roll back, but the file is never corrupted.
  // Errors: kIo ("sqlite: unable to open database file", "sqlite: file is not a database", busy).
  static Result<Database> open(const std::string& path, const DatabaseOptions& options = {});

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  // Closes the connection. Statements that outlive it keep the connection alive until they are finalized
  // (sqlite3_close_v2), so destruction order is not a correctness issue, only a resource one.
  ~Database();

  // Runs one or more ';'-separated statements that return no rows of interest. Errors: kIo.
  Status exec(std::string_view sql);

  // Compiles one statement. `persistent` hints that it will be reused many times (kept for a connection's
  // lifetime). Errors: kIo naming the SQL problem ("sqlite: no such table: x").
  Result<Statement> prepare(std::string_view sql, bool persistent = false);

  // The statement for `sql` from this connection's cache, compiled on first use and reset (bindings
  // cleared) on every later one: for statements a connection runs over and over, where compiling each time
  // would cost more than running. The pointer stays valid until the next cached() call that compiles a
  // new statement into a full cache (kStatementCacheSize), so callers use it at once and do not keep it.
  // Errors: as prepare().
  Result<Statement*> cached(std::string_view sql);
  static constexpr size_t kStatementCacheSize = 64;

  int64_t last_insert_rowid() const;
  // Rows changed by the most recent INSERT, UPDATE or DELETE.
  int64_t changes() const;
  // True while a transaction is open. SQLite rolls a transaction back by itself on some errors (a full
  // disk, an I/O error), so callers that run several statements in one transaction check this after a
  // failure to learn whether the earlier statements are still pending.
  bool in_transaction() const;
  // The most bound parameters one statement may have.
  int max_variables() const;
  // The file's path, or "" for an in-memory database.
  std::string path() const;
  // Copies committed pages from the write-ahead log back into the database file (a PASSIVE checkpoint:
  // it neither waits for nor blocks readers and the writer, and copies what it can). Errors: kIo (busy while
  // another connection checkpoints).
  Status checkpoint();

  // The underlying handle, for SQLite features this wrapper does not cover. Still owned by this object.
  sqlite3* handle() const { return db_.get(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  struct StatementCache;
  explicit Database(sqlite3* db);

  std::unique_ptr<sqlite3, Closer> db_;
  std::unique_ptr<StatementCache> cache_;  // declared last: its statements are finalized before the close
};

// An IMMEDIATE transaction: it takes the write lock at BEGIN, so a busy database is reported up front rather
// than at the first write or at COMMIT. Rolled back on destruction unless commit() succeeded.
class Transaction {
 public:
  // Errors: kIo (busy when another connection holds the write lock past the busy timeout).
  static Result<Transaction> begin(Database& db);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  // Errors: kIo (a full disk, an I/O error, busy). After a failed commit the transaction is still rolled
  // back on destruction, so nothing half-written remains.
  Status commit();

 private:
  explicit Transaction(Database& db) : db_(&db) {}
  Database* db_;  // not owned; null once finished or moved from
};

// Brings the schema up to date: step i (0-based) runs once, in its own transaction together with setting
// PRAGMA user_version to i + 1, so a crash mid-migration leaves the previous version intact. Steps already
// applied (user_version) are skipped; append new steps, never edit old ones.
// Errors: kIo from SQLite; kUnsupported when the file's version is newer than `steps` (a newer build wrote
// it).
Status migrate(Database& db, std::span<const std::string_view> steps);

}  // namespace infernet::store
