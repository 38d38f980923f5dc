// Notifications and webhooks over the API (docs/api.md, "Notifications" and "Webhooks"):
//   GET    /api/v1/notifications?after=ID&limit=N&types=a,b   a page of stored notifications
//   WS     /api/v1/notifications/stream?after=ID&types=a,b    stored ones after ID, then live ones
//   POST   /api/v1/webhooks {url, types?, secret?}            register (the secret is shown only here)
//   GET    /api/v1/webhooks                                   list, with each outbox's state
//   DELETE /api/v1/webhooks/{id}                              remove
//   POST   /api/v1/webhooks/{id}/enable                       enable a disabled one again
//
// Thread-safety: as routes.hpp; the stream as job_stream.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "net/http.hpp"
#include "net/server.hpp"
#include "notify/webhooks.hpp"

namespace infernet::api {

// Answers a request whose path after /api/v1/ is `rest`, when it is "notifications..." or "webhooks...";
// nullopt otherwise. `webhooks` may be null (a node without them): the webhook routes then answer 404.
std::optional<net::HttpResponse> route_notification_request(consumer::ConsumerNode& consumer,
                                                            notify::Webhooks* webhooks, size_t max_body_bytes,
                                                            const net::HttpRequest& request,
                                                            std::string_view rest);

// The notification stream a WebSocket upgrade asks for.
struct NotificationStreamRequest {
  uint64_t after = 0;
  std::vector<std::string> types;  // empty: all
};

// nullopt when the path is not /api/v1/notifications/stream; otherwise the request, or kInvalidInput naming
// "after" or "types".
std::optional<Result<NotificationStreamRequest>> match_notification_stream(const net::HttpRequest& request);

// Starts the stream: one text message per notification (notify::notification_json), stored ones after
// `after` first, then live ones, in id order, none twice; it never ends by itself. A client re-attaches with
// the id of the last message it saw. A reader too slow to keep up is cut off (net::WebSocketConnection::send)
// and re-attaches the same way. A consumer failure closes with 1011.
std::unique_ptr<net::WebSocketHandler> open_notification_stream(
    consumer::ConsumerNode& consumer, std::shared_ptr<net::WebSocketConnection> connection,
    const NotificationStreamRequest& request);

}  // namespace infernet::api
