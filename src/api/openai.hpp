// OpenAI-compatible API on the consumer node (docs/openai.md): GET /v1/models, GET /v1/models/{id},
// POST /v1/chat/completions and POST /v1/completions, with and without `stream` (Server-Sent Events).
//
// A completion is a job like any other: submitted to the consumer (so it shows in /api/v1/jobs, is matched,
// paid and failed over the same way), then followed through ConsumerNode::watch. The HTTP answer waits for
// the job without holding a server thread (net::HttpBodyWriter): streamed pieces go out as the job's progress
// events arrive, the complete answer once the job is final. A client that disconnects cancels its job.
//
// Errors use OpenAI's envelope: {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "api/job_stream.hpp"
#include "consumer/consumer.hpp"
#include "net/http.hpp"

namespace infernet::api {

// The answer to a request under /v1/, or nullopt for any other path. `now_seconds` stamps "created".
std::optional<net::HttpResponse> route_openai(consumer::ConsumerNode& consumer, const Defer& defer,
                                              const std::function<int64_t()>& now_seconds,
                                              const net::HttpRequest& request);

}  // namespace infernet::api
