// Notifications (consumer.hpp): which job changes make one, what each carries, and the budget thresholds.
// They are added to the same PendingWrite as the job events they come from, so both commit together; commit()
// gives them their global ids.
#include <boost/json.hpp>

#include "consumer/internal/event_data.hpp"
#include "consumer/internal/node_core.hpp"

namespace infernet::consumer {

const std::vector<std::string>& notification_types() {
  static const std::vector<std::string> kTypes = {"job.submitted", "job.started",      "job.completed",
                                                  "job.failed",    "job.canceled",     "job.expired",
                                                  "job.error",     "budget.threshold", "budget.account"};
  return kTypes;
}

namespace internal {
namespace {

// Spending levels reported, in percent of max_cost_msat.
constexpr uint32_t kBudgetThresholds[] = {50, 80, 100};

const char* final_type(JobState state) {
  switch (state) {
    case JobState::kCompleted:
      return "job.completed";
    case JobState::kFailed:
      return "job.failed";
    case JobState::kCanceled:
      return "job.canceled";
    case JobState::kExpired:
      return "job.expired";
    default:
      return nullptr;
  }
}

}  // namespace

void NodeCore::notify(ActiveJob& job, PendingWrite& w, const char* type, const NotificationDetail& detail) {
  const JobRecord& r = job.record;
  boost::json::object o;
  o["state"] = to_string(r.state);
  o["model"] = r.spec.model;
  o["provider"] = r.provider;
  o["attempt"] = r.attempt;
  o["cost_msat"] = r.cost_msat;
  o["max_cost_msat"] = r.spec.max_cost_msat;
  o["output_tokens"] = r.usage.output_tokens;
  if (!detail.reason.empty()) o["reason"] = detail.reason;
  if (!detail.code.empty()) o["code"] = detail.code;
  if (!detail.message.empty()) o["message"] = detail.message;
  if (detail.threshold_percent != 0) {
    o["threshold_percent"] = detail.threshold_percent;
    o["spent_msat"] = detail.spent_msat;
    o["estimated"] = detail.estimated;
  }
  if (!detail.period.empty()) {
    o["period"] = detail.period;
    o["limit_msat"] = detail.limit_msat;
  }
  // The id is given by commit(), in the order the writes are queued.
  w.change.notifications.push_back(Notification{0, type, r.id, now_ms(), boost::json::serialize(o)});
}

void NodeCore::notify_state(ActiveJob& job, PendingWrite& w, JobState state, const std::string& reason) {
  if (const char* type = final_type(state)) {
    notify(job, w, type, NotificationDetail{.reason = reason});
  } else if (state == JobState::kAssigned && job.record.attempt == 1) {
    // Later attempts are the same job going on elsewhere: "started" is said once.
    notify(job, w, "job.started", {});
  }
}

void NodeCore::provider_error(ActiveJob& job, PendingWrite& w, uint32_t attempt, const std::string& provider,
                              const std::string& code, const std::string& message) {
  add_event(job, w, "error", error_data(attempt, provider, code, message));
  notify(job, w, "job.error", NotificationDetail{.code = code, .message = message});
}

void NodeCore::check_budget(ActiveJob& job, PendingWrite& w, uint64_t spent_msat, bool estimated) {
  const uint64_t cap = job.record.spec.max_cost_msat;
  if (cap == 0) return;
  for (uint32_t percent : kBudgetThresholds) {
    if (percent <= job.budget_notified) continue;
    // ceil(cap * percent / 100) without overflow (percent <= 100).
    const uint64_t level = cap / 100 * percent + (cap % 100 * percent + 99) / 100;
    if (spent_msat < level) break;
    job.budget_notified = percent;
    notify(
        job, w, "budget.threshold",
        NotificationDetail{.threshold_percent = percent, .spent_msat = spent_msat, .estimated = estimated});
  }
}

void NodeCore::charge_account(ActiveJob& job, PendingWrite& w, uint64_t cost_msat) {
  for (const BudgetCrossing& c : budget_.charge(cost_msat, clock_.now_unix())) {
    notify(job, w, "budget.account",
           NotificationDetail{.threshold_percent = c.percent,
                              .spent_msat = c.spent_msat,
                              .estimated = false,
                              .period = c.period,
                              .limit_msat = c.limit_msat});
  }
}

void NodeCore::estimate_spending(ActiveJob& job, PendingWrite& w, uint32_t output_tokens) {
  if (job.record.spec.max_cost_msat == 0) return;
  const protocol::ProviderAnnouncement* a = directory_.find(job.record.provider);
  if (a == nullptr) return;
  check_budget(job, w,
               ProviderDirectory::estimate_price(a->announcement.prices, job.record.spec.priority,
                                                 job.input_words, output_tokens),
               true);
}

}  // namespace internal
}  // namespace infernet::consumer
