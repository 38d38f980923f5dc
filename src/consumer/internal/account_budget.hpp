// Account-level budgets (consumer.budget_daily_msat, consumer.budget_monthly_msat; docs/market-failover.md):
// what the consumer may still commit to today and this month (UTC calendar), what it has been charged, and
// the 50/80/100% crossings that become budget.account notifications.
//
// Worst cases are reserved: a job in progress holds its max_cost_msat until its charge is known, so jobs
// running side by side can never together be charged more than is left. Not thread-safe: the node's mutex
// guards it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "consumer/consumer.hpp"

namespace infernet::consumer::internal {

// The UTC calendar day (days since 1970-01-01) and month (year * 12 + month - 1) of a unix time.
int64_t utc_day(int64_t unix_seconds);
int64_t utc_month(int64_t unix_seconds);
// Unix seconds of the start of the UTC day / month containing `unix_seconds`.
int64_t utc_day_start(int64_t unix_seconds);
int64_t utc_month_start(int64_t unix_seconds);

using BudgetPeriodStatus = AccountBudgetStatus;

// A threshold of a period's limit that spending reached.
struct BudgetCrossing {
  std::string period;
  uint32_t percent = 0;
  uint64_t spent_msat = 0;
  uint64_t limit_msat = 0;
};

class AccountBudget {
 public:
  AccountBudget(uint64_t daily_limit_msat, uint64_t monthly_limit_msat)
      : daily_limit_(daily_limit_msat), monthly_limit_(monthly_limit_msat) {}

  bool limited() const { return daily_limit_ != 0 || monthly_limit_ != 0; }
  // What was charged so far today and this month (from the job database at start).
  void load(uint64_t spent_today, uint64_t spent_this_month, int64_t now);
  // The most a new job may commit to now: UINT64_MAX without limits.
  uint64_t available(int64_t now);
  // Holds `worst_case_msat` for a job in progress; release() gives it back.
  void reserve(uint64_t worst_case_msat);
  void release(uint64_t worst_case_msat);
  void release_all() { reserved_ = 0; }  // the node forgot its jobs (stop)
  // Counts an actual charge; returns the thresholds it made spending reach, each once per period.
  std::vector<BudgetCrossing> charge(uint64_t cost_msat, int64_t now);
  std::vector<BudgetPeriodStatus> status(int64_t now);

 private:
  void roll(int64_t now);  // a new day or month starts from nothing spent

  uint64_t daily_limit_;
  uint64_t monthly_limit_;
  int64_t day_ = -1;
  int64_t month_ = -1;
  uint64_t spent_day_ = 0;
  uint64_t spent_month_ = 0;
  uint64_t reserved_ = 0;
};

}  // namespace infernet::consumer::internal
