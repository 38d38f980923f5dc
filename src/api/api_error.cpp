#include "api/api_error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/encoding.hpp"

namespace infernet::api {
namespace {

constexpr size_t kMaxFieldNameBytes = 64;

bool is_field_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '[' || c == ']';  // "input.files[2]", "messages[0].role"
}

std::string printable(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string ascii(text);
  for (char& c : ascii) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return ascii;
}

}  // namespace

bool is_budget_refusal(const Error& error) {
  return error.code == ErrorCode::kLimitExceeded && error.message.starts_with("budget: ");
}

std::string field_of(std::string_view message) {
  size_t colon = message.find(": ");
  if (colon == 0 || colon == std::string_view::npos || colon > kMaxFieldNameBytes) return "";
  std::string_view name = message.substr(0, colon);
  for (char c : name) {
    if (!is_field_char(c)) return "";
  }
  return std::string(name);
}

ApiError to_api_error(const Error& error) {
  ApiError out;
  out.status = net::http_status_for(error.code);
  out.code = std::string(error_code_name(error.code));
  out.message = error.message;
  if (error.code == ErrorCode::kInvalidInput || error.code == ErrorCode::kLimitExceeded) {
    out.field = field_of(error.message);
  }
  if (is_budget_refusal(error)) {
    // The account budget is spent: a payment matter, not a malformed request (docs/api.md).
    out.status = 402;
    out.code = "budget_exceeded";
  }
  return out;
}

net::HttpResponse error_response(const ApiError& error) {
  boost::json::object detail;
  detail["code"] = error.code;
  detail["message"] = printable(error.message);
  if (!error.field.empty()) detail["field"] = printable(error.field);
  boost::json::object body;
  body["error"] = std::move(detail);
  return net::json_response(error.status, boost::json::serialize(body));
}

net::HttpResponse error_response(const Error& error) {
  return error_response(to_api_error(error));
}

net::HttpResponse endpoint_not_found(const net::HttpRequest& request) {
  return error_response(ApiError{404, "not_found", "no such endpoint: " + std::string(request.path()), ""});
}

net::HttpResponse method_not_allowed(const net::HttpRequest& request, std::string_view allow) {
  auto response = error_response(ApiError{
      405, "method_not_allowed", request.method + " is not allowed here; use " + std::string(allow), ""});
  response.headers.emplace_back("Allow", std::string(allow));
  return response;
}

}  // namespace infernet::api
