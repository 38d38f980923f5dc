#include "relay/event_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/encoding.hpp"
#include "relay/internal/event_store_sql.hpp"
#include "store/sqlite.hpp"

namespace infernet::relay {
namespace {

namespace fs = std::filesystem;
using nostr::Event;
using nostr::Filter;
using nostr::Tags;

using Pubkey = std::array<uint8_t, 32>;

Pubkey author(uint8_t n) {
  Pubkey p{};
  p.fill(n);
  return p;
}

// The store does not verify signatures (the relay does, before add), so test events need a real id only.
Event make_event(const Pubkey& pubkey, uint32_t kind, int64_t created_at, Tags tags = {},
                 std::string content = "") {
  Event e;
  e.pubkey = pubkey;
  e.kind = kind;
  e.created_at = created_at;
  e.tags = std::move(tags);
  e.content = std::move(content);
  e.id = nostr::compute_id(e);
  return e;
}

// Two events of the same (pubkey, kind, created_at) whose ids compare as asked: {lower id, higher id}.
std::pair<Event, Event> tied_pair(const Pubkey& pubkey, uint32_t kind, int64_t created_at, Tags tags = {}) {
  Event a = make_event(pubkey, kind, created_at, tags, "a");
  Event b = make_event(pubkey, kind, created_at, tags, "b");
  if (b.id < a.id) std::swap(a, b);
  return {a, b};
}

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-events-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "events.db").string();
    store_ = open_store();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<EventStore> open_store(size_t queue_capacity = 65536) {
    auto s = EventStore::open({.path = path_, .writer_queue_capacity = queue_capacity});
    EXPECT_TRUE(s) << s.error().to_string();
    return s ? std::move(*s) : nullptr;
  }

  AddResult add(const Event& e) {
    auto r = store_->add_and_wait(e);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : AddResult::kDuplicate;
  }

  std::vector<std::string> query(std::vector<Filter> filters, int64_t now = 0, size_t max_limit = 500) {
    auto r = store_->query(filters, now, max_limit);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : std::vector<std::string>{};
  }

  std::vector<std::string> query_one(Filter f, int64_t now = 0) { return query({std::move(f)}, now); }

  static std::vector<std::string> json_of(std::initializer_list<const Event*> events) {
    std::vector<std::string> out;
    for (const Event* e : events)
      out.push_back(nostr::to_json(*e));
    return out;
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<EventStore> store_;
};

Filter by_author(const Pubkey& p) {
  Filter f;
  f.authors = std::vector<Pubkey>{p};
  return f;
}

Filter by_ids(std::vector<nostr::EventId> ids) {
  Filter f;
  f.ids = std::move(ids);
  return f;
}

Filter by_tag(std::string name, std::vector<std::string> values) {
  Filter f;
  f.tags.push_back({std::move(name), std::move(values)});
  return f;
}

// ---- storing and replacing ----

TEST_F(EventStoreTest, StoresRegularEventsOnceAndReturnsTheirJson) {
  Event e = make_event(author(1), 1, 100, {{"t", "x"}}, "hello \"world\"\n");
  EXPECT_EQ(add(e), AddResult::kStored);
  EXPECT_EQ(add(e), AddResult::kDuplicate);
  EXPECT_EQ(query_one(by_ids({e.id})), json_of({&e}));
  Event other = make_event(author(1), 1, 100, {}, "another");
  EXPECT_EQ(add(other), AddResult::kStored);
  EXPECT_EQ(query_one(by_author(author(1))).size(), 2u);
}

TEST_F(EventStoreTest, KeepsTheJsonItIsGiven) {
  Event e = make_event(author(1), 1, 100, {}, "x");
  const std::string json = nostr::to_json(e);
  std::promise<Result<AddResult>> outcome;
  ASSERT_TRUE(store_->add(e, json, [&](Result<AddResult> r) { outcome.set_value(std::move(r)); }));
  auto r = outcome.get_future().get();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, AddResult::kStored);
  EXPECT_EQ(query_one(by_ids({e.id})), std::vector<std::string>{json});
}

