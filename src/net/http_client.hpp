// A small synchronous HTTP/1.1 client (Boost.Beast underneath, none of it in this header), for command-line
// tools talking to a local node's REST API, and for engines that forward work to a local inference server
// and read its answer as a stream (request_streaming()).
//
// Each request opens its own connection, sends one request with "Connection: close" and reads the whole
// response, all within one deadline (HttpClientOptions::timeout). Any HTTP status is a success at this layer:
// the API's 4xx and 5xx answers carry JSON error bodies that the caller reads. Only plain http:// is
// supported; the API listens on loopback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "net/http.hpp"
#include "net/websocket_client.hpp"

namespace infernet::net {

// Parses "http://host[:port][/path][?query]" (port 80 by default) into a ParsedUrl with tls = false, and
// "https://..." with tls = true and port 443. Errors (kInvalidInput, naming the problem): another scheme, and
// everything parse_ws_url refuses (empty host, user info, bad port, fragment, spaces).
Result<ParsedUrl> parse_http_url(std::string_view url);

// The ws:// URL of the same host and port as an http:// URL ("http://h:1/a" -> "ws://h:1/a"; https -> wss).
// Errors: as parse_http_url.
Result<std::string> websocket_url_for(std::string_view http_url);

struct HttpClientOptions {
  // Deadline for one whole request: resolve, connect, send and receive.
  std::chrono::milliseconds timeout{10000};
  size_t max_response_bytes = 16 << 20;  // larger bodies fail with kLimitExceeded
  std::string user_agent = "infernet";
  // Sent with every request, e.g. {"Authorization", "Bearer ..."}. create() refuses a name that is not an
  // HTTP token and a value with control characters, so nothing can inject a header line.
  std::vector<std::pair<std::string, std::string>> headers;
};

// The status line and headers of a streamed response.
struct HttpResponseHead {
  int status = 0;
  std::string content_type;                                  // "" when absent
  std::vector<std::pair<std::string, std::string>> headers;  // the others, names in lower case
};

// What request_streaming() reports while the response arrives. Both run on the calling thread.
struct HttpStreamHandlers {
  // Once, when the status line and headers have arrived. Returning false stops there: the connection is
  // closed and the body not read. Missing: the body is read whatever the status.
  std::function<bool(const HttpResponseHead&)> on_head;
  // Each part of the body as soon as it arrives, in order, with any chunked transfer coding removed. Parts
  // have no relation to the sender's chunks (one may hold several, or part of one). Returning false stops
  // reading and closes the connection, which tells the server to stop sending.
  std::function<bool(std::string_view part)> on_body;
};

// Thread-safe: requests share nothing (each has its own connection and event loop), so one client may be
// used from several threads at once.
class HttpClient {
 public:
  // `base_url` is "http://host[:port][/prefix]"; request targets are appended to the prefix. Errors:
  // kInvalidInput (bad URL, a bad name or value in options.headers), kUnsupported (https).
  static Result<HttpClient> create(std::string_view base_url, HttpClientOptions options = {});

  // Sends `method` to base prefix + `target` (which starts with '/'), with `body` and its `content_type`
  // when the body is not empty, and returns the response (status, content type, body, other headers with
  // lower-case names). Errors, kIo unless noted, with the stage first: "resolve <host>: ...", "connect
  // <host>:<port>: ..." (nothing listening, unreachable), "send ...", "receive ...", "timed out after N ms
  // (<stage>)"; kLimitExceeded for a response over max_response_bytes; kInvalidInput for a target or method
  // with spaces or control characters.
  Result<HttpResponse> request(std::string_view method, std::string_view target, std::string_view body = {},
                               std::string_view content_type = "application/json") const;
  Result<HttpResponse> get(std::string_view target) const { return request("GET", target); }
  Result<HttpResponse> post(std::string_view target, std::string_view json_body) const {
    return request("POST", target, json_body);
  }
  Result<HttpResponse> del(std::string_view target) const { return request("DELETE", target); }

  // Like request(), but hands the body to `handlers` as it arrives instead of collecting it, for responses
  // that take long to finish (server-sent events). Returns the head once the body has ended or a handler
  // has returned false. Timing: HttpClientOptions::timeout bounds everything up to the end of the headers
  // and then each wait for more of the body (a server silent for that long fails the request), never the
  // whole response. The body together may not exceed max_response_bytes (kLimitExceeded). When `abort`
  // becomes true (set from any thread) the connection is closed within about 10 ms and the call returns
  // kIo "aborted". Other errors as request().
  Result<HttpResponseHead> request_streaming(std::string_view method, std::string_view target,
                                             std::string_view body, std::string_view content_type,
                                             const HttpStreamHandlers& handlers,
                                             const std::atomic<bool>* abort = nullptr) const;

  const ParsedUrl& url() const { return url_; }

 private:
  HttpClient(ParsedUrl url, HttpClientOptions options) : url_(std::move(url)), options_(std::move(options)) {}

  ParsedUrl url_;
  HttpClientOptions options_;
};

}  // namespace infernet::net
