// Wall-clock time in Unix seconds, behind an interface so tests can fix "now".
#pragma once

#include <chrono>
#include <cstdint>

namespace infernet {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_unix() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_unix() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that says what it is told; for tests.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(int64_t now) : now_(now) {}
  int64_t now_unix() const override { return now_; }
  void set(int64_t now) { now_ = now; }

 private:
  int64_t now_;
};

}  // namespace infernet
