// The llama engine on the project's own tiny model (made by the build: src/models, docs/models.md).
#include "engine/llama/llama_engine.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

namespace infernet::engine {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Outcome {
  std::string text;  // the pieces, concatenated
  std::vector<std::string> pieces;
  Result<GenerateUsage> done = tl::unexpected(Error{ErrorCode::kInternal, "not finished"});
};

// Runs one request to its end and collects what the callbacks saw.
class Collector {
 public:
  GenerateCallbacks callbacks(std::function<void(uint32_t)> on_token = {}) {
    GenerateCallbacks cb;
    cb.on_piece = [this, on_token](std::string_view piece, uint32_t tokens) {
      {
        std::lock_guard lock(mu_);
        outcome_.pieces.emplace_back(piece);
        outcome_.text.append(piece);
        last_piece_at_ = std::chrono::steady_clock::now();
        if (!first_piece_at_) first_piece_at_ = last_piece_at_;
      }
      if (on_token) on_token(tokens);
    };
    cb.on_done = [this](Result<GenerateUsage> r) {
      std::lock_guard lock(mu_);
      outcome_.done = std::move(r);
      done_at_ = std::chrono::steady_clock::now();
      finished_.set_value();
    };
    return cb;
  }
  Outcome wait() {
    EXPECT_EQ(future_.wait_for(60s), std::future_status::ready);
    std::lock_guard lock(mu_);
    return outcome_;
  }
  std::optional<std::chrono::steady_clock::time_point> first_piece_at() {
    std::lock_guard lock(mu_);
    return first_piece_at_;
  }
  std::chrono::steady_clock::time_point done_at() {
    std::lock_guard lock(mu_);
    return done_at_;
  }

 private:
  std::mutex mu_;
  Outcome outcome_;
  std::optional<std::chrono::steady_clock::time_point> first_piece_at_;
  std::chrono::steady_clock::time_point last_piece_at_{};
  std::chrono::steady_clock::time_point done_at_{};
  std::promise<void> finished_;
  std::future<void> future_ = finished_.get_future();
};

class LlamaEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::string(INFERNET_TINY_MODEL).empty() || !fs::exists(INFERNET_TINY_MODEL)) return;
    dir_ = new fs::path(fs::temp_directory_path() / ("infernet-llama-test-" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    fs::copy_file(INFERNET_TINY_MODEL, *dir_ / "tiny.gguf", fs::copy_options::overwrite_existing);
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "the build's tiny model is missing: " << INFERNET_TINY_MODEL;
  }

  // One thread by default: OpenMP threads wait for each other after every graph node, which on a loaded
  // two-core machine (tests run in parallel) costs far more than it gains on a model this small.
  static LlamaEngineOptions options(uint32_t slots = 2, int threads = 1) {
    LlamaEngineOptions o;
    o.models_dir = *dir_;
    o.slots = slots;
    o.threads = threads;
    o.context = 256;
    return o;
  }
  static std::unique_ptr<Engine> engine(const LlamaEngineOptions& o) {
    auto e = make_llama_engine(o);
    EXPECT_TRUE(e) << e.error().message;
    return e ? std::move(*e) : nullptr;
  }
  static GenerateRequest request(std::string id, std::string prompt, uint32_t max_tokens = 40) {
    GenerateRequest r;
    r.id = std::move(id);
    r.model = "tiny";
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    return r;
  }
  static Outcome run(Engine& e, GenerateRequest r) {
    Collector c;
    auto st = e.submit(std::move(r), c.callbacks());
    EXPECT_TRUE(st) << st.error().message;
    if (!st) return {};
    return c.wait();
  }

  static fs::path* dir_;
  // A line of the training corpus (Debian's Apache-2.0 licence text).
  const std::string prompt_ = "Licensed under the Apache License, Version 2.0 (the \"License\");";
};
fs::path* LlamaEngineTest::dir_ = nullptr;

