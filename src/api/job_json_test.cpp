#include "api/job_json.hpp"

#include <gtest/gtest.h>

#include "api/api_error.hpp"
#include "api/query.hpp"

namespace infernet::api {
namespace {

TEST(JobJson, TakesTheMarketsFields) {
  auto spec = parse_job_spec(R"({"model":"m","prompt":"p","strategy":"fastest","model_sha256":"ab"})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->strategy, "fastest");
  EXPECT_EQ(spec->model_sha256, "ab");
  auto bad = parse_job_spec(R"({"model":"m","strategy":3})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("strategy"), std::string::npos) << bad.error().message;
}

TEST(JobJson, ParsesEveryFieldOfASpec) {
  auto spec = parse_job_spec(
      R"({"model":"m","prompt":"p","max_tokens":9,"temperature":1,"seed":18446744073709551615,)"
      R"("max_cost_msat":5,"priority":"low","deadline":-1,"provider":"x","open_quotes":false,)"
      R"("client_request_id":"c","top_k":7,"top_p":0.5,"min_p":0.25,"repeat_penalty":1.5,"repeat_last_n":9,)"
      R"("stop":["a","b"],"deterministic":true})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->model, "m");
  EXPECT_EQ(spec->prompt, "p");
  EXPECT_EQ(spec->max_tokens, 9u);
  EXPECT_DOUBLE_EQ(spec->sampling.temperature, 1.0);
  EXPECT_EQ(spec->sampling.seed, UINT64_MAX);
  EXPECT_EQ(spec->sampling.top_k, 7u);
  EXPECT_DOUBLE_EQ(spec->sampling.top_p, 0.5);
  EXPECT_DOUBLE_EQ(spec->sampling.min_p, 0.25);
  EXPECT_DOUBLE_EQ(spec->sampling.repeat_penalty, 1.5);
  EXPECT_EQ(spec->sampling.repeat_last_n, 9u);
  EXPECT_EQ(spec->sampling.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(spec->deterministic);
  EXPECT_EQ(spec->max_cost_msat, 5u);
  EXPECT_EQ(spec->priority, "low");
  EXPECT_EQ(spec->deadline, -1);
  EXPECT_EQ(spec->provider, "x");
  EXPECT_FALSE(spec->open_quotes);
  EXPECT_EQ(spec->client_request_id, "c");

  auto defaults = parse_job_spec("{}");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->max_tokens, consumer::JobSpec{}.max_tokens);
  EXPECT_EQ(defaults->priority, "medium");
}

TEST(JobJson, FinishByIsDeadlinesOtherNameAndStartByIsRead) {
  auto spec = parse_job_spec(R"({"model":"m","prompt":"p","finish_by":1900000000,"start_by":1800000000})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->deadline, 1900000000);
  EXPECT_EQ(spec->start_by, 1800000000);
  auto same = parse_job_spec(R"({"model":"m","prompt":"p","deadline":1900000000,"finish_by":1900000000})");
  ASSERT_TRUE(same) << same.error().message;
  auto differ = parse_job_spec(R"({"model":"m","prompt":"p","deadline":1900000000,"finish_by":1900000001})");
  ASSERT_FALSE(differ);
  EXPECT_TRUE(differ.error().message.starts_with("finish_by: ")) << differ.error().message;
  auto bad = parse_job_spec(R"({"model":"m","prompt":"p","start_by":"soon"})");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().message.starts_with("start_by: ")) << bad.error().message;
}

TEST(ApiError, ABudgetRefusalIs402) {
  const ApiError e = to_api_error(Error{ErrorCode::kLimitExceeded,
                                        "budget: max_cost_msat 5 is more than the 4 "
                                        "msat left of the account budget"});
  EXPECT_EQ(e.status, 402);
  EXPECT_EQ(e.code, "budget_exceeded");
  EXPECT_EQ(to_api_error(Error{ErrorCode::kLimitExceeded, "body: too large"}).status, 413);
}

TEST(JobJson, ChatMessagesAndAStopStringAreRead) {
  auto spec = parse_job_spec(
      R"({"model":"m","messages":[{"role":"system","content":"brief"},{"role":"user","content":"hi","name":"ann"}],)"
      R"("stop":"END"})");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->messages, (std::vector<ChatMessage>{{"system", "brief"}, {"user", "hi"}}));
  EXPECT_EQ(spec->sampling.stop, std::vector<std::string>{"END"});
  struct Case {
    const char* body;
    const char* error;
  };
  for (const Case& c : {
           Case{R"({"messages":"hi"})", "messages: must be a list of {role, content}"},
           Case{R"({"messages":[1]})", "messages[0]: must be an object with role and content"},
           Case{R"({"messages":[{"role":"user"}]})", "messages[0].content: required"},
           Case{R"({"messages":[{"role":"user","content":"x","mood":1}]})",
                "messages[0].mood: unknown field"},
           Case{R"({"messages":[{"role":5,"content":"x"}]})", "messages[0].role: must be a string"},
           Case{R"({"stop":[1]})", "stop: must be a string or a list of strings"},
       }) {
    auto bad = parse_job_spec(c.body);
    ASSERT_FALSE(bad) << c.body;
    EXPECT_EQ(bad.error().message, c.error);
  }
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
