#include "engine/fake/fake_engine.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace infernet::engine {
namespace {

using namespace std::chrono_literals;

// What one run reported, with waits that time out instead of hanging.
struct RunRecord {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::string> pieces;            // guarded by mu
  std::vector<uint32_t> counts;               // guarded by mu
  std::optional<Result<GenerateUsage>> done;  // guarded by mu
  int done_calls = 0;                         // guarded by mu

  GenerateCallbacks callbacks() {
    return GenerateCallbacks{[this](std::string_view piece, uint32_t tokens) {
                               std::lock_guard lock(mu);
                               pieces.emplace_back(piece);
                               counts.push_back(tokens);
                               changed.notify_all();
                             },
                             [this](Result<GenerateUsage> r) {
                               std::lock_guard lock(mu);
                               done = std::move(r);
                               ++done_calls;
                               changed.notify_all();
                             }};
  }
  bool wait_done() {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, 5s, [&] { return done.has_value(); });
  }
  bool wait_pieces(size_t n) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, 5s, [&] { return pieces.size() >= n; });
  }
  std::string output() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& p : pieces)
      out += p;
    return out;
  }
};

GenerateRequest request(std::string id, std::string prompt, uint32_t max_tokens) {
  GenerateRequest r;
  r.id = std::move(id);
  r.model = "fake-echo";
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  return r;
}

TEST(FakeEchoOutput, RepeatsThePromptWordsUpToMaxTokens) {
  EXPECT_EQ(fake_echo_output("a b  c", 5), "a b c a b ");
  EXPECT_EQ(fake_echo_output(" one\ttwo\n", 3), "one two one ");
  EXPECT_EQ(fake_echo_output("a b c", 2), "a b ");
  EXPECT_EQ(fake_echo_output("   ", 10), "");
  EXPECT_EQ(fake_echo_output("x", 0), "");
}

TEST(FakeEngine, StreamsTheFakeEchoOutputOneWordPerToken) {
  auto engine = make_fake_engine({});
  RunRecord run;
  ASSERT_TRUE(engine->submit(request("j1", "the quick brown fox", 7), run.callbacks()));
  ASSERT_TRUE(run.wait_done());
  ASSERT_TRUE(*run.done) << run.done->error().to_string();
  EXPECT_EQ(run.output(), fake_echo_output("the quick brown fox", 7));
  EXPECT_EQ(run.pieces.size(), 7u);
  EXPECT_EQ(run.pieces[4], "the ");
  EXPECT_EQ(run.counts.back(), 7u);
  EXPECT_EQ((*run.done)->input_tokens, 4u);
  EXPECT_EQ((*run.done)->output_tokens, 7u);
  EXPECT_EQ(run.done_calls, 1);
}