TEST_F(EventStoreTest, RefusesEphemeralEvents) {
  bool called = false;
  auto r = store_->add(make_event(author(1), 20001, 100), [&](Result<AddResult>) { called = true; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
  store_->close();
  EXPECT_FALSE(called);
}

TEST_F(EventStoreTest, ReplaceableKeepsOnlyTheLatestPerAuthorAndKind) {
  for (uint32_t kind : {0u, 3u, 10002u}) {
    Event old_version = make_event(author(1), kind, 100, {}, "old");
    Event new_version = make_event(author(1), kind, 200, {}, "new");
    Event older_still = make_event(author(1), kind, 50, {}, "older");
    Event other_author = make_event(author(2), kind, 10, {}, "theirs");
    EXPECT_EQ(add(old_version), AddResult::kStored);
    EXPECT_EQ(add(new_version), AddResult::kStored);
    EXPECT_EQ(add(older_still), AddResult::kSuperseded);
    EXPECT_EQ(add(old_version), AddResult::kSuperseded);  // deleted when replaced: not a duplicate
    EXPECT_EQ(add(other_author), AddResult::kStored);
    Filter f;
    f.kinds = std::vector<uint32_t>{kind};
    EXPECT_EQ(query_one(f), json_of({&new_version, &other_author})) << "kind " << kind;
    EXPECT_TRUE(query_one(by_ids({old_version.id})).empty());
  }
}

TEST_F(EventStoreTest, ReplaceableTieGoesToTheLowestId) {
  auto [low, high] = tied_pair(author(1), 10000, 100);
  EXPECT_EQ(add(high), AddResult::kStored);
  EXPECT_EQ(add(low), AddResult::kStored);  // replaces the higher id
  EXPECT_EQ(add(high), AddResult::kSuperseded);
  EXPECT_EQ(query_one(by_author(author(1))), json_of({&low}));

  auto [low0, high0] = tied_pair(author(2), 0, 100);
  EXPECT_EQ(add(low0), AddResult::kStored);
  EXPECT_EQ(add(high0), AddResult::kSuperseded);
  EXPECT_EQ(query_one(by_author(author(2))), json_of({&low0}));
}

TEST_F(EventStoreTest, AddressableIsKeyedByTheDTag) {
  Event a1 = make_event(author(1), 30000, 100, {{"d", "a"}});
  Event b1 = make_event(author(1), 30000, 100, {{"d", "b"}});
  Event a2 = make_event(author(1), 30000, 200, {{"d", "a"}}, "v2");
  Event no_d = make_event(author(1), 30000, 100, {});
  Event empty_d = make_event(author(1), 30000, 150, {{"d", ""}});
  Event other_kind = make_event(author(1), 30001, 90, {{"d", "a"}});
  EXPECT_EQ(add(a1), AddResult::kStored);
  EXPECT_EQ(add(b1), AddResult::kStored);
  EXPECT_EQ(add(a2), AddResult::kStored);
  EXPECT_EQ(add(a1), AddResult::kSuperseded);
  EXPECT_EQ(add(no_d), AddResult::kStored);
  EXPECT_EQ(add(empty_d), AddResult::kStored);  // a missing d tag is the empty d tag
  EXPECT_EQ(add(other_kind), AddResult::kStored);
  EXPECT_EQ(query_one(by_author(author(1))), json_of({&a2, &empty_d, &b1, &other_kind}));

  auto [low, high] = tied_pair(author(2), 30000, 100, {{"d", "x"}});
  EXPECT_EQ(add(high), AddResult::kStored);
  EXPECT_EQ(add(low), AddResult::kStored);
  EXPECT_EQ(query_one(by_author(author(2))), json_of({&low}));
}

// ---- NIP-09 deletion ----

TEST_F(EventStoreTest, DeletionByETagRemovesOnlyTheAuthorsEvents) {
  Event mine = make_event(author(1), 1, 100);
  Event theirs = make_event(author(2), 1, 100);
  ASSERT_EQ(add(mine), AddResult::kStored);
  ASSERT_EQ(add(theirs), AddResult::kStored);
  Event deletion = make_event(author(1), 5, 200, {{"e", hex_encode(mine.id)}, {"e", hex_encode(theirs.id)}});
  EXPECT_EQ(add(deletion), AddResult::kStored);
  EXPECT_TRUE(query_one(by_ids({mine.id})).empty());
  EXPECT_EQ(query_one(by_ids({theirs.id})), json_of({&theirs}));
  EXPECT_EQ(query_one(by_ids({deletion.id})), json_of({&deletion}));  // the request itself is kept

  EXPECT_EQ(add(mine), AddResult::kDeleted);  // published again
  EXPECT_EQ(add(theirs), AddResult::kDuplicate);
}

TEST_F(EventStoreTest, DeletionArrivingFirstCoversTheEventLater) {
  Event mine = make_event(author(1), 1, 100);
  Event theirs = make_event(author(2), 1, 100);
  Event deletion = make_event(author(1), 5, 50, {{"e", hex_encode(mine.id)}, {"e", hex_encode(theirs.id)}});
  ASSERT_EQ(add(deletion), AddResult::kStored);
  EXPECT_EQ(add(mine), AddResult::kDeleted);
  EXPECT_EQ(add(theirs), AddResult::kStored);  // another author's deletion cannot pre-empt it
}

TEST_F(EventStoreTest, DeletionByATagRemovesVersionsUpToItsTime) {
  const std::string me = hex_encode(author(1));
  Event a_old = make_event(author(1), 30000, 100, {{"d", "a"}});
  Event b = make_event(author(1), 30000, 100, {{"d", "b"}});
  Event profile = make_event(author(1), 10002, 100);
  Event someone_elses = make_event(author(2), 30000, 100, {{"d", "a"}});
  for (const Event* e : {&a_old, &b, &profile, &someone_elses})
    ASSERT_EQ(add(*e), AddResult::kStored);

  Event deletion = make_event(author(1), 5, 150,
                              {{"a", "30000:" + me + ":a"},
                               {"a", "10002:" + me + ":"},
                               {"a", "30000:" + hex_encode(author(2)) + ":a"},
                               {"a", "not a coordinate"}});
  ASSERT_EQ(add(deletion), AddResult::kStored);
  EXPECT_TRUE(query_one(by_ids({a_old.id, profile.id})).empty());
  EXPECT_EQ(query_one(by_ids({b.id})), json_of({&b}));
  EXPECT_EQ(query_one(by_ids({someone_elses.id})), json_of({&someone_elses}));

  // Versions up to the deletion's time stay deleted; newer ones are welcome.
  EXPECT_EQ(add(make_event(author(1), 30000, 150, {{"d", "a"}}, "same second")), AddResult::kDeleted);
  EXPECT_EQ(add(make_event(author(1), 10002, 120)), AddResult::kDeleted);
  Event a_new = make_event(author(1), 30000, 151, {{"d", "a"}});
  EXPECT_EQ(add(a_new), AddResult::kStored);
  EXPECT_EQ(query_one(by_ids({a_new.id})), json_of({&a_new}));
}

TEST_F(EventStoreTest, DeletionOfADeletionIsIgnored) {
  Event target = make_event(author(1), 1, 100);
  Event first = make_event(author(1), 5, 200, {{"e", hex_encode(target.id)}});
  ASSERT_EQ(add(target), AddResult::kStored);
  ASSERT_EQ(add(first), AddResult::kStored);
  Event second = make_event(author(1), 5, 300, {{"e", hex_encode(first.id)}});
  ASSERT_EQ(add(second), AddResult::kStored);
  EXPECT_EQ(query_one(by_ids({first.id, second.id})).size(), 2u);
  // And a deletion named by one before it arrived is still stored.
  Event third = make_event(author(1), 5, 400, {{"e", hex_encode(target.id)}, {"k", "1"}});
  Event fourth = make_event(author(1), 5, 500, {{"e", hex_encode(third.id)}});
  ASSERT_EQ(add(fourth), AddResult::kStored);
  EXPECT_EQ(add(third), AddResult::kStored);
}

// ---- queries ----

TEST_F(EventStoreTest, ExpiredEventsAreNeverReturnedAndCanBePurged) {
  Event expiring = make_event(author(1), 1, 100, {{"expiration", "1000"}});
  Event lasting = make_event(author(1), 1, 100, {{"expiration", "not a number"}});
  ASSERT_EQ(add(expiring), AddResult::kStored);
  ASSERT_EQ(add(lasting), AddResult::kStored);
  EXPECT_EQ(query_one(by_author(author(1)), 999).size(), 2u);
  EXPECT_EQ(query_one(by_author(author(1)), 1000), json_of({&lasting}));
  std::vector<Filter> filters{by_author(author(1))};
  EXPECT_EQ(*store_->count(filters, 999), 2u);
  EXPECT_EQ(*store_->count(filters, 1000), 1u);

  ASSERT_TRUE(store_->purge_expired(999));
  EXPECT_EQ(query_one(by_author(author(1)), 0).size(), 2u);
  ASSERT_TRUE(store_->purge_expired(1000));
  EXPECT_EQ(query_one(by_author(author(1)), 0), json_of({&lasting}));
}

TEST_F(EventStoreTest, LimitTakesTheNewestWithTiesByLowestId) {
  std::vector<Event> events;
  for (int i = 0; i < 6; ++i)
    events.push_back(make_event(author(1), 1, 100 + i / 2, {}, std::to_string(i)));  // pairs share a second
  for (const auto& e : events)
    ASSERT_EQ(add(e), AddResult::kStored);
  auto expected = events;
  std::sort(expected.begin(), expected.end(), [](const Event& a, const Event& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id < b.id;
  });
  Filter f = by_author(author(1));
  f.limit = 3;
  EXPECT_EQ(query_one(f), json_of({&expected[0], &expected[1], &expected[2]}));
  f.limit = 100;
  auto all = query({f}, 0, 4);  // max_limit caps a filter's own limit
  EXPECT_EQ(all, json_of({&expected[0], &expected[1], &expected[2], &expected[3]}));
  f.limit = 0;
  EXPECT_TRUE(query_one(f).empty());
}

TEST_F(EventStoreTest, FiltersAreOredAndResultsDeduplicated) {
  Event a = make_event(author(1), 1, 100);
  Event b = make_event(author(2), 7, 200);
  Event c = make_event(author(3), 1, 300);
  for (const Event* e : {&a, &b, &c})
    ASSERT_EQ(add(*e), AddResult::kStored);
  Filter kind1;
  kind1.kinds = std::vector<uint32_t>{1};
  Filter by_a_and_b = by_author(author(1));
  by_a_and_b.authors->push_back(author(2));
  EXPECT_EQ(query({kind1, by_a_and_b}), json_of({&c, &b, &a}));
  std::vector<Filter> filters{kind1, by_a_and_b};
  EXPECT_EQ(*store_->count(filters, 0), 3u);
  // Within one filter, fields are ANDed.
  Filter both = by_author(author(2));
  both.kinds = std::vector<uint32_t>{1};
  EXPECT_TRUE(query_one(both).empty());
}

TEST_F(EventStoreTest, TagQueriesUseTheFirstValueOfSingleLetterTags) {
  const std::string x(64, 'a');
  const std::string y(64, 'b');
  Event e1 = make_event(author(1), 1, 100, {{"e", x}, {"p", y, "wss://relay"}});
  Event e2 = make_event(author(1), 1, 200, {{"e", y}, {"e", y}, {"t", "ai"}});
  Event e3 = make_event(author(1), 1, 300, {{"title", x}, {"e"}, {"E", x}});
  for (const Event* e : {&e1, &e2, &e3})
    ASSERT_EQ(add(*e), AddResult::kStored);
  EXPECT_EQ(query_one(by_tag("e", {x})), json_of({&e1}));
  EXPECT_EQ(query_one(by_tag("e", {x, y})), json_of({&e2, &e1}));  // e2 once despite two matching tags
  EXPECT_EQ(query_one(by_tag("p", {y})), json_of({&e1}));
  EXPECT_EQ(query_one(by_tag("E", {x})), json_of({&e3}));  // names are case-sensitive
  EXPECT_TRUE(query_one(by_tag("p", {"wss://relay"})).empty());
  EXPECT_TRUE(query_one(by_tag("title", {x})).empty());  // multi-letter tags are not indexed
  Filter two = by_tag("e", {x, y});
  two.tags.push_back({"t", {"ai"}});
  EXPECT_EQ(query_one(two), json_of({&e2}));
  EXPECT_TRUE(query_one(by_tag("e", {})).empty());
}

TEST_F(EventStoreTest, SinceAndUntilAreInclusive) {
  std::vector<Event> events;
  for (int t = 100; t <= 500; t += 100)
    events.push_back(make_event(author(1), 1, t, {{"p", "x"}}));
  for (const auto& e : events)
    ASSERT_EQ(add(e), AddResult::kStored);
  Filter f;
  f.since = 200;
  f.until = 400;
  EXPECT_EQ(query_one(f), json_of({&events[3], &events[2], &events[1]}));
  Filter tagged = by_tag("p", {"x"});
  tagged.since = 400;
  EXPECT_EQ(query_one(tagged), json_of({&events[4], &events[3]}));
  tagged.since.reset();
  tagged.until = 100;
  EXPECT_EQ(query_one(tagged), json_of({&events[0]}));
}

TEST_F(EventStoreTest, EmptyListsMatchNothingAndAnEmptyFilterMatchesAll) {
  ASSERT_EQ(add(make_event(author(1), 1, 100)), AddResult::kStored);
  Filter empty_ids;
  empty_ids.ids = std::vector<nostr::EventId>{};
  Filter empty_kinds;
  empty_kinds.kinds = std::vector<uint32_t>{};
  EXPECT_TRUE(query({empty_ids, empty_kinds}).empty());
  EXPECT_EQ(*store_->count(std::vector<Filter>{empty_ids}, 0), 0u);
  EXPECT_EQ(query_one(Filter{}).size(), 1u);
}

TEST_F(EventStoreTest, QueryPlansUseAnIndexForEveryFilterField) {
  // Enough rows that the planner's choices are the real ones.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store_->add(make_event(author(static_cast<uint8_t>(i % 10)), static_cast<uint32_t>(i % 3), i,
                                       {{"e", std::string(64, static_cast<char>('a' + i % 6))}}),
                            nullptr));
  }
  store_->close();
  auto db = store::Database::open(path_, {.read_only = true});
  ASSERT_TRUE(db);

  // Each case names what its plan must contain: the filter's own field is an index key (SEARCH), never a
  // walk over the whole table filtering rows; only a filter without fields walks the time index, newest
  // first, and stops at the limit.
  struct Case {
    std::string name;
    Filter filter;
    std::string expected;
  };
  std::vector<Case> cases;
  cases.push_back({"ids", by_ids({nostr::EventId{}, nostr::EventId{1}}), "SEARCH events USING INDEX"});
  cases.push_back({"authors", by_author(author(1)), "SEARCH events USING INDEX events_pubkey_created_at"});
  Filter kinds;
  kinds.kinds = std::vector<uint32_t>{1, 2};
  cases.push_back({"kinds", kinds, "SEARCH events USING INDEX events_kind_created_at"});
  Filter authors_kinds = by_author(author(1));
  authors_kinds.kinds = std::vector<uint32_t>{1};
  cases.push_back(
      {"authors+kinds", authors_kinds, "SEARCH events USING INDEX events_pubkey_kind_created_at"});
  cases.push_back(
      {"#e", by_tag("e", {std::string(64, 'a')}), "SEARCH tags USING PRIMARY KEY (name=? AND value=?)"});
  Filter tag_since = by_tag("p", {"x", "y"});
  tag_since.since = 5;
  cases.push_back(
      {"#p+since", tag_since, "SEARCH tags USING PRIMARY KEY (name=? AND value=? AND created_at>?)"});
  Filter range;
  range.since = 10;
  range.until = 20;
  range.limit = 5;
  cases.push_back({"since+until+limit", range, "SEARCH events USING INDEX events_created_at"});
  cases.push_back({"limit only", Filter{}, "SCAN events USING INDEX events_created_at"});

  for (const auto& c : cases) {
    auto q = internal::build_select(c.filter, 1000, 10);
    ASSERT_TRUE(q) << c.name;
    auto stmt = db->prepare("EXPLAIN QUERY PLAN " + q->sql);
    ASSERT_TRUE(stmt) << stmt.error().to_string();
    ASSERT_TRUE(internal::bind_params(*stmt, q->params));
    std::string plan;
    for (;;) {
      auto row = stmt->step();
      ASSERT_TRUE(row);
      if (*row == store::Statement::Step::kDone) break;
      std::string detail(stmt->column_text(3));
      plan += detail + "\n";
      bool full_scan = detail.starts_with("SCAN ") && detail.find(" USING ") == std::string::npos;
      EXPECT_FALSE(full_scan) << c.name << ": full table scan in\n" << q->sql << "\n" << plan;
    }
    EXPECT_NE(plan.find(c.expected), std::string::npos) << c.name << ":\n" << q->sql << "\n" << plan;
  }
  auto count = internal::build_count(std::vector<Filter>{by_author(author(1)), kinds}, 1000);
  ASSERT_TRUE(count);
  auto stmt = db->prepare("EXPLAIN QUERY PLAN " + count->sql);
  ASSERT_TRUE(stmt);
  ASSERT_TRUE(internal::bind_params(*stmt, count->params));
  for (auto row = stmt->step(); row && *row == store::Statement::Step::kRow; row = stmt->step()) {
    std::string detail(stmt->column_text(3));
    EXPECT_FALSE(detail == "SCAN events") << count->sql;
  }
}

