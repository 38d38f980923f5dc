#include "provider/internal/reservations.hpp"

#include <algorithm>

namespace infernet::provider::internal {
namespace {

constexpr int64_t kHour = 3600;

protocol::ReservationAnswer refused(const protocol::ReservationRequest& request, std::string code,
                                    std::string reason) {
  protocol::ReservationAnswer a;
  a.reservation_id = request.reservation_id;
  a.accepted = false;
  a.reason_code = std::move(code);
  a.reason = std::move(reason);
  return a;
}

protocol::ReservationAnswer accepted(const Reservation& r) {
  protocol::ReservationAnswer a;
  a.reservation_id = r.id;
  a.accepted = true;
  a.slots = r.slots;
  a.start = r.start;
  a.end = r.end;
  a.discount_percent = r.discount_percent;
  return a;
}

}  // namespace

protocol::ReservationAnswer decide_reservation(const protocol::ReservationTerms& terms,
                                               const std::vector<Reservation>& held,
                                               const std::string& consumer,
                                               const protocol::ReservationRequest& request, int64_t now) {
  for (const auto& r : held) {
    if (r.consumer == consumer && r.id == request.reservation_id) return accepted(r);
  }
  if (terms.max_slots == 0) return refused(request, "no-reservations", "this provider takes no reservations");
  if (request.slots > terms.max_slots) {
    return refused(request, "too-many-slots",
                   "at most " + std::to_string(terms.max_slots) + " slots may be reserved");
  }
  if (request.hours > terms.max_hours) {
    return refused(request, "too-long", "at most " + std::to_string(terms.max_hours) + " hours");
  }
  const int64_t start = request.start == 0 ? now : request.start;
  if (start < now - 60 || start > now + static_cast<int64_t>(terms.max_hours) * kHour) {
    return refused(request, "invalid",
                   "start must be now or within " + std::to_string(terms.max_hours) + " hours from now");
  }
  const int64_t end = start + static_cast<int64_t>(request.hours) * kHour;
  // Counting every reservation that overlaps the window at any point is stricter than the peak overlap,
  // and simple to reason about: a promise made is never broken by a later one.
  uint32_t taken = 0;
  for (const auto& r : held) {
    if (r.start < end && start < r.end) taken += r.slots;
  }
  if (taken + request.slots > terms.max_slots) {
    return refused(request, "full",
                   std::to_string(taken) + " of the " + std::to_string(terms.max_slots) +
                       " reservable slots are reserved during that window");
  }
  Reservation r;
  r.id = request.reservation_id;
  r.consumer = consumer;
  r.slots = request.slots;
  r.start = start;
  r.end = end;
  r.discount_percent = terms.discount_percent;
  r.created_at = now;
  return accepted(r);
}

Status insert_reservation(store::Database& db, const Reservation& r) {
  auto prepared = db.cached(
      "INSERT INTO reservations (consumer, id, slots, start_at, end_at, discount_percent, created_at) "
      "VALUES (?,?,?,?,?,?,?)");
  if (!prepared) return tl::unexpected(prepared.error());
  store::Statement* stmt = *prepared;
  if (auto st = stmt->bind_text(1, r.consumer); !st) return st;
  if (auto st = stmt->bind_text(2, r.id); !st) return st;
  if (auto st = stmt->bind_int64(3, r.slots); !st) return st;
  if (auto st = stmt->bind_int64(4, r.start); !st) return st;
  if (auto st = stmt->bind_int64(5, r.end); !st) return st;
  if (auto st = stmt->bind_int64(6, r.discount_percent); !st) return st;
  if (auto st = stmt->bind_int64(7, r.created_at); !st) return st;
  auto step = stmt->step();
  if (!step) return tl::unexpected(step.error());
  return {};
}

Result<std::vector<Reservation>> read_reservations(store::Database& db, int64_t now) {
  auto stmt = db.prepare(
      "SELECT consumer, id, slots, start_at, end_at, discount_percent, created_at FROM reservations "
      "WHERE end_at > ? ORDER BY created_at, id");
  if (!stmt) return tl::unexpected(stmt.error());
  if (auto st = stmt->bind_int64(1, now); !st) return tl::unexpected(st.error());
  std::vector<Reservation> out;
  for (;;) {
    auto step = stmt->step();
    if (!step) return tl::unexpected(step.error());
    if (*step == store::Statement::Step::kDone) break;
    Reservation r;
    r.consumer = std::string(stmt->column_text(0));
    r.id = std::string(stmt->column_text(1));
    r.slots = static_cast<uint32_t>(stmt->column_int64(2));
    r.start = stmt->column_int64(3);
    r.end = stmt->column_int64(4);
    r.discount_percent = static_cast<uint32_t>(std::min<int64_t>(100, stmt->column_int64(5)));
    r.created_at = stmt->column_int64(6);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace infernet::provider::internal
