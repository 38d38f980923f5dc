#include "notify/outbox.hpp"

#include <algorithm>
#include <chrono>

#include <boost/json.hpp>

#include "core/random.hpp"
#include "notify/signature.hpp"

namespace infernet::notify {
namespace {

// Notifications read from the log at a time while looking for a webhook's next one.
constexpr size_t kPage = 100;
// Longest error text kept for GET /api/v1/webhooks.
constexpr size_t kMaxErrorBytes = 300;

bool wanted(const Webhook& w, const std::string& type) {
  return w.types.empty() || std::find(w.types.begin(), w.types.end(), type) != w.types.end();
}

double random_unit_default() {
  std::array<uint8_t, 4> bytes{};
  fill_random(bytes);
  const uint32_t v =
      (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | bytes[3];
  return v / 4294967296.0;
}

// The webhook was removed while it was being served: it is simply done.
bool removed(const Status& st) {
  return !st && st.error().code == ErrorCode::kNotFound;
}

}  // namespace

std::chrono::milliseconds retry_delay(uint32_t failures, const OutboxOptions& options, double unit) {
  int64_t delay = options.first_retry.count();
  for (uint32_t i = 1; i < failures && delay < options.max_retry.count(); ++i)
    delay *= 2;
  delay = std::min<int64_t>(delay, options.max_retry.count());
  unit = std::clamp(unit, 0.0, 1.0);
  return std::chrono::milliseconds(delay +
                                   static_cast<int64_t>(static_cast<double>(delay) * options.jitter * unit));
}

std::string notification_json(const consumer::Notification& n) {
  boost::json::object o;
  o["id"] = n.id;
  o["type"] = n.type;
  o["job_id"] = n.job_id;
  o["at"] = n.at;
  boost::system::error_code ec;
  boost::json::value data = boost::json::parse(n.data, ec);
  o["data"] = ec ? boost::json::value(boost::json::object()) : std::move(data);
  return boost::json::serialize(o);
}

Outbox::Outbox(WebhookStore& store, ReadNotifications read, Sender send, OutboxOptions options)
    : store_(store), read_(std::move(read)), send_(std::move(send)), options_(std::move(options)) {}

int64_t Outbox::now_ms() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Outbox::note_latest(uint64_t id) {
  std::lock_guard lock(latest_mu_);
  latest_ = std::max(latest_, id);
}

Status Outbox::save(const Webhook& w) {
  return store_.save_outbox(w);
}

Result<int64_t> Outbox::poll() {
  std::lock_guard lock(poll_mu_);
  auto webhooks = store_.list();
  if (!webhooks) return tl::unexpected(webhooks.error());
  int64_t next_due = 0;
  for (auto& w : *webhooks) {
    if (!w.disabled_reason.empty()) continue;
    auto due = run(w, now_ms());
    if (!due) return due;
    if (*due != 0) next_due = next_due == 0 ? *due : std::min(next_due, *due);
  }
  return next_due;
}

Result<int64_t> Outbox::run(Webhook& w, int64_t now) {
  size_t sent = 0;
  while (sent < kMaxDeliveriesPerPoll) {
    if (w.next_attempt_at > now) return w.next_attempt_at;
    auto page = read_(w.cursor, kPage);
    if (!page) return tl::unexpected(page.error());
    if (page->empty()) return 0;
    note_latest(page->back().id);
    auto head = std::find_if(page->begin(), page->end(),
                             [&](const consumer::Notification& n) { return wanted(w, n.type); });
    if (head == page->end()) {
      // Nothing of its types in this page: pass over it for good.
      w.cursor = page->back().id;
      if (auto st = save(w); !st) return removed(st) ? Result<int64_t>(0) : tl::unexpected(st.error());
      continue;
    }
    Delivery d;
    d.url = w.url;
    d.body = notification_json(*head);
    const int64_t timestamp = now / 1000;
    d.headers = {{"Content-Type", "application/json"},
                 {"Infernet-Notification-Id", std::to_string(head->id)},
                 {"Infernet-Webhook-Id", std::to_string(w.id)},
                 {"Infernet-Signature", signature_header(w.secret, timestamp, d.body)}};
    ++sent;
    auto answer = send_(d);
    now = now_ms();
    if (answer && *answer >= 200 && *answer < 300) {
      w.cursor = head->id;
      ++w.delivered;
      w.failures = 0;
      w.failing_since = 0;
      w.next_attempt_at = 0;
      w.last_error.clear();
      if (auto st = save(w); !st) return removed(st) ? Result<int64_t>(0) : tl::unexpected(st.error());
      continue;
    }
    std::string error = answer ? "answered HTTP " + std::to_string(*answer) : answer.error().message;
    if (error.size() > kMaxErrorBytes) error.resize(kMaxErrorBytes);
    w.last_error = "notification " + std::to_string(head->id) + ": " + error;
    ++w.failures;
    if (w.failing_since == 0) w.failing_since = now;
    const double unit = options_.random_unit ? options_.random_unit() : random_unit_default();
    w.next_attempt_at = now + retry_delay(w.failures, options_, unit).count();
    uint64_t latest = 0;
    {
      std::lock_guard lock(latest_mu_);
      latest = latest_;
    }
    if (now - w.failing_since >= options_.disable_after.count()) {
      w.disabled_reason = "failing since " + std::to_string(w.failing_since) + " (unix ms), longer than " +
                          std::to_string(options_.disable_after.count() / 1000) +
                          " s; last error: " + w.last_error;
    } else if (latest > w.cursor && latest - w.cursor > options_.max_behind) {
      w.disabled_reason = "more than " + std::to_string(options_.max_behind) +
                          " notifications behind while failing; last error: " + w.last_error;
    }
    if (auto st = save(w); !st) return removed(st) ? Result<int64_t>(0) : tl::unexpected(st.error());
    return w.disabled_reason.empty() ? w.next_attempt_at : 0;
  }
  return now;  // more to send: due again at once
}

}  // namespace infernet::notify
