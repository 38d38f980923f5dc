#include "api/routes.hpp"

#include <charconv>
#include <chrono>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "api/api_error.hpp"
#include "api/blob_routes.hpp"
#include "api/job_json.hpp"
#include "api/job_request.hpp"
#include "api/market.hpp"
#include "api/market_routes.hpp"
#include "api/notification_api.hpp"
#include "api/openapi.hpp"
#include "api/query.hpp"
#include "api/reservation_api.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using consumer::ConsumerNode;

constexpr std::string_view kPrefix = "/api/v1/";
constexpr int64_t kMaxListLimit = 1000;
constexpr size_t kDefaultListLimit = 100;
constexpr size_t kMaxModelNameBytes = 128;

net::HttpResponse ok(int status, const json::object& body) {
  return net::json_response(status, json::serialize(body));
}

net::HttpResponse invalid(const Error& error) {
  return error_response(error);
}

Status check_job_id(std::string_view id) {
  bool plain = !id.empty() && id.size() <= kMaxJobIdBytes;
  for (char c : id) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_');
  }
  if (!plain) {
    return make_error(ErrorCode::kInvalidInput,
                      "id: must be 1 to " + std::to_string(kMaxJobIdBytes) + " letters, digits, '-' or '_'");
  }
  return {};
}

int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

net::HttpResponse create_job(ConsumerNode& consumer, const RouteOptions& options,
                             const net::HttpRequest& request) {
  if (request.body.size() > options.max_body_bytes) {
    return error_response(
        ApiError{413, "limit_exceeded",
                 "request body: larger than " + std::to_string(options.max_body_bytes) + " bytes", ""});
  }
  auto parsed = parse_job_request(request.body);
  if (!parsed) return invalid(parsed.error());
  if (auto st = attach_files(*parsed, options.blobs.get()); !st) return error_response(st.error());
  const consumer::JobSpec* spec = &parsed->spec;
  int64_t started = options.now_ms ? options.now_ms() : system_now_ms();
  auto job = consumer.submit(*spec);
  if (!job) return error_response(job.error());
  bool existed = !spec->client_request_id.empty() && job->client_request_id == spec->client_request_id &&
                 job->created_at + kExistingJobAgeMs < started;
  json::object body = job_to_json(*job);
  if (!parsed->warnings.empty()) {
    json::array warnings;
    for (const auto& w : parsed->warnings)
      warnings.emplace_back(json_safe(w));
    body["warnings"] = std::move(warnings);
  }
  auto response = ok(existed ? 200 : 201, body);
  response.headers.emplace_back("Location", std::string(kPrefix) + "jobs/" + job->id);
  return response;
}

// A page's cursor: "<created_at>.<id>" of its last job. Clients treat it as opaque; the node parses it
// back strictly, so a cursor it did not write is a 400 rather than a silently wrong page.
std::string job_cursor_text(const consumer::JobRecord& job) {
  return std::to_string(job.created_at) + "." + job.id;
}

Result<consumer::JobCursor> parse_job_cursor(std::string_view text) {
  auto bad = [] {
    return make_error(ErrorCode::kInvalidInput,
                      "cursor: not a cursor this node gave (use next_cursor as is)");
  };
  size_t dot = text.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 19) return bad();
  consumer::JobCursor cursor;
  auto [end, ec] = std::from_chars(text.data(), text.data() + dot, cursor.created_at);
  if (ec != std::errc() || end != text.data() + dot || cursor.created_at < 0) return bad();
  cursor.id = std::string(text.substr(dot + 1));
  if (!check_job_id(cursor.id)) return bad();
  return cursor;
}

