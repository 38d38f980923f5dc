// Test double: an in-memory consumer::ConsumerNode for the API's tests. It keeps jobs and their events in
// maps, validates a few fields the way the real consumer reports errors ("field: problem"), and lets the test
// push events and state changes that watchers receive at once. It talks to no relay and runs no job.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "consumer/consumer.hpp"

namespace infernet::api::testing {

class FakeConsumerNode : public consumer::ConsumerNode {
 public:
  Status start() override { return {}; }
  void stop() override {}

  Result<consumer::JobRecord> submit(const consumer::JobSpec& spec) override {
    if (spec.model.empty()) return make_error(ErrorCode::kInvalidInput, "model: required");
    if (spec.max_tokens < 1 || spec.max_tokens > 65536) {
      return make_error(ErrorCode::kInvalidInput, "max_tokens: must be from 1 to 65536");
    }
    std::lock_guard lock(mu_);
    // As the real node refuses a job over the account budget (docs/market-failover.md).
    if (!budget_.empty() && budget_[0].limit_msat != 0 && spec.max_cost_msat > budget_[0].remaining_msat) {
      return make_error(ErrorCode::kLimitExceeded,
                        "budget: max_cost_msat " + std::to_string(spec.max_cost_msat) + " is more than the " +
                            std::to_string(budget_[0].remaining_msat) + " msat left of the account budget");
    }
    if (!spec.client_request_id.empty()) {
      for (const auto& [id, job] : jobs_) {
        if (job.client_request_id == spec.client_request_id) return job;
      }
    }
    consumer::JobRecord job;
    job.id = "job" + std::to_string(jobs_.size() + 1);
    job.client_request_id = spec.client_request_id;
    job.spec = spec;
    job.created_at = job.updated_at = now_ms_;
    jobs_[job.id] = job;
    append_locked(job.id, "state", R"({"state":"submitted"})");
    return job;
  }

  Result<consumer::JobRecord> get(const std::string& job_id) override {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return make_error(ErrorCode::kNotFound, "job " + job_id + " not found");
    return it->second;
  }

  Result<std::vector<consumer::JobRecord>> list(const consumer::JobQuery& query) override {
    std::lock_guard lock(mu_);
    last_query_ = query;
    // The job store's order and cursor rule: by (created_at, id), past `after`.
    std::vector<consumer::JobRecord> sorted;
    for (const auto& [id, job] : jobs_)
      sorted.push_back(job);
    const bool newest_first = query.order == consumer::ListOrder::kNewestFirst;
    auto key = [](const consumer::JobRecord& j) { return std::make_pair(j.created_at, j.id); };
    std::sort(sorted.begin(), sorted.end(),
              [&](const auto& a, const auto& b) { return newest_first ? key(b) < key(a) : key(a) < key(b); });
    std::vector<consumer::JobRecord> out;
    for (const auto& job : sorted) {
      if (query.state && job.state != *query.state) continue;
      if (query.model && job.spec.model != *query.model) continue;
      if (query.since && job.created_at < *query.since) continue;
      if (query.until && job.created_at > *query.until) continue;
      if (query.after) {
        auto cursor = std::make_pair(query.after->created_at, query.after->id);
        if (newest_first ? !(key(job) < cursor) : !(cursor < key(job))) continue;
      }
      if (out.size() >= query.limit) break;
      out.push_back(job);
    }
    return out;
  }

  Result<consumer::JobRecord> cancel(const std::string& job_id) override {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return make_error(ErrorCode::kNotFound, "job " + job_id + " not found");
    if (!consumer::is_final(it->second.state)) {
      it->second.state = consumer::JobState::kCanceled;
      it->second.error = "canceled by the user";
      append_locked(job_id, "state", R"({"state":"canceled"})");
    }
    return it->second;
  }

  Result<std::vector<consumer::JobEvent>> events(const std::string& job_id, uint64_t after_seq) override {
    std::lock_guard lock(mu_);
    if (jobs_.count(job_id) == 0) return make_error(ErrorCode::kNotFound, "job " + job_id + " not found");
    std::vector<consumer::JobEvent> out;
    for (const auto& e : events_[job_id]) {
      if (e.seq > after_seq) out.push_back(e);
    }
    return out;
  }

  Result<uint64_t> watch(const std::string& job_id, uint64_t after_seq,
                         std::function<void(const consumer::JobEvent&)> on_event) override {
    std::lock_guard lock(mu_);
    if (jobs_.count(job_id) == 0) return make_error(ErrorCode::kNotFound, "job " + job_id + " not found");
    for (const auto& e : events_[job_id]) {
      if (e.seq > after_seq) on_event(e);
    }
    uint64_t handle = ++last_handle_;
    watchers_[handle] = Watcher{job_id, std::move(on_event)};
    return handle;
  }

  void unwatch(uint64_t handle) override {
    std::lock_guard lock(mu_);
    watchers_.erase(handle);
  }

