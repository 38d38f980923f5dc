#include "api/notification_api.hpp"

#include <algorithm>
#include <charconv>
#include <mutex>
#include <utility>

#include <boost/json.hpp>

#include "api/api_error.hpp"
#include "api/query.hpp"
#include "notify/outbox.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

constexpr int64_t kMaxPage = 1000;
constexpr size_t kDefaultPage = 100;

net::HttpResponse ok(int status, const json::value& body) {
  return net::json_response(status, json::serialize(body));
}

// "a,b" -> {"a", "b"}, each a known notification type. Errors name `field`.
Result<std::vector<std::string>> parse_types(std::string_view text, const std::string& field) {
  std::vector<std::string> out;
  const auto& known = consumer::notification_types();
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string t(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      return make_error(ErrorCode::kInvalidInput, field + ": unknown type \"" + t.substr(0, 64) + "\"");
    }
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(std::move(t));
  }
  return out;
}

bool wanted(const std::vector<std::string>& types, const std::string& type) {
  return types.empty() || std::find(types.begin(), types.end(), type) != types.end();
}

json::value notification_value(const consumer::Notification& n) {
  return json::parse(notify::notification_json(n));
}

net::HttpResponse list_notifications(consumer::ConsumerNode& consumer, const net::HttpRequest& request) {
  auto params = QueryParams::parse(request.query(), {"after", "limit", "types"});
  if (!params) return error_response(params.error());
  auto after = params->get_uint("after");
  if (!after) return error_response(after.error());
  auto limit = params->get_int("limit", 1, kMaxPage);
  if (!limit) return error_response(limit.error());
  std::vector<std::string> types;
  if (const std::string* t = params->get("types")) {
    auto parsed = parse_types(*t, "types");
    if (!parsed) return error_response(parsed.error());
    types = std::move(*parsed);
  }
  const size_t want = *limit ? static_cast<size_t>(**limit) : kDefaultPage;
  // With a type filter, pages of the log are read until `want` match or the log ends; next_after is where a
  // client continues either way.
  uint64_t position = after->value_or(0);
  json::array out;
  for (int round = 0; round < 10 && out.size() < want; ++round) {
    auto page = consumer.notifications(position, want);
    if (!page) return error_response(page.error());
    for (const auto& n : *page) {
      if (out.size() >= want) break;
      position = n.id;
      if (wanted(types, n.type)) out.push_back(notification_value(n));
    }
    if (page->size() < want) break;
  }
  auto last = consumer.last_notification_id();
  if (!last) return error_response(last.error());
  return ok(200,
            json::object{{"notifications", std::move(out)}, {"next_after", position}, {"last_id", *last}});
}

json::object webhook_json(const notify::Webhook& w, bool with_secret) {
  json::array types;
  for (const auto& t : w.types)
    types.emplace_back(t);
  json::object o{{"id", w.id},
                 {"url", w.url},
                 {"types", std::move(types)},
                 {"created_at", w.created_at},
                 {"enabled", w.disabled_reason.empty()},
                 {"disabled_reason", w.disabled_reason},
                 {"delivered_through", w.cursor},
                 {"delivered", w.delivered},
                 {"failures", w.failures},
                 {"failing_since", w.failing_since},
                 {"next_attempt_at", w.next_attempt_at},
                 {"last_error", w.last_error}};
  if (with_secret) o["secret"] = w.secret;
  return o;
}

Result<notify::WebhookSpec> parse_webhook_spec(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return make_error(ErrorCode::kInvalidInput, "body: must be a JSON object");
  notify::WebhookSpec spec;
  for (const auto& [key, value] : v.get_object()) {
    if (key == "url") {
      if (!value.is_string()) return make_error(ErrorCode::kInvalidInput, "url: must be a string");
      spec.url = std::string(value.get_string());
    } else if (key == "secret") {
      if (!value.is_string()) return make_error(ErrorCode::kInvalidInput, "secret: must be a string");
      spec.secret = std::string(value.get_string());
    } else if (key == "types") {
      if (!value.is_array())
        return make_error(ErrorCode::kInvalidInput, "types: must be an array of strings");
      for (const auto& t : value.get_array()) {
        if (!t.is_string()) return make_error(ErrorCode::kInvalidInput, "types: must be an array of strings");
        spec.types.emplace_back(t.get_string());
      }
    } else {
      return make_error(ErrorCode::kInvalidInput, std::string(key.substr(0, 64)) + ": unknown field");
    }
  }
  return spec;
}

Result<uint64_t> parse_webhook_id(std::string_view text) {
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || text.size() > 20 || ec != std::errc() || end != text.data() + text.size() || id == 0) {
    return make_error(ErrorCode::kInvalidInput, "id: must be a webhook id (a positive integer)");
  }
  return id;
}