TEST_F(LlamaEngineTest, DescribesEachModelFromItsFile) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->name(), "llama");
  auto models = e->models();
  ASSERT_EQ(models.size(), 1U);
  const ModelDescription& m = models[0];
  EXPECT_EQ(m.name, "tiny");
  EXPECT_EQ(m.family, "llama");
  EXPECT_EQ(m.sha256.size(), 64U);
  EXPECT_GT(m.parameters, 10000U);
  EXPECT_FALSE(m.quantization.empty());
  EXPECT_EQ(m.context_length, 256U);
  EXPECT_NE(std::find(m.capabilities.begin(), m.capabilities.end(), "chat"), m.capabilities.end());
  EXPECT_NE(m.determinism.find("flash_attn=off"), std::string::npos) << m.determinism;
  EXPECT_NE(m.determinism.find("threads=1"), std::string::npos) << m.determinism;
}

TEST_F(LlamaEngineTest, GreedyGenerationStreamsTheWholeTextAndCountsTokens) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  Outcome a = run(*e, request("a", prompt_, 30));
  ASSERT_TRUE(a.done) << a.done.error().message;
  EXPECT_EQ(a.done->output_tokens, 30U);
  EXPECT_EQ(a.done->finish_reason, FinishReason::kLength);
  // The byte vocabulary: one token per byte of the prompt (all ASCII here), plus the start token.
  EXPECT_EQ(a.done->input_tokens, prompt_.size() + 1);
  EXPECT_GT(a.done->first_token_seconds, 0);
  EXPECT_GE(a.done->seconds, a.done->first_token_seconds);
  EXPECT_GT(a.pieces.size(), 1U);
  EXPECT_FALSE(a.text.empty());
  // Greedy is a function of the prompt: the same text again.
  Outcome b = run(*e, request("b", prompt_, 30));
  EXPECT_EQ(a.text, b.text);
}

TEST_F(LlamaEngineTest, TheSeedDecidesTheTextWhenSampling) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  auto sampled = [&](uint64_t seed) {
    GenerateRequest r = request("s" + std::to_string(seed), "The ", 40);
    r.sampling.temperature = 1.5;
    r.sampling.seed = seed;
    return run(*e, r).text;
  };
  const std::string s1 = sampled(1);
  EXPECT_EQ(s1, sampled(1));
  // Different seeds draw differently at this temperature (three tries: all equal would be one chance in
  // very many).
  EXPECT_TRUE(s1 != sampled(2) || s1 != sampled(3) || s1 != sampled(4));
}

TEST_F(LlamaEngineTest, EachSamplingStageHasItsEffect) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  const std::string greedy = run(*e, request("g", "The ", 40)).text;
  auto with = [&](const std::function<void(SamplingParams&)>& set) {
    GenerateRequest r = request("w", "The ", 40);
    r.sampling.temperature = 1.8;
    r.sampling.seed = 5;
    set(r.sampling);
    return run(*e, r).text;
  };
  // Keeping only the most likely token is greedy, whatever the temperature.
  EXPECT_EQ(with([](SamplingParams& p) { p.top_k = 1; }), greedy);
  EXPECT_EQ(with([](SamplingParams& p) { p.top_p = 0.0001; }), greedy);
  EXPECT_EQ(with([](SamplingParams& p) { p.min_p = 0.9999; }), greedy);
  // With nothing cut, a high temperature wanders off.
  EXPECT_NE(with([](SamplingParams&) {}), greedy);

  // The repeat penalty changes a greedy text that repeats itself; with no look-back it does nothing.
  GenerateRequest penalized = request("p", "The ", 60);
  penalized.sampling.repeat_penalty = 3;
  const std::string long_greedy = run(*e, request("lg", "The ", 60)).text;
  EXPECT_NE(run(*e, penalized).text, long_greedy);
  penalized.sampling.repeat_last_n = 0;
  EXPECT_EQ(run(*e, penalized).text, long_greedy);
}

TEST_F(LlamaEngineTest, StopSequencesEndTheOutputBeforeThem) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  const std::string full = run(*e, request("full", prompt_, 60)).text;
  ASSERT_GT(full.size(), 20U);
  const std::string stop = full.substr(10, 3);
  const size_t at = full.find(stop);
  GenerateRequest r = request("stop", prompt_, 60);
  r.sampling.stop = {"\x01never", stop};
  Outcome o = run(*e, r);
  ASSERT_TRUE(o.done) << o.done.error().message;
  EXPECT_EQ(o.text, full.substr(0, at));
  EXPECT_EQ(o.done->finish_reason, FinishReason::kStop);
}