net::HttpResponse list_jobs(ConsumerNode& consumer, const net::HttpRequest& request) {
  auto params =
      QueryParams::parse(request.query(), {"state", "model", "since", "until", "limit", "cursor", "order"});
  if (!params) return invalid(params.error());
  consumer::JobQuery query;
  if (const std::string* state = params->get("state")) {
    auto parsed = consumer::parse_job_state(*state);  // the error names "state"
    if (!parsed) return invalid(parsed.error());
    query.state = *parsed;
  }
  if (const std::string* model = params->get("model")) {
    if (model->size() > kMaxModelNameBytes) {
      return invalid(Error{ErrorCode::kInvalidInput,
                           "model: longer than " + std::to_string(kMaxModelNameBytes) + " bytes"});
    }
    query.model = *model;
  }
  auto since = params->get_int("since", 0, INT64_MAX);
  if (!since) return invalid(since.error());
  query.since = *since;
  auto until = params->get_int("until", 0, INT64_MAX);
  if (!until) return invalid(until.error());
  query.until = *until;
  auto limit = params->get_int("limit", 1, kMaxListLimit);
  if (!limit) return invalid(limit.error());
  const size_t page_size = *limit ? static_cast<size_t>(**limit) : kDefaultListLimit;
  if (const std::string* order = params->get("order")) {
    if (*order == "desc") {
      query.order = consumer::ListOrder::kNewestFirst;
    } else if (*order == "asc") {
      query.order = consumer::ListOrder::kOldestFirst;
    } else {
      return invalid(Error{ErrorCode::kInvalidInput, "order: must be asc or desc"});
    }
  }
  if (const std::string* cursor = params->get("cursor")) {
    auto after = parse_job_cursor(*cursor);
    if (!after) return invalid(after.error());
    query.after = std::move(*after);
  }
  // One row past the page tells whether another page exists.
  query.limit = page_size + 1;

  auto jobs = consumer.list(query);
  if (!jobs) return error_response(jobs.error());
  const bool more = jobs->size() > page_size;
  if (more) jobs->resize(page_size);
  json::array out;
  for (const auto& job : *jobs)
    out.push_back(job_to_json(job));
  json::object body{{"jobs", std::move(out)}};
  body["next_cursor"] = more ? json::value(job_cursor_text(jobs->back())) : json::value(nullptr);
  return ok(200, body);
}

net::HttpResponse job_events(ConsumerNode& consumer, const std::string& id, const net::HttpRequest& request) {
  auto params = QueryParams::parse(request.query(), {"after"});
  if (!params) return invalid(params.error());
  auto after = params->get_uint("after");
  if (!after) return invalid(after.error());
  auto events = consumer.events(id, after->value_or(0));
  if (!events) return error_response(events.error());
  json::array out;
  for (const auto& event : *events)
    out.push_back(event_to_json(event));
  return ok(200, json::object{{"events", std::move(out)}});
}

net::HttpResponse job_result(ConsumerNode& consumer, const std::string& id) {
  auto job = consumer.get(id);
  if (!job) return error_response(job.error());
  if (!consumer::is_final(job->state)) {
    return error_response(
        ApiError{409, "not_final",
                 "job " + id + " is " + consumer::to_string(job->state) +
                     "; its result is ready once it is completed, failed, canceled or expired",
                 ""});
  }
  return ok(200, result_to_json(*job));
}

// /api/v1/jobs/{id}[/action]
net::HttpResponse route_job(ConsumerNode& consumer, const net::HttpRequest& request, std::string_view rest) {
  size_t slash = rest.find('/');
  std::string id(rest.substr(0, slash));
  std::string_view action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (action != "" && action != "cancel" && action != "events" && action != "result" && action != "stream" &&
      action != "why") {
    return endpoint_not_found(request);
  }
  if (auto st = check_job_id(id); !st) return invalid(st.error());
  const std::string& method = request.method;

  if (action.empty()) {
    if (method != "GET") return method_not_allowed(request, "GET");
    auto job = consumer.get(id);
    if (!job) return error_response(job.error());
    return ok(200, job_to_json(*job));
  }
  if (action == "cancel") {
    if (method != "POST") return method_not_allowed(request, "POST");
    auto job = consumer.cancel(id);
    if (!job) return error_response(job.error());
    return ok(200, job_to_json(*job));
  }
  if (action == "events") {
    if (method != "GET") return method_not_allowed(request, "GET");
    return job_events(consumer, id, request);
  }
  if (action == "result") {
    if (method != "GET") return method_not_allowed(request, "GET");
    return job_result(consumer, id);
  }
  if (action == "why") {
    if (method != "GET") return method_not_allowed(request, "GET");
    return why_job(consumer, id);
  }
  // "stream": only WebSocket upgrades reach the stream; a plain request is told how to connect.
  auto response =
      error_response(ApiError{426, "upgrade_required",
                              "this is a WebSocket endpoint: connect with ws://<host>" + request.target, ""});
  response.headers.emplace_back("Upgrade", "websocket");
  return response;
}

}  // namespace

