#include "store/sqlite.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace infernet::store {
namespace {

namespace fs = std::filesystem;

class SqliteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-sqlite-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string pragma_text(Database& db, const std::string& pragma) {
  auto stmt = db.prepare("PRAGMA " + pragma);
  EXPECT_TRUE(stmt) << stmt.error().to_string();
  auto row = stmt->step();
  EXPECT_TRUE(row && *row == Statement::Step::kRow);
  return std::string(stmt->column_text(0));
}

int64_t count_rows(Database& db, const std::string& table) {
  auto stmt = db.prepare("SELECT count(*) FROM " + table);
  EXPECT_TRUE(stmt) << stmt.error().to_string();
  auto row = stmt->step();
  EXPECT_TRUE(row && *row == Statement::Step::kRow);
  return stmt->column_int64(0);
}

TEST(Sqlite, BindsAndReadsEveryColumnType) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db) << db.error().to_string();
  ASSERT_TRUE(db->exec("CREATE TABLE t(i INTEGER, s TEXT, b BLOB, n TEXT)"));
  auto insert = db->prepare("INSERT INTO t VALUES (?, ?, ?, ?)", true);
  ASSERT_TRUE(insert) << insert.error().to_string();
  const std::array<uint8_t, 4> blob{0, 1, 0xfe, 0xff};
  ASSERT_TRUE(insert->bind_int64(1, -1234567890123));
  ASSERT_TRUE(insert->bind_text(2, std::string_view("h\0llo", 5)));
  ASSERT_TRUE(insert->bind_blob(3, blob));
  ASSERT_TRUE(insert->bind_null(4));
  auto done = insert->step();
  ASSERT_TRUE(done);
  EXPECT_EQ(*done, Statement::Step::kDone);
  EXPECT_EQ(db->changes(), 1);
  EXPECT_EQ(db->last_insert_rowid(), 1);

  auto select = db->prepare("SELECT i, s, b, n FROM t");
  ASSERT_TRUE(select);
  auto row = select->step();
  ASSERT_TRUE(row);
  ASSERT_EQ(*row, Statement::Step::kRow);
  EXPECT_EQ(select->column_int64(0), -1234567890123);
  EXPECT_EQ(select->column_text(1), std::string_view("h\0llo", 5));
  auto b = select->column_blob(2);
  EXPECT_EQ(std::vector<uint8_t>(b.begin(), b.end()), std::vector<uint8_t>(blob.begin(), blob.end()));
  EXPECT_TRUE(select->column_is_null(3));
  EXPECT_FALSE(select->column_is_null(0));
  EXPECT_EQ(*select->step(), Statement::Step::kDone);
}

TEST(Sqlite, EmptyBlobAndTextAreNotNull) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db);
  auto stmt = db->prepare("SELECT typeof(?), typeof(?)");
  ASSERT_TRUE(stmt);
  ASSERT_TRUE(stmt->bind_blob(1, {}));
  ASSERT_TRUE(stmt->bind_text(2, std::string_view()));
  ASSERT_EQ(*stmt->step(), Statement::Step::kRow);
  EXPECT_EQ(stmt->column_text(0), "blob");
  EXPECT_EQ(stmt->column_text(1), "text");
}

TEST(Sqlite, StatementIsReusableAfterResetAndAfterAnError) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t(k INTEGER PRIMARY KEY)"));
  auto insert = db->prepare("INSERT INTO t VALUES (?)", true);
  ASSERT_TRUE(insert);
  ASSERT_TRUE(insert->bind_int64(1, 7));
  ASSERT_TRUE(insert->step());
  insert->reset();
  ASSERT_TRUE(insert->bind_int64(1, 7));
  auto dup = insert->step();
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kIo);
  EXPECT_NE(dup.error().message.find("UNIQUE constraint failed"), std::string::npos) << dup.error().message;
  EXPECT_FALSE(is_busy(dup.error()));
  insert->reset();
  ASSERT_TRUE(insert->bind_int64(1, 8));
  EXPECT_TRUE(insert->step());
  EXPECT_EQ(count_rows(*db, "t"), 2);
}

TEST(Sqlite, CachedStatementsAreCompiledOnceAndResetForEachUse) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)"));
  auto first = db->cached("INSERT INTO t VALUES (?, ?)");
  ASSERT_TRUE(first);
  ASSERT_TRUE((*first)->bind_int64(1, 1));
  ASSERT_TRUE((*first)->bind_text(2, "one"));
  ASSERT_TRUE((*first)->step());
  // The same statement again, reset and with its bindings cleared: v is NULL unless bound anew.
  auto again = db->cached("INSERT INTO t VALUES (?, ?)");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *first);
  ASSERT_TRUE((*again)->bind_int64(1, 2));
  ASSERT_TRUE((*again)->step());
  auto select = db->cached("SELECT count(*), count(v) FROM t");
  ASSERT_TRUE(select);
  ASSERT_TRUE((*select)->step());
  EXPECT_EQ((*select)->column_int64(0), 2);
  EXPECT_EQ((*select)->column_int64(1), 1);
  // A full cache starts over; statements compiled afterwards still work.
  for (size_t i = 0; i <= Database::kStatementCacheSize; ++i) {
    auto s = db->cached("SELECT " + std::to_string(i));
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->step());
    EXPECT_EQ((*s)->column_int64(0), static_cast<int64_t>(i));
  }
  auto bad = db->cached("SELECT * FROM missing_table");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("no such table: missing_table"), std::string::npos);
}

