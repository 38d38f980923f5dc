// The provider's pieces on their own: nvidia-smi parsing, pricing and the job record.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <string>

#include "provider/internal/job_records.hpp"
#include "provider/internal/pricing.hpp"
#include "provider/provider.hpp"

namespace infernet::provider {
namespace {

namespace fs = std::filesystem;

TEST(NvidiaSmi, ParsesNameAndMemoryPerLine) {
  const std::string csv =
      "NVIDIA H100 80GB HBM3, 81559\n"
      "NVIDIA GeForce RTX 4090, 24564\r\n"
      "\n"
      "Broken line without memory\n"
      "NVIDIA A100-SXM4-40GB, [N/A]\n"
      "Tesla T4, rev 2, 15360";
  auto gpus = parse_nvidia_smi_gpus(csv);
  ASSERT_EQ(gpus.size(), 3u);
  EXPECT_EQ(gpus[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpus[0].memory_mb, 81559u);
  EXPECT_EQ(gpus[1].name, "NVIDIA GeForce RTX 4090");
  EXPECT_EQ(gpus[1].memory_mb, 24564u);
  EXPECT_EQ(gpus[2].name, "Tesla T4, rev 2");
  EXPECT_EQ(gpus[2].memory_mb, 15360u);
  EXPECT_TRUE(parse_nvidia_smi_gpus("").empty());
  EXPECT_TRUE(parse_nvidia_smi_gpus("No devices were found\n").empty());
}

TEST(Hardware, ReadsThisMachine) {
  auto hw = detect_hardware();
  EXPECT_GT(hw.cpu_cores, 0u);
  EXPECT_GT(hw.memory_mb, 0u);
}

TEST(Pricing, CountsWhitespaceSeparatedWords) {
  EXPECT_EQ(internal::count_words(""), 0u);
  EXPECT_EQ(internal::count_words("  \t\n"), 0u);
  EXPECT_EQ(internal::count_words("one"), 1u);
  EXPECT_EQ(internal::count_words(" one  two\tthree\n"), 3u);
}

TEST(Pricing, EstimateFollowsTheAnnouncedPricesAndPriority) {
  protocol::Prices p;
  p.per_job_msat = 7;
  p.per_1k_input_msat = 500;
  p.per_1k_output_msat = 3000;
  p.per_second_msat = 1000;
  p.priority_percent = {{"low", 50}, {"high", 200}};
  // 7 + 500 * 40 / 1000 + 3000 * 100 / 1000 = 327; per_second is not part of an estimate.
  EXPECT_EQ(internal::estimate_cost(p, "normal", 40, 100), 327u);
  EXPECT_EQ(internal::estimate_cost(p, "high", 40, 100), 654u);
  EXPECT_EQ(internal::estimate_cost(p, "low", 40, 100), 163u);
  // 1.5 s of engine time adds 1500 msat; the cap bounds the total.
  EXPECT_EQ(internal::actual_cost(p, "normal", 40, 100, 1.5, 0), 327u + 1500u);
  EXPECT_EQ(internal::actual_cost(p, "normal", 40, 100, 1.5, 1000), 1000u);
  EXPECT_EQ(internal::actual_cost(p, "normal", 40, 10, 0, 0), 7u + 20u + 30u);
}

TEST(Pricing, FourPrioritiesNormalAsMediumAndAReservationDiscount) {
  protocol::Prices p;
  p.per_1k_output_msat = 1000;
  p.priority_percent = {{"low", 50}, {"medium", 100}, {"high", 150}, {"urgent", 300}};
  EXPECT_EQ(internal::estimate_cost(p, "urgent", 0, 1000), 3000u);
  EXPECT_EQ(internal::estimate_cost(p, "high", 0, 1000), 1500u);
  EXPECT_EQ(internal::estimate_cost(p, "medium", 0, 1000), 1000u);
  EXPECT_EQ(internal::estimate_cost(p, "normal", 0, 1000), 1000u);
  EXPECT_EQ(internal::estimate_cost(p, "low", 0, 1000), 500u);
  // A 20% reservation discount on top of the multiplier, rounded down once: 3000 * 0.8.
  EXPECT_EQ(internal::estimate_cost(p, "urgent", 0, 1000, 20), 2400u);
  EXPECT_EQ(internal::actual_cost(p, "low", 0, 333, 0, 0, 20), 133u);  // 333 * 0.5 * 0.8 = 133.2
  EXPECT_EQ(internal::estimate_cost(p, "medium", 0, 1000, 100), 0u);
}

TEST(Pricing, SaturatesInsteadOfOverflowing) {
  protocol::Prices p;
  p.per_job_msat = std::numeric_limits<uint64_t>::max() - 5;
  p.per_1k_output_msat = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(internal::estimate_cost(p, "normal", 0, 65536), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(internal::actual_cost(p, "normal", 0, 65536, 1e30, 0), std::numeric_limits<uint64_t>::max());
}

class JobRecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-provider-records-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "provider.db").string();
    auto db = store::Database::open(path_);
    ASSERT_TRUE(db) << db.error().to_string();
    db_.emplace(std::move(*db));
    ASSERT_TRUE(internal::migrate_job_records(*db_));
    auto reader = internal::JobRecordReader::open(path_);
    ASSERT_TRUE(reader) << reader.error().to_string();
    reader_.emplace(std::move(*reader));
  }
  void TearDown() override {
    reader_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }

