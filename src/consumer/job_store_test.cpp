// The job database on real files: schema creation, transitions with their events, idempotent client ids,
// list filters, persistence across reopening, and many concurrent writers.
#include "consumer/job_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "consumer/job_store_schema.hpp"
#include "store/sqlite.hpp"

namespace infernet::consumer {
namespace {

namespace fs = std::filesystem;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-jobstore-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reopen();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    auto s = JobStore::open(path());
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
  }
  std::string path() const { return (dir_ / "consumer.db").string(); }

  static JobRecord new_job(const std::string& id, const std::string& model, int64_t created_at,
                           const std::string& client_request_id = "") {
    JobRecord r;
    r.id = id;
    r.client_request_id = client_request_id;
    r.spec.client_request_id = client_request_id;
    r.spec.model = model;
    r.spec.prompt = "prompt of " + id;
    r.spec.max_tokens = 32;
    r.spec.sampling.temperature = 0.5;
    r.spec.max_cost_msat = 1000;
    r.state = JobState::kSubmitted;
    r.created_at = created_at;
    r.updated_at = created_at;
    return r;
  }
  static JobEvent state_event(uint64_t seq, JobState s, int64_t at) {
    return JobEvent{seq, "", "state", std::string("{\"state\":\"") + to_string(s) + "\"}", at};
  }
  Status insert(const JobRecord& r) {
    JobChange c;
    c.job_id = r.id;
    c.insert = r;
    c.events.push_back(state_event(1, r.state, r.created_at));
    return store_->apply_and_wait(std::move(c));
  }

  fs::path dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreTest, CreatesTheSchemaOnAFreshFile) {
  auto db = store::Database::open(path(), {.read_only = true});
  ASSERT_TRUE(db) << db.error().to_string();
  auto version = db->prepare("PRAGMA user_version");
  ASSERT_TRUE(version);
  ASSERT_EQ(*version->step(), store::Statement::Step::kRow);
  EXPECT_EQ(version->column_int64(0), static_cast<int64_t>(internal::job_store_schema().size()));
  for (const char* table : {"jobs", "job_events", "results", "providers", "receipts", "seen_events",
                            "attempts", "notifications"}) {
    auto stmt = db->prepare(std::string("SELECT count(*) FROM ") + table);
    EXPECT_TRUE(stmt) << table << ": " << stmt.error().to_string();
  }
  auto mode = db->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode);
  ASSERT_EQ(*mode->step(), store::Statement::Step::kRow);
  EXPECT_EQ(mode->column_text(0), "wal");
}

TEST_F(JobStoreTest, AVersionOneFileKeepsItsSeenEventsThroughTheMigration) {
  store_.reset();
  fs::remove(path());
  {
    auto db = store::Database::open(path());
    ASSERT_TRUE(db) << db.error().to_string();
    ASSERT_TRUE(store::migrate(*db, internal::job_store_schema().first(1)));
    ASSERT_TRUE(db->exec("INSERT INTO seen_events (id, created_at) VALUES ('aa', 100), ('bb', 200)"));
  }
  auto reopened = JobStore::open(path());
  ASSERT_TRUE(reopened) << reopened.error().to_string();
  auto seen = (*reopened)->seen_since(150);
  ASSERT_TRUE(seen);
  EXPECT_EQ(*seen, std::vector<std::string>{"bb"});
  EXPECT_TRUE(*(*reopened)->was_seen("aa"));
}

TEST_F(JobStoreTest, RefusesAnInMemoryPath) {
  auto s = JobStore::open(":memory:");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
}