// Failover: a run resumed from any prefix of the delivered text continues it exactly (greedy, byte-level
// vocabulary), counts the resumed tokens toward max_tokens but not as its own output.
TEST_F(LlamaEngineTest, AResumedRunContinuesTheTextExactly) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  Outcome full = run(*e, request("full", prompt_, 40));
  ASSERT_TRUE(full.done) << full.done.error().message;
  ASSERT_EQ(full.text.size(), 40U);  // ASCII: one byte per token
  for (size_t k : {1U, 17U, 39U}) {
    GenerateRequest r = request("resume" + std::to_string(k), prompt_, 40);
    r.resume_text = full.text.substr(0, k);
    Outcome rest = run(*e, r);
    ASSERT_TRUE(rest.done) << rest.done.error().message;
    EXPECT_EQ(r.resume_text + rest.text, full.text) << "resumed after " << k << " bytes";
    EXPECT_EQ(rest.done->output_tokens, 40U - k);
    EXPECT_EQ(rest.done->input_tokens, prompt_.size() + 1 + k);
    EXPECT_EQ(rest.done->finish_reason, FinishReason::kLength);
  }
  // Nothing left to generate.
  GenerateRequest done = request("done", prompt_, 40);
  done.resume_text = full.text;
  Outcome none = run(*e, done);
  ASSERT_TRUE(none.done) << none.done.error().message;
  EXPECT_EQ(none.text, "");
  EXPECT_EQ(none.done->output_tokens, 0U);

  // Chat: the template's rendering with its generation prompt, then the resumed text.
  GenerateRequest chat = request("chat-full", "", 30);
  chat.messages = {{"user", "Licensed under the"}};
  Outcome chat_full = run(*e, chat);
  ASSERT_TRUE(chat_full.done) << chat_full.done.error().message;
  ASSERT_GT(chat_full.text.size(), 10U);
  chat.id = "chat-resume";
  chat.resume_text = chat_full.text.substr(0, 10);
  Outcome chat_rest = run(*e, chat);
  ASSERT_TRUE(chat_rest.done) << chat_rest.done.error().message;
  EXPECT_EQ(chat.resume_text + chat_rest.text, chat_full.text);
}

TEST_F(LlamaEngineTest, AStopSequenceAcrossTheResumePointEndsTheResumedRun) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  const std::string full = run(*e, request("full", prompt_, 40)).text;
  ASSERT_EQ(full.size(), 40U);
  const std::string stop = full.substr(20, 4);
  if (full.find(stop) < 20) GTEST_SKIP() << "the stop sequence occurs earlier in this model's text";
  GenerateRequest r = request("resume", prompt_, 40);
  r.sampling.stop = {stop};
  r.resume_text = full.substr(0, 22);  // delivered up to the middle of the stop sequence
  Outcome o = run(*e, r);
  ASSERT_TRUE(o.done) << o.done.error().message;
  EXPECT_EQ(o.text, "");
  EXPECT_EQ(o.done->finish_reason, FinishReason::kStop);
  EXPECT_EQ(o.done->output_tokens, 2U);
}

TEST_F(LlamaEngineTest, ChatMessagesGoThroughTheModelsTemplate) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  GenerateRequest r = request("chat", "", 10);
  r.messages = {{"system", "Be brief."}, {"user", "Hello"}};
  Outcome o = run(*e, r);
  ASSERT_TRUE(o.done) << o.done.error().message;
  // The template adds its own markers around the 14 bytes of content.
  EXPECT_GT(o.done->input_tokens, 30U);
  EXPECT_GE(o.done->output_tokens, 1U);

  GenerateRequest both = request("both", "text", 10);
  both.messages = {{"user", "Hello"}};
  auto st = e->submit(both, Collector().callbacks());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidInput);
}

