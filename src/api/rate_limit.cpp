#include "api/rate_limit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace infernet::api {

RateLimiter::RateLimiter(RateLimitOptions options, std::function<int64_t()> now_ms)
    : options_(options), now_ms_(std::move(now_ms)) {
  options_.burst = std::max<int64_t>(1, options_.burst);
  options_.max_principals = std::max<size_t>(1, options_.max_principals);
  if (!now_ms_) {
    now_ms_ = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
}

void RateLimiter::refill(Bucket& bucket, int64_t now) const {
  double per_ms = static_cast<double>(options_.per_minute) / 60000.0;
  double elapsed = static_cast<double>(std::max<int64_t>(0, now - bucket.updated_ms));
  bucket.tokens = std::min(static_cast<double>(options_.burst), bucket.tokens + elapsed * per_ms);
  bucket.updated_ms = now;
}

void RateLimiter::make_room(int64_t now) {
  // Full buckets first: forgetting them loses nothing, since a new bucket starts full.
  for (auto it = buckets_.begin(); it != buckets_.end() && buckets_.size() >= options_.max_principals;) {
    refill(it->second, now);
    if (it->second.tokens >= static_cast<double>(options_.burst)) {
      recency_.erase(it->second.recency);
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  while (buckets_.size() >= options_.max_principals) {
    buckets_.erase(recency_.back());
    recency_.pop_back();
  }
}

RateDecision RateLimiter::take(std::string_view principal) {
  if (options_.per_minute <= 0) return {};
  int64_t now = now_ms_();
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(principal));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_principals) make_room(now);
    recency_.emplace_front(principal);
    Bucket fresh{static_cast<double>(options_.burst), now, recency_.begin()};
    it = buckets_.emplace(std::string(principal), fresh).first;
  } else {
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    refill(it->second, now);
  }
  Bucket& bucket = it->second;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return {};
  }
  double per_second = static_cast<double>(options_.per_minute) / 60.0;
  auto wait = static_cast<int64_t>(std::ceil((1.0 - bucket.tokens) / per_second));
  return RateDecision{false, std::max<int64_t>(1, wait)};
}

size_t RateLimiter::principals() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace infernet::api
