// Reserved capacity, the consumer's side: asking a provider for slots, recording its answer, and sending jobs
// to a provider where one of our reservations is current.
#include <spdlog/spdlog.h>

#include "consumer/internal/job_spec.hpp"
#include "consumer/internal/node_core.hpp"
#include "core/random.hpp"

namespace infernet::consumer::internal {
namespace {

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidInput, std::move(message)};
}

}  // namespace

Result<ReservationRecord> NodeCore::reserve(const ReservationSpec& spec) {
  auto provider = provider_hex(spec.provider);
  if (!provider) return tl::unexpected(invalid("provider: not a valid npub or hex key"));
  if (spec.slots < 1 || spec.slots > protocol::kMaxReservationSlots) {
    return tl::unexpected(
        invalid("slots: must be from 1 to " + std::to_string(protocol::kMaxReservationSlots)));
  }
  if (spec.hours < 1 || spec.hours > protocol::kMaxReservationHours) {
    return tl::unexpected(
        invalid("hours: must be from 1 to " + std::to_string(protocol::kMaxReservationHours)));
  }
  auto key = nostr::PublicKey::from_hex(*provider);
  if (!key) return tl::unexpected(invalid("provider: not a valid npub or hex key"));
  const int64_t now = clock_.now_unix();
  ReservationRecord r;
  r.id = random_hex_id();
  r.provider = *provider;
  r.slots = spec.slots;
  r.hours = spec.hours;
  r.state = "requested";
  r.created_at = r.updated_at = now;
  auto event = protocol::seal(protocol::ReservationRequest{r.id, r.slots, r.hours, 0}, keys_, *key, now);
  if (!event) return tl::unexpected(event.error());
  // Recorded before it is sent, so an answer always finds its request.
  if (auto st = store_->save_reservation(r); !st)
    return tl::unexpected(with_context(st.error(), "reservation"));
  {
    std::lock_guard lock(mu_);
    reservations_[r.id] = r;
  }
  publish(*event);
  spdlog::info("consumer: reservation {} of {} slot(s) for {} h asked of {}", r.id, r.slots, r.hours,
               r.provider);
  return r;
}

Result<std::vector<ReservationRecord>> NodeCore::reservations() {
  return store_->reservations();
}

Status NodeCore::load_reservations() {
  auto stored = store_->reservations();
  if (!stored) return tl::unexpected(with_context(stored.error(), "loading reservations"));
  const int64_t now = clock_.now_unix();
  for (auto& r : *stored) {
    if (r.state == "requested" || (r.state == "accepted" && r.end > now)) reservations_[r.id] = std::move(r);
  }
  return {};
}

void NodeCore::handle(const protocol::Opened& o, const protocol::ReservationAnswer& m,
                      const std::string& /*event_id*/) {
  auto it = reservations_.find(m.reservation_id);
  if (it == reservations_.end() || it->second.provider != o.sender.hex()) {
    spdlog::info("consumer: reservation answer {} from {}: not a reservation we asked of it; ignored",
                 m.reservation_id, o.sender.hex());
    return;
  }
  ReservationRecord& r = it->second;
  if (r.state != "requested") return;  // the first answer stands
  r.updated_at = clock_.now_unix();
  if (m.accepted) {
    r.state = "accepted";
    r.slots = m.slots;
    r.start = m.start;
    r.end = m.end;
    r.discount_percent = m.discount_percent;
    // Jobs waiting for a provider may go to this one now.
    capacity_freed_ = true;
  } else {
    r.state = "refused";
    r.reason = m.reason_code + (m.reason.empty() ? "" : ": " + m.reason);
  }
  spdlog::info("consumer: reservation {} {} by {}{}", r.id, r.state, r.provider,
               r.reason.empty() ? "" : " (" + r.reason + ")");
  const ReservationRecord saved = r;
  if (r.state == "refused") reservations_.erase(it);
  auto st = store_->save_reservation(saved, [id = saved.id](const Status& committed) {
    if (!committed) spdlog::error("consumer: recording reservation {}: {}", id, committed.error().message);
  });
  if (!st) spdlog::error("consumer: recording reservation {}: {}", saved.id, st.error().message);
}

std::optional<std::string> NodeCore::reserved_provider(const ActiveJob& job) const {
  const int64_t now = clock_.now_unix();
  for (const auto& [id, r] : reservations_) {
    if (!r.active_at(now) || job.tried.count(r.provider) != 0) continue;
    if (auto rest = resting_.find(r.provider); rest != resting_.end() && rest->second > SteadyClock::now()) {
      continue;
    }
    const auto* known = directory_.find(r.provider);
    if (known == nullptr || !directory_.liveness_problem(r.provider, now).empty()) continue;
    for (const auto& m : known->announcement.models) {
      if (m.name == job.record.spec.model) return r.provider;
    }
  }
  return std::nullopt;
}

}  // namespace infernet::consumer::internal
