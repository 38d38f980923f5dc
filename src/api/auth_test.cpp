// The access checks in front of the API (access.hpp, auth.hpp, rate_limit.hpp), through make_handlers with
// the fake consumer, so each check is seen as a client sees it.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/access.hpp"
#include "api/api.hpp"
#include "api/fake_consumer.hpp"
#include "core/encoding.hpp"
#include "net/io_pool.hpp"
#include "net/net_testing.hpp"
#include "net/websocket_client.hpp"
#include "nostr/nip98.hpp"

namespace infernet::api {
namespace {

namespace json = boost::json;
using net::testing::ClientEvents;

constexpr int64_t kNow = 1'800'000'000;
const std::string kHost = "127.0.0.1:7448";
const std::string kJobBody = R"({"model":"tiny","prompt":"hi"})";

net::HttpRequest request(std::string method, std::string target, std::string remote = "127.0.0.1") {
  net::HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers["host"] = kHost;
  r.remote_address = std::move(remote);
  return r;
}

json::object error_of(const net::HttpResponse& response) {
  boost::system::error_code ec;
  json::value v = json::parse(response.body, ec);
  EXPECT_FALSE(ec) << response.body;
  if (ec || !v.is_object() || !v.as_object().contains("error")) return {};
  return v.as_object()["error"].as_object();
}

std::string header_of(const net::HttpResponse& response, std::string_view name) {
  for (const auto& [k, v] : response.headers) {
    if (k == name) return v;
  }
  return "";
}

// Expects a 401 whose message starts with `reason`, with a WWW-Authenticate challenge.
void expect_401(const net::HttpResponse& response, std::string_view reason) {
  EXPECT_EQ(response.status, 401) << response.body;
  json::object e = error_of(response);
  EXPECT_EQ(e["code"], "unauthorized");
  std::string message = e.contains("message") ? std::string(e["message"].as_string()) : "";
  EXPECT_EQ(message.rfind(reason, 0), 0u) << "message: " << message << "\nexpected: " << reason;
  EXPECT_NE(header_of(response, "WWW-Authenticate").find("Bearer"), std::string::npos);
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = ApiKeyStore::open(":memory:");
    ASSERT_TRUE(store);
    keys_ = std::move(*store);
  }

  net::ServerHandlers handlers(AccessOptions access = {}) {
    access.credentials.keys = keys_;
    access.credentials.nostr_keys.push_back({nostr_.public_key().hex(), Scope::kSubmit});
    access.credentials.nostr_keys.push_back({reader_.public_key().hex(), Scope::kRead});
    access.credentials.now_unix = [this] { return now_; };
    if (!access.steady_ms) access.steady_ms = [this] { return steady_ms_; };
    ApiOptions options;
    options.access = std::move(access);
    return make_handlers(consumer_, std::move(options));
  }

  std::string key(Scope scope, int64_t expires_at = 0) {
    auto made = keys_->create("test", scope, now_, expires_at);
    EXPECT_TRUE(made);
    return made->secret;
  }

  // A NIP-98 header for `r` as it arrives (http://Host/target), signed by `keys` at `created_at`.
  std::string nip98(const net::HttpRequest& r, const nostr::Keypair& keys, int64_t created_at = kNow,
                    std::string url = "") {
    if (url.empty()) url = "http://" + kHost + r.target;
    nostr::nip98::RequestTarget target{url, r.method, std::nullopt};
    if (!r.body.empty()) target.body = as_bytes(r.body);
    return nostr::nip98::create_token(keys, target, created_at);
  }

