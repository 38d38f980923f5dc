#include "store/batch_writer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace infernet::store {
namespace {

namespace fs = std::filesystem;

class BatchWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-writer-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "w.db").string();
    auto db = Database::open(path_);
    ASSERT_TRUE(db) << db.error().to_string();
    ASSERT_TRUE(db->exec("CREATE TABLE t(k INTEGER PRIMARY KEY)"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<BatchWriter> start(BatchWriterOptions options = {}, DatabaseOptions db_options = {}) {
    auto db = Database::open(path_, db_options);
    EXPECT_TRUE(db) << db.error().to_string();
    return std::make_unique<BatchWriter>(std::move(*db), options);
  }

  // Rows visible to a separate connection: what is committed.
  int64_t committed_rows() {
    auto db = Database::open(path_, {.read_only = true});
    EXPECT_TRUE(db);
    auto stmt = db->prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(stmt);
    EXPECT_TRUE(stmt->step());
    return stmt->column_int64(0);
  }

  fs::path dir_;
  std::string path_;
};

std::function<Status(Database&)> insert_row(int64_t k) {
  return [k](Database& db) { return db.exec("INSERT INTO t VALUES (" + std::to_string(k) + ")"); };
}

// A job that keeps the writer thread busy until released, so later jobs pile up in the queue.
struct Gate {
  std::promise<void> entered;
  std::promise<void> release;
  std::function<Status(Database&)> job() {
    return [this](Database&) {
      entered.set_value();
      release.get_future().wait();
      return Status{};
    };
  }
};

TEST_F(BatchWriterTest, CallbackRunsAfterTheWriteIsCommitted) {
  auto writer = start();
  std::promise<int64_t> seen;
  ASSERT_TRUE(writer->submit(insert_row(1), [&](const Status& s) {
    EXPECT_TRUE(s) << s.error().to_string();
    seen.set_value(committed_rows());
  }));
  EXPECT_EQ(seen.get_future().get(), 1);
}

TEST_F(BatchWriterTest, QueuedJobsShareOneTransaction) {
  auto writer = start();
  Gate gate;
  ASSERT_TRUE(writer->submit(gate.job(), nullptr));
  gate.entered.get_future().wait();
  constexpr int kJobs = 100;
  std::vector<int64_t> visible_at_callback;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(writer->submit(insert_row(i), [&](const Status& s) {
      EXPECT_TRUE(s);
      visible_at_callback.push_back(committed_rows());
    }));
  }
  gate.release.set_value();
  writer->stop();
  ASSERT_EQ(visible_at_callback.size(), static_cast<size_t>(kJobs));
  // One commit made all of them durable at once: even the first callback sees every row.
  EXPECT_EQ(visible_at_callback.front(), kJobs);
}

TEST_F(BatchWriterTest, MaxBatchSplitsTheQueue) {
  auto writer = start({.max_batch = 10});
  Gate gate;
  ASSERT_TRUE(writer->submit(gate.job(), nullptr));
  gate.entered.get_future().wait();
  std::vector<int64_t> visible_at_callback;
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(writer->submit(insert_row(i),
                               [&](const Status&) { visible_at_callback.push_back(committed_rows()); }));
  }
  gate.release.set_value();
  writer->stop();
  ASSERT_EQ(visible_at_callback.size(), 25u);
  EXPECT_EQ(visible_at_callback[0], 10);
  EXPECT_EQ(visible_at_callback[10], 20);
  EXPECT_EQ(visible_at_callback[20], 25);
}

TEST_F(BatchWriterTest, FullQueueIsRefusedWithLimitExceeded) {
  auto writer = start({.queue_capacity = 4});
  Gate gate;
  ASSERT_TRUE(writer->submit(gate.job(), nullptr));
  gate.entered.get_future().wait();  // taken off the queue: the queue is empty again
  std::atomic<int> finished{0};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(writer->submit(insert_row(i), [&](const Status& s) {
      EXPECT_TRUE(s);
      ++finished;
    }));
  }
  EXPECT_EQ(writer->queue_depth(), 4u);
  bool refused_called = false;
  auto refused = writer->submit(insert_row(99), [&](const Status&) { refused_called = true; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kLimitExceeded);
  gate.release.set_value();
  writer->stop();
  EXPECT_EQ(finished.load(), 4);
  EXPECT_FALSE(refused_called);
  EXPECT_EQ(committed_rows(), 4);
}

TEST_F(BatchWriterTest, FailingJobIsUndoneAndTheRestOfTheBatchCommits) {
  auto writer = start();
  Gate gate;
  ASSERT_TRUE(writer->submit(gate.job(), nullptr));
  gate.entered.get_future().wait();
  std::vector<std::string> outcomes;
  auto record = [&](const Status& s) { outcomes.push_back(s ? "ok" : s.error().message); };
  ASSERT_TRUE(writer->submit(insert_row(1), record));
  ASSERT_TRUE(writer->submit(
      [](Database& db) -> Status {
        if (auto s = db.exec("INSERT INTO t VALUES (2)"); !s) return s;
        return make_error(ErrorCode::kInvalidInput, "job refused");
      },
      record));
  ASSERT_TRUE(writer->submit(insert_row(3), record));
  gate.release.set_value();
  writer->stop();
  EXPECT_EQ(outcomes, (std::vector<std::string>{"ok", "job refused", "ok"}));
  auto db = Database::open(path_);
  ASSERT_TRUE(db);
  auto stmt = db->prepare("SELECT group_concat(k) FROM (SELECT k FROM t ORDER BY k)");
  ASSERT_TRUE(stmt);
  ASSERT_TRUE(stmt->step());
  EXPECT_EQ(stmt->column_text(0), "1,3");
}

