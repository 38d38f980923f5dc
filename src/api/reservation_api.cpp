#include "api/reservation_api.hpp"

#include <limits>
#include <string>

#include <boost/json.hpp>

#include "api/api_error.hpp"
#include "api/job_json.hpp"
#include "nostr/keys.hpp"
#include "nostr/nip19.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

net::HttpResponse ok(int status, const json::value& body) {
  return net::json_response(status, json::serialize(body));
}

Status read_count(const json::value& value, std::string_view name, uint32_t& out) {
  const auto n =
      value.is_int64() ? std::optional<int64_t>(value.get_int64())
      : value.is_uint64()
          ? std::optional<int64_t>(static_cast<int64_t>(std::min<uint64_t>(value.get_uint64(), INT64_MAX)))
          : std::nullopt;
  if (!n || *n < 0 || *n > std::numeric_limits<uint32_t>::max()) {
    return make_error(ErrorCode::kInvalidInput, std::string(name) + ": must be a positive integer");
  }
  out = static_cast<uint32_t>(*n);
  return {};
}

std::string npub_or_hex(const std::string& hex) {
  auto key = nostr::PublicKey::from_hex(hex);
  if (!key) return hex;
  return nostr::nip19::encode_npub(key->bytes());
}

}  // namespace

Result<consumer::ReservationSpec> parse_reservation_spec(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return make_error(ErrorCode::kInvalidInput, "body: must be a JSON object");
  consumer::ReservationSpec spec;
  bool has_provider = false;
  for (const auto& [key, value] : v.get_object()) {
    if (key == "provider") {
      if (!value.is_string()) return make_error(ErrorCode::kInvalidInput, "provider: must be a string");
      spec.provider = std::string(value.get_string());
      has_provider = true;
    } else if (key == "slots") {
      if (auto st = read_count(value, "slots", spec.slots); !st) return tl::unexpected(st.error());
    } else if (key == "hours") {
      if (auto st = read_count(value, "hours", spec.hours); !st) return tl::unexpected(st.error());
    } else {
      return make_error(ErrorCode::kInvalidInput, std::string(key.substr(0, 64)) + ": unknown field");
    }
  }
  if (!has_provider) return make_error(ErrorCode::kInvalidInput, "provider: required");
  return spec;
}

json::object reservation_to_json(const consumer::ReservationRecord& r) {
  json::object o{{"id", json_safe(r.id)},
                 {"provider", json_safe(r.provider)},
                 {"npub", npub_or_hex(r.provider)},
                 {"slots", r.slots},
                 {"hours", r.hours},
                 {"state", json_safe(r.state)},
                 {"created_at", r.created_at},
                 {"updated_at", r.updated_at}};
  if (r.state == "accepted") {
    o["start"] = r.start;
    o["end"] = r.end;
    o["discount_percent"] = r.discount_percent;
  }
  if (!r.reason.empty()) o["reason"] = json_safe(r.reason);
  return o;
}

std::optional<net::HttpResponse> route_reservation_request(consumer::ConsumerNode& consumer,
                                                           size_t max_body_bytes,
                                                           const net::HttpRequest& request,
                                                           std::string_view rest) {
  if (rest != "reservations") return std::nullopt;
  if (request.method == "GET") {
    auto list = consumer.reservations();
    if (!list) return error_response(list.error());
    json::array out;
    for (const auto& r : *list)
      out.push_back(reservation_to_json(r));
    return ok(200, json::object{{"reservations", std::move(out)}});
  }
  if (request.method != "POST") return method_not_allowed(request, "GET, POST");
  if (request.body.size() > max_body_bytes) {
    return error_response(ApiError{
        413, "limit_exceeded", "request body: larger than " + std::to_string(max_body_bytes) + " bytes", ""});
  }
  auto spec = parse_reservation_spec(request.body);
  if (!spec) return error_response(spec.error());
  auto made = consumer.reserve(*spec);
  if (!made) return error_response(made.error());
  return ok(201, reservation_to_json(*made));
}

}  // namespace infernet::api
