#include "net/http.hpp"

#include <gtest/gtest.h>

#include "net/listen_address.hpp"

namespace infernet::net {
namespace {

TEST(HttpError, BodyNamesCodeAndMessage) {
  HttpResponse response = error_response(Error{ErrorCode::kInvalidInput, "kind: must be an integer"});
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(response.body, R"({"error":{"code":"invalid_input","message":"kind: must be an integer"}})");
}

TEST(HttpError, EscapesQuotesAndControlCharacters) {
  HttpResponse response = error_response(413, "limit_exceeded", "say \"hi\"\n\x01");
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(response.body, R"({"error":{"code":"limit_exceeded","message":"say \"hi\"\n\u0001"}})");
}

TEST(HttpError, InvalidUtf8BecomesQuestionMarks) {
  HttpResponse response = error_response(400, "invalid_input", "bad \xff\xfe byte");
  EXPECT_EQ(response.body, R"({"error":{"code":"invalid_input","message":"bad ?? byte"}})");
}

TEST(HttpError, StatusPerCode) {
  EXPECT_EQ(http_status_for(ErrorCode::kUnauthorized), 401);
  EXPECT_EQ(http_status_for(ErrorCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status_for(ErrorCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(ErrorCode::kAlreadyExists), 409);
  EXPECT_EQ(http_status_for(ErrorCode::kLimitExceeded), 413);
  EXPECT_EQ(http_status_for(ErrorCode::kInternal), 500);
}

TEST(HttpRequest, PathQueryAndHeader) {
  HttpRequest request;
  request.target = "/api/v1/jobs?state=running&x=1";
  request.headers["content-type"] = "application/json";
  EXPECT_EQ(request.path(), "/api/v1/jobs");
  EXPECT_EQ(request.query(), "state=running&x=1");
  ASSERT_NE(request.header("content-type"), nullptr);
  EXPECT_EQ(*request.header("content-type"), "application/json");
  EXPECT_EQ(request.header("accept"), nullptr);
  request.target = "/plain";
  EXPECT_EQ(request.path(), "/plain");
  EXPECT_EQ(request.query(), "");
}

TEST(ListenAddress, ParsesHostAndPortAndNamesTheSettingInErrors) {
  auto v4 = parse_listen_address("relay.listen", "127.0.0.1:7447");
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 7447);
  auto v6 = parse_listen_address("relay.listen", "[::1]:0");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(url_host(v6->host), "[::1]");
  EXPECT_EQ(url_host(v4->host), "127.0.0.1");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:70000", ":7447", "::1:7447", "[::1:7447", "host:x"}) {
    auto r = parse_listen_address("relay.listen", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_TRUE(r.error().message.starts_with("relay.listen: ")) << r.error().message;
  }
}

}  // namespace
}  // namespace infernet::net
