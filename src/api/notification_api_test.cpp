// The notification routes and stream and the webhook routes, over the API server with the fake consumer and
// real webhooks (a recording sender instead of HTTP deliveries).
#include "api/notification_api.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "api/api.hpp"
#include "api/fake_consumer.hpp"
#include "net/http_client.hpp"
#include "net/io_pool.hpp"
#include "net/net_testing.hpp"
#include "net/websocket_client.hpp"
#include "notify/signature.hpp"

namespace infernet::api {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using net::testing::ClientEvents;

class NotificationApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("infernet-notification-api-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    notify::WebhooksOptions wo;
    wo.database = (dir_ / "webhooks.db").string();
    wo.sender = [this](const notify::Delivery& d) -> Result<int> {
      std::lock_guard lock(mu_);
      deliveries_.push_back(d);
      return 200;
    };
    auto webhooks = notify::Webhooks::open(consumer_, wo);
    ASSERT_TRUE(webhooks) << webhooks.error().to_string();
    webhooks_ = std::move(*webhooks);
    ASSERT_TRUE(webhooks_->start());
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    options.api.webhooks = webhooks_.get();
    server_ = std::make_unique<ApiServer>(consumer_, options);
    ASSERT_TRUE(server_->start());
    auto client = net::HttpClient::create(server_->url());
    ASSERT_TRUE(client) << client.error().message;
    client_ = std::make_unique<net::HttpClient>(std::move(*client));
    io_.start();
  }
  void TearDown() override {
    server_->stop();
    webhooks_->stop();
    io_.stop();
    clients_.clear();  // before the io context they were made on
    fs::remove_all(dir_);
  }

  net::HttpResponse request(const std::string& method, const std::string& target,
                            const std::string& body = "") {
    auto r = client_->request(method, target, body);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : net::HttpResponse{};
  }
  static json::object body_of(const net::HttpResponse& r) { return json::parse(r.body).as_object(); }

  std::shared_ptr<ClientEvents> stream(const std::string& query) {
    auto events = std::make_shared<ClientEvents>();
    std::string url =
        "ws://127.0.0.1:" + std::to_string(server_->port()) + "/api/v1/notifications/stream" + query;
    auto client = net::WebSocketClient::create(io_.io_context(), url, ClientEvents::handlers(events));
    EXPECT_TRUE(client) << client.error().message;
    (*client)->connect();
    clients_.push_back(*client);
    return events;
  }

  std::vector<uint64_t> ids_of(ClientEvents& events) {
    std::lock_guard lock(events.mu);
    std::vector<uint64_t> out;
    for (const auto& m : events.messages)
      out.push_back(json::parse(m).at("id").to_number<uint64_t>());
    return out;
  }

  fs::path dir_;
  testing::FakeConsumerNode consumer_;
  std::mutex mu_;
  std::vector<notify::Delivery> deliveries_;  // guarded by mu_
  std::unique_ptr<notify::Webhooks> webhooks_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<net::HttpClient> client_;
  std::vector<std::shared_ptr<net::WebSocketClient>> clients_;
  net::IoPool io_{1};
};

