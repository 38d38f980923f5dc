// Counting a job's input with the model's own tokenizer, the consumer's side (docs/market.md, "Estimates"):
// the consumer has no tokenizer, so it asks a provider of the model and waits a moment for the answer.
#include <spdlog/spdlog.h>

#include "consumer/internal/node_core.hpp"
#include "core/encoding.hpp"
#include "core/random.hpp"
#include "core/sha256.hpp"

namespace infernet::consumer::internal {
namespace {

// Counts remembered; an estimate asked again (a form re-sent, estimate then submit) costs no round trip.
constexpr size_t kKnownCounts = 256;

// What a count depends on: the model, the tokenizer (the model file's fingerprint, or the provider where
// it announces none) and the input, roles and contents delimited so that no two inputs read alike.
std::string count_key(const JobSpec& spec, const std::string& tokenizer) {
  std::string input = spec.messages.empty() ? "p" + spec.prompt : "m";
  for (const ChatMessage& m : spec.messages) {
    input +=
        std::to_string(m.role.size()) + ":" + m.role + std::to_string(m.content.size()) + ":" + m.content;
  }
  return spec.model + "\n" + tokenizer + "\n" + hex_encode(sha256(input));
}

}  // namespace

Result<uint32_t> NodeCore::count_input(std::unique_lock<std::mutex>& lock, const JobSpec& spec,
                                       uint32_t bound, const std::string& provider) {
  const auto* known = directory_.find(provider);
  auto key = nostr::PublicKey::from_hex(provider);
  if (known == nullptr || !key)
    return make_error(ErrorCode::kNotFound, "provider " + provider + " is unknown");
  std::string tokenizer = provider;
  for (const auto& m : known->announcement.models) {
    if (m.name == spec.model && !m.sha256.empty()) tokenizer = m.sha256;
  }
  const std::string cache_key = count_key(spec, tokenizer);
  if (auto it = known_counts_.find(cache_key); it != known_counts_.end()) return it->second;
  if (options_.token_count_timeout.count() <= 0)
    return make_error(ErrorCode::kUnsupported, "token counts are off (consumer.token_count_timeout_ms=0)");

  protocol::TokenCountRequest request{random_hex_id(), spec.model, spec.prompt, spec.messages};
  auto event = protocol::seal(request, keys_, *key, clock_.now_unix());
  if (!event) return tl::unexpected(event.error());
  pending_counts_[request.request_id].provider = provider;
  publish(*event);
  const auto deadline = SteadyClock::now() + options_.token_count_timeout;
  counted_.wait_until(lock, deadline, [&] {
    auto it = pending_counts_.find(request.request_id);
    return it == pending_counts_.end() || it->second.answer.has_value() || !started_;
  });
  auto it = pending_counts_.find(request.request_id);
  std::optional<protocol::TokenCountAnswer> answer;
  if (it != pending_counts_.end()) {
    answer = std::move(it->second.answer);
    pending_counts_.erase(it);
  }
  if (!answer) {
    return make_error(ErrorCode::kIo, "no token count from " + provider + " within " +
                                          std::to_string(options_.token_count_timeout.count()) + " ms");
  }
  if (!answer->ok) {
    return make_error(ErrorCode::kUnsupported,
                      provider + " did not count: " + answer->error_code + ": " + answer->error);
  }
  // The bound holds for every tokenizer (a token is at least a byte): a count above it is wrong.
  if (answer->input_tokens > bound) {
    return make_error(ErrorCode::kInvalidInput,
                      provider + " counted " + std::to_string(answer->input_tokens) +
                          " tokens, more than the input's bound of " + std::to_string(bound) + "; not used");
  }
  known_counts_[cache_key] = answer->input_tokens;
  known_counts_order_.push_back(cache_key);
  if (known_counts_order_.size() > kKnownCounts) {
    known_counts_.erase(known_counts_order_.front());
    known_counts_order_.pop_front();
  }
  return answer->input_tokens;
}

void NodeCore::handle(const protocol::Opened& o, const protocol::TokenCountAnswer& m,
                      const std::string& /*event_id*/) {
  auto it = pending_counts_.find(m.request_id);
  if (it == pending_counts_.end() || it->second.provider != o.sender.hex() || it->second.answer) {
    spdlog::debug("consumer: token count answer {} from {}: not waited for; ignored", m.request_id,
                  o.sender.hex());
    return;
  }
  it->second.answer = m;
  counted_.notify_all();
}

}  // namespace infernet::consumer::internal
