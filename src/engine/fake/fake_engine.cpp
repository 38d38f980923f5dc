// THE FAKE ENGINE — for tests and demos only. It runs no model: its "generation" repeats the prompt's words
// (see fake_engine.hpp), so that tests can predict every output and make a job last as long as they need.
//
// Structure: `slots` worker threads take runs from one bounded FIFO queue. A run's cancel flag is checked
// before every token and while it waits out the token delay, so cancel() takes effect at the next token.
#include "engine/fake/fake_engine.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

namespace infernet::engine {
namespace {

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) != 0)
      ++i;
    size_t start = i;
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])) == 0)
      ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

// One queued or running request.
struct Run {
  GenerateRequest request;
  GenerateCallbacks callbacks;
  bool canceled = false;  // guarded by FakeEngine::mu_
};

class FakeEngine final : public Engine {
 public:
  explicit FakeEngine(FakeEngineOptions options) : options_(std::move(options)) {
    const size_t slots = std::max<size_t>(1, options_.slots);
    workers_.reserve(slots);
    for (size_t i = 0; i < slots; ++i)
      workers_.emplace_back([this] { work(); });
  }
  ~FakeEngine() override { stop(); }
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;

  std::string name() const override { return "fake"; }

  std::vector<ModelDescription> models() const override {
    std::vector<ModelDescription> out;
    out.reserve(options_.models.size());
    for (const auto& m : options_.models) {
      out.push_back(ModelDescription{.name = m,
                                     .sha256 = "",
                                     .family = "fake",
                                     .parameters = 0,
                                     .quantization = "",
                                     .context_length = 65536,
                                     .capabilities = {"text-generation"}});
    }
    return out;
  }

  // The fake tokenizer: a word (run of non-space bytes) is a token, as generate() counts the prompt.
  Result<uint32_t> count_tokens(const std::string& model, const std::string& prompt,
                                const std::vector<ChatMessage>& messages) const override {
    if (std::find(options_.models.begin(), options_.models.end(), model) == options_.models.end())
      return make_error(ErrorCode::kInvalidInput, "model: '" + model + "' is not served by this engine");
    if (auto st = check_messages(messages, kMaxPromptBytes); !st) return tl::unexpected(st.error());
    if (prompt.size() > kMaxPromptBytes) return make_error(ErrorCode::kInvalidInput, "prompt: too long");
    size_t words = split_words(prompt).size();
    for (const ChatMessage& m : messages)
      words += split_words(m.content).size();
    return static_cast<uint32_t>(words);
  }

  Status submit(GenerateRequest request, GenerateCallbacks callbacks) override {
    if (std::find(options_.models.begin(), options_.models.end(), request.model) == options_.models.end()) {
      return make_error(ErrorCode::kInvalidInput,
                        "model: '" + request.model + "' is not served by this engine");
    }
    if (callbacks.on_prompt) callbacks.on_prompt(static_cast<uint32_t>(split_words(request.prompt).size()));
    {
      std::lock_guard lock(mu_);
      if (stopping_) return make_error(ErrorCode::kIo, "engine: stopped");
      if (queue_.size() >= options_.queue_capacity) {
        return make_error(
            ErrorCode::kLimitExceeded,
            "engine: queue full (" + std::to_string(options_.queue_capacity) + " runs waiting)");
      }
      auto run = std::make_shared<Run>();
      run->request = std::move(request);
      run->callbacks = std::move(callbacks);
      queue_.push_back(std::move(run));
    }
    wake_.notify_one();
    return {};
  }

  // A queued run is finished here, on the caller's thread, rather than waiting for a worker to free up:
  // a caller canceling because every slot is stuck must not wait for those slots.
  void cancel(const std::string& id) override {
    std::vector<std::shared_ptr<Run>> dropped;
    {
      std::lock_guard lock(mu_);
      for (auto& run : running_) {
        if (run->request.id == id) run->canceled = true;
      }
      auto keep = std::stable_partition(queue_.begin(), queue_.end(),
                                        [&](const std::shared_ptr<Run>& r) { return r->request.id != id; });
      dropped.assign(std::make_move_iterator(keep), std::make_move_iterator(queue_.end()));
      queue_.erase(keep, queue_.end());
    }
    canceled_.notify_all();
    for (auto& run : dropped)
      finish_canceled(*run);
  }

  void stop() override {
    std::deque<std::shared_ptr<Run>> dropped;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (auto& run : running_)
        run->canceled = true;
      dropped.swap(queue_);
    }
    wake_.notify_all();
    canceled_.notify_all();
    for (auto& run : dropped)
      finish_canceled(*run);
    std::lock_guard join_lock(join_mu_);
    for (auto& t : workers_) {
      if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    }
  }

 private:
  static void finish_canceled(Run& run) {
    if (run.callbacks.on_done) run.callbacks.on_done(tl::unexpected(canceled_error()));
  }

  void work() {
    for (;;) {
      std::shared_ptr<Run> run;
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;  // stop() has taken the queue
        run = std::move(queue_.front());
        queue_.pop_front();
        running_.push_back(run);
      }
      generate(*run);
      std::lock_guard lock(mu_);
      running_.erase(std::find(running_.begin(), running_.end(), run));
    }
  }

  // Waits out the token delay; false when the run was canceled first.
  bool wait_for_next_token(const Run& run) {
    std::unique_lock lock(mu_);
    if (options_.token_delay.count() > 0) {
      canceled_.wait_for(lock, options_.token_delay, [&] { return run.canceled; });
    }
    return !run.canceled;
  }

  // A resumed run continues after resume_text: the output is a function of the request, so the pieces it
  // covers are passed over (without the token delay) and counted as input, and a piece it ends inside is
  // delivered from that point on.
  void generate(Run& run) {
    const auto started = std::chrono::steady_clock::now();
    const auto words = split_words(run.request.prompt);
    GenerateUsage usage;
    usage.input_tokens = static_cast<uint32_t>(words.size());
    const uint32_t total = words.empty() ? 0 : run.request.max_tokens;
    size_t skip = run.request.resume_text.size();
    std::string piece;
    for (uint32_t i = 0; i < total; ++i) {
      piece.assign(words[i % words.size()]);
      piece.push_back(' ');
      if (skip >= piece.size()) {
        skip -= piece.size();
        ++usage.input_tokens;
        continue;
      }
      if (!wait_for_next_token(run)) {
        finish_canceled(run);
        return;
      }
      piece.erase(0, skip);
      skip = 0;
      usage.output_tokens += 1;
      if (run.callbacks.on_piece) run.callbacks.on_piece(piece, usage.output_tokens);
    }
    usage.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (run.callbacks.on_done) run.callbacks.on_done(usage);
  }

  const FakeEngineOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;               // a run was queued, or stop()
  std::condition_variable canceled_;           // a running run was canceled
  std::deque<std::shared_ptr<Run>> queue_;     // guarded by mu_
  std::vector<std::shared_ptr<Run>> running_;  // guarded by mu_
  bool stopping_ = false;                      // guarded by mu_
  std::mutex join_mu_;                         // serializes stop()'s joins
  std::vector<std::thread> workers_;
};

}  // namespace

std::string fake_echo_output(std::string_view prompt, uint32_t max_tokens) {
  const auto words = split_words(prompt);
  std::string out;
  if (words.empty()) return out;
  for (uint32_t i = 0; i < max_tokens; ++i) {
    out.append(words[i % words.size()]);
    out.push_back(' ');
  }
  return out;
}

std::unique_ptr<Engine> make_fake_engine(const FakeEngineOptions& options) {
  return std::make_unique<FakeEngine>(options);
}

}  // namespace infernet::engine
