#include "net/http.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "core/encoding.hpp"

namespace infernet::net {

const std::string* HttpRequest::header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? nullptr : &it->second;
}

std::string_view HttpRequest::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view HttpRequest::query() const {
  std::string_view t = target;
  size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

HttpResponse json_response(int status, std::string json) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = std::move(json);
  return response;
}

int http_status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidInput:
    case ErrorCode::kInvalidSignature:
    case ErrorCode::kInvalidId:
    case ErrorCode::kDecryptFailed:
      return 400;
    case ErrorCode::kUnauthorized:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kLimitExceeded:
      return 413;
    case ErrorCode::kUnsupported:
      return 501;
    case ErrorCode::kIo:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  // boost::json::serialize escapes control characters but copies other bytes as they are, so a message that
  // quotes a client's invalid UTF-8 would make the whole body unparseable: such bytes become '?'.
  auto as_json_string = [](std::string_view text) {
    if (is_valid_utf8(text)) return boost::json::serialize(boost::json::string(text));
    std::string ascii(text);
    for (char& c : ascii) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    }
    return boost::json::serialize(boost::json::string(ascii));
  };
  std::string body = "{\"error\":{\"code\":";
  body += as_json_string(code);
  body += ",\"message\":";
  body += as_json_string(message);
  body += "}}";
  return json_response(status, std::move(body));
}

HttpResponse error_response(const Error& error) {
  return error_response(http_status_for(error.code), error_code_name(error.code), error.message);
}

}  // namespace infernet::net