  testing::FakeConsumerNode consumer_;
  std::shared_ptr<ApiKeyStore> keys_;
  nostr::Keypair nostr_ = nostr::Keypair::generate();
  nostr::Keypair reader_ = nostr::Keypair::generate();
  int64_t now_ = kNow;
  int64_t steady_ms_ = 1'000'000;
};

TEST_F(AccessTest, AutoAllowsLoopbackWithoutCredentialsAndNothingElse) {
  auto h = handlers();
  EXPECT_EQ(h.http(request("GET", "/api/v1/jobs")).status, 200);
  EXPECT_EQ(h.http(request("GET", "/api/v1/jobs", "::1")).status, 200);
  EXPECT_EQ(h.http(request("GET", "/api/v1/jobs", "::ffff:127.0.0.1")).status, 200);
  expect_401(h.http(request("GET", "/api/v1/jobs", "192.168.1.20")), "missing credentials");
  // A page whose name was rebound to 127.0.0.1 still says its own name in Host.
  auto rebound = request("GET", "/api/v1/jobs");
  rebound.headers["host"] = "evil.example:7448";
  expect_401(h.http(rebound), "missing credentials");
}

TEST_F(AccessTest, RequiredModeRefusesLoopbackWithoutCredentials) {
  AccessOptions access;
  access.mode = AuthMode::kRequired;
  auto h = handlers(access);
  expect_401(h.http(request("GET", "/api/v1/jobs")), "missing credentials");
  auto r = request("GET", "/api/v1/jobs");
  r.headers["authorization"] = "Bearer " + key(Scope::kRead);
  EXPECT_EQ(h.http(r).status, 200);
}

TEST_F(AccessTest, ApiKeysAreCheckedEvenFromLoopbackAndScopesHold) {
  auto h = handlers();
  auto post = request("POST", "/api/v1/jobs");
  post.body = kJobBody;

  post.headers["authorization"] = "Bearer inf_" + std::string(64, '0');
  expect_401(h.http(post), "unknown or revoked API key");
  post.headers["authorization"] = "Basic dXNlcjpwYXNz";
  expect_401(h.http(post), "unsupported authorization scheme");

  post.headers["authorization"] = "Bearer " + key(Scope::kRead);
  auto refused = h.http(post);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(error_of(refused)["code"], "insufficient_scope");
  EXPECT_TRUE(consumer_.list({})->empty()) << "a refused POST stored a job";

  auto get = request("GET", "/api/v1/jobs", "10.0.0.7");
  get.headers["authorization"] = post.headers["authorization"];
  EXPECT_EQ(h.http(get).status, 200);

  std::string submit = key(Scope::kSubmit);
  post.headers["authorization"] = "Bearer " + submit;
  post.remote_address = "10.0.0.7";
  EXPECT_EQ(h.http(post).status, 201);
  EXPECT_EQ(consumer_.list({})->size(), 1u);

  auto listed = keys_->list();
  ASSERT_TRUE(listed);
  for (const auto& k : *listed) {
    if (k.scope == Scope::kSubmit) ASSERT_TRUE(keys_->revoke(k.id));
  }
  expect_401(h.http(post), "unknown or revoked API key");
  EXPECT_EQ(consumer_.list({})->size(), 1u);
}

TEST_F(AccessTest, ExpiredKeyIs401) {
  auto h = handlers();
  auto get = request("GET", "/api/v1/jobs");
  get.headers["authorization"] = "Bearer " + key(Scope::kRead, kNow + 60);
  EXPECT_EQ(h.http(get).status, 200);
  now_ = kNow + 60;
  expect_401(h.http(get), "expired API key");
}

TEST_F(AccessTest, Nip98TokenIsAcceptedOnceForItsRequest) {
  auto h = handlers();
  auto post = request("POST", "/api/v1/jobs", "203.0.113.9");
  post.body = kJobBody;
  post.headers["authorization"] = nip98(post, nostr_);
  EXPECT_EQ(h.http(post).status, 201);
  expect_401(h.http(post), "NIP-98: token already used");
  EXPECT_EQ(consumer_.list({})->size(), 1u);

  // The scheme the client signed may be https (a TLS proxy in front), host and target as they arrive.
  auto get = request("GET", "/api/v1/jobs?limit=5", "203.0.113.9");
  get.headers["authorization"] = nip98(get, nostr_, kNow, "https://" + kHost + "/api/v1/jobs?limit=5");
  EXPECT_EQ(h.http(get).status, 200);
}

TEST_F(AccessTest, Nip98RefusalsSayWhy) {
  auto h = handlers();
  auto post = request("POST", "/api/v1/jobs", "203.0.113.9");
  post.body = kJobBody;

  post.headers["authorization"] = nip98(post, nostr_, kNow - 61);
  expect_401(h.http(post), "NIP-98: token expired");

  post.headers["authorization"] = nip98(post, nostr_, kNow, "http://" + kHost + "/api/v1/jobs/other");
  expect_401(h.http(post), "NIP-98: URL does not match");

  auto as_get = post;
  as_get.method = "GET";
  post.headers["authorization"] = nip98(as_get, nostr_);
  expect_401(h.http(post), "NIP-98: method does not match");

  auto other_body = post;
  other_body.body = R"({"model":"tiny","prompt":"something else"})";
  post.headers["authorization"] = nip98(other_body, nostr_);
  expect_401(h.http(post), "NIP-98: payload hash does not match");

  auto stranger = nostr::Keypair::generate();
  post.headers["authorization"] = nip98(post, stranger);
  expect_401(h.http(post), "NIP-98: key");

  post.headers["authorization"] = "Nostr bm90IGFuIGV2ZW50";
  expect_401(h.http(post), "NIP-98: ");

  post.headers["authorization"] = nip98(post, reader_);
  auto scoped = h.http(post);
  EXPECT_EQ(scoped.status, 403) << scoped.body;

  EXPECT_TRUE(consumer_.list({})->empty()) << "a refused POST stored a job";
}

TEST_F(AccessTest, RateLimitAnswers429WithRetryAfter) {
  AccessOptions access;
  access.rate_limit.per_minute = 60;  // one a second
  access.rate_limit.burst = 2;
  auto h = handlers(access);
  auto get = request("GET", "/api/v1/jobs");
  EXPECT_EQ(h.http(get).status, 200);
  EXPECT_EQ(h.http(get).status, 200);
  auto limited = h.http(get);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(error_of(limited)["code"], "rate_limited");
  EXPECT_EQ(header_of(limited, "Retry-After"), "1");

  // Another principal has its own bucket.
  auto keyed = request("GET", "/api/v1/jobs");
  keyed.headers["authorization"] = "Bearer " + key(Scope::kRead);
  EXPECT_EQ(h.http(keyed).status, 200);

  steady_ms_ += 1000;
  EXPECT_EQ(h.http(get).status, 200);
  EXPECT_EQ(h.http(get).status, 429);

  // A POST refused by the limit stores nothing.
  auto post = request("POST", "/api/v1/jobs");
  post.body = kJobBody;
  EXPECT_EQ(h.http(post).status, 429);
  EXPECT_TRUE(consumer_.list({})->empty());
}

TEST(RateLimiter, RetryAfterCountsWholeSecondsAndMemoryIsBounded) {
  int64_t now = 0;
  RateLimiter limiter({.per_minute = 6, .burst = 1, .max_principals = 3}, [&] { return now; });
  EXPECT_TRUE(limiter.take("a").allowed);
  auto refused = limiter.take("a");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 10);
  now += 4000;
  EXPECT_EQ(limiter.take("a").retry_after_seconds, 6);
  for (int i = 0; i < 100; ++i)
    limiter.take("p" + std::to_string(i));
  EXPECT_LE(limiter.principals(), 3u);