TEST_F(LlamaEngineTest, CountsAnInputsTokensAsARunOfItDoes) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  const std::string model = e->models().at(0).name;
  GenerateRequest raw = request("raw", "Licensed under the Apache License", 4);
  GenerateRequest chat = request("chat", "", 4);
  chat.messages = {{"system", "Be brief."}, {"user", "Hello"}};
  for (const GenerateRequest& r : {raw, chat}) {
    auto counted = e->count_tokens(model, r.prompt, r.messages);
    ASSERT_TRUE(counted) << counted.error().message;
    Outcome o = run(*e, r);
    ASSERT_TRUE(o.done) << o.done.error().message;
    EXPECT_EQ(*counted, o.done->input_tokens) << r.id;
  }
  auto unknown = e->count_tokens("nope", "hi", {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidInput);
  auto too_long = e->count_tokens(model, std::string(300, 'a'), {});
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("context of 256 tokens"), std::string::npos)
      << too_long.error().message;
  EXPECT_FALSE(e->count_tokens(model, "", {}));
}

TEST_F(LlamaEngineTest, APromptLongerThanTheContextIsRefusedClearly) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  auto st = e->submit(request("long", std::string(300, 'a')), Collector().callbacks());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(st.error().message.find("context of 256 tokens"), std::string::npos) << st.error().message;
  // A prompt that fits but leaves little room ends at the context's end.
  Outcome o = run(*e, request("edge", std::string(240, 'a'), 100));
  ASSERT_TRUE(o.done) << o.done.error().message;
  EXPECT_LE(o.done->input_tokens + o.done->output_tokens, 256U);
  EXPECT_EQ(o.done->finish_reason, FinishReason::kLength);
}

TEST_F(LlamaEngineTest, RefusesUnknownModelsAndBadParameters) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  GenerateRequest r = request("x", "hi");
  r.model = "nope";
  auto st = e->submit(r, Collector().callbacks());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("nope"), std::string::npos);
  r = request("y", "hi");
  r.sampling.top_p = 0;
  st = e->submit(r, Collector().callbacks());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message.rfind("top_p", 0), 0U) << st.error().message;
}

TEST_F(LlamaEngineTest, CancelStopsARunWithinOneToken) {
  auto e = engine(options());
  ASSERT_TRUE(e);
  Collector c;
  uint32_t canceled_at = 0;
  Engine* engine_ptr = e.get();
  auto st = e->submit(request("c", "The ", 200), c.callbacks([&](uint32_t tokens) {
    if (tokens >= 5 && canceled_at == 0) {
      canceled_at = tokens;
      engine_ptr->cancel("c");
    }
  }));
  ASSERT_TRUE(st);
  Outcome o = c.wait();
  ASSERT_FALSE(o.done);
  EXPECT_TRUE(is_canceled(o.done.error()));
  ASSERT_GE(canceled_at, 5U);
  // No piece after the one that asked: the flag is checked before the next decode.
  EXPECT_LE(o.pieces.size(), static_cast<size_t>(canceled_at));
}

TEST_F(LlamaEngineTest, RunsUpToSlotsJobsAtOnceAndQueuesTheRest) {
  auto e = engine(options(2));
  ASSERT_TRUE(e);
  Collector a, b, c;
  ASSERT_TRUE(e->submit(request("a", "The ", 200), a.callbacks()));
  ASSERT_TRUE(e->submit(request("b", "Licensed ", 200), b.callbacks()));
  ASSERT_TRUE(e->submit(request("c", "You may ", 20), c.callbacks()));
  Outcome oa = a.wait(), ob = b.wait(), oc = c.wait();
  ASSERT_TRUE(oa.done && ob.done && oc.done);
  EXPECT_EQ(oa.done->output_tokens, 200U);
  EXPECT_EQ(ob.done->output_tokens, 200U);
  // a and b ran together: each produced its first piece before the other finished.
  EXPECT_LT(*a.first_piece_at(), b.done_at());
  EXPECT_LT(*b.first_piece_at(), a.done_at());
  // c waited for a slot.
  EXPECT_GT(*c.first_piece_at(), std::min(a.done_at(), b.done_at()) - 1ms);
}

