// The REST routes of /api/v1 (docs/api.md): request -> ConsumerNode call -> response.
//
// Thread-safe: the routes hold no state of their own; the ConsumerNode is thread-safe. Each call runs on the
// server's connection strand and makes at most two ConsumerNode calls (database reads or one submit).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/blob_store.hpp"
#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "net/http.hpp"
#include "notify/webhooks.hpp"

namespace infernet::api {

// Largest job id accepted in a path: the protocol's limit on ids.
constexpr size_t kMaxJobIdBytes = 128;

// A repeated client_request_id answers 200 instead of 201 when the job it names was created more than this
// long before the request (the consumer's times may be whole seconds, so a younger job may be the new one).
constexpr int64_t kExistingJobAgeMs = 1000;

struct RouteOptions {
  size_t max_body_bytes = 1 << 20;  // POST bodies over this get 413
  // Unix milliseconds now, for telling a new job from an existing one (see kExistingJobAgeMs).
  std::function<int64_t()> now_ms;
  // The node's blobs (PUT /upload, GET /<sha256>, input.files); null: no blob routes, and a job naming files
  // is refused.
  std::shared_ptr<BlobStore> blobs;
  notify::Webhooks* webhooks = nullptr;  // /api/v1/webhooks; null: 404
};

// Answers one HTTP request under /api/v1, or a blob request (blob_routes.hpp). Unknown paths get 404, a wrong
// method 405 with an Allow header, the stream path without a WebSocket upgrade 426; errors are JSON
// (api_error.hpp).
net::HttpResponse route_request(consumer::ConsumerNode& consumer, const RouteOptions& options,
                                const net::HttpRequest& request);

// The job a WebSocket upgrade asks to follow: /api/v1/jobs/{id}/stream?after=N.
struct StreamRequest {
  std::string job_id;
  uint64_t after = 0;
};

// nullopt when the path is not a job stream; otherwise the request, or kInvalidInput naming "id" or "after".
std::optional<Result<StreamRequest>> match_stream(const net::HttpRequest& request);

// True when a browser sent the request from another origin: an Origin header that is not http://<Host>.
// Such requests are refused, so a web page cannot spend the user's budget or read their jobs through the
// local API.
bool is_cross_origin(const net::HttpRequest& request);

}  // namespace infernet::api