// ---- limits and errors ----

TEST_F(EventStoreTest, FullWriterQueueIsRefusedAtOnce) {
  store_ = open_store(4);
  std::promise<void> entered;
  std::promise<void> release;
  // The first event's callback holds the writer thread, so later events stay queued.
  ASSERT_TRUE(store_->add(make_event(author(1), 1, 1), [&](Result<AddResult>) {
    entered.set_value();
    release.get_future().wait();
  }));
  entered.get_future().wait();
  std::atomic<int> stored{0};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store_->add(make_event(author(1), 1, 10 + i), [&](Result<AddResult> r) {
      if (r && *r == AddResult::kStored) ++stored;
    }));
  }
  auto refused = store_->add(make_event(author(1), 1, 99), [](Result<AddResult>) { ADD_FAILURE(); });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kLimitExceeded);
  release.set_value();
  store_->close();
  EXPECT_EQ(stored.load(), 4);
  auto closed = store_->add(make_event(author(1), 1, 100), nullptr);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, ErrorCode::kIo);
  EXPECT_EQ(query_one(by_author(author(1))).size(), 5u);  // reads still work after close
}

TEST_F(EventStoreTest, OpenReportsUnusablePaths) {
  auto memory = EventStore::open({.path = ":memory:"});
  ASSERT_FALSE(memory);
  EXPECT_EQ(memory.error().code, ErrorCode::kInvalidInput);

  auto missing_dir = EventStore::open({.path = (dir_ / "no" / "such" / "events.db").string()});
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().code, ErrorCode::kIo);
  EXPECT_NE(missing_dir.error().message.find("unable to open"), std::string::npos)
      << missing_dir.error().message;

  const std::string corrupt = (dir_ / "corrupt.db").string();
  std::ofstream(corrupt) << std::string(4096, '\x7f');
  auto garbage = EventStore::open({.path = corrupt});
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, ErrorCode::kIo);
  EXPECT_NE(garbage.error().message.find("not a database"), std::string::npos) << garbage.error().message;

  auto directory = EventStore::open({.path = dir_.string()});
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, ErrorCode::kIo);
}

