// Live followers of jobs' event histories (ConsumerNode::watch).
//
// A watcher first replays the stored events after the position it asks for, then receives live events as
// they commit, in order, none twice and none missed. The race between the two is closed by order: a watcher
// is registered before the stored events are read, and holds its own lock while replaying, so an event that
// commits meanwhile either is in what was read or arrives live afterwards; a sequence check drops the copy
// when it is both.
//
// Thread-safety: every method may be called from any thread. Callbacks run with the watcher's lock held, so
// one watcher's callbacks never overlap; unwatch() from inside a callback is allowed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "consumer/consumer.hpp"
#include "core/result.hpp"

namespace infernet::consumer::internal {

class WatchHub {
 public:
  using Callback = std::function<void(const JobEvent&)>;
  // Reads the stored events of a job after a position (the job database).
  using ReadStored =
      std::function<Result<std::vector<JobEvent>>(const std::string& job_id, uint64_t after_seq)>;

  // Registers a watcher, replays what `read` returns and leaves it following live events.
  // Errors: those of `read` (the watcher is then removed).
  Result<uint64_t> watch(const std::string& job_id, uint64_t after_seq, Callback on_event,
                         const ReadStored& read);
  // Stops deliveries to a watcher: once this returns, its callback is not called again (unless it is
  // running on this very thread, as when a callback unwatches itself). Unknown handles are ignored.
  void unwatch(uint64_t handle);
  // Hands committed events of one job, in seq order, to its watchers.
  void deliver(const std::string& job_id, const std::vector<JobEvent>& events);
  size_t watcher_count() const;

 private:
  struct Watcher {
    std::string job_id;
    Callback on_event;
    std::mutex mu;          // held while delivering
    uint64_t last_seq = 0;  // guarded by mu
    std::atomic<bool> removed{false};
    std::atomic<std::thread::id> delivering{};  // the thread inside the callback, if any
  };
  // Calls the callback for each event past the watcher's position. push() takes the watcher's lock;
  // push_locked() expects it held.
  static void push(Watcher& w, const std::vector<JobEvent>& events);
  static void push_locked(Watcher& w, const std::vector<JobEvent>& events);

  mutable std::mutex mu_;
  uint64_t next_handle_ = 1;                                          // guarded by mu_
  std::unordered_map<uint64_t, std::shared_ptr<Watcher>> by_handle_;  // guarded by mu_
  std::unordered_multimap<std::string, std::pair<uint64_t, std::shared_ptr<Watcher>>>
      by_job_;  // guarded by mu_
};

// Live followers of the notifications of all jobs (ConsumerNode::watch_all), in the same way: registered
// before the stored notifications are read, replayed under the watcher's lock, then fed live ones; an id
// check drops a notification seen twice. Ids only grow, so "after id n" is the whole position.
//
// Thread-safety: as WatchHub.
class NotificationHub {
 public:
  using Callback = std::function<void(const Notification&)>;
  // Reads stored notifications after an id, in id order, at most `limit` (the job database).
  using ReadStored = std::function<Result<std::vector<Notification>>(uint64_t after_id, size_t limit)>;

  // Registers a watcher, replays everything `read` returns (page by page) and leaves it following live
  // notifications. Errors: those of `read` (the watcher is then removed).
  Result<uint64_t> watch(uint64_t after_id, Callback on_notification, const ReadStored& read);
  // As WatchHub::unwatch.
  void unwatch(uint64_t handle);
  // Hands committed notifications, in id order, to every watcher.
  void deliver(const std::vector<Notification>& notifications);
  size_t watcher_count() const;

 private:
  struct Watcher {
    Callback on_notification;
    std::mutex mu;         // held while delivering
    uint64_t last_id = 0;  // guarded by mu
    std::atomic<bool> removed{false};
    std::atomic<std::thread::id> delivering{};
  };
  static void push_locked(Watcher& w, const std::vector<Notification>& notifications);

  mutable std::mutex mu_;
  uint64_t next_handle_ = 1;                                          // guarded by mu_
  std::unordered_map<uint64_t, std::shared_ptr<Watcher>> by_handle_;  // guarded by mu_
};

}  // namespace infernet::consumer::internal