TEST_F(JobStoreTest, TransitionsUpdateTheJobAndAppendNumberedEvents) {
  JobRecord r = new_job("job1", "fake-echo", 1000);
  ASSERT_TRUE(insert(r));

  JobChange assign;
  assign.job_id = "job1";
  assign.state = JobState::kAssigned;
  assign.provider = "ab";
  assign.attempt = 1;
  assign.updated_at = 1001;
  assign.events.push_back(state_event(2, JobState::kAssigned, 1001));
  assign.attempt_rows.push_back(AttemptRecord{"job1", 1, "ab", "ee", "assigned", "", 0, 1001, 1001});
  ASSERT_TRUE(store_->apply_and_wait(assign));

  for (uint64_t i = 0; i < 3; ++i) {
    JobChange progress;
    progress.job_id = "job1";
    if (i == 0) progress.state = JobState::kRunning;
    progress.append_output = "w" + std::to_string(i) + " ";
    progress.updated_at = 1002 + static_cast<int64_t>(i);
    progress.events.push_back(JobEvent{3 + i, "", "progress", "{}", progress.updated_at});
    ASSERT_TRUE(store_->apply_and_wait(progress));
  }

  JobChange done;
  done.job_id = "job1";
  done.state = JobState::kCompleted;
  done.output = "final";
  done.usage = protocol::Usage{4, 5};
  done.cost_msat = 77;
  done.updated_at = 1010;
  done.events.push_back(state_event(6, JobState::kCompleted, 1010));
  done.result = ResultRecord{"job1", 1, "ff", "ab", true, "final", "", "", {4, 5}, 77, 1010};
  done.receipt = ReceiptRecord{"job1", 1, "ab", 77, "ff", "aa", 1010};
  done.seen.emplace_back("ff", 5);
  ASSERT_TRUE(store_->apply_and_wait(done));

  auto got = store_->get("job1");
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->state, JobState::kCompleted);
  EXPECT_EQ(got->provider, "ab");
  EXPECT_EQ(got->attempt, 1u);
  EXPECT_EQ(got->output, "final");
  EXPECT_EQ(got->usage.output_tokens, 5u);
  EXPECT_EQ(got->cost_msat, 77u);
  EXPECT_EQ(got->updated_at, 1010);
  EXPECT_EQ(got->spec.prompt, "prompt of job1");
  EXPECT_DOUBLE_EQ(got->spec.sampling.temperature, 0.5);

  auto events = store_->events("job1", 0);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 6u);
  for (size_t i = 0; i < events->size(); ++i)
    EXPECT_EQ((*events)[i].seq, i + 1);
  EXPECT_EQ((*events)[5].data, "{\"state\":\"completed\"}");
  auto later = store_->events("job1", 4);
  ASSERT_TRUE(later);
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ(later->front().seq, 5u);
  EXPECT_EQ(*store_->last_seq("job1"), 6u);
  auto last_progress = store_->last_event("job1", "progress");
  ASSERT_TRUE(last_progress && *last_progress);
  EXPECT_EQ((*last_progress)->seq, 5u);
  EXPECT_FALSE(*store_->last_event("job1", "note"));

  auto result = store_->result("job1", 1);
  ASSERT_TRUE(result && *result);
  EXPECT_EQ((*result)->output, "final");
  auto receipts = store_->receipts("job1");
  ASSERT_TRUE(receipts);
  ASSERT_EQ(receipts->size(), 1u);
  EXPECT_EQ(receipts->front().cost_msat, 77u);
  EXPECT_TRUE(*store_->was_seen("ff"));
  auto attempts = store_->attempts("job1");
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ(attempts->front().request_event_id, "ee");
}

TEST_F(JobStoreTest, ProgressAppendsToTheOutput) {
  ASSERT_TRUE(insert(new_job("j", "m", 1)));
  for (const char* piece : {"one ", "two ", "three"}) {
    JobChange c;
    c.job_id = "j";
    c.append_output = piece;
    c.updated_at = 2;
    ASSERT_TRUE(store_->apply_and_wait(c));
  }
  EXPECT_EQ(store_->get("j")->output, "one two three");
}

TEST_F(JobStoreTest, AFailedChangeLeavesNothingBehind) {
  ASSERT_TRUE(insert(new_job("j", "m", 1)));
  JobChange c;
  c.job_id = "j";
  c.state = JobState::kRunning;
  c.updated_at = 2;
  c.events.push_back(state_event(1, JobState::kRunning, 2));  // seq 1 exists: the whole change is refused
  auto st = store_->apply_and_wait(c);
  ASSERT_FALSE(st);
  EXPECT_EQ(store_->get("j")->state, JobState::kSubmitted);
  EXPECT_EQ(store_->events("j", 0)->size(), 1u);
}