  RateLimiter off({.per_minute = 0, .burst = 1}, [&] { return now; });
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(off.take("a").allowed);
}

TEST_F(AccessTest, CorsPreflightAndHeadersForAllowedOriginsOnly) {
  AccessOptions access;
  access.mode = AuthMode::kRequired;
  access.cors_origins = {"https://app.example"};
  auto h = handlers(access);

  auto preflight = request("OPTIONS", "/api/v1/jobs");
  preflight.headers["origin"] = "https://app.example";
  preflight.headers["access-control-request-method"] = "POST";
  preflight.headers["access-control-request-headers"] = "authorization, content-type";
  auto answer = h.http(preflight);  // no credentials: browsers never send them on a preflight
  EXPECT_EQ(answer.status, 204);
  EXPECT_EQ(header_of(answer, "Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_NE(header_of(answer, "Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_NE(header_of(answer, "Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
  EXPECT_NE(header_of(answer, "Access-Control-Allow-Headers").find("Content-Type"), std::string::npos);
  EXPECT_FALSE(header_of(answer, "Access-Control-Max-Age").empty());
  EXPECT_EQ(header_of(answer, "Vary"), "Origin");

  auto get = request("GET", "/api/v1/jobs");
  get.headers["origin"] = "https://app.example";
  get.headers["authorization"] = "Bearer " + key(Scope::kRead);
  auto ok = h.http(get);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(header_of(ok, "Access-Control-Allow-Origin"), "https://app.example");
  EXPECT_EQ(header_of(ok, "Vary"), "Origin");
  // Errors carry the header too, so the page can read why.
  get.headers.erase("authorization");
  auto refused = h.http(get);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(header_of(refused, "Access-Control-Allow-Origin"), "https://app.example");

  for (auto* r : {&preflight, &get}) {
    r->headers["origin"] = "https://evil.example";
    auto other = h.http(*r);
    EXPECT_EQ(other.status, 403);
    EXPECT_EQ(error_of(other)["code"], "cross_origin");
    EXPECT_EQ(header_of(other, "Access-Control-Allow-Origin"), "");
  }
}

TEST_F(AccessTest, WildcardOriginAlwaysNeedsCredentials) {
  AccessOptions access;
  access.cors_origins = {"*"};
  auto h = handlers(access);
  auto get = request("GET", "/api/v1/jobs");
  get.headers["origin"] = "https://anything.example";
  expect_401(h.http(get), "missing credentials");  // even from loopback in auto mode
  get.headers["authorization"] = "Bearer " + key(Scope::kRead);
  auto ok = h.http(get);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(header_of(ok, "Access-Control-Allow-Origin"), "https://anything.example");
  // Tools without an Origin are unaffected.
  EXPECT_EQ(h.http(request("GET", "/api/v1/jobs")).status, 200);
}

TEST_F(AccessTest, AccessTokenIsForWebSocketsOnly) {
  auto h = handlers();
  auto get = request("GET", "/api/v1/jobs?access_token=" + key(Scope::kRead));
  auto refused = h.http(get);
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(error_of(refused)["field"], "access_token");
}

TEST(AccessConfig, ParsesAndRefusesSettingsNamingTheKey) {
  EXPECT_EQ(*parse_auth_mode("auto"), AuthMode::kAuto);
  EXPECT_EQ(*parse_auth_mode("required"), AuthMode::kRequired);
  EXPECT_EQ(parse_auth_mode("off").error().message.rfind("api.auth: ", 0), 0u);

  auto origins = parse_cors_origins(" https://App.example , http://localhost:3000,*");
  ASSERT_TRUE(origins) << origins.error().message;
  EXPECT_EQ(*origins, (std::vector<std::string>{"https://app.example", "http://localhost:3000", "*"}));
  for (const char* bad : {"app.example", "ftp://x", "https://x/path", "https://"}) {
    auto r = parse_cors_origins(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message.rfind("api.cors_origins: ", 0), 0u) << r.error().message;
  }

  auto keys = nostr::Keypair::generate();
  auto grants = parse_nostr_keys(keys.public_key().hex() + ":read, " + keys.public_key().hex());
  ASSERT_TRUE(grants) << grants.error().message;
  ASSERT_EQ(grants->size(), 2u);
  EXPECT_EQ((*grants)[0].scope, Scope::kRead);
  EXPECT_EQ((*grants)[1].scope, Scope::kSubmit);
  for (const std::string& bad :
       std::vector<std::string>{"npub1nope", "abc:read", keys.public_key().hex() + ":admin"}) {
    auto r = parse_nostr_keys(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message.rfind("api.nostr_keys: ", 0), 0u) << r.error().message;
  }

  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.8.9.10"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_FALSE(is_loopback_address("128.0.0.1"));
  EXPECT_FALSE(is_loopback_address("127.0.0.1.evil"));
  EXPECT_FALSE(is_loopback_address(""));
}

// WebSocket upgrades over a real server: refused ones close with 4401 and the reason; access_token works.
TEST(AccessWebSocket, UpgradesNeedCredentialsAndAcceptAccessToken) {
  testing::FakeConsumerNode consumer;
  auto store = ApiKeyStore::open(":memory:");
  ASSERT_TRUE(store);
  std::shared_ptr<ApiKeyStore> keys = std::move(*store);
  auto made = keys->create("ws", Scope::kRead, kNow, 0);
  ASSERT_TRUE(made);
  ApiServerOptions options;
  options.listen = "127.0.0.1:0";
  options.api.access.mode = AuthMode::kRequired;
  options.api.access.credentials.keys = keys;
  options.api.access.credentials.now_unix = [] { return kNow; };
  ApiServer server(consumer, options);
  ASSERT_TRUE(server.start());
  auto job = consumer.submit(consumer::JobSpec{.model = "tiny", .prompt = "hi"});
  ASSERT_TRUE(job);
  net::IoPool io(1);
  io.start();
  std::string base =
      "ws://127.0.0.1:" + std::to_string(server.port()) + "/api/v1/jobs/" + job->id + "/stream";

  auto refused = std::make_shared<ClientEvents>();
  auto c1 = net::WebSocketClient::create(io.io_context(), base, ClientEvents::handlers(refused));
  ASSERT_TRUE(c1);
  (*c1)->connect();
  ASSERT_TRUE(refused->wait_closed());
  EXPECT_EQ(refused->close_message().rfind("closed by peer: 4401", 0), 0u) << refused->close_message();
  EXPECT_NE(refused->close_message().find("missing credentials"), std::string::npos);
  EXPECT_TRUE(refused->messages.empty());

  auto wrong = std::make_shared<ClientEvents>();
  auto c2 = net::WebSocketClient::create(io.io_context(), base + "?access_token=inf_x",
                                         ClientEvents::handlers(wrong));
  ASSERT_TRUE(c2);
  (*c2)->connect();
  ASSERT_TRUE(wrong->wait_closed());
  EXPECT_NE(wrong->close_message().find("unknown or revoked API key"), std::string::npos);

  // access_token is taken out before routing: the stream sees only `after`.
  auto accepted = std::make_shared<ClientEvents>();
  auto c3 = net::WebSocketClient::create(io.io_context(), base + "?after=0&access_token=" + made->secret,
                                         ClientEvents::handlers(accepted));
  ASSERT_TRUE(c3);
  (*c3)->connect();
  ASSERT_TRUE(accepted->wait_messages(1)) << accepted->close_message();
  {
    std::lock_guard lock(accepted->mu);
    EXPECT_NE(accepted->messages[0].find("\"submitted\""), std::string::npos) << accepted->messages[0];
  }
  (*c3)->close();
  server.stop();
  io.stop();
}

}  // namespace
}  // namespace infernet::api
