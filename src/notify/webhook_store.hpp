// The webhooks a user registered and where each one's outbox stands, in a SQLite file of their own
// (<data_dir>/webhooks.db).
//
// A webhook's outbox is the stored notification log (consumer::ConsumerNode::notifications) read from the
// webhook's cursor on: every notification after `cursor` whose type the webhook asked for is still to be
// delivered, in id order. So nothing is copied per delivery, the outbox survives a restart with the
// notifications it points into, and its order is their global order. Only the head's retry state is kept.
//
// Thread-safety: every method may be called from any thread (one connection behind a mutex; the writes are
// a handful per delivery).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/sqlite.hpp"

namespace infernet::notify {

struct Webhook {
  uint64_t id = 0;
  std::string url;                 // http://host[:port]/path
  std::vector<std::string> types;  // notification types delivered; empty: all
  std::string secret;              // the HMAC key
  int64_t created_at = 0;          // unix ms

  // The outbox.
  uint64_t cursor = 0;          // the last notification id delivered or passed over (another type)
  uint64_t delivered = 0;       // deliveries answered 2xx
  uint32_t failures = 0;        // failed attempts at the current head, 0 when healthy
  int64_t failing_since = 0;    // unix ms of the head's first failure, 0 when healthy
  int64_t next_attempt_at = 0;  // unix ms; the head waits until then
  std::string last_error;       // why the last attempt failed
  std::string disabled_reason;  // "" while enabled
};

class WebhookStore {
 public:
  // Opens or creates the file. Errors: kIo (cannot open, not a database), kUnsupported (a newer schema).
  static Result<std::unique_ptr<WebhookStore>> open(const std::string& path);
  explicit WebhookStore(store::Database db) : db_(std::move(db)) {}

  // Stores a new webhook (its id, outbox fields as given) and returns it with its id. Errors: kIo.
  Result<Webhook> add(Webhook webhook);
  Result<std::vector<Webhook>> list();
  // kNotFound for an unknown id.
  Result<Webhook> get(uint64_t id);
  // kNotFound for an unknown id.
  Status remove(uint64_t id);
  // Writes the outbox fields (cursor .. disabled_reason) of an existing webhook. kNotFound when it was
  // removed meanwhile.
  Status save_outbox(const Webhook& webhook);

 private:
  Result<std::vector<Webhook>> query(const std::string& where, std::optional<uint64_t> id);

  std::mutex mu_;
  store::Database db_;  // guarded by mu_
};

}  // namespace infernet::notify
