#include "core/generation.hpp"

#include <cmath>

#include "core/encoding.hpp"

namespace infernet {
namespace {

Status invalid(std::string message) {
  return make_error(ErrorCode::kInvalidInput, std::move(message));
}

bool finite_in(double v, double lo, double hi) {
  return std::isfinite(v) && v >= lo && v <= hi;
}

}  // namespace

Status check_sampling(const SamplingParams& p) {
  if (!finite_in(p.temperature, 0, 2)) return invalid("temperature: must be from 0 to 2");
  if (p.top_k > kMaxTopK) return invalid("top_k: must be from 0 to " + std::to_string(kMaxTopK));
  if (!finite_in(p.top_p, 0, 1) || p.top_p == 0)
    return invalid("top_p: must be greater than 0 and at most 1");
  if (!finite_in(p.min_p, 0, 1) || p.min_p == 1) return invalid("min_p: must be at least 0 and less than 1");
  if (!finite_in(p.repeat_penalty, 0, 4) || p.repeat_penalty == 0)
    return invalid("repeat_penalty: must be greater than 0 and at most 4");
  if (p.repeat_last_n > kMaxRepeatLastN)
    return invalid("repeat_last_n: must be from 0 to " + std::to_string(kMaxRepeatLastN));
  if (p.stop.size() > kMaxStopSequences)
    return invalid("stop: at most " + std::to_string(kMaxStopSequences) + " sequences");
  for (size_t i = 0; i < p.stop.size(); ++i) {
    const std::string field = "stop[" + std::to_string(i) + "]";
    if (p.stop[i].empty() || p.stop[i].size() > kMaxStopSequenceBytes)
      return invalid(field + ": must be 1 to " + std::to_string(kMaxStopSequenceBytes) + " bytes");
    if (!is_valid_utf8(p.stop[i])) return invalid(field + ": not valid UTF-8");
  }
  return {};
}

Status check_messages(const std::vector<ChatMessage>& messages, size_t max_bytes) {
  if (messages.size() > kMaxChatMessages)
    return invalid("messages: at most " + std::to_string(kMaxChatMessages));
  size_t total = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string field = "messages[" + std::to_string(i) + "]";
    const ChatMessage& m = messages[i];
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      return invalid(field + ".role: must be system, user or assistant");
    if (!is_valid_utf8(m.content)) return invalid(field + ".content: not valid UTF-8");
    total += m.content.size();
    if (total > max_bytes)
      return invalid("messages: contents exceed " + std::to_string(max_bytes) + " bytes");
  }
  return {};
}

Status check_generation(const std::string& prompt, const std::vector<ChatMessage>& messages,
                        const SamplingParams& sampling, size_t max_bytes) {
  if (prompt.empty() == messages.empty()) return invalid("prompt: give either a prompt or messages");
  if (prompt.size() > max_bytes) return invalid("prompt: at most " + std::to_string(max_bytes) + " bytes");
  if (!is_valid_utf8(prompt)) return invalid("prompt: not valid UTF-8");
  if (auto st = check_messages(messages, max_bytes); !st) return st;
  return check_sampling(sampling);
}

}  // namespace infernet
