// Counting a consumer's input with the engine's tokenizer before it submits the job (docs/market.md,
// "Estimates"): the answer is what the job's usage.input_tokens would be here, so an estimate prices the
// input as this provider will.
#include <spdlog/spdlog.h>

#include "provider/internal/node_core.hpp"

namespace infernet::provider::internal {
namespace {

// Tokenizing is cheap next to decoding, but it runs on the dispatcher thread: a flood of counts must not
// hold up job requests behind it.
constexpr uint32_t kMaxTokenCountsPerSecond = 50;
// A request older than this is not answered: ephemeral events arrive at once or never, and the consumer
// that asked has stopped waiting long before.
constexpr int64_t kTokenCountMaxAgeSeconds = 60;

protocol::TokenCountAnswer refused(const protocol::TokenCountRequest& request, std::string code,
                                   std::string why) {
  protocol::TokenCountAnswer a;
  a.request_id = request.request_id;
  a.error_code = std::move(code);
  a.error = std::move(why);
  if (a.error.size() > protocol::kMaxTextBytes) a.error.resize(protocol::kMaxTextBytes);
  return a;
}

}  // namespace

void NodeCore::handle_token_count(const protocol::Opened& opened,
                                  const protocol::TokenCountRequest& request) {
  const int64_t now = clock_.now_unix();
  if (opened.created_at < now - kTokenCountMaxAgeSeconds) {
    spdlog::debug("provider: token count {} is {} s old; not answered", request.request_id,
                  now - opened.created_at);
    return;
  }
  if (token_count_second_ != now) {
    token_count_second_ = now;
    token_counts_this_second_ = 0;
  }
  protocol::TokenCountAnswer answer;
  if (++token_counts_this_second_ > kMaxTokenCountsPerSecond) {
    answer = refused(
        request, "busy",
        "more than " + std::to_string(kMaxTokenCountsPerSecond) + " token counts a second; ask again later");
  } else if (served_.count(request.model) == 0) {
    answer = refused(request, "unknown-model", "model: this provider does not serve '" + request.model + "'");
  } else {
    auto counted = engine_.count_tokens(request.model, request.prompt, request.messages);
    if (counted) {
      answer.request_id = request.request_id;
      answer.ok = true;
      answer.input_tokens = *counted;
      std::lock_guard lock(mu_);
      ++counts_.token_counts;
    } else if (counted.error().code == ErrorCode::kUnsupported) {
      answer = refused(request, "unsupported", counted.error().message);
    } else {
      answer = refused(request, "invalid-input", counted.error().message);
    }
  }
  spdlog::debug("provider: token count {} of {} for {}: {}", request.request_id, request.model,
                opened.sender.hex(),
                answer.ok ? std::to_string(answer.input_tokens) + " tokens" : answer.error_code);
  auto sealed = protocol::seal(answer, keys_, opened.sender, now);
  if (!sealed) {
    spdlog::error("provider: sealing a token count answer: {}", sealed.error().to_string());
    return;
  }
  publish(*sealed, "token count");
}

}  // namespace infernet::provider::internal
