// The single writer of a database: one connection, one thread, many small writes per transaction.
//
// SQLite allows one writer at a time and pays an fsync per transaction at best, so writing from many threads
// either serializes on locks or drowns in fsyncs. Instead every write of a database goes through its
// BatchWriter (strfry's lesson): callers queue jobs, the writer thread takes everything queued (up to
// `max_batch`), runs it in ONE transaction, commits, and only then tells each job the outcome, so a caller
// that reports success to the outside world does so after its data is durable.
//
// Thread-safety: submit(), queue_depth() and stop() may be called from any thread. Jobs run on the writer
// thread, one at a time, in submission order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "store/sqlite.hpp"

namespace infernet::store {

// One unit of work for the writer.
class WriteJob {
 public:
  virtual ~WriteJob() = default;

  // Does the job's writes, on the writer thread, inside the batch's open transaction (do not BEGIN or
  // COMMIT). Returning an error undoes this job's writes and reports the error to it, while the rest of the
  // batch still commits; to achieve that without a savepoint per job, the writer rolls the batch back and
  // runs the other jobs again. So run() may be called more than once and must derive everything from the
  // database and its own inputs, keeping only the result of its latest call.
  virtual Status run(Database& db) = 0;

  // Called exactly once, on the writer thread, when the job's fate is final: success only after COMMIT
  // succeeded (the writes are durable against a process crash); otherwise the job's own error or the
  // batch's (BEGIN or COMMIT failed: every job of that batch gets that error). Should be quick: the next
  // batch waits for it. Must not wait for another job of the same writer (it would deadlock).
  virtual void finish(const Status& outcome) = 0;
};

struct BatchWriterOptions {
  // Jobs waiting for the writer; submit() refuses more with kLimitExceeded. Bounds memory and gives
  // callers back-pressure to answer "rate-limited" instead of queueing without end.
  size_t queue_capacity = 65536;
  // Most jobs in one transaction. Larger batches amortize the commit further but delay the first callback.
  size_t max_batch = 4096;
  // Write-ahead-log size, in pages, at which a background thread with its own connection copies the log
  // back into the database file (a PASSIVE checkpoint: it blocks neither the writer nor readers). A
  // checkpoint ends with an fsync; run by the writer, as SQLite does by default, it would stall the batch
  // behind it, and measured it doubled the writer's time per event. Should the log still grow to 4x this
  // (a log that keeps growing while it is copied never restarts from its beginning), the writer checkpoints
  // once between two batches. 0 leaves checkpoints to SQLite, in the writer thread. Ignored for databases
  // that are not files in WAL mode.
  int checkpoint_pages = 1000;
  // When set, the writer holds it exclusively from each batch's COMMIT until every job of the batch has
  // been told its outcome. A reader that takes it shared while it opens a read snapshot sees each batch's
  // commit and callbacks as one step: either both happened before, or neither (see relay::EventStore).
  // Must outlive the writer.
  std::shared_mutex* commit_lock = nullptr;
};

class BatchWriter {
 public:
  // Takes ownership of the writer connection and starts the writer thread. The connection must not be
  // used by anyone else afterwards (statements prepared on it may be used by jobs). Throws only if a
  // thread cannot be started (a start-up failure).
  BatchWriter(Database db, const BatchWriterOptions& options);
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;
  // Stops: runs what is queued, then joins the thread.
  ~BatchWriter();

  // Queues a job. Errors: kLimitExceeded when the queue holds queue_capacity jobs; kIo after stop(). On an
  // error the job is dropped without finish() being called.
  Status submit(std::unique_ptr<WriteJob> job);

  // The same with two functions: `run` as WriteJob::run, `on_committed` as WriteJob::finish (may be empty).
  Status submit(std::function<Status(Database&)> run, std::function<void(const Status&)> on_committed);

  // Jobs queued and not yet taken by the writer thread.
  size_t queue_depth() const;
  // Checkpoints done so far by the background thread and by the writer; for tests and metrics.
  size_t background_checkpoints() const { return background_checkpoints_.load(); }
  size_t writer_checkpoints() const { return writer_checkpoints_.load(); }

  // Refuses new jobs, finishes every job already queued and joins the writer thread; the connection is
  // closed on destruction. Idempotent. Called from a job it only refuses new jobs, because the writer
  // cannot join itself; the BatchWriter must not be destroyed from a job.
  void stop();

 private:
  void writer_loop();
  void run_batch(std::vector<std::unique_ptr<WriteJob>>& batch);
  void start_checkpointer();
  void checkpointer_loop();
  void after_commit();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);

  const BatchWriterOptions options_;
  Database db_;                    // used only by the writer thread while it runs
  int wal_pages_ = 0;              // the log's size after the last commit; writer thread only
  int pages_at_last_request_ = 0;  // wal_pages_ when a background checkpoint was last asked for; ditto

  // The background checkpointer; absent when checkpoints are left to SQLite.
  std::optional<Database> checkpoint_db_;  // used only by the checkpointer thread
  std::mutex checkpoint_run_mu_;  // held while either thread checkpoints, so they do not collide as busy
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_wake_;
  bool checkpoint_wanted_ = false;    // guarded by checkpoint_mu_
  bool checkpoint_stopping_ = false;  // guarded by checkpoint_mu_
  std::thread checkpointer_;
  std::atomic<size_t> background_checkpoints_{0};
  std::atomic<size_t> writer_checkpoints_{0};

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<WriteJob>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_

  std::mutex stop_mu_;  // serializes stop() so two callers do not both join
  std::thread thread_;
};

}  // namespace infernet::store