// ---- durability and concurrency ----

TEST_F(EventStoreTest, EventsFromManyThreadsSurviveReopening) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Event e = make_event(author(static_cast<uint8_t>(t)), 1, i, {{"p", std::to_string(i % 7)}});
        ASSERT_TRUE(store_->add(std::move(e), [&](Result<AddResult> r) {
          if (r && *r == AddResult::kStored) ++stored;
        }));
        if (i % 50 == 0) {  // readers run while the writer writes
          Filter f = by_author(author(static_cast<uint8_t>(t)));
          EXPECT_TRUE(store_->query(std::vector<Filter>{f}, 0, 10));
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  store_->close();
  EXPECT_EQ(stored.load(), kThreads * kPerThread);
  store_.reset();

  store_ = open_store();
  ASSERT_TRUE(store_);
  EXPECT_EQ(*store_->count(std::vector<Filter>{Filter{}}, 0), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*store_->count(std::vector<Filter>{by_tag("p", {"3"})}, 0), static_cast<size_t>(kThreads * 36));
  EXPECT_EQ(query({Filter{}}, 0, 100000).size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(EventStoreTest, CommittedEventSurvivesSigkill) {
  store_.reset();
  Event e = make_event(author(9), 1, 12345, {{"t", "durable"}}, "written before the kill");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto opened = EventStore::open({.path = path_});
    if (!opened) ::_exit(2);
    const int fd = pipe_fds[1];
    auto queued = (*opened)->add(e, [fd](Result<AddResult> r) {
      char byte = r && *r == AddResult::kStored ? 'k' : 'f';
      (void)!::write(fd, &byte, 1);
      // Stay alive holding the connection, as a running relay would, until the parent kills us.
      for (;;)
        ::pause();
    });
    if (!queued) ::_exit(3);
    for (;;)
      ::pause();
  }
  ::close(pipe_fds[1]);
  char byte = 0;
  ASSERT_EQ(::read(pipe_fds[0], &byte, 1), 1);
  ::close(pipe_fds[0]);
  EXPECT_EQ(byte, 'k');
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status));

  store_ = open_store();
  ASSERT_TRUE(store_);
  EXPECT_EQ(query_one(by_ids({e.id})), json_of({&e}));
}

}  // namespace
}  // namespace infernet::relay