TEST(Sqlite, PrepareErrorNamesTheProblem) {
  auto db = Database::open(":memory:");
  ASSERT_TRUE(db);
  auto stmt = db->prepare("SELECT * FROM missing_table");
  ASSERT_FALSE(stmt);
  EXPECT_EQ(stmt.error().code, ErrorCode::kIo);
  EXPECT_NE(stmt.error().message.find("no such table: missing_table"), std::string::npos)
      << stmt.error().message;
  auto exec = db->exec("CREATE TABLE t(x); INSERT INTO nope VALUES (1)");
  ASSERT_FALSE(exec);
  EXPECT_NE(exec.error().message.find("no such table: nope"), std::string::npos) << exec.error().message;
}

TEST_F(SqliteFileTest, OpensFilesInWalModeWithTheHousePragmas) {
  auto db = Database::open(path("a.db"));
  ASSERT_TRUE(db) << db.error().to_string();
  EXPECT_EQ(pragma_text(*db, "journal_mode"), "wal");
  EXPECT_EQ(pragma_text(*db, "synchronous"), "1");  // NORMAL
  EXPECT_EQ(pragma_text(*db, "foreign_keys"), "1");
  EXPECT_EQ(pragma_text(*db, "busy_timeout"), "5000");
  EXPECT_EQ(pragma_text(*db, "query_only"), "0");
}

TEST_F(SqliteFileTest, ReadOnlyConnectionRefusesWrites) {
  auto writer = Database::open(path("a.db"));
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)"));
  auto reader = Database::open(path("a.db"), {.read_only = true});
  ASSERT_TRUE(reader) << reader.error().to_string();
  EXPECT_EQ(count_rows(*reader, "t"), 1);
  auto write = reader->exec("INSERT INTO t VALUES (2)");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, ErrorCode::kIo);
}

TEST_F(SqliteFileTest, OpenReportsUnusablePaths) {
  auto missing_dir = Database::open(path("no/such/dir/a.db"));
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().code, ErrorCode::kIo);
  EXPECT_NE(missing_dir.error().message.find("unable to open database file"), std::string::npos)
      << missing_dir.error().message;

  auto directory = Database::open(dir_.string());
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, ErrorCode::kIo);

  std::ofstream(path("garbage.db")) << std::string(8192, 'x');
  auto garbage = Database::open(path("garbage.db"));
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, ErrorCode::kIo);
  EXPECT_NE(garbage.error().message.find("file is not a database"), std::string::npos)
      << garbage.error().message;
}

TEST_F(SqliteFileTest, TransactionCommitsOrRollsBackOnDestruction) {
  auto db = Database::open(path("a.db"));
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t(x)"));
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    EXPECT_TRUE(db->in_transaction());
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
  }
  EXPECT_FALSE(db->in_transaction());
  EXPECT_EQ(count_rows(*db, "t"), 0);
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
    ASSERT_TRUE(tx->commit());
    EXPECT_FALSE(tx->commit());  // finished
  }
  EXPECT_EQ(count_rows(*db, "t"), 1);
}

TEST_F(SqliteFileTest, BusyIsDistinguishable) {
  auto holder = Database::open(path("a.db"));
  ASSERT_TRUE(holder);
  ASSERT_TRUE(holder->exec("CREATE TABLE t(x)"));
  auto other = Database::open(path("a.db"), {.busy_timeout_ms = 10});
  ASSERT_TRUE(other);
  auto held = Transaction::begin(*holder);
  ASSERT_TRUE(held);
  auto tx = Transaction::begin(*other);
  ASSERT_FALSE(tx);
  EXPECT_EQ(tx.error().code, ErrorCode::kIo);
  EXPECT_TRUE(is_busy(tx.error())) << tx.error().message;
  // Readers are not blocked by a writer in WAL mode.
  EXPECT_EQ(count_rows(*other, "t"), 0);
  ASSERT_TRUE(held->commit());
  EXPECT_TRUE(Transaction::begin(*other));
}

TEST_F(SqliteFileTest, MigrationsRunEachStepOnce) {
  const std::array<std::string_view, 2> v2{"CREATE TABLE a(x)", "INSERT INTO a VALUES (1)"};
  {
    auto db = Database::open(path("m.db"));
    ASSERT_TRUE(db);
    ASSERT_TRUE(migrate(*db, v2));
    EXPECT_EQ(pragma_text(*db, "user_version"), "2");
    ASSERT_TRUE(migrate(*db, v2));  // nothing to do
    EXPECT_EQ(count_rows(*db, "a"), 1);
  }
  const std::array<std::string_view, 3> v3{v2[0], v2[1], "INSERT INTO a VALUES (2)"};
  auto db = Database::open(path("m.db"));
  ASSERT_TRUE(db);
  ASSERT_TRUE(migrate(*db, v3));
  EXPECT_EQ(pragma_text(*db, "user_version"), "3");
  EXPECT_EQ(count_rows(*db, "a"), 2);

  auto older = migrate(*db, v2);
  ASSERT_FALSE(older);
  EXPECT_EQ(older.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(older.error().message.find("newer"), std::string::npos);
}

TEST_F(SqliteFileTest, FailedMigrationStepLeavesThePreviousVersion) {
  auto db = Database::open(path("m.db"));
  ASSERT_TRUE(db);
  const std::array<std::string_view, 2> steps{"CREATE TABLE a(x)",
                                              "INSERT INTO a VALUES (1); INSERT INTO missing VALUES (2)"};
  auto r = migrate(*db, steps);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("migrate step 2"), std::string::npos) << r.error().message;
  EXPECT_EQ(pragma_text(*db, "user_version"), "1");
  EXPECT_EQ(count_rows(*db, "a"), 0);  // the half-run step was rolled back
  EXPECT_FALSE(db->in_transaction());
}

}  // namespace
}  // namespace infernet::store
