#include "consumer/internal/account_budget.hpp"

#include <algorithm>
#include <limits>

namespace infernet::consumer::internal {
namespace {

constexpr int64_t kDay = 86400;
constexpr uint32_t kThresholds[] = {50, 80, 100};

// floor division, for times before 1970 too
int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

struct Civil {
  int64_t year;
  unsigned month;  // 1..12
};

// The proleptic Gregorian date of a day count (H. Hinnant's civil_from_days).
Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = floor_div(z, 146097);
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m};
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = floor_div(y, 400);
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// ceil(limit * percent / 100) without overflow (percent <= 100).
uint64_t level(uint64_t limit, uint32_t percent) {
  return limit / 100 * percent + (limit % 100 * percent + 99) / 100;
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

uint64_t left(uint64_t limit, uint64_t spent, uint64_t reserved) {
  const uint64_t used = saturating_add(spent, reserved);
  return used >= limit ? 0 : limit - used;
}

void crossings(const char* period, uint64_t limit, uint64_t before, uint64_t after,
               std::vector<BudgetCrossing>& out) {
  if (limit == 0) return;
  for (uint32_t p : kThresholds) {
    const uint64_t at = level(limit, p);
    if (before < at && after >= at) out.push_back({period, p, after, limit});
  }
}

}  // namespace

int64_t utc_day(int64_t unix_seconds) {
  return floor_div(unix_seconds, kDay);
}

int64_t utc_month(int64_t unix_seconds) {
  const Civil c = civil_from_days(utc_day(unix_seconds));
  return c.year * 12 + c.month - 1;
}

int64_t utc_day_start(int64_t unix_seconds) {
  return utc_day(unix_seconds) * kDay;
}

int64_t utc_month_start(int64_t unix_seconds) {
  const Civil c = civil_from_days(utc_day(unix_seconds));
  return days_from_civil(c.year, c.month, 1) * kDay;
}

void AccountBudget::load(uint64_t spent_today, uint64_t spent_this_month, int64_t now) {
  day_ = utc_day(now);
  month_ = utc_month(now);
  spent_day_ = spent_today;
  spent_month_ = spent_this_month;
}

void AccountBudget::roll(int64_t now) {
  if (const int64_t d = utc_day(now); d != day_) {
    day_ = d;
    spent_day_ = 0;
  }
  if (const int64_t m = utc_month(now); m != month_) {
    month_ = m;
    spent_month_ = 0;
  }
}

uint64_t AccountBudget::available(int64_t now) {
  roll(now);
  uint64_t out = std::numeric_limits<uint64_t>::max();
  if (daily_limit_ != 0) out = std::min(out, left(daily_limit_, spent_day_, reserved_));
  if (monthly_limit_ != 0) out = std::min(out, left(monthly_limit_, spent_month_, reserved_));
  return out;
}

void AccountBudget::reserve(uint64_t worst_case_msat) {
  reserved_ = saturating_add(reserved_, worst_case_msat);
}

void AccountBudget::release(uint64_t worst_case_msat) {
  reserved_ -= std::min(reserved_, worst_case_msat);
}

std::vector<BudgetCrossing> AccountBudget::charge(uint64_t cost_msat, int64_t now) {
  roll(now);
  std::vector<BudgetCrossing> out;
  const uint64_t day_before = spent_day_;
  const uint64_t month_before = spent_month_;
  spent_day_ = saturating_add(spent_day_, cost_msat);
  spent_month_ = saturating_add(spent_month_, cost_msat);
  crossings("daily", daily_limit_, day_before, spent_day_, out);
  crossings("monthly", monthly_limit_, month_before, spent_month_, out);
  return out;
}

std::vector<BudgetPeriodStatus> AccountBudget::status(int64_t now) {
  roll(now);
  const Civil c = civil_from_days(utc_day(now));
  const int64_t next_month =
      days_from_civil(c.month == 12 ? c.year + 1 : c.year, c.month == 12 ? 1 : c.month + 1, 1);
  return {
      {"daily", daily_limit_, spent_day_, reserved_,
       daily_limit_ == 0 ? 0 : left(daily_limit_, spent_day_, reserved_), utc_day_start(now) + kDay},
      {"monthly", monthly_limit_, spent_month_, reserved_,
       monthly_limit_ == 0 ? 0 : left(monthly_limit_, spent_month_, reserved_), next_month * kDay},
  };
}

}  // namespace infernet::consumer::internal