  internal::JobRecord record(const std::string& request_id, const std::string& job_id) {
    internal::JobRecord r;
    r.request_id = request_id;
    r.consumer = std::string(64, 'c');
    r.job_id = job_id;
    r.attempt = 1;
    r.model = "fake-echo";
    r.created_at = r.updated_at = 1000;
    return r;
  }

  fs::path dir_;
  std::string path_;
  std::optional<store::Database> db_;
  std::optional<internal::JobRecordReader> reader_;
};

TEST_F(JobRecordsTest, FindsAJobByRequestOrByConsumerJobAndAttempt) {
  ASSERT_TRUE(internal::insert_job_record(*db_, record("r1", "j1")));
  auto by_request = reader_->find("r1", "", "", 0);
  ASSERT_TRUE(by_request && *by_request);
  EXPECT_EQ((*by_request)->job_id, "j1");
  auto by_job = reader_->find("other", std::string(64, 'c'), "j1", 1);
  ASSERT_TRUE(by_job && *by_job);
  EXPECT_EQ((*by_job)->request_id, "r1");
  auto other_attempt = reader_->find("other", std::string(64, 'c'), "j1", 2);
  ASSERT_TRUE(other_attempt);
  EXPECT_FALSE(*other_attempt);
  // The same job may not be recorded twice under another request.
  EXPECT_FALSE(internal::insert_job_record(*db_, record("r2", "j1")));
}

TEST_F(JobRecordsTest, TheFirstResultStands) {
  ASSERT_TRUE(internal::insert_job_record(*db_, record("r1", "j1")));
  ASSERT_TRUE(internal::insert_job_record(*db_, record("r2", "j2")));
  ASSERT_TRUE(internal::mark_job_running(*db_, "r1", 1001));
  auto left = reader_->unfinished();
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 2u);

  auto first =
      internal::finish_job_record(*db_, "r1", internal::JobRecordState::kCompleted, "{\"a\":1}", 42, 1002);
  ASSERT_TRUE(first);
  EXPECT_TRUE(*first);
  auto second = internal::finish_job_record(*db_, "r1", internal::JobRecordState::kFailed, "{}", 0, 1003);
  ASSERT_TRUE(second);
  EXPECT_FALSE(*second);
  auto r1 = reader_->find("r1", "", "", 0);
  ASSERT_TRUE(r1 && *r1);
  EXPECT_EQ((*r1)->state, internal::JobRecordState::kCompleted);
  EXPECT_EQ((*r1)->result_event, "{\"a\":1}");
  EXPECT_EQ((*r1)->cost_msat, 42u);
  // Finished jobs stay finished when marked running late.
  ASSERT_TRUE(internal::mark_job_running(*db_, "r1", 1004));
  EXPECT_EQ((*reader_->find("r1", "", "", 0))->state, internal::JobRecordState::kCompleted);

  left = reader_->unfinished();
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().request_id, "r2");
}

TEST_F(JobRecordsTest, ReceiptsAndLastSeen) {
  ASSERT_TRUE(internal::insert_job_record(*db_, record("r1", "j1")));
  auto found = internal::record_receipt(*db_, std::string(64, 'c'), "j1", 1, 40, 1005);
  ASSERT_TRUE(found);
  EXPECT_TRUE(*found);
  auto other_consumer = internal::record_receipt(*db_, std::string(64, 'd'), "j1", 1, 40, 1005);
  ASSERT_TRUE(other_consumer);
  EXPECT_FALSE(*other_consumer);
  EXPECT_EQ(*(*reader_->find("r1", "", "", 0))->receipt_cost_msat, 40u);

  EXPECT_EQ(*reader_->last_seen(), 0);
  ASSERT_TRUE(internal::save_last_seen(*db_, 500));
  ASSERT_TRUE(internal::save_last_seen(*db_, 400));  // never goes back
  EXPECT_EQ(*reader_->last_seen(), 500);
}

}  // namespace
}  // namespace infernet::provider
