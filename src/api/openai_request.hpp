// The bodies of OpenAI's POST /v1/chat/completions and POST /v1/completions -> a consumer::JobSpec
// (docs/openai.md). JSON exists only here and in openai.cpp.
//
// What OpenAI's clients send is accepted: a message's content as a string or a list of text parts,
// "developer" as the system role, max_completion_tokens as max_tokens, n = 1, zero presence/frequency
// penalties, and the bookkeeping fields that change nothing (user, metadata, store, ...). What the network
// cannot do (tools, logprobs, several choices, JSON mode) is refused with a 400 naming the field, never
// silently dropped. Infernet's own knobs ride along under the REST API's names (docs/api.md): top_k, min_p,
// repeat_penalty, repeat_last_n, deterministic, max_cost_msat, priority, deadline, provider, open_quotes,
// gpu_type, ...
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "consumer/consumer.hpp"
#include "core/result.hpp"

namespace infernet::api {

enum class CompletionKind { kChat, kText };

// max_tokens when a request gives none (OpenAI's default is "until the context is full"; a bounded default
// keeps an unbounded cost from being the default). The same as the REST API's.
constexpr uint32_t kOpenAiDefaultMaxTokens = 256;

struct CompletionRequest {
  consumer::JobSpec spec;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
};

// Parses and type-checks the body (value ranges are the consumer's, at submit). Errors: kInvalidInput with
// the message starting with the field's name, e.g. "messages[1].content: must be a string or a list of text
// parts", "tools: not supported: ...", "n: must be 1".
Result<CompletionRequest> parse_completion_request(CompletionKind kind, std::string_view body);

}  // namespace infernet::api
