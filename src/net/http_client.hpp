// A small synchronous HTTP/1.1 client (Boost.Beast underneath, none of it in this header), for command-line
// tools talking to a local node's REST API.
//
// Each request opens its own connection, sends one request with "Connection: close" and reads the whole
// response, all within one deadline (HttpClientOptions::timeout). Any HTTP status is a success at this layer:
// the API's 4xx and 5xx answers carry JSON error bodies that the caller reads. Only plain http:// is
// supported; the API listens on loopback.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

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
};

// Thread-safe: requests share nothing (each has its own connection and event loop), so one client may be
// used from several threads at once.
class HttpClient {
 public:
  // `base_url` is "http://host[:port][/prefix]"; request targets are appended to the prefix. Errors:
  // kInvalidInput (bad URL), kUnsupported (https).
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

  const ParsedUrl& url() const { return url_; }

 private:
  HttpClient(ParsedUrl url, HttpClientOptions options) : url_(std::move(url)), options_(std::move(options)) {}

  ParsedUrl url_;
  HttpClientOptions options_;
};

}  // namespace infernet::net
