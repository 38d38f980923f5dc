// The webhook outbox with a fake clock, a fake receiver and an in-memory notification log: order, head of
// line, the retry schedule, type filters, persistence across a reopen, and disabling after the limits.
#include "notify/outbox.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "notify/signature.hpp"

namespace infernet::notify {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-outbox-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    reopen();
  }
  void TearDown() override {
    outbox_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  // Opens the store and an outbox over it again, as a restarted node does.
  void reopen() {
    outbox_.reset();
    store_.reset();
    auto store = WebhookStore::open((dir_ / "webhooks.db").string());
    ASSERT_TRUE(store) << store.error().to_string();
    store_ = std::move(*store);
    OutboxOptions options = options_;
    options.now_ms = [this] { return now_; };
    options.random_unit = [this] { return jitter_unit_; };
    outbox_ = std::make_unique<Outbox>(
        *store_,
        [this](uint64_t after, size_t limit) -> Result<std::vector<consumer::Notification>> {
          std::vector<consumer::Notification> out;
          for (const auto& n : log_) {
            if (n.id > after && out.size() < limit) out.push_back(n);
          }
          return out;
        },
        [this](const Delivery& d) -> Result<int> {
          received_.push_back(d);
          return answer_;
        },
        options);
  }

  uint64_t add_webhook(std::vector<std::string> types = {}) {
    Webhook w;
    w.url = "http://127.0.0.1:9/hook";
    w.types = std::move(types);
    w.secret = "whsec_0123456789abcdef";
    w.created_at = now_;
    auto added = store_->add(w);
    EXPECT_TRUE(added) << added.error().to_string();
    return added ? added->id : 0;
  }

  void log(const std::string& type) {
    const uint64_t id = log_.size() + 1;
    log_.push_back(consumer::Notification{id, type, "job" + std::to_string(id), now_, R"({"state":"x"})"});
    outbox_->note_latest(id);
  }

  Webhook webhook(uint64_t id) {
    auto w = store_->get(id);
    EXPECT_TRUE(w) << w.error().to_string();
    return w ? *w : Webhook{};
  }

  // The notification ids of the deliveries so far.
  std::vector<uint64_t> delivered_ids() {
    std::vector<uint64_t> out;
    for (const auto& d : received_)
      out.push_back(boost::json::parse(d.body).at("id").to_number<uint64_t>());
    return out;
  }

  int64_t poll() {
    auto due = outbox_->poll();
    EXPECT_TRUE(due) << due.error().to_string();
    return due ? *due : -1;
  }

  fs::path dir_;
  OutboxOptions options_;
  int64_t now_ = 1'700'000'000'000;
  double jitter_unit_ = 0;
  Result<int> answer_ = 200;
  std::vector<consumer::Notification> log_;
  std::vector<Delivery> received_;
  std::unique_ptr<WebhookStore> store_;
  std::unique_ptr<Outbox> outbox_;
};

TEST(RetryDelayTest, DoublesFromOneSecondToSixtyWithJitterOnTop) {
  OutboxOptions o;
  std::vector<int64_t> delays;
  for (uint32_t n = 1; n <= 9; ++n)
    delays.push_back(retry_delay(n, o, 0).count());
  EXPECT_EQ(delays, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000}));
  EXPECT_EQ(retry_delay(1, o, 0.5).count(), 1100);
  EXPECT_EQ(retry_delay(7, o, 0.999999).count(), 71999);
  EXPECT_EQ(retry_delay(1000, o, 0).count(), 60000);
}

