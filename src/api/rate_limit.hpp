// Per-principal request rate limits for the local API: one token bucket per API key, NIP-98 pubkey or (for
// unauthenticated loopback use and failed attempts) remote address.
//
// A bucket holds up to `burst` requests and refills at `per_minute` / 60 a second. Memory is bounded: at most
// `max_principals` buckets; when a new principal comes and the table is full, buckets that have refilled
// completely (idle long enough that forgetting them changes nothing) are dropped first, then the one idle
// longest. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace infernet::api {

struct RateLimitOptions {
  int64_t per_minute = 600;  // config api.rate_limit; 0: no limit
  int64_t burst = 300;       // config api.rate_burst; at least 1 when per_minute > 0
  size_t max_principals = 4096;
};

struct RateDecision {
  bool allowed = true;
  int64_t retry_after_seconds = 0;  // when refused: whole seconds until one request is allowed, at least 1
};

class RateLimiter {
 public:
  // `now_ms` is a monotonic clock in milliseconds; empty means std::chrono::steady_clock.
  explicit RateLimiter(RateLimitOptions options, std::function<int64_t()> now_ms = {});

  // Takes one request from `principal`'s bucket.
  RateDecision take(std::string_view principal);

  // Buckets held now (for tests of the bound).
  size_t principals() const;

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
    std::list<std::string>::iterator recency;  // position in recency_, most recent at the front
  };
  void refill(Bucket& bucket, int64_t now) const;
  void make_room(int64_t now);

  RateLimitOptions options_;
  std::function<int64_t()> now_ms_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
  std::list<std::string> recency_;                   // guarded by mu_
};

}  // namespace infernet::api