bool is_cross_origin(const net::HttpRequest& request) {
  const std::string* origin = request.header("origin");
  if (origin == nullptr) return false;
  const std::string* host = request.header("host");
  return host == nullptr || *origin != "http://" + *host;
}

std::optional<Result<StreamRequest>> match_stream(const net::HttpRequest& request) {
  std::string_view path = request.path();
  constexpr std::string_view kJobs = "/api/v1/jobs/";
  constexpr std::string_view kStream = "/stream";
  if (path.size() <= kJobs.size() + kStream.size() || path.substr(0, kJobs.size()) != kJobs ||
      path.substr(path.size() - kStream.size()) != kStream) {
    return std::nullopt;
  }
  std::string_view id = path.substr(kJobs.size(), path.size() - kJobs.size() - kStream.size());
  if (id.find('/') != std::string_view::npos) return std::nullopt;
  if (auto st = check_job_id(id); !st) return Result<StreamRequest>(tl::unexpected(st.error()));
  auto params = QueryParams::parse(request.query(), {"after"});
  if (!params) return Result<StreamRequest>(tl::unexpected(params.error()));
  auto after = params->get_uint("after");
  if (!after) return Result<StreamRequest>(tl::unexpected(after.error()));
  return Result<StreamRequest>(StreamRequest{std::string(id), after->value_or(0)});
}

net::HttpResponse route_request(ConsumerNode& consumer, const RouteOptions& options,
                                const net::HttpRequest& request) {
  std::string_view path = request.path();
  if (options.blobs) {
    if (auto answer = route_blob_request(*options.blobs, request)) return std::move(*answer);
  }
  if (path.substr(0, kPrefix.size()) != kPrefix) return endpoint_not_found(request);
  std::string_view rest = path.substr(kPrefix.size());
  const std::string& method = request.method;

  if (rest == "jobs") {
    if (method == "POST") return create_job(consumer, options, request);
    if (method == "GET") return list_jobs(consumer, request);
    return method_not_allowed(request, "GET, POST");
  }
  if (rest.substr(0, 5) == "jobs/") return route_job(consumer, request, rest.substr(5));
  if (rest == "estimate") {
    if (method != "POST") return method_not_allowed(request, "POST");
    return estimate_job(consumer, options, request);
  }
  if (auto response =
          route_notification_request(consumer, options.webhooks, options.max_body_bytes, request, rest)) {
    return std::move(*response);
  }
  if (auto response = route_reservation_request(consumer, options.max_body_bytes, request, rest)) {
    return std::move(*response);
  }
  if (auto response = route_market_request(consumer, request, rest)) return std::move(*response);
  if (rest == "openapi.json") {
    if (method != "GET") return method_not_allowed(request, "GET");
    if (auto params = QueryParams::parse(request.query(), {}); !params) return invalid(params.error());
    return net::json_response(200, std::string(openapi_document()));
  }
  if (rest == "budget") {
    // The account budgets (consumer.budget_daily_msat, consumer.budget_monthly_msat; docs/api.md).
    if (method != "GET") return method_not_allowed(request, "GET");
    if (auto params = QueryParams::parse(request.query(), {}); !params) return invalid(params.error());
    json::object out;
    for (const auto& b : consumer.budget()) {
      out[b.period] = json::object{{"limit_msat", b.limit_msat},
                                   {"spent_msat", b.spent_msat},
                                   {"reserved_msat", b.reserved_msat},
                                   {"remaining_msat", b.remaining_msat},
                                   {"resets_at", b.resets_at}};
    }
    return ok(200, out);
  }
  return endpoint_not_found(request);
}

}  // namespace infernet::api
