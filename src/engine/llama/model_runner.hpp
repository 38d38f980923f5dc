// One loaded model and the thread that runs its jobs with continuous batching (see llama_engine.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <llama.h>

#include "engine/engine.hpp"
#include "engine/llama/model_catalog.hpp"
#include "engine/llama/output_filter.hpp"

namespace infernet::engine::llama {

struct RunnerOptions {
  uint32_t slots = 2;
  uint32_t context = 2048;  // per sequence
  int threads = 1;
  uint32_t batch = 512;
  bool flash_attn = false;
  int gpu_layers = -1;
  // FOR TESTS ONLY: a pause after each sampled token, so that a test can act in the middle of a stream
  // (the failover fault test). Changes timing only, never the text.
  std::chrono::milliseconds test_token_delay{0};
};

// Jobs waiting for a slot across every model of one engine, bounded by the engine's queue capacity.
struct QueueBudget {
  std::atomic<size_t> waiting{0};
  size_t capacity = 64;
};

struct Run {
  GenerateRequest request;
  GenerateCallbacks callbacks;
  std::vector<llama_token> prompt;  // the rendered prompt followed by the resumed text's tokens
  uint32_t resumed = 0;             // how many of those are the resumed text's
  std::chrono::steady_clock::time_point submitted;
  std::atomic<bool> canceled{false};
};

class ModelRunner {
 public:
  // Loads the model and creates its context. kInvalidInput when llama.cpp cannot load the file.
  static Result<std::unique_ptr<ModelRunner>> load(const GgufInfo& info, const RunnerOptions& options,
                                                   QueueBudget* budget);
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  const ModelDescription& description() const { return description_; }
  // Renders and tokenizes the request, checks it fits the context, and queues it. Errors as Engine::submit.
  Status submit(GenerateRequest request, GenerateCallbacks callbacks);
  // Engine::count_tokens for this model: render_prompt's tokens, from any thread (the vocabulary and the
  // template are read-only).
  Result<uint32_t> count_tokens(const std::string& prompt, const std::vector<ChatMessage>& messages) const;
  // True if the run was found here (queued or running).
  bool cancel(const std::string& id);
  void stop();

 private:
  struct Slot {
    std::shared_ptr<Run> run;  // null when free
    llama_seq_id seq = 0;
    size_t prompt_done = 0;  // prompt tokens decoded so far
    llama_pos pos = 0;       // position of the next token to decode
    llama_token next = -1;   // the sampled token still to be decoded
    llama_sampler* sampler = nullptr;
    std::optional<OutputFilter> filter;
    uint32_t generated = 0;
    int32_t logits_at = -1;  // batch index whose logits this slot samples after the current decode
    double first_token_seconds = 0;
  };

  ModelRunner(const GgufInfo& info, const RunnerOptions& options, QueueBudget* budget);
  Result<std::vector<llama_token>> render_prompt(const GenerateRequest& request) const;
  // `text` as tokens; `first` adds the model's start-of-text token, `special` reads special-token markers.
  Result<std::vector<llama_token>> tokenize(std::string_view text, bool first, bool special) const;
  void loop();
  void admit(Slot& slot, std::shared_ptr<Run> run);
  // Adds what `slot` decodes next to batch_, at most `room` tokens; returns how many it added.
  int32_t add_to_batch(Slot& slot, int32_t room);
  Status decode_batch();
  void sample(Slot& slot);
  void finish(Slot& slot, Result<GenerateUsage> outcome);
  std::string piece(llama_token token) const;

  GgufInfo info_;
  RunnerOptions options_;
  QueueBudget* budget_;
  ModelDescription description_;
  llama_model* model_ = nullptr;
  llama_context* ctx_ = nullptr;
  const llama_vocab* vocab_ = nullptr;
  llama_batch batch_{};
  std::vector<Slot> slots_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Run>> queue_;                         // guarded by mu_
  std::unordered_map<std::string, std::shared_ptr<Run>> running_;  // guarded by mu_
  bool stopping_ = false;                                          // guarded by mu_
  std::thread thread_;
};

}  // namespace infernet::engine::llama
