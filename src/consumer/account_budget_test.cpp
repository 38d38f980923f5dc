#include "consumer/internal/account_budget.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace infernet::consumer::internal {
namespace {

// 2026-03-31 23:59:59 UTC and the second after.
constexpr int64_t kEndOfMarch = 1775001599;
constexpr int64_t kFirstOfApril = kEndOfMarch + 1;

TEST(UtcCalendar, DaysAndMonthsFollowTheUtcCalendar) {
  EXPECT_EQ(utc_day(0), 0);
  EXPECT_EQ(utc_day(-1), -1);
  EXPECT_EQ(utc_month(0), 1970 * 12);
  EXPECT_EQ(utc_month(kEndOfMarch), 2026 * 12 + 2);
  EXPECT_EQ(utc_month(kFirstOfApril), 2026 * 12 + 3);
  EXPECT_EQ(utc_month_start(kFirstOfApril + 12345), kFirstOfApril);
  EXPECT_EQ(utc_day_start(kFirstOfApril + 12345), kFirstOfApril);
  EXPECT_EQ(utc_month_start(kEndOfMarch), kFirstOfApril - 31 * 86400);
  // A leap day belongs to February.
  EXPECT_EQ(utc_month(951782400), 2000 * 12 + 1);  // 2000-02-29
}

TEST(AccountBudget, WithoutLimitsEverythingIsAvailable) {
  AccountBudget b(0, 0);
  EXPECT_FALSE(b.limited());
  EXPECT_EQ(b.available(kEndOfMarch), std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(b.charge(1000, kEndOfMarch).empty());
}

TEST(AccountBudget, ReservationsAndChargesReduceWhatIsLeftOfTheTighterLimit) {
  AccountBudget b(1000, 5000);
  b.load(100, 4500, kEndOfMarch);
  EXPECT_EQ(b.available(kEndOfMarch), 500u);  // the month is tighter
  b.reserve(300);
  EXPECT_EQ(b.available(kEndOfMarch), 200u);
  b.release(300);
  (void)b.charge(300, kEndOfMarch);
  EXPECT_EQ(b.available(kEndOfMarch), 200u);
  // A new day and a new month start from nothing spent; reservations stay.
  b.reserve(50);
  EXPECT_EQ(b.available(kFirstOfApril), 950u);
  auto s = b.status(kFirstOfApril);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].period, "daily");
  EXPECT_EQ(s[0].spent_msat, 0u);
  EXPECT_EQ(s[0].reserved_msat, 50u);
  EXPECT_EQ(s[0].remaining_msat, 950u);
  EXPECT_EQ(s[0].resets_at, kFirstOfApril + 86400);
  EXPECT_EQ(s[1].resets_at, kFirstOfApril + 30 * 86400);
}

TEST(AccountBudget, EachThresholdIsReportedOncePerPeriodWhenReached) {
  AccountBudget b(1000, 0);
  b.load(0, 0, kEndOfMarch);
  EXPECT_TRUE(b.charge(499, kEndOfMarch).empty());
  auto c = b.charge(1, kEndOfMarch);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].period, "daily");
  EXPECT_EQ(c[0].percent, 50u);
  EXPECT_EQ(c[0].spent_msat, 500u);
  // One charge across two thresholds reports both.
  c = b.charge(600, kEndOfMarch);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].percent, 80u);
  EXPECT_EQ(c[1].percent, 100u);
  EXPECT_TRUE(b.charge(10, kEndOfMarch).empty());
  // The next day counts again.
  c = b.charge(500, kFirstOfApril);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].percent, 50u);
}

}  // namespace
}  // namespace infernet::consumer::internal
