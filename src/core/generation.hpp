// What a text generation asks for besides its prompt: chat messages and sampling parameters. One definition
// and one set of rules, carried unchanged by the API, the consumer, the job protocol and the engines, so a
// parameter a user sets reaches the model as it was given and is refused the same way at every edge.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace infernet {

// Limits on what one request may carry.
constexpr size_t kMaxChatMessages = 256;
constexpr size_t kMaxStopSequences = 4;
constexpr size_t kMaxStopSequenceBytes = 64;
constexpr uint32_t kMaxTopK = 100000;
constexpr uint32_t kMaxRepeatLastN = 8192;

// One turn of a conversation. The engine renders a list of them with the model's own chat template.
struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;

  bool operator==(const ChatMessage&) const = default;
};

// The sampler chain, applied in llama.cpp's order: repeat penalty, top_k, top_p, min_p, temperature, then a
// draw seeded by seed. Each parameter's neutral value switches its stage off.
struct SamplingParams {
  double temperature = 0;         // 0..2; 0 is greedy (always the most likely token) and ignores the rest
  uint32_t top_k = 0;             // keep the k most likely tokens; 0: off
  double top_p = 1;               // keep the smallest set whose probability reaches p, (0, 1]; 1: off
  double min_p = 0;               // drop tokens below min_p times the best one's probability, [0, 1); 0: off
  double repeat_penalty = 1;      // divide the logits of recently seen tokens, (0, 4]; 1: off
  uint32_t repeat_last_n = 64;    // how many recent tokens the penalty looks at, 0..8192
  uint64_t seed = 0;              // the same seed, parameters, model and build give the same text
  std::vector<std::string> stop;  // up to 4 sequences, each 1..64 bytes: output ends before the first one

  bool operator==(const SamplingParams&) const = default;
};

// kInvalidInput naming the field ("top_p: must be greater than 0 and at most 1") or OK.
Status check_sampling(const SamplingParams& params);
// kInvalidInput naming the field ("messages[2].role: ...") or OK. An empty list is valid (a raw prompt).
// max_bytes bounds the contents together.
Status check_messages(const std::vector<ChatMessage>& messages, size_t max_bytes);
// What every engine checks before it queues a run: a prompt or messages (exactly one), each within
// max_bytes and valid UTF-8, and sampling parameters in range. kInvalidInput naming the field, or OK.
Status check_generation(const std::string& prompt, const std::vector<ChatMessage>& messages,
                        const SamplingParams& sampling, size_t max_bytes);

}  // namespace infernet
