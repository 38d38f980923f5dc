#include "relay/message.hpp"

#include <boost/json.hpp>

#include "core/encoding.hpp"
#include "nostr/event_json.hpp"

namespace infernet::relay {
namespace json = boost::json;
namespace {

MessageError refuse(std::string command, std::string text, ErrorCode code = ErrorCode::kInvalidInput) {
  return MessageError{Error{code, std::move(text)}, std::move(command), std::nullopt, std::nullopt};
}

// The id of an event that failed validation, when it is at least a well-formed id, so the client can be told
// which of its events was refused.
std::optional<std::string> readable_event_id(const json::value& v) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) return std::nullopt;
  const json::value* id = obj->if_contains("id");
  if (id == nullptr || !id->is_string()) return std::nullopt;
  std::array<uint8_t, 32> bytes{};
  std::string_view s(id->get_string().data(), id->get_string().size());
  if (!hex_decode_fixed(s, bytes)) return std::nullopt;
  return std::string(s);
}

tl::expected<std::string, MessageError> read_subscription_id(const json::array& arr,
                                                             const std::string& command,
                                                             const MessageLimits& limits) {
  if (arr.size() < 2 || !arr[1].is_string()) {
    return tl::unexpected(refuse(command, command + ": the subscription id must be a string"));
  }
  const json::string& s = arr[1].get_string();
  if (s.empty() || s.size() > limits.max_subscription_id_length) {
    return tl::unexpected(refuse(command, command + ": the subscription id must be 1 to " +
                                              std::to_string(limits.max_subscription_id_length) +
                                              " characters"));
  }
  return std::string(s.data(), s.size());
}

tl::expected<std::vector<nostr::Filter>, MessageError> read_filters(const json::array& arr,
                                                                    const std::string& command,
                                                                    const std::string& sub,
                                                                    const MessageLimits& limits) {
  size_t count = arr.size() - 2;
  if (count > limits.max_filters) {
    MessageError e = refuse(
        command,
        "too many filters: " + std::to_string(count) + ", the limit is " + std::to_string(limits.max_filters),
        ErrorCode::kLimitExceeded);
    e.subscription_id = sub;
    return tl::unexpected(std::move(e));
  }
  std::vector<nostr::Filter> filters;
  filters.reserve(count);
  for (size_t i = 2; i < arr.size(); ++i) {
    auto f = nostr::filter_from_value(arr[i], limits.filter);
    if (!f) {
      MessageError e =
          refuse(command, "filter " + std::to_string(i - 2) + ": " + f.error().message, f.error().code);
      e.subscription_id = sub;
      return tl::unexpected(std::move(e));
    }
    filters.push_back(std::move(*f));
  }
  return filters;
}

}  // namespace

tl::expected<ClientMessage, MessageError> parse_client_message(std::string_view text,
                                                               const MessageLimits& limits) {
  if (text.size() > limits.max_message_bytes) {
    return tl::unexpected(refuse("",
                                 "message is " + std::to_string(text.size()) + " bytes; the limit is " +
                                     std::to_string(limits.max_message_bytes),
                                 ErrorCode::kLimitExceeded));
  }
  unsigned char buffer[8192];
  json::monotonic_resource mr(buffer, sizeof(buffer));
  std::error_code ec;
  json::value v = json::parse(text, ec, &mr);
  if (ec) return tl::unexpected(refuse("", "could not parse message: invalid JSON: " + ec.message()));
  const json::array* arr = v.if_array();
  if (arr == nullptr || arr->empty() || !(*arr)[0].is_string()) {
    return tl::unexpected(refuse("", "a message must be a JSON array starting with a command string"));
  }
  std::string command((*arr)[0].get_string().data(), (*arr)[0].get_string().size());

  if (command == "EVENT" || command == "AUTH") {
    if (arr->size() != 2)
      return tl::unexpected(refuse(command, command + ": expected [\"" + command + "\", <event>]"));
    auto event = nostr::event_from_value((*arr)[1], limits.event);
    if (!event) {
      MessageError e = refuse(command, event.error().message, event.error().code);
      e.event_id = readable_event_id((*arr)[1]);
      return tl::unexpected(std::move(e));
    }
    if (command == "EVENT") return EventMessage{std::move(*event)};
    return AuthMessage{std::move(*event)};
  }
  if (command == "REQ" || command == "COUNT") {
    auto sub = read_subscription_id(*arr, command, limits);
    if (!sub) return tl::unexpected(sub.error());
    auto filters = read_filters(*arr, command, *sub, limits);
    if (!filters) return tl::unexpected(filters.error());
    if (command == "REQ") return ReqMessage{std::move(*sub), std::move(*filters)};
    return CountMessage{std::move(*sub), std::move(*filters)};
  }
  if (command == "CLOSE") {
    auto sub = read_subscription_id(*arr, command, limits);
    if (!sub) return tl::unexpected(sub.error());
    return CloseMessage{std::move(*sub)};
  }
  return tl::unexpected(refuse(command, "unknown command '" + command.substr(0, 32) + "'"));
}

