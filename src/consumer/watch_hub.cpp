#include "consumer/internal/watch_hub.hpp"

namespace infernet::consumer::internal {

void WatchHub::push(Watcher& w, const std::vector<JobEvent>& events) {
  std::lock_guard lock(w.mu);
  push_locked(w, events);
}

void WatchHub::push_locked(Watcher& w, const std::vector<JobEvent>& events) {
  w.delivering = std::this_thread::get_id();
  for (const auto& e : events) {
    if (w.removed) break;
    if (e.seq <= w.last_seq) continue;
    w.last_seq = e.seq;
    w.on_event(e);
  }
  w.delivering = std::thread::id();
}

Result<uint64_t> WatchHub::watch(const std::string& job_id, uint64_t after_seq, Callback on_event,
                                 const ReadStored& read) {
  auto w = std::make_shared<Watcher>();
  w->job_id = job_id;
  w->on_event = std::move(on_event);
  w->last_seq = after_seq;
  // Locked before registering: live events wait until the replay is done.
  std::unique_lock replay_lock(w->mu);
  uint64_t handle = 0;
  {
    std::lock_guard lock(mu_);
    handle = next_handle_++;
    by_handle_.emplace(handle, w);
    by_job_.emplace(job_id, std::make_pair(handle, w));
  }
  auto stored = read(job_id, after_seq);
  if (!stored) {
    replay_lock.unlock();
    unwatch(handle);
    return tl::unexpected(stored.error());
  }
  // Still under the watcher's lock: events that committed after the read are waiting in deliver() and
  // follow in order; those the read already included are skipped there by their seq.
  push_locked(*w, *stored);
  return handle;
}

void WatchHub::unwatch(uint64_t handle) {
  std::shared_ptr<Watcher> w;
  {
    std::lock_guard lock(mu_);
    auto it = by_handle_.find(handle);
    if (it == by_handle_.end()) return;
    w = it->second;
    by_handle_.erase(it);
    auto [first, last] = by_job_.equal_range(w->job_id);
    for (auto j = first; j != last; ++j) {
      if (j->second.first == handle) {
        by_job_.erase(j);
        break;
      }
    }
  }
  w->removed = true;
  // Wait out a delivery in progress on another thread, so no callback runs after we return.
  if (w->delivering.load() != std::this_thread::get_id()) {
    std::lock_guard wait(w->mu);
  }
}

void WatchHub::deliver(const std::string& job_id, const std::vector<JobEvent>& events) {
  if (events.empty()) return;
  std::vector<std::shared_ptr<Watcher>> targets;
  {
    std::lock_guard lock(mu_);
    auto [first, last] = by_job_.equal_range(job_id);
    for (auto it = first; it != last; ++it)
      targets.push_back(it->second.second);
  }
  for (const auto& w : targets)
    push(*w, events);
}

size_t WatchHub::watcher_count() const {
  std::lock_guard lock(mu_);
  return by_handle_.size();
}

// ---- NotificationHub ----

namespace {

// Stored notifications are replayed this many at a time, so a client starting from 0 does not load the
// whole table at once.
constexpr size_t kReplayPage = 1000;

}  // namespace

void NotificationHub::push_locked(Watcher& w, const std::vector<Notification>& notifications) {
  w.delivering = std::this_thread::get_id();
  for (const auto& n : notifications) {
    if (w.removed) break;
    if (n.id <= w.last_id) continue;
    w.last_id = n.id;
    w.on_notification(n);
  }
  w.delivering = std::thread::id();
}

Result<uint64_t> NotificationHub::watch(uint64_t after_id, Callback on_notification, const ReadStored& read) {
  auto w = std::make_shared<Watcher>();
  w->on_notification = std::move(on_notification);
  w->last_id = after_id;
  std::unique_lock replay_lock(w->mu);
  uint64_t handle = 0;
  {
    std::lock_guard lock(mu_);
    handle = next_handle_++;
    by_handle_.emplace(handle, w);
  }
  for (;;) {
    auto page = read(w->last_id, kReplayPage);
    if (!page) {
      replay_lock.unlock();
      unwatch(handle);
      return tl::unexpected(page.error());
    }
    push_locked(*w, *page);
    if (page->size() < kReplayPage || w->removed) break;
  }
  return handle;
}

void NotificationHub::unwatch(uint64_t handle) {
  std::shared_ptr<Watcher> w;
  {
    std::lock_guard lock(mu_);
    auto it = by_handle_.find(handle);
    if (it == by_handle_.end()) return;
    w = it->second;
    by_handle_.erase(it);
  }
  w->removed = true;
  if (w->delivering.load() != std::this_thread::get_id()) {
    std::lock_guard wait(w->mu);
  }
}

void NotificationHub::deliver(const std::vector<Notification>& notifications) {
  if (notifications.empty()) return;
  std::vector<std::shared_ptr<Watcher>> targets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [handle, w] : by_handle_)
      targets.push_back(w);
  }
  for (const auto& w : targets) {
    std::lock_guard lock(w->mu);
    push_locked(*w, notifications);
  }
}

size_t NotificationHub::watcher_count() const {
  std::lock_guard lock(mu_);
  return by_handle_.size();
}

}  // namespace infernet::consumer::internal