TEST_F(OutboxTest, DeliversEveryNotificationInOrderSignedOnce) {
  const uint64_t id = add_webhook();
  for (int i = 0; i < 5; ++i)
    log("job.completed");
  EXPECT_EQ(poll(), 0);
  EXPECT_EQ(delivered_ids(), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(poll(), 0);
  EXPECT_EQ(received_.size(), 5u);  // nothing twice
  const Delivery& d = received_[2];
  std::string signature;
  std::string notification_id;
  for (const auto& [name, value] : d.headers) {
    if (name == "Infernet-Signature") signature = value;
    if (name == "Infernet-Notification-Id") notification_id = value;
  }
  EXPECT_EQ(notification_id, "3");
  EXPECT_TRUE(verify_signature("whsec_0123456789abcdef", signature, d.body, now_ / 1000));
  auto body = boost::json::parse(d.body).as_object();
  EXPECT_EQ(body.at("type").as_string(), "job.completed");
  EXPECT_EQ(body.at("job_id").as_string(), "job3");
  EXPECT_EQ(body.at("data").at("state").as_string(), "x");
  Webhook w = webhook(id);
  EXPECT_EQ(w.cursor, 5u);
  EXPECT_EQ(w.delivered, 5u);
}

TEST_F(OutboxTest, AFailingHeadIsRetriedOnScheduleAndLaterNotificationsWaitBehindIt) {
  const uint64_t id = add_webhook();
  log("job.completed");
  log("job.failed");
  log("job.completed");
  answer_ = 503;
  const int64_t start = now_;
  std::vector<int64_t> waits;
  for (int i = 0; i < 8; ++i) {
    const int64_t due = poll();
    ASSERT_GT(due, now_);
    waits.push_back(due - now_);
    // Before it is due nothing is sent.
    const size_t sent = received_.size();
    now_ = due - 1;
    EXPECT_EQ(poll(), due);
    EXPECT_EQ(received_.size(), sent);
    now_ = due;
  }
  EXPECT_EQ(waits, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000}));
  for (uint64_t n : delivered_ids())
    EXPECT_EQ(n, 1u);  // only ever the head
  Webhook w = webhook(id);
  EXPECT_EQ(w.failures, 8u);
  EXPECT_EQ(w.failing_since, start);
  EXPECT_EQ(w.last_error, "notification 1: answered HTTP 503");
  EXPECT_EQ(w.cursor, 0u);

  // A connection error counts the same; then the receiver recovers and gets everything, in order.
  answer_ = make_error(ErrorCode::kIo, "connect 127.0.0.1:9: Connection refused");
  EXPECT_GT(poll(), now_);
  EXPECT_EQ(webhook(id).last_error, "notification 1: connect 127.0.0.1:9: Connection refused");
  now_ += 120'000;
  received_.clear();
  answer_ = 204;
  EXPECT_EQ(poll(), 0);
  EXPECT_EQ(delivered_ids(), (std::vector<uint64_t>{1, 2, 3}));
  w = webhook(id);
  EXPECT_EQ(w.failures, 0u);
  EXPECT_EQ(w.failing_since, 0);
  EXPECT_EQ(w.last_error, "");
}

TEST_F(OutboxTest, JitterLengthensTheWait) {
  add_webhook();
  log("job.completed");
  answer_ = 500;
  jitter_unit_ = 0.5;
  EXPECT_EQ(poll() - now_, 1100);
}

TEST_F(OutboxTest, OnlyTheTypesAskedForAreDelivered) {
  const uint64_t id = add_webhook({"job.failed"});
  log("job.submitted");
  log("job.failed");
  log("job.completed");
  log("job.completed");
  EXPECT_EQ(poll(), 0);
  EXPECT_EQ(delivered_ids(), (std::vector<uint64_t>{2}));
  EXPECT_EQ(webhook(id).cursor, 4u);  // passed over the rest
}

TEST_F(OutboxTest, TheOutboxSurvivesAReopen) {
  const uint64_t id = add_webhook();
  log("job.completed");
  log("job.completed");
  EXPECT_EQ(poll(), 0);
  answer_ = 503;
  log("job.failed");
  log("job.completed");
  const int64_t due = poll();
  ASSERT_EQ(due, now_ + 1000);

  reopen();  // the node restarts while the receiver is down
  outbox_->note_latest(log_.size());
  now_ = due - 10;
  EXPECT_EQ(poll(), due);  // the retry schedule was kept
  now_ = due;
  EXPECT_EQ(poll(), due + 2000);  // and the failure count
  answer_ = 200;
  now_ = due + 2000;
  EXPECT_EQ(poll(), 0);
  EXPECT_EQ(delivered_ids(), (std::vector<uint64_t>{1, 2, 3, 3, 3, 4}));
  EXPECT_EQ(webhook(id).delivered, 4u);
}

TEST_F(OutboxTest, AWebhookFailingPastTheTimeLimitIsDisabledWithTheReason) {
  options_.disable_after = 10s;
  reopen();
  const uint64_t id = add_webhook();
  log("job.completed");
  answer_ = 503;
  for (int i = 0; i < 10 && webhook(id).disabled_reason.empty(); ++i) {
    const int64_t due = poll();
    if (due != 0) now_ = due;
  }
  Webhook w = webhook(id);
  ASSERT_FALSE(w.disabled_reason.empty());
  EXPECT_TRUE(w.disabled_reason.find("longer than 10 s") != std::string::npos) << w.disabled_reason;
  EXPECT_TRUE(w.disabled_reason.find("answered HTTP 503") != std::string::npos) << w.disabled_reason;
  const size_t sent = received_.size();
  EXPECT_EQ(sent, 5u);  // at 0, 1, 3, 7 s and the one at 15 s that passed the limit
  now_ += 3'600'000;
  answer_ = 200;
  EXPECT_EQ(poll(), 0);
  EXPECT_EQ(received_.size(), sent);  // disabled: nothing more
}

TEST_F(OutboxTest, AWebhookTooFarBehindWhileFailingIsDisabled) {
  options_.max_behind = 3;
  reopen();
  const uint64_t id = add_webhook();
  for (int i = 0; i < 4; ++i)
    log("job.completed");
  answer_ = 503;
  poll();
  Webhook w = webhook(id);
  EXPECT_TRUE(w.disabled_reason.starts_with("more than 3 notifications behind")) << w.disabled_reason;
}

}  // namespace
}  // namespace infernet::notify
