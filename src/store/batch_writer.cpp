#include "store/batch_writer.hpp"

#include <pthread.h>
#include <sqlite3.h>

#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "core/log.hpp"

namespace infernet::store {
namespace {

// A batch in which this many jobs failed is failing for a systemic reason (a full disk, an I/O error);
// re-running the rest again and again would cost O(n^2), so the remaining jobs get the last error.
constexpr size_t kMaxJobFailuresPerBatch = 8;

class FunctionJob final : public WriteJob {
 public:
  FunctionJob(std::function<Status(Database&)> run, std::function<void(const Status&)> on_committed)
      : run_(std::move(run)), on_committed_(std::move(on_committed)) {}
  Status run(Database& db) override { return run_(db); }
  void finish(const Status& outcome) override {
    if (on_committed_) on_committed_(outcome);
  }

 private:
  std::function<Status(Database&)> run_;
  std::function<void(const Status&)> on_committed_;
};

// Jobs are application code running on our thread; an exception escaping one (a bug, or bad_alloc) must not
// take the writer and every later job down with it.
Status guarded_run(WriteJob& job, Database& db) {
  try {
    return job.run(db);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("write job threw: ") + e.what());
  } catch (...) {
    return make_error(ErrorCode::kInternal, "write job threw a non-standard exception");
  }
}

void guarded_finish(WriteJob& job, const Status& outcome) {
  try {
    job.finish(outcome);
  } catch (const std::exception& e) {
    spdlog::error("batch writer: a job's completion callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("batch writer: a job's completion callback threw a non-standard exception");
  }
}

}  // namespace

BatchWriter::BatchWriter(Database db, const BatchWriterOptions& options)
    : options_{options.queue_capacity, options.max_batch == 0 ? 1 : options.max_batch,
               options.checkpoint_pages, options.commit_lock},
      db_(std::move(db)) {
  start_checkpointer();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "db-writer");  // shows in top -H, perf and gdb
    writer_loop();
  });
}

BatchWriter::~BatchWriter() {
  stop();
}

void BatchWriter::start_checkpointer() {
  if (options_.checkpoint_pages <= 0) return;
  const std::string path = db_.path();
  if (path.empty()) return;  // in-memory: no log to copy
  auto mode = db_.prepare("PRAGMA journal_mode");
  if (!mode || !mode->step() || mode->column_text(0) != "wal") return;
  auto db = Database::open(path);
  if (!db) {
    spdlog::warn("database writer: no background checkpoints for {}: {}", path, db.error().to_string());
    return;
  }
  checkpoint_db_ = std::move(*db);
  // Our hook replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(db_.handle(), &BatchWriter::on_wal_commit, this);
  checkpointer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "db-checkpoint");
    checkpointer_loop();
  });
}

int BatchWriter::on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int pages) {
  static_cast<BatchWriter*>(self)->wal_pages_ = pages;
  return SQLITE_OK;
}

void BatchWriter::after_commit() {
  if (!checkpoint_db_) return;
  const int threshold = options_.checkpoint_pages;
  if (wal_pages_ < pages_at_last_request_) pages_at_last_request_ = 0;  // the log restarted
  if (wal_pages_ >= 4 * threshold) {
    // Under steady writes a background checkpoint never catches up with the end of the log, and the log
    // restarts from its beginning only once it is wholly copied. No frames are added while the writer
    // itself copies, so this checkpoint finishes the job. The lock waits out a background checkpoint in
    // progress, which would otherwise make this one fail as busy.
    std::lock_guard running(checkpoint_run_mu_);
    if (auto s = db_.checkpoint(); !s) {
      if (!is_busy(s.error())) spdlog::warn("database writer: checkpoint failed: {}", s.error().to_string());
    } else {
      ++writer_checkpoints_;
    }
    pages_at_last_request_ = 0;
    return;
  }
  // One request per `threshold` new pages, not one per commit: a checkpoint with nothing new to copy
  // would only contend for the lock.
  if (wal_pages_ - pages_at_last_request_ < threshold) return;
  pages_at_last_request_ = wal_pages_;
  {
    std::lock_guard lock(checkpoint_mu_);
    checkpoint_wanted_ = true;
  }
  checkpoint_wake_.notify_one();
}

