// The local REST and WebSocket API of a consumer node (docs/api.md): /api/v1/jobs and friends over a
// consumer::ConsumerNode, served by a net::Server on api.listen (loopback by default).
//
// Every request passes the access checks of access.hpp first (credentials, scope, rate limit, browser
// origins): the API spends the user's budget and shows their prompts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/access.hpp"
#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "net/server.hpp"
#include "notify/webhooks.hpp"

namespace infernet::api {

struct ApiOptions {
  size_t max_body_bytes = 1 << 20;  // POST bodies over this get 413 (a 256 KiB prompt fits with escaping)
  // Unix milliseconds now; empty means the system clock. Tells a repeated client_request_id (200) from a new
  // job (201) by the job's created_at.
  std::function<int64_t()> now_ms;
  // Who may call the API (config api.auth, api.nostr_keys, api.cors_origins, api.rate_limit, ...).
  AccessOptions access;
  // Where the blob store keeps its files (docs/api.md "Blobs"); empty: no blob store.
  std::string blob_dir;
  // The node's webhooks (/api/v1/webhooks), or null when it has none (those routes answer 404). Must outlive
  // the handlers.
  notify::Webhooks* webhooks = nullptr;
};

// The handlers for a net::Server (or any server taking net::ServerHandlers): HTTP routes and job streams.
// Every route sits behind guard_handlers (access.hpp, options.access). They own one small worker thread that
// sends the final message of each job stream (it reads the job from the database, which is kept off the
// consumer's threads); it stops when the last copy of the handlers is destroyed, i.e. with the Server.
// `consumer` must outlive the server.
net::ServerHandlers make_handlers(consumer::ConsumerNode& consumer, ApiOptions options = {});

// "127.0.0.1:7448", "[::1]:7448", "0.0.0.0:0" -> host and port for net::ServerOptions. Errors: kInvalidInput
// naming "api.listen" (no port, a port over 65535, an empty or bracket-less IPv6 host).
Result<net::ServerOptions> parse_listen_address(std::string_view listen);

struct ApiServerOptions {
  std::string listen = "127.0.0.1:7448";  // config api.listen
  size_t threads = 2;
  ApiOptions api;
};

// The API on its own net::Server. start() and stop() are called by the owner (not from the server's own
// threads); port() and url() may be called from any thread once start() has returned.
class ApiServer {
 public:
  // `consumer` must outlive the ApiServer (or its stop()).
  ApiServer(consumer::ConsumerNode& consumer, ApiServerOptions options);
  ~ApiServer();  // stop()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds options.listen and serves. Errors: kInvalidInput (bad listen address), kIo (address in use, ...),
  // kAlreadyExists when running.
  Status start();
  // Closes every connection (streams end without their final message) and joins the threads. Idempotent.
  void stop();
  // The bound port while running, else 0.
  uint16_t port() const;
  // "http://<host>:<port>" of the running server, for printing and for api.url; "" when stopped.
  std::string url() const;

 private:
  consumer::ConsumerNode& consumer_;
  ApiServerOptions options_;
  std::string host_;
  std::unique_ptr<net::Server> server_;
};

}  // namespace infernet::api