std::string event_message(std::string_view subscription_id, std::string_view event_json) {
  std::string out;
  out.reserve(event_json.size() + subscription_id.size() + 16);
  out += "[\"EVENT\",";
  nostr::append_json_string(out, subscription_id);
  out += ',';
  out += event_json;
  out += ']';
  return out;
}

std::string ok_message(std::string_view event_id_hex, bool accepted, std::string_view message) {
  std::string out = "[\"OK\",";
  nostr::append_json_string(out, event_id_hex);
  out += accepted ? ",true," : ",false,";
  nostr::append_json_string(out, message);
  out += ']';
  return out;
}

std::string eose_message(std::string_view subscription_id) {
  std::string out = "[\"EOSE\",";
  nostr::append_json_string(out, subscription_id);
  out += ']';
  return out;
}

std::string closed_message(std::string_view subscription_id, std::string_view message) {
  std::string out = "[\"CLOSED\",";
  nostr::append_json_string(out, subscription_id);
  out += ',';
  nostr::append_json_string(out, message);
  out += ']';
  return out;
}

std::string notice_message(std::string_view message) {
  std::string out = "[\"NOTICE\",";
  nostr::append_json_string(out, message);
  out += ']';
  return out;
}

std::string auth_message(std::string_view challenge) {
  std::string out = "[\"AUTH\",";
  nostr::append_json_string(out, challenge);
  out += ']';
  return out;
}

std::string count_message(std::string_view subscription_id, size_t count) {
  std::string out = "[\"COUNT\",";
  nostr::append_json_string(out, subscription_id);
  out += ",{\"count\":" + std::to_string(count) + "}]";
  return out;
}

namespace {

Result<std::string> string_at(const json::array& arr, size_t i, const char* what) {
  if (arr.size() <= i || !arr[i].is_string()) {
    return make_error(ErrorCode::kInvalidInput, std::string(what) + " must be a string");
  }
  return std::string(arr[i].get_string().data(), arr[i].get_string().size());
}

}  // namespace