TEST_F(LlamaEngineTest, AFullQueueRefusesMoreRuns) {
  LlamaEngineOptions o = options(1);
  o.queue_capacity = 1;
  auto e = engine(o);
  ASSERT_TRUE(e);
  std::promise<void> started;
  std::once_flag once;
  Collector a, b;
  ASSERT_TRUE(e->submit(request("a", "The ", 250),
                        a.callbacks([&](uint32_t) { std::call_once(once, [&] { started.set_value(); }); })));
  ASSERT_EQ(started.get_future().wait_for(30s), std::future_status::ready);
  // a holds the only slot; b takes the only queue place; c finds the queue full.
  ASSERT_TRUE(e->submit(request("b", "The ", 5), b.callbacks()));
  auto full = e->submit(request("c", "x"), Collector().callbacks());
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kLimitExceeded);
  e->cancel("a");
  EXPECT_TRUE(b.wait().done);
}

TEST_F(LlamaEngineTest, ADeterministicRunGivesTheSameTextAloneBesideOthersAndOnOneThread) {
  auto make = [&](const std::string& id) {
    GenerateRequest r = request(id, prompt_, 80);
    r.sampling.temperature = 0.9;
    r.sampling.seed = 42;
    r.deterministic = true;
    return r;
  };
  auto e = engine(options(3, 2));
  ASSERT_TRUE(e);
  const Outcome alone = run(*e, make("alone"));
  ASSERT_TRUE(alone.done);
  // The same job beside two batched jobs that start at the same moment.
  Collector x, y, z;
  ASSERT_TRUE(e->submit(request("x", "The ", 150), x.callbacks()));
  ASSERT_TRUE(e->submit(make("det"), y.callbacks()));
  ASSERT_TRUE(e->submit(request("z", "You may ", 150), z.callbacks()));
  EXPECT_EQ(y.wait().text, alone.text);
  x.wait();
  z.wait();
  // Another engine on one thread: with flash attention off the thread count does not change the sums.
  auto single = engine(options(1, 1));
  ASSERT_TRUE(single);
  EXPECT_EQ(run(*single, make("one-thread")).text, alone.text);
}

TEST_F(LlamaEngineTest, StopCancelsQueuedAndRunningJobs) {
  auto e = engine(options(1));
  ASSERT_TRUE(e);
  Collector a, b;
  ASSERT_TRUE(e->submit(request("a", "The ", 250), a.callbacks()));
  ASSERT_TRUE(e->submit(request("b", "The ", 250), b.callbacks()));
  e->stop();
  Outcome ob = b.wait();
  ASSERT_FALSE(ob.done);
  EXPECT_TRUE(is_canceled(ob.done.error()));
  Outcome oa = a.wait();
  if (!oa.done) {
    EXPECT_TRUE(is_canceled(oa.done.error()));
  }
  auto after = e->submit(request("late", "x"), Collector().callbacks());
  EXPECT_FALSE(after);
}

TEST_F(LlamaEngineTest, ABrokenModelFileIsSkippedAndTheOthersServed) {
  const fs::path dir = *dir_ / "mixed";
  fs::create_directories(dir);
  fs::copy_file(*dir_ / "tiny.gguf", dir / "good.gguf", fs::copy_options::overwrite_existing);
  fs::copy_file(*dir_ / "tiny.gguf", dir / "cut.gguf", fs::copy_options::overwrite_existing);
  fs::resize_file(dir / "cut.gguf", fs::file_size(dir / "cut.gguf") / 2);
  std::ofstream(dir / "random.gguf") << "GGUF\x03\x00\x00\x00 not really";
  LlamaEngineOptions o = options();
  o.models_dir = dir;
  auto e = engine(o);
  ASSERT_TRUE(e);
  auto models = e->models();
  ASSERT_EQ(models.size(), 1U);
  EXPECT_EQ(models[0].name, "good");

  fs::remove(dir / "good.gguf");
  auto none = make_llama_engine(o);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(none.error().message.find("truncated"), std::string::npos) << none.error().message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace infernet::engine