  Result<std::vector<consumer::Notification>> notifications(uint64_t after_id, size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<consumer::Notification> out;
    for (const auto& n : notifications_) {
      if (n.id > after_id && out.size() < limit) out.push_back(n);
    }
    return out;
  }

  Result<uint64_t> last_notification_id() override {
    std::lock_guard lock(mu_);
    return notifications_.size();
  }

  Result<uint64_t> watch_all(uint64_t after_id,
                             std::function<void(const consumer::Notification&)> on_notification) override {
    std::lock_guard lock(mu_);
    for (const auto& n : notifications_) {
      if (n.id > after_id) on_notification(n);
    }
    uint64_t handle = ++last_handle_;
    all_watchers_[handle] = std::move(on_notification);
    return handle;
  }

  void unwatch_all(uint64_t handle) override {
    std::lock_guard lock(mu_);
    all_watchers_.erase(handle);
  }

  std::vector<consumer::ProviderRecord> providers() override {
    std::lock_guard lock(mu_);
    return providers_;
  }
  std::vector<consumer::ModelSummary> models() override {
    std::lock_guard lock(mu_);
    return models_;
  }
  std::vector<consumer::AccountBudgetStatus> budget() override {
    std::lock_guard lock(mu_);
    return budget_;
  }

  // ---- Test controls ----

  // Appends an event to the job's history and hands it to its watchers.
  void push_event(const std::string& job_id, const std::string& type, const std::string& data) {
    std::lock_guard lock(mu_);
    append_locked(job_id, type, data);
  }

  // Moves the job to `state` (with a "state" event), optionally setting its output.
  void set_state(const std::string& job_id, consumer::JobState state, const std::string& output = "") {
    std::lock_guard lock(mu_);
    auto& job = jobs_.at(job_id);
    job.state = state;
    if (!output.empty()) job.output = output;
    if (state == consumer::JobState::kCompleted) {
      job.usage = protocol::Usage{5, 7};
      job.cost_msat = 42;
    }
    append_locked(job_id, "state", std::string(R"({"state":")") + consumer::to_string(state) + "\"}");
  }

  // Stores a notification (the next id) and hands it to the watch_all() watchers.
  void push_notification(const std::string& type, const std::string& job_id, const std::string& data) {
    std::lock_guard lock(mu_);
    consumer::Notification n{notifications_.size() + 1, type, job_id, now_ms_, data};
    notifications_.push_back(n);
    for (auto& [handle, cb] : all_watchers_)
      cb(n);
  }

  void set_now_ms(int64_t now) {
    std::lock_guard lock(mu_);
    now_ms_ = now;
  }
  int64_t now_ms() {
    std::lock_guard lock(mu_);
    return now_ms_;
  }
  size_t watcher_count() {
    std::lock_guard lock(mu_);
    return watchers_.size();
  }
  consumer::JobQuery last_query() {
    std::lock_guard lock(mu_);
    return last_query_;
  }
  void add_provider(consumer::ProviderRecord p) {
    std::lock_guard lock(mu_);
    providers_.push_back(std::move(p));
  }
  void add_model(consumer::ModelSummary m) {
    std::lock_guard lock(mu_);
    models_.push_back(std::move(m));
  }
  // The account budgets budget() reports; a submit whose max_cost_msat exceeds the first's remaining_msat
  // (when it has a limit) is refused.
  void set_budget(std::vector<consumer::AccountBudgetStatus> b) {
    std::lock_guard lock(mu_);
    budget_ = std::move(b);
  }

 private:
  struct Watcher {
    std::string job_id;
    std::function<void(const consumer::JobEvent&)> on_event;
  };
  using AllWatcher = std::function<void(const consumer::Notification&)>;

  void append_locked(const std::string& job_id, const std::string& type, const std::string& data) {
    auto& history = events_[job_id];
    consumer::JobEvent e{history.size() + 1, job_id, type, data, now_ms_};
    history.push_back(e);
    for (auto& [handle, w] : watchers_) {
      if (w.job_id == job_id) w.on_event(e);
    }
  }

  std::mutex mu_;
  int64_t now_ms_ = 1'700'000'000'000;                             // guarded by mu_
  std::map<std::string, consumer::JobRecord> jobs_;                // guarded by mu_
  std::map<std::string, std::vector<consumer::JobEvent>> events_;  // guarded by mu_
  std::map<uint64_t, Watcher> watchers_;                           // guarded by mu_
  uint64_t last_handle_ = 0;                                       // guarded by mu_
  std::vector<consumer::Notification> notifications_;              // guarded by mu_
  std::map<uint64_t, AllWatcher> all_watchers_;                    // guarded by mu_
  consumer::JobQuery last_query_;                                  // guarded by mu_
  std::vector<consumer::ProviderRecord> providers_;                // guarded by mu_
  std::vector<consumer::ModelSummary> models_;                     // guarded by mu_
  std::vector<consumer::AccountBudgetStatus> budget_;              // guarded by mu_
};

}  // namespace infernet::api::testing