Result<RelayMessage> parse_relay_message(std::string_view text, const nostr::EventLimits& limits) {
  if (text.size() > limits.max_json_bytes + 1024) {
    return make_error(ErrorCode::kLimitExceeded, "relay message is too large");
  }
  unsigned char buffer[8192];
  json::monotonic_resource mr(buffer, sizeof(buffer));
  std::error_code ec;
  json::value v = json::parse(text, ec, &mr);
  if (ec) return make_error(ErrorCode::kInvalidInput, "relay message: invalid JSON: " + ec.message());
  const json::array* arr = v.if_array();
  if (arr == nullptr || arr->empty() || !(*arr)[0].is_string()) {
    return make_error(ErrorCode::kInvalidInput, "relay message must be an array starting with a string");
  }
  std::string_view type((*arr)[0].get_string().data(), (*arr)[0].get_string().size());
  if (type == "EVENT") {
    auto sub = string_at(*arr, 1, "EVENT subscription id");
    if (!sub) return tl::unexpected(sub.error());
    if (arr->size() != 3) return make_error(ErrorCode::kInvalidInput, "EVENT must have 3 elements");
    auto event = nostr::event_from_value((*arr)[2], limits);
    if (!event) return tl::unexpected(event.error());
    return RelayEvent{std::move(*sub), std::move(*event)};
  }
  if (type == "OK") {
    auto id = string_at(*arr, 1, "OK event id");
    if (!id) return tl::unexpected(id.error());
    if (arr->size() < 3 || !(*arr)[2].is_bool())
      return make_error(ErrorCode::kInvalidInput, "OK needs a boolean");
    std::string message;
    if (arr->size() > 3) {
      auto m = string_at(*arr, 3, "OK message");
      if (!m) return tl::unexpected(m.error());
      message = std::move(*m);
    }
    return RelayOk{std::move(*id), (*arr)[2].get_bool(), std::move(message)};
  }
  if (type == "EOSE") {
    auto sub = string_at(*arr, 1, "EOSE subscription id");
    if (!sub) return tl::unexpected(sub.error());
    return RelayEose{std::move(*sub)};
  }
  if (type == "CLOSED") {
    auto sub = string_at(*arr, 1, "CLOSED subscription id");
    if (!sub) return tl::unexpected(sub.error());
    std::string message;
    if (arr->size() > 2) {
      auto m = string_at(*arr, 2, "CLOSED message");
      if (!m) return tl::unexpected(m.error());
      message = std::move(*m);
    }
    return RelayClosed{std::move(*sub), std::move(message)};
  }
  if (type == "NOTICE") {
    auto m = string_at(*arr, 1, "NOTICE message");
    if (!m) return tl::unexpected(m.error());
    return RelayNotice{std::move(*m)};
  }
  if (type == "AUTH") {
    auto c = string_at(*arr, 1, "AUTH challenge");
    if (!c) return tl::unexpected(c.error());
    return RelayAuthChallenge{std::move(*c)};
  }
  if (type == "COUNT") {
    auto sub = string_at(*arr, 1, "COUNT subscription id");
    if (!sub) return tl::unexpected(sub.error());
    const json::object* obj = arr->size() > 2 ? (*arr)[2].if_object() : nullptr;
    const json::value* count = obj != nullptr ? obj->if_contains("count") : nullptr;
    if (count == nullptr || !(count->is_uint64() || (count->is_int64() && count->get_int64() >= 0))) {
      return make_error(ErrorCode::kInvalidInput, "COUNT needs {\"count\": n}");
    }
    return RelayCount{std::move(*sub),
                      count->is_uint64() ? count->get_uint64() : static_cast<uint64_t>(count->get_int64())};
  }
  return make_error(ErrorCode::kInvalidInput,
                    "unknown relay message '" + std::string(type.substr(0, 32)) + "'");
}

std::string client_event_message(std::string_view event_json) {
  std::string out = "[\"EVENT\",";
  out += event_json;
  out += ']';
  return out;
}

std::string client_auth_message(std::string_view event_json) {
  std::string out = "[\"AUTH\",";
  out += event_json;
  out += ']';
  return out;
}

std::string client_req_message(std::string_view subscription_id, const std::vector<nostr::Filter>& filters) {
  std::string out = "[\"REQ\",";
  nostr::append_json_string(out, subscription_id);
  for (const auto& f : filters) {
    out += ',';
    out += nostr::to_json(f);
  }
  out += ']';
  return out;
}

std::string client_close_message(std::string_view subscription_id) {
  std::string out = "[\"CLOSE\",";
  nostr::append_json_string(out, subscription_id);
  out += ']';
  return out;
}

}  // namespace infernet::relay
