// Webhooks of a consumer node (docs/api.md, "Webhooks"): registration with validation, and the thread that
// feeds each webhook's outbox (outbox.hpp) from the node's notifications.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "consumer/consumer.hpp"
#include "core/result.hpp"
#include "notify/outbox.hpp"
#include "notify/webhook_store.hpp"

namespace infernet::notify {

constexpr size_t kMaxWebhooks = 100;
constexpr size_t kMaxWebhookUrlBytes = 2048;
constexpr size_t kMinSecretBytes = 16;
constexpr size_t kMaxSecretBytes = 256;

// What a user registers.
struct WebhookSpec {
  std::string url;                 // http://host[:port][/path][?query]
  std::vector<std::string> types;  // notification types (consumer::notification_types()); empty: all
  std::string secret;              // "" to have one generated
};

// Checks a spec. Errors: kInvalidInput naming the field: "url: ..." (not http://, https (not supported),
// no host, longer than kMaxWebhookUrlBytes, spaces or control characters), "types: unknown type ...",
// "secret: must be 16 to 256 printable ASCII characters".
Status check_webhook(const WebhookSpec& spec);

// POSTs a delivery with net::HttpClient (plain http), within `timeout`, and returns the status without
// reading the answer's body.
Sender http_sender(std::chrono::milliseconds timeout);

struct WebhooksOptions {
  std::string database;  // <data_dir>/webhooks.db
  std::chrono::milliseconds delivery_timeout{5000};
  OutboxOptions outbox;
  Sender sender;  // empty: http_sender(delivery_timeout)
};

class Webhooks {
 public:
  // Opens the webhook database. `consumer` must outlive the Webhooks. Errors: as WebhookStore::open.
  static Result<std::unique_ptr<Webhooks>> open(consumer::ConsumerNode& consumer, WebhooksOptions options);
  Webhooks(consumer::ConsumerNode& consumer, WebhooksOptions options, std::unique_ptr<WebhookStore> store);
  ~Webhooks();  // stop()
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // Follows the node's notifications and starts delivering. Errors: kIo from the job database.
  Status start();
  // Stops the delivery thread (a delivery in progress finishes first). Idempotent.
  void stop();

  // Registers a webhook; it receives the notifications stored from now on. The result carries the secret
  // (generated when the spec has none); list() does not. Errors: check_webhook's; kLimitExceeded past
  // kMaxWebhooks; kIo.
  Result<Webhook> add(const WebhookSpec& spec);
  Result<std::vector<Webhook>> list();
  // kNotFound for an unknown id.
  Status remove(uint64_t id);
  // Enables a disabled webhook again, its outbox where it stopped; an enabled one is returned unchanged.
  // kNotFound for an unknown id.
  Result<Webhook> enable(uint64_t id);

 private:
  void loop();
  void wake();

  consumer::ConsumerNode& consumer_;
  WebhooksOptions options_;
  std::unique_ptr<WebhookStore> store_;
  Outbox outbox_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool woken_ = false;     // guarded by mu_: something new to deliver
  uint64_t watch_ = 0;     // guarded by mu_
  std::thread thread_;
};

}  // namespace infernet::notify
