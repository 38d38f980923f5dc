// Reserved capacity over the API (docs/api.md, "Reservations"):
//   POST /api/v1/reservations {provider, slots, hours}   ask a provider to hold slots (201, state
//   "requested") GET  /api/v1/reservations                            every reservation, newest first, as
//   answered
//
// Thread-safety: as routes.hpp.
#pragma once

#include <optional>
#include <string_view>

#include <boost/json/object.hpp>

#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "net/http.hpp"

namespace infernet::api {

// Answers a request whose path after /api/v1/ is `rest` when it is "reservations"; nullopt otherwise.
std::optional<net::HttpResponse> route_reservation_request(consumer::ConsumerNode& consumer,
                                                           size_t max_body_bytes,
                                                           const net::HttpRequest& request,
                                                           std::string_view rest);

// {provider, slots, hours}: provider (npub or hex) required, slots and hours default 1. Errors:
// kInvalidInput naming the field ("body: must be a JSON object", "slots: must be an integer", "x: unknown
// field"); the ranges are checked by ConsumerNode::reserve.
Result<consumer::ReservationSpec> parse_reservation_spec(std::string_view body);

boost::json::object reservation_to_json(const consumer::ReservationRecord& r);

}  // namespace infernet::api