net::HttpResponse route_webhooks(notify::Webhooks& webhooks, size_t max_body_bytes,
                                 const net::HttpRequest& request, std::string_view rest) {
  const std::string& method = request.method;
  if (rest == "webhooks") {
    if (method == "GET") {
      auto list = webhooks.list();
      if (!list) return error_response(list.error());
      json::array out;
      for (const auto& w : *list)
        out.push_back(webhook_json(w, false));
      return ok(200, json::object{{"webhooks", std::move(out)}});
    }
    if (method != "POST") return method_not_allowed(request, "GET, POST");
    if (request.body.size() > max_body_bytes) {
      return error_response(ApiError{413, "limit_exceeded",
                                     "request body: larger than " + std::to_string(max_body_bytes) + " bytes",
                                     ""});
    }
    auto spec = parse_webhook_spec(request.body);
    if (!spec) return error_response(spec.error());
    auto added = webhooks.add(*spec);
    if (!added) return error_response(added.error());
    auto response = ok(201, webhook_json(*added, true));
    response.headers.emplace_back("Location", "/api/v1/webhooks/" + std::to_string(added->id));
    return response;
  }
  std::string_view tail = rest.substr(std::string_view("webhooks/").size());
  const size_t slash = tail.find('/');
  std::string_view action = slash == std::string_view::npos ? std::string_view() : tail.substr(slash + 1);
  if (action != "" && action != "enable") return endpoint_not_found(request);
  auto id = parse_webhook_id(tail.substr(0, slash));
  if (!id) return error_response(id.error());
  if (action == "enable") {
    if (method != "POST") return method_not_allowed(request, "POST");
    auto w = webhooks.enable(*id);
    if (!w) return error_response(w.error());
    return ok(200, webhook_json(*w, false));
  }
  if (method != "DELETE") return method_not_allowed(request, "DELETE");
  if (auto st = webhooks.remove(*id); !st) return error_response(st.error());
  return ok(200, json::object{{"deleted", *id}});
}

// One connection following all notifications.
class NotificationStream : public std::enable_shared_from_this<NotificationStream> {
 public:
  NotificationStream(consumer::ConsumerNode& consumer, std::shared_ptr<net::WebSocketConnection> connection,
                     std::vector<std::string> types)
      : consumer_(consumer), connection_(std::move(connection)), types_(std::move(types)) {}

  void start(uint64_t after) {
    auto self = shared_from_this();
    auto handle =
        consumer_.watch_all(after, [self](const consumer::Notification& n) { self->on_notification(n); });
    if (!handle) {
      connection_->close(1011, handle.error().message);
      return;
    }
    std::lock_guard lock(mu_);
    if (ended_) {
      // The connection ended during the replay: let go at once (outside the watcher's callback).
      consumer_.unwatch_all(*handle);
      return;
    }
    watch_ = *handle;
  }

  void stop() {
    uint64_t handle = 0;
    {
      std::lock_guard lock(mu_);
      ended_ = true;
      std::swap(handle, watch_);
    }
    if (handle != 0) consumer_.unwatch_all(handle);
  }

 private:
  void on_notification(const consumer::Notification& n) {
    if (!wanted(types_, n.type)) return;
    std::lock_guard lock(mu_);
    if (ended_) return;
    connection_->send(notify::notification_json(n));
  }

  consumer::ConsumerNode& consumer_;
  std::shared_ptr<net::WebSocketConnection> connection_;
  const std::vector<std::string> types_;
  std::mutex mu_;
  bool ended_ = false;  // guarded by mu_
  uint64_t watch_ = 0;  // guarded by mu_
};

class NotificationStreamHandler : public net::WebSocketHandler {
 public:
  explicit NotificationStreamHandler(std::shared_ptr<NotificationStream> stream)
      : stream_(std::move(stream)) {}
  void on_text(std::string_view) override {}
  void on_close() override { stream_->stop(); }

 private:
  std::shared_ptr<NotificationStream> stream_;
};

}  // namespace

std::optional<net::HttpResponse> route_notification_request(consumer::ConsumerNode& consumer,
                                                            notify::Webhooks* webhooks, size_t max_body_bytes,
                                                            const net::HttpRequest& request,
                                                            std::string_view rest) {
  if (rest == "notifications") {
    if (request.method != "GET") return method_not_allowed(request, "GET");
    return list_notifications(consumer, request);
  }
  if (rest == "notifications/stream") {
    auto response = error_response(
        ApiError{426, "upgrade_required",
                 "this is a WebSocket endpoint: connect with ws://<host>" + request.target, ""});
    response.headers.emplace_back("Upgrade", "websocket");
    return response;
  }
  if (rest == "webhooks" || rest.starts_with("webhooks/")) {
    if (webhooks == nullptr) return endpoint_not_found(request);
    return route_webhooks(*webhooks, max_body_bytes, request, rest);
  }
  return std::nullopt;
}

std::optional<Result<NotificationStreamRequest>> match_notification_stream(const net::HttpRequest& request) {
  if (request.path() != "/api/v1/notifications/stream") return std::nullopt;
  using R = Result<NotificationStreamRequest>;
  auto params = QueryParams::parse(request.query(), {"after", "types"});
  if (!params) return R(tl::unexpected(params.error()));
  auto after = params->get_uint("after");
  if (!after) return R(tl::unexpected(after.error()));
  NotificationStreamRequest out;
  out.after = after->value_or(0);
  if (const std::string* t = params->get("types")) {
    auto types = parse_types(*t, "types");
    if (!types) return R(tl::unexpected(types.error()));
    out.types = std::move(*types);
  }
  return R(std::move(out));
}

std::unique_ptr<net::WebSocketHandler> open_notification_stream(
    consumer::ConsumerNode& consumer, std::shared_ptr<net::WebSocketConnection> connection,
    const NotificationStreamRequest& request) {
  auto stream = std::make_shared<NotificationStream>(consumer, std::move(connection), request.types);
  stream->start(request.after);
  return std::make_unique<NotificationStreamHandler>(std::move(stream));
}

}  // namespace infernet::api
