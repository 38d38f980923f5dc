// Delivery of notifications to webhooks (docs/api.md, "Webhooks"): per webhook, one delivery at a time, in
// notification order, head of line. A delivery answered 2xx moves the webhook's cursor past it; any other
// answer, or none (refused, timed out), is retried after 1 s, doubling to 60 s, plus up to 20% random
// jitter, and every later notification waits behind it, so the receiver sees the order of the log. A webhook
// whose head has been failing for longer than disable_after, or that has fallen more than max_behind
// notifications behind the newest, is disabled with the reason (WebhookStore::Webhook::disabled_reason).
//
// Delivery is at least once: a node stopped between a 2xx and the cursor's write sends that notification
// again after its restart. Receivers deduplicate by the Infernet-Notification-Id header.
//
// Thread-safety: poll() and note_latest() may be called from any thread; polls run one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "notify/webhook_store.hpp"

namespace infernet::notify {

// One POST to a webhook.
struct Delivery {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // the notification as JSON
};

// Sends a delivery and returns the HTTP status, or an error when no answer came (kIo: refused, timed out).
using Sender = std::function<Result<int>(const Delivery&)>;
// Stored notifications after an id, in id order (consumer::ConsumerNode::notifications).
using ReadNotifications =
    std::function<Result<std::vector<consumer::Notification>>(uint64_t after_id, size_t limit)>;

struct OutboxOptions {
  std::chrono::milliseconds first_retry{1000};
  std::chrono::milliseconds max_retry{60000};
  double jitter =
      0.2;  // a retry waits up to this fraction longer, at random, so receivers are not hit in step
  std::chrono::milliseconds disable_after{std::chrono::hours(72)};
  uint64_t max_behind = 10000;
  std::function<int64_t()> now_ms;      // unix ms; empty: the system clock
  std::function<double()> random_unit;  // [0, 1); empty: a random source
};

// How long the head waits after its n-th consecutive failure (n >= 1): first_retry * 2^(n-1), at most
// max_retry, times (1 + jitter * unit).
std::chrono::milliseconds retry_delay(uint32_t failures, const OutboxOptions& options, double unit);

// The JSON body of a delivery (and of the notification stream's messages):
// {"id", "type", "job_id", "at", "data": {...}}.
std::string notification_json(const consumer::Notification& n);

class Outbox {
 public:
  Outbox(WebhookStore& store, ReadNotifications read, Sender send, OutboxOptions options = {});

  // Delivers what is due now, for every enabled webhook, until each is caught up, waiting for a retry, or has
  // sent kMaxDeliveriesPerPoll. Returns the unix ms at which a retry is next due (0 when none is).
  // Errors: kIo from the stores (the poll stops there; the next one starts over).
  Result<int64_t> poll();
  // The newest notification id known to exist (for max_behind); ids only grow.
  void note_latest(uint64_t id);

  static constexpr size_t kMaxDeliveriesPerPoll = 100;

 private:
  // Runs one webhook; returns when its next retry is due (0: none).
  Result<int64_t> run(Webhook& webhook, int64_t now);
  int64_t now_ms() const;
  Status save(const Webhook& webhook);

  WebhookStore& store_;
  ReadNotifications read_;
  Sender send_;
  OutboxOptions options_;
  std::mutex poll_mu_;  // one poll at a time
  std::mutex latest_mu_;
  uint64_t latest_ = 0;  // guarded by latest_mu_
};

}  // namespace infernet::notify
