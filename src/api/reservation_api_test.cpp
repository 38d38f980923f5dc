// The reservation routes, called directly with a consumer double that records what it was asked.
#include "api/reservation_api.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "api/fake_consumer.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;

constexpr const char* kProvider = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";

class ReservingConsumer final : public testing::FakeConsumerNode {
 public:
  Result<consumer::ReservationRecord> reserve(const consumer::ReservationSpec& spec) override {
    if (spec.slots < 1) return make_error(ErrorCode::kInvalidInput, "slots: must be from 1 to 1024");
    asked.push_back(spec);
    consumer::ReservationRecord r{"r" + std::to_string(asked.size()),
                                  kProvider,
                                  spec.slots,
                                  spec.hours,
                                  "requested",
                                  "",
                                  0,
                                  0,
                                  0,
                                  100,
                                  100};
    records.insert(records.begin(), r);
    return r;
  }
  Result<std::vector<consumer::ReservationRecord>> reservations() override { return records; }

  std::vector<consumer::ReservationSpec> asked;
  std::vector<consumer::ReservationRecord> records;
};

net::HttpResponse call(consumer::ConsumerNode& c, const std::string& method, const std::string& body) {
  net::HttpRequest request;
  request.method = method;
  request.target = "/api/v1/reservations";
  request.body = body;
  auto response = route_reservation_request(c, 1024, request, "reservations");
  EXPECT_TRUE(response.has_value());
  return response.value_or(net::HttpResponse{});
}

TEST(ReservationApi, PostsAndLists) {
  ReservingConsumer c;
  auto made = call(c, "POST", std::string(R"({"provider":")") + kProvider + R"(","slots":2,"hours":3})");
  ASSERT_EQ(made.status, 201) << made.body;
  ASSERT_EQ(c.asked.size(), 1u);
  EXPECT_EQ(c.asked[0].provider, kProvider);
  EXPECT_EQ(c.asked[0].slots, 2u);
  EXPECT_EQ(c.asked[0].hours, 3u);
  EXPECT_EQ(json::parse(made.body).at("state"), "requested");

  c.records[0].state = "accepted";
  c.records[0].start = 1000;
  c.records[0].end = 1000 + 3 * 3600;
  c.records[0].discount_percent = 20;
  auto listed = call(c, "GET", "");
  ASSERT_EQ(listed.status, 200) << listed.body;
  const json::value answer = json::parse(listed.body);
  const auto& first = answer.at("reservations").as_array().at(0).as_object();
  EXPECT_EQ(first.at("state"), "accepted");
  EXPECT_EQ(first.at("discount_percent"), 20);
  EXPECT_EQ(first.at("end"), 1000 + 3 * 3600);
  EXPECT_TRUE(first.at("npub").as_string().starts_with("npub1"));
}

TEST(ReservationApi, BadInputIsRefusedNamingTheFieldAndChangesNothing) {
  ReservingConsumer c;
  for (const auto& [body, message] : std::vector<std::pair<std::string, std::string>>{
           {"[]", "body: must be a JSON object"},
           {R"({"slots":1})", "provider: required"},
           {R"({"provider":"x","slots":"two"})", "slots: must be a positive integer"},
           {R"({"provider":"x","hours":-1})", "hours: must be a positive integer"},
           {R"({"provider":"x","color":"red"})", "color: unknown field"},
           {R"({"provider":"x","slots":0})", "slots: must be from 1 to 1024"}}) {
    auto r = call(c, "POST", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find(message), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_TRUE(c.asked.empty());
  EXPECT_EQ(call(c, "POST", std::string(2000, ' ')).status, 413);
  EXPECT_EQ(call(c, "DELETE", "").status, 405);
}

TEST(ReservationApi, AConsumerThatCannotReserveSaysSo) {
  testing::FakeConsumerNode plain;
  auto r = call(plain, "POST", std::string(R"({"provider":")") + kProvider + "\"}");
  EXPECT_GE(r.status, 500) << r.body;
}

}  // namespace
}  // namespace infernet::api