TEST_F(JobStoreTest, ClientRequestIdIsUnique) {
  ASSERT_TRUE(insert(new_job("a", "m", 1, "req-1")));
  auto dup = insert(new_job("b", "m", 2, "req-1"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  // Jobs without a client id do not collide with each other.
  ASSERT_TRUE(insert(new_job("c", "m", 3)));
  ASSERT_TRUE(insert(new_job("d", "m", 4)));
  auto found = store_->find_by_client_request_id("req-1");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->id, "a");
  auto none = store_->find_by_client_request_id("req-2");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(store_->get("b").error().code, ErrorCode::kNotFound);
}

TEST_F(JobStoreTest, ListFiltersByStateModelAndTime) {
  for (int i = 0; i < 10; ++i) {
    JobRecord r = new_job("job" + std::to_string(i), i % 2 ? "odd" : "even", 100 + i);
    if (i >= 7) r.state = JobState::kCompleted;
    ASSERT_TRUE(insert(r));
  }
  auto all = store_->list({});
  ASSERT_TRUE(all) << all.error().to_string();
  ASSERT_EQ(all->size(), 10u);
  EXPECT_EQ(all->front().id, "job9");  // newest first

  JobQuery odd;
  odd.model = "odd";
  EXPECT_EQ(store_->list(odd)->size(), 5u);

  JobQuery done;
  done.state = JobState::kCompleted;
  auto completed = store_->list(done);
  ASSERT_EQ(completed->size(), 3u);
  for (const auto& j : *completed)
    EXPECT_EQ(j.state, JobState::kCompleted);

  JobQuery window;
  window.since = 102;
  window.until = 105;
  window.model = "even";
  auto w = store_->list(window);
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ((*w)[0].id, "job4");
  EXPECT_EQ((*w)[1].id, "job2");

  JobQuery limited;
  limited.limit = 3;
  EXPECT_EQ(store_->list(limited)->size(), 3u);

  auto unfinished = store_->unfinished();
  ASSERT_TRUE(unfinished);
  ASSERT_EQ(unfinished->size(), 7u);
  EXPECT_EQ(unfinished->front().id, "job0");  // oldest first
}

// Pages through jobs by cursor in both orders while jobs keep arriving: every job present when paging
// started is seen exactly once, in order, and jobs sharing a millisecond are split across pages correctly.
TEST_F(JobStoreTest, CursorPagingIsStableWhileJobsAreAdded) {
  // Three jobs per millisecond, so page boundaries fall inside a tie on created_at.
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "j%02d", i);
    ids.push_back(id);
    ASSERT_TRUE(insert(new_job(id, i % 2 ? "odd" : "even", 100 + i / 3)));
  }
  int added = 0;
  for (ListOrder order : {ListOrder::kNewestFirst, ListOrder::kOldestFirst}) {
    JobQuery q;
    q.order = order;
    q.limit = 4;
    std::vector<std::string> seen;
    while (true) {
      auto page = store_->list(q);
      ASSERT_TRUE(page) << page.error().to_string();
      for (const auto& j : *page)
        seen.push_back(j.id);
      if (page->size() < q.limit) break;
      q.after = JobCursor{page->back().created_at, page->back().id};
      // A newer job arrives between pages: newest-first paging must not show it, oldest-first ends with it.
      ++added;
      ASSERT_TRUE(insert(new_job("late" + std::to_string(added), "even", 1000 + added)));
    }
    std::vector<std::string> want = ids;
    if (order == ListOrder::kNewestFirst) {
      std::reverse(want.begin(), want.end());
      EXPECT_EQ(seen, want);
    } else {
      ASSERT_GE(seen.size(), want.size());
      EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + 25), want);
      for (size_t i = 25; i < seen.size(); ++i)
        EXPECT_EQ(seen[i].substr(0, 4), "late");
    }
  }

  // The cursor combines with the filters.
  JobQuery odd;
  odd.model = "odd";
  odd.limit = 3;
  odd.after = JobCursor{104, "j13"};  // j13 itself is odd and excluded
  auto page = store_->list(odd);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].id, "j11");
  EXPECT_EQ((*page)[1].id, "j09");
  EXPECT_EQ((*page)[2].id, "j07");

  // A limit past the rows there are returns them all (the cap, kMaxJobListRows, is one more than a page).
  JobQuery big;
  big.limit = 5000;
  EXPECT_EQ(store_->list(big)->size(), 25u + added);
}

TEST_F(JobStoreTest, JobListsUseTheCursorIndexes) {
  auto db = store::Database::open(path(), {.read_only = true});
  ASSERT_TRUE(db) << db.error().to_string();
  for (const char* where :
       {"(created_at, id) < (1, 'x')", "state = 'running' AND (created_at, id) < (1, 'x')",
        "model = 'm' AND (created_at, id) > (1, 'x')"}) {
    auto plan = db->prepare(std::string("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE ") + where +
                            " ORDER BY created_at DESC, id DESC LIMIT 10");
    ASSERT_TRUE(plan) << plan.error().to_string();
    std::string text;
    while (*plan->step() == store::Statement::Step::kRow) {
      text += plan->column_text(3);
      text += '\n';
    }
    EXPECT_NE(text.find("created_id"), std::string::npos) << where << ": " << text;
    EXPECT_EQ(text.find("TEMP B-TREE"), std::string::npos) << where << " sorts: " << text;
  }
}