TEST_F(NotificationApiTest, PagesOfNotificationsFollowAfterLimitAndTypes) {
  consumer_.push_notification("job.submitted", "j1", R"({"state":"submitted"})");
  consumer_.push_notification("job.started", "j1", R"({"state":"assigned"})");
  consumer_.push_notification("job.completed", "j1", R"({"state":"completed","cost_msat":5})");
  auto r = request("GET", "/api/v1/notifications?after=1&limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  auto page = body_of(r);
  ASSERT_EQ(page.at("notifications").as_array().size(), 1u);
  auto first = page.at("notifications").as_array()[0].as_object();
  EXPECT_EQ(first.at("id").to_number<int>(), 2);
  EXPECT_EQ(first.at("type"), "job.started");
  EXPECT_EQ(first.at("job_id"), "j1");
  EXPECT_EQ(first.at("data").at("state"), "assigned");
  EXPECT_EQ(page.at("next_after").to_number<int>(), 2);
  EXPECT_EQ(page.at("last_id").to_number<int>(), 3);

  auto completed = body_of(request("GET", "/api/v1/notifications?types=job.completed"));
  ASSERT_EQ(completed.at("notifications").as_array().size(), 1u);
  EXPECT_EQ(completed.at("notifications").as_array()[0].at("data").at("cost_msat").to_number<int>(), 5);
  EXPECT_EQ(completed.at("next_after").to_number<int>(), 3);

  auto bad = request("GET", "/api/v1/notifications?types=job.done");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(body_of(bad).at("error").at("field"), "types");
  EXPECT_EQ(request("GET", "/api/v1/notifications?limit=0").status, 400);
  EXPECT_EQ(request("POST", "/api/v1/notifications").status, 405);
  EXPECT_EQ(request("GET", "/api/v1/notifications/stream").status, 426);
}

TEST_F(NotificationApiTest, TheStreamReplaysAfterTheIdThenGoesLiveFilteredByType) {
  consumer_.push_notification("job.submitted", "j1", "{}");
  consumer_.push_notification("job.completed", "j1", "{}");
  auto all = stream("?after=1");
  auto failures = stream("?types=job.failed,job.completed");
  ASSERT_TRUE(all->wait_messages(1));
  ASSERT_TRUE(failures->wait_messages(1));
  consumer_.push_notification("job.submitted", "j2", "{}");
  consumer_.push_notification("job.failed", "j2", R"({"reason":"no provider"})");
  ASSERT_TRUE(all->wait_messages(3));
  ASSERT_TRUE(failures->wait_messages(2));
  EXPECT_EQ(ids_of(*all), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(ids_of(*failures), (std::vector<uint64_t>{2, 4}));

  auto bad = stream("?after=x");
  ASSERT_TRUE(bad->wait_closed());
  EXPECT_NE(bad->close_message().find("4400"), std::string::npos) << bad->close_message();
}

TEST_F(NotificationApiTest, WebhooksAreRegisteredListedDeliveredAndRemoved) {
  consumer_.push_notification("job.completed", "old", "{}");  // before registration: not delivered
  auto created = request("POST", "/api/v1/webhooks",
                         R"({"url":"http://127.0.0.1:9/hook","types":["job.completed","job.failed"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto hook = body_of(created);
  const std::string secret(hook.at("secret").as_string());
  EXPECT_TRUE(secret.starts_with("whsec_"));
  EXPECT_EQ(hook.at("enabled"), true);
  EXPECT_EQ(hook.at("delivered_through").to_number<int>(), 1);
  const std::string id = std::to_string(hook.at("id").to_number<uint64_t>());

  consumer_.push_notification("job.submitted", "j2", "{}");
  consumer_.push_notification("job.completed", "j2", R"({"state":"completed"})");
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mu_);
      if (!deliveries_.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard lock(mu_);
    ASSERT_EQ(deliveries_.size(), 1u);
    auto body = json::parse(deliveries_[0].body);
    EXPECT_EQ(body.at("id").to_number<int>(), 3);
    EXPECT_EQ(body.at("job_id"), "j2");
    std::string signature;
    for (const auto& [name, value] : deliveries_[0].headers) {
      if (name == "Infernet-Signature") signature = value;
    }
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    EXPECT_TRUE(notify::verify_signature(secret, signature, deliveries_[0].body, now));
  }

  auto listed = body_of(request("GET", "/api/v1/webhooks"));
  ASSERT_EQ(listed.at("webhooks").as_array().size(), 1u);
  auto entry = listed.at("webhooks").as_array()[0].as_object();
  EXPECT_FALSE(entry.contains("secret"));
  EXPECT_EQ(entry.at("url"), "http://127.0.0.1:9/hook");

  EXPECT_EQ(request("POST", "/api/v1/webhooks/" + id + "/enable").status, 200);
  EXPECT_EQ(request("DELETE", "/api/v1/webhooks/" + id).status, 200);
  EXPECT_EQ(request("DELETE", "/api/v1/webhooks/" + id).status, 404);
  EXPECT_EQ(body_of(request("GET", "/api/v1/webhooks")).at("webhooks").as_array().size(), 0u);
}

TEST_F(NotificationApiTest, BadWebhookRequestsNameTheFieldAndStoreNothing) {
  auto field = [&](const std::string& body) {
    auto r = request("POST", "/api/v1/webhooks", body);
    EXPECT_EQ(r.status, 400) << r.body;
    auto o = body_of(r).at("error").as_object();
    return o.contains("field") ? std::string(o.at("field").as_string()) : "";
  };
  EXPECT_EQ(field(R"({"url":"https://example.com/"})"), "url");
  EXPECT_EQ(field(R"({"url":"gopher://example.com/"})"), "url");
  EXPECT_EQ(field(R"({"types":["job.completed"]})"), "url");
  EXPECT_EQ(field(R"({"url":"http://h/","types":["nope"]})"), "types");
  EXPECT_EQ(field(R"({"url":"http://h/","types":"job.failed"})"), "types");
  EXPECT_EQ(field(R"({"url":"http://h/","secret":"short"})"), "secret");
  EXPECT_EQ(field(R"({"url":"http://h/","colour":"red"})"), "colour");
  EXPECT_EQ(field("[1]"), "body");
  EXPECT_EQ(request("DELETE", "/api/v1/webhooks/abc").status, 400);
  EXPECT_EQ(request("PUT", "/api/v1/webhooks").status, 405);
  EXPECT_EQ(body_of(request("GET", "/api/v1/webhooks")).at("webhooks").as_array().size(), 0u);
}

}  // namespace
}  // namespace infernet::api
