// Plain HTTP request and response values exchanged between the server (net/server.hpp) and the application,
// and the one place that turns an Error into an HTTP error body.
//
// These are values with no Beast types in them, so that modules above `net` never include Beast. All
// functions are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace infernet::net {

struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // path and query as sent, e.g. "/api/v1/jobs?state=running"
  // Header names in lower case. A header sent several times is joined with ", " (RFC 9110 5.3).
  std::map<std::string, std::string> headers;
  std::string body;
  std::string remote_address;  // the peer's IP address without port, e.g. "127.0.0.1" or "::1"

  // The value of header `lower_name`, or nullptr when absent.
  const std::string* header(std::string_view lower_name) const;
  // The target up to the first '?'.
  std::string_view path() const;
  // The target after the first '?', or empty.
  std::string_view query() const;
};

struct HttpResponse;

// The body of a streamed response (HttpResponse::stream), written piece by piece after the handler returned:
// Server-Sent Events, for instance. Thread-safe; every method may be called from any thread. Holding it does
// not keep the connection open.
class HttpBodyWriter {
 public:
  virtual ~HttpBodyWriter() = default;
  // Queues `bytes` of the body and returns true. Never blocks. Returns false, dropping them, once the body
  // has ended (finish(), the peer left, the server stopped), or when the bytes queued and not yet written
  // would exceed ServerOptions::max_outbound_bytes; the connection is then cut off (the peer is not reading).
  virtual bool write(std::string bytes) = 0;
  // Ends the body after the bytes already queued. The connection then serves the next request (keep-alive)
  // or closes. Idempotent.
  virtual void finish() = 0;
  // Instead of a streamed body: sends `response` as an ordinary complete response (its `stream` ignored) and
  // ends. Only before the first write() or finish(), since those send the streamed response's status and
  // headers; returns false (sending nothing) after them or once the body has ended. This is how a handler
  // answers later without holding a server thread, or reports an error that came before any byte.
  virtual bool respond(HttpResponse response) = 0;
  // `callback` runs exactly once when the body has ended for any reason: finished and written, the peer
  // closed the connection, a write failed, or the server stopped. Runs at once (on the calling thread) if
  // that has already happened; otherwise on a server thread, where it must not block. Set it once.
  virtual void on_end(std::function<void()> callback) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  // Extra headers (e.g. Access-Control-Allow-Origin). Content-Length, Content-Type, Connection and Server are
  // set by the server and must not be repeated here.
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, `body` is ignored and the body is streamed: the server calls `stream` once, on the
  // connection's strand, with the writer; with the writer's first write() or finish() it sends this status
  // and these headers (Transfer-Encoding: chunked to HTTP/1.1 clients; HTTP/1.0 clients get the bytes until
  // the connection closes). A HEAD request gets the headers only and `stream` is not called.
  std::function<void(std::shared_ptr<HttpBodyWriter>)> stream;
};

// A response with content type application/json and `json` as the body (which the caller has serialized).
HttpResponse json_response(int status, std::string json);

// The HTTP status that fits an error code: kInvalidInput 400, kUnauthorized 401, kPermissionDenied 403,
// kNotFound 404, kAlreadyExists 409, kLimitExceeded 413, kUnsupported 501, kIo 503, anything else 500.
int http_status_for(ErrorCode code);

// {"error":{"code":"<code>","message":"<message>"}} with content type application/json. `code` is a stable
// machine-readable name (error_code_name() for Errors); the message is escaped as JSON, so any bytes are
// safe. The shape matches OpenAI's error envelope (error.message), so their clients show our messages.
HttpResponse error_response(int status, std::string_view code, std::string_view message);

// error_response(http_status_for(error.code), error_code_name(error.code), error.message).
HttpResponse error_response(const Error& error);

}  // namespace infernet::net