TEST(FakeEngine, CountsAPromptsWordsAsItsTokens) {
  auto engine = make_fake_engine({});
  auto counted = engine->count_tokens("fake-echo", "the quick brown fox", {});
  ASSERT_TRUE(counted) << counted.error().to_string();
  EXPECT_EQ(*counted, 4u);  // what the run above reports as input_tokens
  auto chat = engine->count_tokens("fake-echo", "", {{"system", "be brief"}, {"user", "hi there you"}});
  ASSERT_TRUE(chat);
  EXPECT_EQ(*chat, 5u);
  auto unknown = engine->count_tokens("nope", "a", {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(unknown.error().message.find("nope"), std::string::npos);
}

TEST(FakeEngine, AResumedRunDeliversOnlyWhatFollowsTheResumedText) {
  auto engine = make_fake_engine({});
  const std::string full = fake_echo_output("the quick brown fox", 7);
  // After two whole words, and from inside the third.
  for (size_t cut : {std::string("the quick ").size(), std::string("the quick br").size()}) {
    RunRecord run;
    GenerateRequest r = request("j" + std::to_string(cut), "the quick brown fox", 7);
    r.resume_text = full.substr(0, cut);
    ASSERT_TRUE(engine->submit(r, run.callbacks()));
    ASSERT_TRUE(run.wait_done());
    ASSERT_TRUE(*run.done) << run.done->error().to_string();
    EXPECT_EQ(r.resume_text + run.output(), full);
    // Tokens the resumed text covers are input; the one it ends inside is generated again.
    EXPECT_EQ((*run.done)->input_tokens, 4u + 2u);
    EXPECT_EQ((*run.done)->output_tokens, 5u);
    EXPECT_EQ(run.counts.front(), 1u);
  }
}

TEST(FakeEngine, EmptyPromptFinishesWithoutTokens) {
  auto engine = make_fake_engine({});
  RunRecord run;
  ASSERT_TRUE(engine->submit(request("j1", "", 7), run.callbacks()));
  ASSERT_TRUE(run.wait_done());
  ASSERT_TRUE(*run.done);
  EXPECT_TRUE(run.pieces.empty());
  EXPECT_EQ((*run.done)->output_tokens, 0u);
}

TEST(FakeEngine, UnknownModelIsRefusedAtSubmit) {
  auto engine = make_fake_engine({.models = {"a", "b"}});
  EXPECT_EQ(engine->name(), "fake");
  ASSERT_EQ(engine->models().size(), 2u);
  EXPECT_EQ(engine->models()[1].name, "b");
  RunRecord run;
  auto r = request("j1", "x", 1);
  r.model = "fake-echo";
  auto st = engine->submit(r, run.callbacks());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidInput);
  r.model = "b";
  ASSERT_TRUE(engine->submit(r, run.callbacks()));
  ASSERT_TRUE(run.wait_done());
  EXPECT_EQ(run.output(), "x ");
}

TEST(FakeEngine, CancelStopsARunningJobAtTheNextToken) {
  auto engine = make_fake_engine({.slots = 1, .token_delay = 20ms});
  RunRecord run;
  ASSERT_TRUE(engine->submit(request("j1", "a b", 1000), run.callbacks()));
  ASSERT_TRUE(run.wait_pieces(2));
  const auto asked = std::chrono::steady_clock::now();
  engine->cancel("j1");
  ASSERT_TRUE(run.wait_done());
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 500ms);
  ASSERT_FALSE(*run.done);
  EXPECT_TRUE(is_canceled(run.done->error()));
  EXPECT_LT(run.pieces.size(), 50u);
  EXPECT_EQ(run.done_calls, 1);
}

TEST(FakeEngine, CancelOfAQueuedRunFinishesItAtOnce) {
  auto engine = make_fake_engine({.slots = 1, .token_delay = 50ms});
  RunRecord first;
  RunRecord second;
  ASSERT_TRUE(engine->submit(request("j1", "a", 100), first.callbacks()));
  ASSERT_TRUE(engine->submit(request("j2", "b", 100), second.callbacks()));
  engine->cancel("j2");
  {
    std::lock_guard lock(second.mu);
    ASSERT_TRUE(second.done.has_value());
    EXPECT_TRUE(is_canceled(second.done->error()));
    EXPECT_TRUE(second.pieces.empty());
  }
  engine->cancel("unknown");  // ignored
  engine->cancel("j1");
  ASSERT_TRUE(first.wait_done());
  EXPECT_FALSE(*first.done);
}

TEST(FakeEngine, FullQueueIsRefused) {
  auto engine = make_fake_engine({.slots = 1, .queue_capacity = 2, .token_delay = 50ms});
  RunRecord runs[4];
  ASSERT_TRUE(engine->submit(request("j0", "a", 100), runs[0].callbacks()));
  ASSERT_TRUE(runs[0].wait_pieces(1));  // j0 holds the only slot; the queue is empty
  ASSERT_TRUE(engine->submit(request("j1", "a", 1), runs[1].callbacks()));
  ASSERT_TRUE(engine->submit(request("j2", "a", 1), runs[2].callbacks()));
  auto st = engine->submit(request("j3", "a", 1), runs[3].callbacks());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kLimitExceeded);
  engine->stop();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(runs[i].wait_done());
    EXPECT_TRUE(is_canceled(runs[i].done->error())) << i;
  }
  EXPECT_FALSE(runs[3].done.has_value());
  auto after = engine->submit(request("j4", "a", 1), runs[3].callbacks());
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ErrorCode::kIo);
}

TEST(FakeEngine, SlotsRunConcurrently) {
  // Four runs of 10 tokens at 20 ms each: about 200 ms with four slots, 800 ms one after another.
  auto engine = make_fake_engine({.slots = 4, .token_delay = 20ms});
  RunRecord runs[4];
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(engine->submit(request("j" + std::to_string(i), "w", 10), runs[i].callbacks()));
  for (auto& run : runs) {
    ASSERT_TRUE(run.wait_done());
    ASSERT_TRUE(*run.done);
    EXPECT_EQ(run.output(), fake_echo_output("w", 10));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 600ms);
}

TEST(FakeEngine, StopIsIdempotent) {
  auto engine = make_fake_engine({});
  engine->stop();
  engine->stop();
}

}  // namespace
}  // namespace infernet::engine
