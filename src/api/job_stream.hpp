// The WebSocket stream of one job: /api/v1/jobs/{id}/stream?after=N (docs/api.md, "Job streams").
//
// The server sends one text message per job event after `after`, stored ones first and then live ones, in
// order and without gaps (ConsumerNode::watch orders them):
//   {"type":"progress"|"state"|"result"|"error"|"note","seq":n,"job_id":"...","at":ms,"data":{...}}
// and, once the job is final, one closing message carrying the final job, then a normal close (1000):
//   {"type":"complete"|"error"|"canceled"|"expired","final":true,"seq":n,"job_id":"...","data":{job}}
// where seq is that of the last event sent before it. A client that saw event n re-attaches with after=n.
// Messages from the client are ignored. An unknown job closes with 4404, a bad id or `after` with 4400,
// a consumer failure with 1011; the close reason says why.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "consumer/consumer.hpp"
#include "net/server.hpp"

namespace infernet::api {

// Close codes (the 4000-4999 range is the application's): the HTTP status the same problem would get, plus
// 4000.
constexpr uint16_t kCloseInvalidInput = 4400;
constexpr uint16_t kCloseNotFound = 4404;

// Runs `work` later on a thread of the API's own (not a watch callback's thread, which must not block).
using Defer = std::function<void(std::function<void()>)>;

// Starts streaming job `job_id` on `connection` and returns the connection's handler. Runs on the
// connection's strand; the returned handler unwatches the job when the connection ends. `consumer` must
// outlive the connection (stop the server before destroying the consumer).
std::unique_ptr<net::WebSocketHandler> open_job_stream(consumer::ConsumerNode& consumer, Defer defer,
                                                       std::shared_ptr<net::WebSocketConnection> connection,
                                                       const std::string& job_id, uint64_t after);

// A handler for a stream request refused after the upgrade: sends the close frame with `code` and `reason`.
std::unique_ptr<net::WebSocketHandler> refuse_stream(net::WebSocketConnection& connection, uint16_t code,
                                                     std::string reason);

}  // namespace infernet::api
