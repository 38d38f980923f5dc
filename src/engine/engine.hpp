// The engine interface: what a provider runs jobs on. Engines: fake/ (deterministic, for tests and demos
// only), llama/ (GGUF through llama.cpp) and torch/ (TorchScript) in their own issues.
//
// An engine owns its threads and is fed through a queue (llama.cpp server's lesson): submit() returns at
// once, the work runs on the engine's threads, and each callback carries the id the caller gave. Cancellation
// is a message: cancel(id) makes the run stop at its next token and finish with canceled_error().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/generation.hpp"
#include "core/result.hpp"

namespace infernet::engine {

struct ModelDescription {
  std::string name;
  std::string sha256;  // hex of the model file; "" for built-in models
  std::string family;
  uint64_t parameters = 0;
  std::string quantization;
  uint32_t context_length = 0;
  std::vector<std::string> capabilities;  // "text-generation", "chat", ...
  // What a run with deterministic = true pins, so that another provider can reproduce it bit for bit:
  // e.g. "llama.cpp de3ff81 cpu; threads=2 ubatch=512 flash_attn=off; one sequence per decode". "" if
  // nothing.
  std::string determinism;
};

// The most prompt text (or message contents together) an engine accepts: the job protocol's own limit and
// then some, for engines driven directly.
constexpr size_t kMaxPromptBytes = 16 << 20;

struct GenerateRequest {
  std::string id;  // the caller's id, echoed in callbacks and used by cancel()
  std::string model;
  std::string prompt;                 // a raw prompt, or
  std::vector<ChatMessage> messages;  // a conversation, rendered with the model's chat template
  // Output an earlier attempt already delivered (failover): the run continues after it, as if it had
  // generated it itself, and delivers only what follows. Its tokens count toward max_tokens but not toward
  // GenerateUsage::output_tokens (they are input of this run). How exactly each engine continues:
  // docs/market-failover.md.
  std::string resume_text;
  uint32_t max_tokens = 256;  // the whole output, resume_text included
  SamplingParams sampling;
  // Run so that the same model, parameters and seed on the same build give the same text: the engine
  // pins what its ModelDescription::determinism says, at some cost in throughput.
  bool deterministic = false;
};

// Why a generation ended: end of text or a stop sequence; max_tokens reached; the caller's cost cap (a
// provider ends a run with kBudget when the next token would make the job cost more than its
// max_cost_msat; engines themselves never do).
enum class FinishReason { kStop, kLength, kBudget };
// "stop", "length" (the names OpenAI's API uses), "budget".
const char* to_string(FinishReason reason);

struct GenerateUsage {
  uint32_t input_tokens = 0;   // the prompt, after the chat template, and the resumed text
  uint32_t output_tokens = 0;  // tokens this run generated, including any that completed a stop sequence
  double seconds = 0;
  double first_token_seconds = 0;  // submit to first piece; 0 when there was none
  FinishReason finish_reason = FinishReason::kLength;
};

struct GenerateCallbacks {
  // Each new piece of output, in order, whole UTF-8 characters only; text that could be the start of a stop
  // sequence is held back until it is known not to be. tokens_so_far counts this run's tokens only (not the
  // resumed ones). Runs on an engine thread; must not block for long.
  std::function<void(std::string_view piece, uint32_t tokens_so_far)> on_piece;
  // Exactly once: the usage, or the error (canceled_error() after cancel() or stop(), kInvalidInput for an
  // unknown model, bad parameters or a prompt longer than the context, kIo/kInternal for an engine failure).
  // Usually on an engine thread; for a run canceled while still queued, on the thread calling cancel() or
  // stop().
  std::function<void(Result<GenerateUsage>)> on_done;
  // Optional (last, so positional initializers of the two above still work): the prompt's token count (after
  // the chat template), as soon as the engine knows it and before any piece, so a caller can price the input
  // before output arrives (a provider's budget cap). Engines that learn it only at the end (the proxy) do not
  // call it.
  std::function<void(uint32_t input_tokens)> on_prompt;
};

// core's ErrorCode has no "canceled" code, so a canceled run finishes with this error (kIo with the exact
// message "canceled"); callers tell it from a failure with is_canceled(), never by the code alone.
inline Error canceled_error() {
  return Error{ErrorCode::kIo, "canceled"};
}
inline bool is_canceled(const Error& e) {
  return e.code == ErrorCode::kIo && e.message == "canceled";
}

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;  // "fake", "llama", ...
  virtual std::vector<ModelDescription> models() const = 0;
  // Queues a run. Errors (returned at once, callbacks not called): kInvalidInput for an unknown model,
  // kLimitExceeded when the engine's queue is full, kIo after stop().
  virtual Status submit(GenerateRequest request, GenerateCallbacks callbacks) = 0;
  // The input's token count as a run of it would report GenerateUsage::input_tokens (no resume_text): the
  // prompt, or the messages after the model's chat template, through the model's tokenizer. Cheap (no
  // decoding) and callable from any thread. Errors: kInvalidInput for an unknown model, bad input or an
  // input longer than the context; kUnsupported where the engine learns the count only by running (the
  // default).
  virtual Result<uint32_t> count_tokens(const std::string& model, const std::string& prompt,
                                        const std::vector<ChatMessage>& messages) const {
    (void)model;
    (void)prompt;
    (void)messages;
    return make_error(ErrorCode::kUnsupported,
                      "the " + name() + " engine counts a prompt's tokens only by running it");
  }
  // Stops a queued or running request; unknown ids are ignored. The caller must not hold a lock that its
  // on_done takes: a queued run's on_done runs inside this call.
  virtual void cancel(const std::string& id) = 0;
  // Cancels everything, finishes the callbacks and joins the threads. Idempotent. Same locking rule as
  // cancel().
  virtual void stop() = 0;
};

}  // namespace infernet::engine