TEST_F(BatchWriterTest, FailedCommitIsReportedToEveryJobOfTheBatch) {
  {
    auto db = Database::open(path_);
    ASSERT_TRUE(db);
    // A deferred foreign key is checked at COMMIT, which is how a commit can fail on demand.
    ASSERT_TRUE(
        db->exec("CREATE TABLE parent(id INTEGER PRIMARY KEY);"
                 "CREATE TABLE child(p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"));
  }
  auto writer = start();
  Gate gate;
  ASSERT_TRUE(writer->submit(gate.job(), nullptr));
  gate.entered.get_future().wait();
  std::vector<Status> outcomes;
  auto record = [&](const Status& s) { outcomes.push_back(s); };
  ASSERT_TRUE(writer->submit(insert_row(1), record));
  ASSERT_TRUE(writer->submit([](Database& db) { return db.exec("INSERT INTO child VALUES (42)"); }, record));
  gate.release.set_value();
  writer->stop();
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& s : outcomes) {
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::kIo);
    EXPECT_NE(s.error().message.find("FOREIGN KEY constraint failed"), std::string::npos)
        << s.error().message;
  }
  EXPECT_EQ(committed_rows(), 0);
}

TEST_F(BatchWriterTest, BusyDatabaseIsReportedAsBusy) {
  auto holder = Database::open(path_);
  ASSERT_TRUE(holder);
  auto held = Transaction::begin(*holder);
  ASSERT_TRUE(held);
  auto writer = start({}, {.busy_timeout_ms = 10});
  std::promise<Status> outcome;
  ASSERT_TRUE(writer->submit(insert_row(1), [&](const Status& s) { outcome.set_value(s); }));
  Status s = outcome.get_future().get();
  ASSERT_FALSE(s);
  EXPECT_TRUE(is_busy(s.error())) << s.error().message;
}

TEST_F(BatchWriterTest, ConcurrentSubmittersAllLand) {
  auto writer = start();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto s = writer->submit(insert_row(t * kPerThread + i), [&](const Status& r) {
          if (r) ++ok;
        });
        EXPECT_TRUE(s);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  writer->stop();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(committed_rows(), kThreads * kPerThread);
}

TEST_F(BatchWriterTest, StopDrainsTheQueueThenRefusesNewJobs) {
  auto writer = start();
  std::atomic<int> ok{0};
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(writer->submit(insert_row(i), [&](const Status& s) {
      if (s) ++ok;
    }));
  }
  writer->stop();
  EXPECT_EQ(ok.load(), 1000);
  auto late = writer->submit(insert_row(5000), nullptr);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kIo);
  writer->stop();  // idempotent
}

TEST_F(BatchWriterTest, BackgroundCheckpointsKeepTheLogSmall) {
  constexpr int kPages = 16;
  auto writer = start({.checkpoint_pages = kPages});
  {
    auto db = Database::open(path_);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE blobs(b BLOB)"));
  }
  // One commit at a time, each adding about 4 pages: without restarts the log would reach ~5 MiB. With
  // them it stays under 4 x kPages pages (256 KiB) plus a commit.
  for (int i = 0; i < 300; ++i) {
    std::promise<Status> committed;
    ASSERT_TRUE(
        writer->submit([](Database& db) { return db.exec("INSERT INTO blobs VALUES (zeroblob(8000))"); },
                       [&](const Status& s) { committed.set_value(s); }));
    ASSERT_TRUE(committed.get_future().get());
  }
  EXPECT_GT(writer->background_checkpoints() + writer->writer_checkpoints(), 0u);
  const auto wal_bytes = fs::file_size(path_ + "-wal");
  EXPECT_LT(wal_bytes, 512u * 1024u) << "the log was not restarted often enough";
  writer->stop();
}

TEST_F(BatchWriterTest, ThrowingJobIsReportedNotFatal) {
  auto writer = start();
  std::promise<Status> outcome;
  ASSERT_TRUE(writer->submit([](Database&) -> Status { throw std::runtime_error("boom"); },
                             [&](const Status& s) { outcome.set_value(s); }));
  Status s = outcome.get_future().get();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_NE(s.error().message.find("boom"), std::string::npos);
  std::promise<Status> next;
  ASSERT_TRUE(writer->submit(insert_row(1), [&](const Status& r) { next.set_value(r); }));
  EXPECT_TRUE(next.get_future().get());
}

}  // namespace
}  // namespace infernet::store
