#include "net/server.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "net/net_testing.hpp"
#include "net/websocket_client.hpp"

namespace infernet::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using testing::ClientEvents;
using testing::ServerEvents;

// A blocking HTTP/1.1 client on one keep-alive connection, as a browser or curl would use it.
class RawHttpClient {
 public:
  explicit RawHttpClient(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  http::response<http::string_body> request(http::verb method, std::string target, std::string body = "",
                                            bool keep_alive = true) {
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set("X-Test", "one");
    request.insert("X-Test", "two");
    request.keep_alive(keep_alive);
    request.body() = std::move(body);
    request.prepare_payload();
    http::write(socket_, request);
    return read();
  }
  http::response<http::string_body> read() {
    http::response<http::string_body> response;
    http::read(socket_, buffer_, response);
    return response;
  }
  void write_raw(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // True when the server has closed the connection (EOF or reset on the next read).
  bool closed_by_server() {
    char byte;
    boost::system::error_code ec;
    socket_.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

ServerHandlers http_echo_handlers() {
  ServerHandlers handlers;
  handlers.http = [](const HttpRequest& request) {
    if (request.path() == "/throw") throw std::runtime_error("boom");
    HttpResponse response;
    response.status = request.method == "POST" ? 201 : 200;
    const std::string* test_header = request.header("x-test");
    response.body = request.method + " " + request.target + " body=" + request.body +
                    " x-test=" + (test_header ? *test_header : "") + " from=" + request.remote_address;
    response.headers.emplace_back("X-Reply", "yes");
    return response;
  };
  return handlers;
}

TEST(Server, HttpGetAndPostOnOneConnection) {
  Server server({}, http_echo_handlers());
  ASSERT_TRUE(server.start());
  ASSERT_NE(server.port(), 0);
  RawHttpClient client(server.port());

  auto get = client.request(http::verb::get, "/status?x=1");
  EXPECT_EQ(get.result_int(), 200);
  EXPECT_EQ(get.body(), "GET /status?x=1 body= x-test=one, two from=127.0.0.1");
  EXPECT_EQ(get[http::field::content_type], "text/plain");
  EXPECT_EQ(get["X-Reply"], "yes");
  EXPECT_EQ(get[http::field::server], "infernet");

  auto post = client.request(http::verb::post, "/jobs", "{\"a\":1}");  // same connection: keep-alive
  EXPECT_EQ(post.result_int(), 201);
  EXPECT_EQ(post.body(), "POST /jobs body={\"a\":1} x-test=one, two from=127.0.0.1");
  server.stop();
}

TEST(Server, HandlerExceptionIs500) {
  Server server({}, http_echo_handlers());
  ASSERT_TRUE(server.start());
  RawHttpClient client(server.port());
  auto response = client.request(http::verb::get, "/throw");
  EXPECT_EQ(response.result_int(), 500);
  EXPECT_EQ(response.body(), R"({"error":{"code":"internal","message":"internal error"}})");
  // The connection survives a handler's exception.
  EXPECT_EQ(client.request(http::verb::get, "/").result_int(), 200);
}

TEST(Server, MalformedHttpIs400) {
  Server server({}, http_echo_handlers());
  ASSERT_TRUE(server.start());
  RawHttpClient client(server.port());
  client.write_raw("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = client.read();
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_EQ(response[http::field::content_type], "application/json");
  EXPECT_NE(response.body().find("malformed HTTP request"), std::string::npos) << response.body();
  EXPECT_TRUE(client.closed_by_server());

  RawHttpClient garbage(server.port());
  garbage.write_raw("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.read().result_int(), 400);
}

TEST(Server, BodyOverLimitIs413) {
  ServerOptions options;
  options.max_http_body_bytes = 1000;
  Server server(options, http_echo_handlers());
  ASSERT_TRUE(server.start());
  RawHttpClient client(server.port());
  auto response = client.request(http::verb::post, "/", std::string(1001, 'x'));
  EXPECT_EQ(response.result_int(), 413);
  EXPECT_NE(response.body().find("over 1000 bytes"), std::string::npos) << response.body();
  RawHttpClient fits(server.port());
  EXPECT_EQ(fits.request(http::verb::post, "/", std::string(1000, 'x')).result_int(), 201);
}

TEST(Server, NoHttpHandlerIs404) {
  Server server({}, {});
  ASSERT_TRUE(server.start());
  RawHttpClient client(server.port());
  EXPECT_EQ(client.request(http::verb::get, "/").result_int(), 404);
}

TEST(Server, StartErrors) {
  Server server({}, {});
  ASSERT_TRUE(server.start());
  auto again = server.start();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);

  ServerOptions taken;
  taken.port = server.port();
  Server second(taken, {});
  auto in_use = second.start();
  ASSERT_FALSE(in_use);
  EXPECT_EQ(in_use.error().code, ErrorCode::kIo);
  EXPECT_NE(in_use.error().message.find("bind 127.0.0.1:" + std::to_string(server.port())), std::string::npos)
      << in_use.error().message;

  ServerOptions bad_host;
  bad_host.host = "localhost";
  auto invalid = Server(bad_host, {}).start();
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalidInput);
}

// Connects a WebSocketClient on `io` and waits for it to open.
std::shared_ptr<WebSocketClient> open_client(asio::io_context& io, uint16_t port,
                                             const std::shared_ptr<ClientEvents>& events,
                                             ClientOptions options = {}) {
  auto client = WebSocketClient::create(io, testing::ws_url(port), ClientEvents::handlers(events), options);
  EXPECT_TRUE(client) << client.error().message;
  if (!client) return nullptr;
  (*client)->connect();
  EXPECT_TRUE(events->wait_open()) << events->close_message();
  return *client;
}

TEST(Server, WebSocketEchoKeepsOrder) {
  auto server_events = std::make_shared<ServerEvents>();
  Server server({}, testing::echo_handlers(server_events));
  ASSERT_TRUE(server.start());
  auto events = std::make_shared<ClientEvents>();
  auto client = open_client(server.io_context(), server.port(), events);
  ASSERT_TRUE(client);

  constexpr int kMessages = 1000;
  for (int i = 0; i < kMessages; ++i)
    ASSERT_TRUE(client->send("message " + std::to_string(i)));
  ASSERT_TRUE(events->wait_messages(kMessages));
  {
    std::lock_guard lock(events->mu);
    for (int i = 0; i < kMessages; ++i)
      ASSERT_EQ(events->messages[i], "message " + std::to_string(i));
  }
  client->close();
  ASSERT_TRUE(events->wait_closed());
  EXPECT_EQ(events->close_message(), "closed by client");
  EXPECT_TRUE(server_events->wait_closed(1));
  EXPECT_FALSE(client->send("late"));
}

TEST(Server, SeveralClientsConcurrently) {
  auto server_events = std::make_shared<ServerEvents>();
  ServerOptions options;
  options.threads = 4;
  Server server(options, testing::echo_handlers(server_events));
  ASSERT_TRUE(server.start());

  constexpr int kClients = 8;
  constexpr int kMessages = 300;
  std::vector<std::shared_ptr<ClientEvents>> events;
  std::vector<std::shared_ptr<WebSocketClient>> clients;
  for (int c = 0; c < kClients; ++c) {
    events.push_back(std::make_shared<ClientEvents>());
    clients.push_back(open_client(server.io_context(), server.port(), events.back()));
    ASSERT_TRUE(clients.back());
  }
  std::vector<std::thread> senders;
  for (int c = 0; c < kClients; ++c) {
    senders.emplace_back([&, c] {
      for (int i = 0; i < kMessages; ++i)
        clients[c]->send(std::to_string(c) + ":" + std::to_string(i));
    });
  }
  for (auto& sender : senders)
    sender.join();
  for (int c = 0; c < kClients; ++c) {
    ASSERT_TRUE(events[c]->wait_messages(kMessages)) << "client " << c;
    std::lock_guard lock(events[c]->mu);
    ASSERT_EQ(events[c]->messages.size(), static_cast<size_t>(kMessages));
    for (int i = 0; i < kMessages; ++i) {
      ASSERT_EQ(events[c]->messages[i], std::to_string(c) + ":" + std::to_string(i));
    }
  }
  for (auto& client : clients)
    client->close();
  EXPECT_TRUE(server_events->wait_closed(kClients));
}

TEST(Server, SlowReaderIsCutOff) {
  auto server_events = std::make_shared<ServerEvents>();
  ServerOptions options;
  options.max_outbound_bytes = 1 << 20;
  Server server(options, testing::echo_handlers(server_events));
  ASSERT_TRUE(server.start());

  auto fast_events = std::make_shared<ClientEvents>();
  auto fast = open_client(server.io_context(), server.port(), fast_events);
  ASSERT_TRUE(fast);

  // A peer that completes the handshake and then never reads.
  asio::io_context io;
  websocket::stream<tcp::socket> slow(io);
  slow.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  slow.handshake("127.0.0.1", "/");
  ASSERT_TRUE(server_events->wait_opened(2));
  std::shared_ptr<WebSocketConnection> slow_connection;
  {
    std::lock_guard lock(server_events->mu);
    slow_connection = server_events->connections.back();
  }

  // Kernel buffers absorb a few MB before writes stall; the bound only stops a broken test from looping
  // forever.
  const std::string chunk(64 * 1024, 'x');
  size_t sent = 0;
  bool refused = false;
  while (sent < (size_t{1} << 30)) {
    if (!slow_connection->send(chunk)) {
      refused = true;
      break;
    }
    sent += chunk.size();
  }
  ASSERT_TRUE(refused) << "send() never refused after " << sent << " bytes";
  EXPECT_TRUE(server_events->wait_closed(1));
  EXPECT_FALSE(slow_connection->send("more"));

  // The other connection never noticed.
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(fast->send("still here " + std::to_string(i)));
  ASSERT_TRUE(fast_events->wait_messages(100));
  EXPECT_TRUE(fast->is_open());
  std::lock_guard lock(fast_events->mu);
  EXPECT_EQ(fast_events->messages.back(), "still here 99");
}

TEST(Server, OversizedMessageClosesOnlyThatConnection) {
  auto server_events = std::make_shared<ServerEvents>();
  ServerOptions options;
  options.max_message_bytes = 1024;
  Server server(options, testing::echo_handlers(server_events));
  ASSERT_TRUE(server.start());
  auto big_events = std::make_shared<ClientEvents>();
  auto big = open_client(server.io_context(), server.port(), big_events);
  auto small_events = std::make_shared<ClientEvents>();
  auto small = open_client(server.io_context(), server.port(), small_events);
  ASSERT_TRUE(big && small);

  ASSERT_TRUE(big->send(std::string(1024, 'a')));  // exactly the limit is fine
  ASSERT_TRUE(big_events->wait_messages(1));
  ASSERT_TRUE(big->send(std::string(1025, 'a')));
  ASSERT_TRUE(big_events->wait_closed());
  EXPECT_EQ(big_events->close_message(), "closed by peer: 1009");
  EXPECT_TRUE(server_events->wait_closed(1));

  ASSERT_TRUE(small->send("fine"));
  ASSERT_TRUE(small_events->wait_messages(1));
  EXPECT_TRUE(small->is_open());
}

TEST(Server, BinaryFrameIsRefusedWith1003) {
  auto server_events = std::make_shared<ServerEvents>();
  Server server({}, testing::echo_handlers(server_events));
  ASSERT_TRUE(server.start());
  asio::io_context io;
  websocket::stream<tcp::socket> ws(io);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  ws.handshake("127.0.0.1", "/");
  ws.binary(true);
  ws.write(asio::buffer(std::string("\x00\x01", 2)));
  beast::flat_buffer buffer;
  boost::system::error_code ec;
  ws.read(buffer, ec);
  EXPECT_EQ(ec, websocket::error::closed);
  EXPECT_EQ(ws.reason().code, websocket::close_code::unknown_data);
  EXPECT_EQ(std::string(ws.reason().reason.c_str()), "binary messages are not accepted");
  EXPECT_TRUE(server_events->wait_closed(1));
}

TEST(Server, CloseFromServerFollowsQueuedMessages) {
  ServerHandlers handlers;
  class Goodbye : public WebSocketHandler {
   public:
    explicit Goodbye(std::shared_ptr<WebSocketConnection> c) : connection_(std::move(c)) {}
    void on_text(std::string_view) override {
      connection_->send("a");
      connection_->send("b");
      connection_->close(4000, "bye");
      EXPECT_FALSE(connection_->send("after close"));
    }
    void on_close() override {}

   private:
    std::shared_ptr<WebSocketConnection> connection_;
  };
  handlers.websocket = [](std::shared_ptr<WebSocketConnection> c, const HttpRequest&) {
    return std::make_unique<Goodbye>(std::move(c));
  };
  Server server({}, handlers);
  ASSERT_TRUE(server.start());
  auto events = std::make_shared<ClientEvents>();
  auto client = open_client(server.io_context(), server.port(), events);
  ASSERT_TRUE(client);
  client->send("hello");
  ASSERT_TRUE(events->wait_closed());
  EXPECT_EQ(events->close_message(), "closed by peer: 4000 bye");
  std::lock_guard lock(events->mu);
  EXPECT_EQ(events->messages, (std::vector<std::string>{"a", "b"}));
}

TEST(Server, RefusedUpgradeIs403) {
  ServerHandlers handlers;
  std::atomic<bool> asked{false};
  std::string seen_path;
  handlers.websocket = [&](std::shared_ptr<WebSocketConnection>, const HttpRequest& request) {
    seen_path = request.target;
    asked = true;
    return std::unique_ptr<WebSocketHandler>();
  };
  Server server({}, handlers);
  ASSERT_TRUE(server.start());
  auto events = std::make_shared<ClientEvents>();
  auto client = WebSocketClient::create(server.io_context(), testing::ws_url(server.port(), "/private?x=1"),
                                        ClientEvents::handlers(events));
  ASSERT_TRUE(client);
  (*client)->connect();
  ASSERT_TRUE(events->wait_closed());
  EXPECT_TRUE(asked);
  EXPECT_EQ(seen_path, "/private?x=1");
  EXPECT_NE(events->close_message().find("websocket handshake"), std::string::npos)
      << events->close_message();
  EXPECT_FALSE(events->opened);
}

TEST(Server, StopWithOpenConnectionsIsPromptAndRepeatable) {
  auto server_events = std::make_shared<ServerEvents>();
  Server server({}, testing::echo_handlers(server_events));
  IoPool client_pool(1);  // clients on their own loop, so they see the server go away
  client_pool.start();
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(server.start()) << "round " << round;
    std::vector<std::shared_ptr<ClientEvents>> events;
    std::vector<std::shared_ptr<WebSocketClient>> clients;
    for (int c = 0; c < 4; ++c) {
      events.push_back(std::make_shared<ClientEvents>());
      clients.push_back(open_client(client_pool.io_context(), server.port(), events.back()));
      ASSERT_TRUE(clients.back());
    }
    RawHttpClient idle_http(server.port());  // a keep-alive connection with no request in flight
    const auto before = std::chrono::steady_clock::now();
    server.stop();
    const auto took = std::chrono::steady_clock::now() - before;
    EXPECT_LT(took, std::chrono::milliseconds(1000));
    EXPECT_EQ(server.port(), 0);
    EXPECT_TRUE(server_events->wait_closed(4 * (round + 1)));
    for (auto& e : events) {
      ASSERT_TRUE(e->wait_closed());
      EXPECT_EQ(e->close_count, 1);
    }
    EXPECT_TRUE(idle_http.closed_by_server());
  }
  server.stop();  // idempotent
  {
    // A fresh server in the same process, and destruction while running.
    Server another({}, testing::echo_handlers(server_events));
    ASSERT_TRUE(another.start());
    auto events = std::make_shared<ClientEvents>();
    ASSERT_TRUE(open_client(client_pool.io_context(), another.port(), events));
  }
  EXPECT_TRUE(server_events->wait_closed(13));
}

}  // namespace
}  // namespace infernet::net
