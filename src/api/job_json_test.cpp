#include "api/job_json.hpp"

#include <gtest/gtest.h>

#include "api/api_error.hpp"
#include "api/query.hpp"

namespace infernet::api {
namespace {

TEST(JobJson, ParsesEveryFieldOfASpec) {
  auto spec = parse_job_spec(
      R"({"model":"m","prompt":"p","max_tokens":9,"temperature":1,"seed":18446744073709551615,)"
      R"("max_cost_msat":5,"priority":"low","deadline":-1,"provider":"x","open_quotes":false,)"
      R"("client_request_id":"c"})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->model, "m");
  EXPECT_EQ(spec->prompt, "p");
  EXPECT_EQ(spec->max_tokens, 9u);
  EXPECT_DOUBLE_EQ(spec->temperature, 1.0);
  EXPECT_EQ(spec->seed, UINT64_MAX);
  EXPECT_EQ(spec->max_cost_msat, 5u);
  EXPECT_EQ(spec->priority, "low");
  EXPECT_EQ(spec->deadline, -1);
  EXPECT_EQ(spec->provider, "x");
  EXPECT_FALSE(spec->open_quotes);
  EXPECT_EQ(spec->client_request_id, "c");

  auto defaults = parse_job_spec("{}");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->max_tokens, consumer::JobSpec{}.max_tokens);
  EXPECT_EQ(defaults->priority, "normal");
}

TEST(JobJson, UnknownFieldWithAnOddNameIsNotEchoed) {
  auto spec = parse_job_spec(R"({"a\"b":1})");
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().message, "request body: has an unknown field");
}

TEST(JobJson, InvalidUtf8IsReplacedNotCopied) {
  EXPECT_EQ(json_safe("plain é"), "plain é");
  EXPECT_EQ(json_safe(std::string("a\xff"
                                  "b")),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(json_safe(std::string("\xC3")), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(json_safe(std::string("\xE2\x82\xAC\xC0\xAF")), "\xE2\x82\xAC\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(JobJson, EventDataThatIsNotJsonBecomesAString) {
  consumer::JobEvent e{3, "j", "note", "not json", 1};
  auto json = event_to_json(e);
  EXPECT_EQ(json["data"], "not json");
  e.data = R"({"message":"m"})";
  EXPECT_EQ(event_to_json(e)["data"].at("message"), "m");
}

TEST(ApiError, FieldComesFromTheMessagePrefix) {
  EXPECT_EQ(field_of("max_tokens: must be from 1 to 65536"), "max_tokens");
  EXPECT_EQ(field_of("spec.model: required"), "spec.model");
  EXPECT_EQ(field_of("request body: not JSON"), "");
  EXPECT_EQ(field_of("no field here"), "");
  EXPECT_EQ(field_of(": empty"), "");
  auto e = to_api_error(Error{ErrorCode::kNotFound, "job: x not found"});
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.field, "") << "only input errors name a field";
}

TEST(Query, DecodesAndChecksParameters) {
  auto q = QueryParams::parse("model=a%2Fb+c&limit=5&state=", {"model", "limit", "state"});
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(*q->get("model"), "a/b c");
  EXPECT_EQ(q->get("state"), nullptr);
  EXPECT_EQ(**q->get_int("limit", 1, 10), 5);
  EXPECT_FALSE(q->get_int("limit", 6, 10));
  EXPECT_FALSE(q->get_uint("model"));
  EXPECT_FALSE(*q->get_uint("after"));

  EXPECT_EQ(QueryParams::parse("x=1", {"y"}).error().message, "x: unknown query parameter");
  EXPECT_EQ(QueryParams::parse("y=%4", {"y"}).error().message, "y: bad %-escape");
  EXPECT_EQ(QueryParams::parse("y=1&y=2", {"y"}).error().message, "y: given more than once");
  EXPECT_EQ(QueryParams::parse("a%20b=1", {"y"}).error().message, "query: unknown query parameter");
  std::string many;
  for (int i = 0; i < 20; ++i)
    many += "y=" + std::to_string(i) + "&";
  EXPECT_FALSE(QueryParams::parse(many, {"y"}));
  EXPECT_FALSE(QueryParams::parse(std::string(5000, 'y'), {"y"}));
}

}  // namespace
}  // namespace infernet::api