void BatchWriter::checkpointer_loop() {
  for (;;) {
    {
      std::unique_lock lock(checkpoint_mu_);
      checkpoint_wake_.wait(lock, [this] { return checkpoint_wanted_ || checkpoint_stopping_; });
      if (checkpoint_stopping_) return;
      checkpoint_wanted_ = false;
    }
    std::lock_guard running(checkpoint_run_mu_);
    // Busy means another process is checkpointing: the work gets done either way.
    if (auto s = checkpoint_db_->checkpoint(); !s) {
      if (!is_busy(s.error())) spdlog::warn("database checkpoint failed: {}", s.error().to_string());
    } else {
      ++background_checkpoints_;
    }
  }
}

Status BatchWriter::submit(std::unique_ptr<WriteJob> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return make_error(ErrorCode::kIo, "database writer is stopped");
    if (queue_.size() >= options_.queue_capacity) {
      return make_error(ErrorCode::kLimitExceeded, "database writer queue is full (" +
                                                       std::to_string(options_.queue_capacity) + " jobs)");
    }
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return {};
}

Status BatchWriter::submit(std::function<Status(Database&)> run,
                           std::function<void(const Status&)> on_committed) {
  return submit(std::make_unique<FunctionJob>(std::move(run), std::move(on_committed)));
}

size_t BatchWriter::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void BatchWriter::stop() {
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  // From a job's callback the writer would join itself; it then stops on its own once the queue is empty.
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    thread_.join();
    {
      std::lock_guard lock(checkpoint_mu_);
      checkpoint_stopping_ = true;
    }
    checkpoint_wake_.notify_one();
    if (checkpointer_.joinable()) checkpointer_.join();
  }
}

void BatchWriter::writer_loop() {
  std::vector<std::unique_ptr<WriteJob>> batch;
  batch.reserve(options_.max_batch);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, and everything queued has been written
      // Whatever piled up while the previous batch committed goes into this one: under load batches grow
      // by themselves, and a lone job is not held back waiting for company.
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_batch(batch);
    batch.clear();
  }
}

void BatchWriter::run_batch(std::vector<std::unique_ptr<WriteJob>>& batch) {
  // nullopt while a job's fate is open; its own error once it failed; the batch's outcome at the end.
  std::vector<std::optional<Status>> outcome(batch.size());
  auto settle_open = [&](const Status& s) {
    for (auto& o : outcome) {
      if (!o) o = s;
    }
  };
  size_t failures = 0;
  std::unique_lock<std::shared_mutex> commit_guard;  // held from COMMIT through the callbacks, when asked
  for (;;) {
    auto tx = Transaction::begin(db_);
    if (!tx) {
      settle_open(tl::unexpected(tx.error()));
      break;
    }
    bool failed = false;
    for (size_t i = 0; i < batch.size() && !failed; ++i) {
      if (outcome[i]) continue;
      Status s = guarded_run(*batch[i], db_);
      if (!s) {
        outcome[i] = std::move(s);
        failed = true;
      }
    }
    if (failed) {
      // Only a rollback of the whole transaction undoes the failed job's partial writes; `tx` rolls back
      // when it goes out of scope and the surviving jobs run again in a fresh one.
      if (++failures >= kMaxJobFailuresPerBatch) {
        Error e{ErrorCode::kIo, "database writer: " + std::to_string(failures) +
                                    " jobs of one batch failed; giving up on the batch"};
        settle_open(tl::unexpected(std::move(e)));
        break;
      }
      continue;
    }
    if (options_.commit_lock != nullptr) commit_guard = std::unique_lock(*options_.commit_lock);
    Status committed = tx->commit();
    if (!committed) spdlog::error("database writer: commit failed: {}", committed.error().to_string());
    settle_open(committed);
    break;
  }
  for (size_t i = 0; i < batch.size(); ++i)
    guarded_finish(*batch[i], *outcome[i]);
  if (commit_guard.owns_lock()) commit_guard.unlock();
  after_commit();
}

}  // namespace infernet::store
