// How the REST API reports failure: the one place that turns an Error into an HTTP error body.
//
// Body: {"error":{"code":"invalid_input","message":"max_tokens: must be from 1 to
// 65536","field":"max_tokens"}}. `code` is the stable name of the ErrorCode (or one of the API's own:
// "not_final", "method_not_allowed", "not_found", "upgrade_required", "cross_origin"); `field` is present
// when the problem is one field of the request body or one query parameter. The envelope matches OpenAI's
// error shape (error.message), so their clients show our messages.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"
#include "net/http.hpp"

namespace infernet::api {

struct ApiError {
  int status = 500;
  std::string code;
  std::string message;
  std::string field;  // empty: not about one field
};

// Maps an Error: the status from net::http_status_for, the code from error_code_name, and for kInvalidInput
// and kLimitExceeded the field from a message of the form "field: problem" (the convention every module
// follows). A prefix that is not a plain name (letters, digits, '_', '.', '[', ']', at most 64) is not taken
// as a field.
ApiError to_api_error(const Error& error);

// The field a message names, or "" (see to_api_error).
std::string field_of(std::string_view message);
// True for a refusal of the account budget (kLimitExceeded, "budget: ..."): HTTP 402, code budget_exceeded.
bool is_budget_refusal(const Error& error);

// The JSON error response. Messages that are not valid UTF-8 have their high bytes replaced with '?', so
// the body always parses.
net::HttpResponse error_response(const ApiError& error);
net::HttpResponse error_response(const Error& error);

// 404 "no such endpoint: <path>".
net::HttpResponse endpoint_not_found(const net::HttpRequest& request);
// 405 naming the method, with the Allow header set to `allow`.
net::HttpResponse method_not_allowed(const net::HttpRequest& request, std::string_view allow);

}  // namespace infernet::api
