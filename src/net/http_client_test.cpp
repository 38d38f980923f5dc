#include "net/http_client.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "net/server.hpp"

namespace infernet::net {
namespace {

using tcp = asio::ip::tcp;

// Answers with what it received, so the test sees exactly what the client sent.
ServerHandlers echo_handlers() {
  ServerHandlers handlers;
  handlers.http = [](const HttpRequest& request) {
    if (request.path() == "/missing") return error_response(404, "not_found", "no such thing");
    if (request.path() == "/big") return json_response(200, std::string(64 * 1024, 'x'));
    const std::string* type = request.header("content-type");
    const std::string* host = request.header("host");
    std::string body = request.method + " " + request.target + " type=" + (type ? *type : "") +
                       " host=" + (host ? *host : "") + " body=" + request.body;
    HttpResponse response = json_response(request.method == "POST" ? 201 : 200, body);
    response.headers.emplace_back("X-Reply", "yes");
    return response;
  };
  return handlers;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start()); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

  Server server_{ServerOptions{}, echo_handlers()};
};

TEST_F(HttpClientTest, GetPostDeleteReachTheServerWithTheirBodies) {
  auto client = HttpClient::create(base());
  ASSERT_TRUE(client) << client.error().message;

  auto got = client->get("/api/v1/jobs?state=running");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->content_type, "application/json");
  EXPECT_EQ(got->body, "GET /api/v1/jobs?state=running type= host=127.0.0.1:" +
                           std::to_string(server_.port()) + " body=");
  bool saw_reply_header = false;
  for (const auto& [name, value] : got->headers)
    saw_reply_header |= name == "x-reply" && value == "yes";
  EXPECT_TRUE(saw_reply_header);

  auto posted = client->post("/api/v1/jobs", R"({"model":"m"})");
  ASSERT_TRUE(posted) << posted.error().message;
  EXPECT_EQ(posted->status, 201);
  EXPECT_NE(posted->body.find("POST /api/v1/jobs type=application/json"), std::string::npos) << posted->body;
  EXPECT_NE(posted->body.find(R"(body={"model":"m"})"), std::string::npos) << posted->body;

  auto deleted = client->del("/api/v1/jobs/abc");
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ(deleted->body.substr(0, 22), "DELETE /api/v1/jobs/ab");
}

TEST_F(HttpClientTest, ErrorStatusesAreResponsesNotErrors) {
  auto client = HttpClient::create(base());
  ASSERT_TRUE(client);
  auto missing = client->get("/missing");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("no such thing"), std::string::npos);
}

TEST_F(HttpClientTest, BaseUrlPathIsAPrefixOfEveryTarget) {
  auto client = HttpClient::create(base() + "/prefix/");
  ASSERT_TRUE(client);
  auto got = client->get("/x");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->body.substr(0, 14), "GET /prefix/x ");
}

TEST_F(HttpClientTest, ResponseOverTheLimitIsRefused) {
  HttpClientOptions options;
  options.max_response_bytes = 1024;
  auto client = HttpClient::create(base(), options);
  ASSERT_TRUE(client);
  auto big = client->get("/big");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, ErrorCode::kLimitExceeded);
  auto small = client->get("/small");
  EXPECT_TRUE(small);
}

TEST_F(HttpClientTest, NothingListeningIsAConnectError) {
  uint16_t port = server_.port();
  server_.stop();
  auto client = HttpClient::create("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(client);
  auto got = client->get("/");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kIo);
  EXPECT_EQ(got.error().message.rfind("connect 127.0.0.1:" + std::to_string(port) + ": ", 0), 0u)
      << got.error().message;
}

TEST(HttpClient, SilentServerTimesOut) {
  // A listener that accepts connections (in the kernel's backlog) but never answers.
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  HttpClientOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto client =
      HttpClient::create("http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()), options);
  ASSERT_TRUE(client);
  auto started = std::chrono::steady_clock::now();
  auto got = client->get("/");
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kIo);
  EXPECT_EQ(got.error().message.rfind("timed out after 200 ms", 0), 0u) << got.error().message;
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(HttpClient, RefusesBadUrlsAndTargets) {
  EXPECT_EQ(HttpClient::create("ftp://host").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(HttpClient::create("127.0.0.1:7448").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(HttpClient::create("http://").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(HttpClient::create("http://h:99999").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(HttpClient::create("http://h/a?b=c").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(HttpClient::create("https://h").error().code, ErrorCode::kUnsupported);

  auto client = HttpClient::create("http://127.0.0.1:1");
  ASSERT_TRUE(client);
  EXPECT_EQ(client->get("no-slash").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(client->get("/a b").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(client->get("/a\r\nX-Injected: 1").error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(client->request("GE T", "/").error().code, ErrorCode::kInvalidInput);
}

TEST(HttpClient, ParsesHttpUrls) {
  auto plain = parse_http_url("HTTP://LocalHost/api");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->host, "localhost");
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->target, "/api");

  auto v6 = parse_http_url("https://[::1]:7448");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->tls);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7448);

  EXPECT_EQ(*websocket_url_for("http://127.0.0.1:7448"), "ws://127.0.0.1:7448");
  EXPECT_EQ(*websocket_url_for("https://example.org/base"), "wss://example.org/base");
  EXPECT_FALSE(websocket_url_for("ws://127.0.0.1"));
}

}  // namespace
}  // namespace infernet::net
