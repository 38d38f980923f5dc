#include "api/query.hpp"

#include <charconv>

#include "api/api_error.hpp"

namespace infernet::api {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A client's parameter name goes into an error message only when it is a plain name.
std::string quoted_name(std::string_view name) {
  std::string message = std::string(name) + ": x";
  return field_of(message).empty() ? "query" : std::string(name);
}

}  // namespace

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= text.size()) return make_error(ErrorCode::kInvalidInput, "bad %-escape");
      int high = hex_value(text[i + 1]);
      int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return make_error(ErrorCode::kInvalidInput, "bad %-escape");
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<QueryParams> QueryParams::parse(std::string_view query,
                                       std::initializer_list<std::string_view> allowed) {
  QueryParams params;
  if (query.size() > kMaxQueryBytes) {
    return make_error(ErrorCode::kLimitExceeded,
                      "query: longer than " + std::to_string(kMaxQueryBytes) + " bytes");
  }
  size_t count = 0;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    if (++count > kMaxQueryParameters) {
      return make_error(ErrorCode::kInvalidInput,
                        "query: more than " + std::to_string(kMaxQueryParameters) + " parameters");
    }
    size_t eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    if (!name) return make_error(ErrorCode::kInvalidInput, "query: " + name.error().message + " in a name");
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value)
      return make_error(ErrorCode::kInvalidInput, quoted_name(*name) + ": " + value.error().message);
    bool known = false;
    for (auto a : allowed)
      known = known || a == *name;
    if (!known) return make_error(ErrorCode::kInvalidInput, quoted_name(*name) + ": unknown query parameter");
    if (params.values_.count(*name) != 0) {
      return make_error(ErrorCode::kInvalidInput, *name + ": given more than once");
    }
    if (!value->empty()) params.values_.emplace(std::move(*name), std::move(*value));
  }
  return params;
}

const std::string* QueryParams::get(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

Result<std::optional<int64_t>> QueryParams::get_int(std::string_view name, int64_t min, int64_t max) const {
  const std::string* text = get(name);
  if (text == nullptr) return std::optional<int64_t>();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return make_error(ErrorCode::kInvalidInput, std::string(name) + ": must be an integer from " +
                                                    std::to_string(min) + " to " + std::to_string(max));
  }
  return std::optional<int64_t>(value);
}

Result<std::optional<uint64_t>> QueryParams::get_uint(std::string_view name) const {
  const std::string* text = get(name);
  if (text == nullptr) return std::optional<uint64_t>();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) {
    return make_error(ErrorCode::kInvalidInput, std::string(name) + ": must be a non-negative integer");
  }
  return std::optional<uint64_t>(value);
}

}  // namespace infernet::api
