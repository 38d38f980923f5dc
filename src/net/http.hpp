// Plain HTTP request and response values exchanged between the server (net/server.hpp) and the application,
// and the one place that turns an Error into an HTTP error body.
//
// These are values with no Beast types in them, so that modules above `net` never include Beast. All
// functions are thread-safe.
#pragma once

#include <map>
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

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  // Extra headers (e.g. Access-Control-Allow-Origin). Content-Length, Content-Type, Connection and Server are
  // set by the server and must not be repeated here.
  std::vector<std::pair<std::string, std::string>> headers;
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