TEST_F(JobStoreTest, EverythingSurvivesReopening) {
  ASSERT_TRUE(insert(new_job("kept", "m", 5, "rid")));
  ASSERT_TRUE(store_->save_provider({"pk", "p1", "{\"kind\":38340}", 50, 80}));
  JobChange seen;
  seen.job_id = "kept";
  seen.seen.emplace_back("e1", 40);
  seen.seen.emplace_back("e2", 60);
  ASSERT_TRUE(store_->apply_and_wait(seen));
  reopen();
  auto got = store_->get("kept");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->client_request_id, "rid");
  EXPECT_EQ(got->spec.max_cost_msat, 1000u);
  auto providers = store_->providers();
  ASSERT_TRUE(providers);
  ASSERT_EQ(providers->size(), 1u);
  EXPECT_EQ(providers->front().name, "p1");
  EXPECT_EQ(providers->front().expires_at, 80);
  auto recent = store_->seen_since(50);
  ASSERT_TRUE(recent);
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ(recent->front(), "e2");
  EXPECT_EQ(store_->events("kept", 0)->size(), 1u);
}

TEST_F(JobStoreTest, AnOlderAnnouncementDoesNotReplaceANewerOne) {
  ASSERT_TRUE(store_->save_provider({"pk", "new", "{}", 100, 130}));
  ASSERT_TRUE(store_->save_provider({"pk", "old", "{}", 90, 120}));
  // Writes are ordered: waiting for a later change means the provider writes are done.
  ASSERT_TRUE(insert(new_job("x", "m", 1)));
  EXPECT_EQ(store_->providers()->front().name, "new");
}

TEST_F(JobStoreTest, SpecRoundTripsAndBadSpecsNameTheField) {
  JobSpec s;
  s.model = "m";
  s.prompt = "p \"quoted\"";
  s.sampling.seed = 18446744073709551615ull;
  s.deadline = -1;
  s.open_quotes = true;
  s.priority = "high";
  s.sampling.top_k = 12;
  s.sampling.top_p = 0.25;
  s.sampling.min_p = 0.125;
  s.sampling.repeat_penalty = 1.5;
  s.sampling.repeat_last_n = 7;
  s.sampling.stop = {"\n", "END"};
  s.deterministic = true;
  auto back = spec_from_json(spec_to_json(s));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->prompt, s.prompt);
  EXPECT_EQ(back->sampling, s.sampling);
  EXPECT_TRUE(back->deterministic);
  JobSpec chat;
  chat.model = "m";
  chat.messages = {{"system", "brief"}, {"user", "hi \u00e9"}};
  auto chat_back = spec_from_json(spec_to_json(chat));
  ASSERT_TRUE(chat_back);
  EXPECT_EQ(chat_back->messages, chat.messages);
  EXPECT_TRUE(chat_back->prompt.empty());
  EXPECT_EQ(back->deadline, -1);
  EXPECT_TRUE(back->open_quotes);
  EXPECT_EQ(back->priority, "high");
  auto bad = spec_from_json("{\"max_tokens\":-3}");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("max_tokens"), std::string::npos);
  EXPECT_FALSE(spec_from_json("[1]"));
  EXPECT_FALSE(spec_from_json("{\"stop\":[1]}"));
  EXPECT_FALSE(spec_from_json("{\"messages\":[{\"role\":\"user\"}]}"));
}

// Many threads submitting at once: every insert commits, and the writer batches them. Prints the rate.
TEST_F(JobStoreTest, ConcurrentInsertsAllCommit) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 250;
  std::atomic<int> failures{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!insert(new_job(id, "m", 1000 + i, "crid-" + id))) ++failures;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failures.load(), 0);
  JobQuery q;
  q.limit = 1000;
  EXPECT_EQ(store_->list(q)->size(), 1000u);
  EXPECT_EQ(store_->unfinished()->size(), static_cast<size_t>(kThreads * kPerThread));
  std::printf("job store: %d durable submits in %.3f s (%.0f/s)\n", kThreads * kPerThread, seconds,
              kThreads * kPerThread / seconds);
}

}  // namespace
}  // namespace infernet::consumer
