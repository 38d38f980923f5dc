// Internal to the provider module: reserved capacity. A consumer reserves slots for a window of whole hours
// at the provider's announced discount (protocol::ReservationTerms); the provider decides, records the
// reservation in its job record (table `reservations`) and, during the window, starts that consumer's jobs
// ahead of everyone else's in as many slots as it reserved, charging them the discount.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "protocol/protocol.hpp"
#include "store/sqlite.hpp"

namespace infernet::provider::internal {

struct Reservation {
  std::string id;        // the consumer's reservation_id
  std::string consumer;  // hex pubkey
  uint32_t slots = 0;
  int64_t start = 0;  // unix seconds
  int64_t end = 0;    // unix seconds, exclusive
  uint32_t discount_percent = 0;
  int64_t created_at = 0;

  bool active_at(int64_t t) const { return start <= t && t < end; }
};

// The answer to `request` from `consumer` at `now`, given the reservations held (not yet ended). Accepted
// when the terms offer reservations, slots <= max_slots, hours <= max_hours, the start is not in the past
// (0: now) nor more than max_hours ahead, and the slots of the held reservations overlapping the window plus
// these stay within max_slots. A request whose id the same consumer already holds is answered with that
// reservation again (a retry), whatever the terms now. Pure: records nothing.
protocol::ReservationAnswer decide_reservation(const protocol::ReservationTerms& terms,
                                               const std::vector<Reservation>& held,
                                               const std::string& consumer,
                                               const protocol::ReservationRequest& request, int64_t now);

// ---- In the job record's database ----

// Writes an accepted reservation (on the writer's connection). Errors: kIo, including a constraint
// violation when that consumer already holds the id.
Status insert_reservation(store::Database& db, const Reservation& r);
// Reservations that have not ended by `now`, oldest first. Errors: kIo.
Result<std::vector<Reservation>> read_reservations(store::Database& db, int64_t now);

}  // namespace infernet::provider::internal
