// HttpClient::request_streaming() against a server on plain sockets whose every answer is a script: the test
// decides which bytes go out and when, so it can check that parts arrive as they are sent, and it sees when
// the client closes the connection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "net/http_client.hpp"

namespace infernet::net {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One accepted connection, as a script sees it.
class Connection {
 public:
  Connection(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Reads one request (head and Content-Length body); false if the client went away first.
  bool read_request(std::string& out) {
    size_t body_at = std::string::npos;
    size_t length = 0;
    for (;;) {
      if (body_at == std::string::npos && (body_at = out.find("\r\n\r\n")) != std::string::npos) {
        body_at += 4;
        std::string head = out.substr(0, body_at);
        for (char& c : head)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t at = head.find("content-length:");
        if (at != std::string::npos) length = std::stoul(head.substr(at + 15));
      }
      if (body_at != std::string::npos && out.size() >= body_at + length) return true;
      if (!wait_readable(5000ms)) return false;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  // Writes all of `bytes`; false once the client has gone or the server is stopping.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      if (stopping_) return false;
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool send_chunk(std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return send(std::string(size) + std::string(data) + "\r\n");
  }

  // True when the client closed the connection (end of stream or reset) within `wait`.
  bool client_closed(std::chrono::milliseconds wait) {
    auto until = Clock::now() + wait;
    while (!stopping_ && Clock::now() < until) {
      if (!wait_readable(20ms)) continue;
      char c;
      ssize_t n = ::recv(fd_, &c, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
    }
    return false;
  }

  // Sleeps for `d` unless the server is stopping.
  void pause(std::chrono::milliseconds d) {
    auto until = Clock::now() + d;
    while (!stopping_ && Clock::now() < until)
      std::this_thread::sleep_for(5ms);
  }

 private:
  bool wait_readable(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
  }

  int fd_;
  const std::atomic<bool>& stopping_;
};

// Serves each connection on its own thread with `script`, which gets the request's raw bytes.
class ScriptedServer {
 public:
  using Script = std::function<void(Connection&, const std::string& request)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& t : connections_)
      t.join();
    ::close(listener_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  uint16_t port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Lets a script report what it saw; the test waits on it.
  void note(std::string what) {
    std::lock_guard lock(mu_);
    notes_.push_back(std::move(what));
    changed_.notify_all();
  }
  bool wait_note(const std::string& what) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, 10s, [&] {
      for (const auto& n : notes_)
        if (n == what) return true;
      return false;
    });
  }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_request_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      connections_.emplace_back([this, fd] {
        Connection connection(fd, stopping_);
        std::string request;
        if (!connection.read_request(request)) return;
        {
          std::lock_guard lock(mu_);
          last_request_ = request;
        }
        script_(connection, request);
      });
    }
  }

  Script script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // touched by the acceptor thread only, then by the destructor
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> notes_;  // guarded by mu_
  std::string last_request_;        // guarded by mu_
};

constexpr std::string_view kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

// What a streaming request handed over, with the time each part arrived.
struct Received {
  std::vector<HttpResponseHead> heads;
  std::vector<std::string> parts;
  std::vector<Clock::time_point> times;
  std::string body() const {
    std::string all;
    for (const auto& p : parts)
      all += p;
    return all;
  }
  HttpStreamHandlers handlers() {
    return {[this](const HttpResponseHead& head) {
              heads.push_back(head);
              return true;
            },
            [this](std::string_view part) {
              EXPECT_EQ(heads.size(), 1u) << "the body came before the head";
              parts.emplace_back(part);
              times.push_back(Clock::now());
              return true;
            }};
  }
};

TEST(HttpStreaming, ChunkedBodyArrivesPartByPartAsItIsSent) {
  std::atomic<int64_t> last_sent_ns{0};
  ScriptedServer server([&](Connection& c, const std::string&) {
    c.send(kChunkedHead);
    for (std::string_view piece : {"data: a\n\n", "data: bb\n\n", "data: ccc\n\n"}) {
      c.pause(150ms);
      last_sent_ns = Clock::now().time_since_epoch().count();
      c.send_chunk(piece);
    }
    c.send("0\r\n\r\n");
  });
  auto client = HttpClient::create(server.base());
  ASSERT_TRUE(client);
  Received got;
  auto head = client->request_streaming("POST", "/v1/stream", "{}", "application/json", got.handlers());
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->content_type, "text/event-stream");
  ASSERT_EQ(got.heads.size(), 1u);
  EXPECT_EQ(got.heads[0].status, 200);
  EXPECT_EQ(got.body(), "data: a\n\ndata: bb\n\ndata: ccc\n\n");
  ASSERT_GE(got.parts.size(), 3u);
  // The first part was handed over before the server had even sent the last one.
  EXPECT_LT(got.times.front().time_since_epoch().count(), last_sent_ns.load());
}

TEST(HttpStreaming, ContentLengthAndCloseDelimitedBodiesArriveWhole) {
  ScriptedServer server([](Connection& c, const std::string& request) {
    if (request.find("/length") != std::string::npos) {
      c.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello");
      c.pause(50ms);
      c.send(" world");
    } else {
      // No length and no chunking: the body ends when the server closes.
      c.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil ");
      c.pause(50ms);
      c.send("the end");
    }
  });
  auto client = HttpClient::create(server.base());
  ASSERT_TRUE(client);
  Received by_length;
  auto a = client->request_streaming("GET", "/length", "", "", by_length.handlers());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(by_length.body(), "hello world");
  Received by_close;
  auto b = client->request_streaming("GET", "/close", "", "", by_close.handlers());
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(by_close.body(), "until the end");
}

TEST(HttpStreaming, ErrorStatusBodyIsStreamedOrSkippedAsTheHeadHandlerSays) {
  ScriptedServer server([](Connection& c, const std::string&) {
    c.send(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
        R"({"error":{"message":"bad"}})");
  });
  auto client = HttpClient::create(server.base());
  ASSERT_TRUE(client);
  Received got;
  auto head = client->request_streaming("POST", "/", "{}", "application/json", got.handlers());
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(head->status, 400);
  EXPECT_EQ(head->content_type, "application/json");
  EXPECT_EQ(got.body(), R"({"error":{"message":"bad"}})");

  bool body_called = false;
  HttpStreamHandlers stop_at_head{[](const HttpResponseHead& h) { return h.status < 400; },
                                  [&](std::string_view) { return body_called = true; }};
  auto stopped = client->request_streaming("POST", "/", "{}", "application/json", stop_at_head);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->status, 400);
  EXPECT_FALSE(body_called);
}

TEST(HttpStreaming, BodyHandlerReturningFalseClosesTheConnection) {
  ScriptedServer server([&](Connection& c, const std::string&) {
    c.send(kChunkedHead);
    for (int i = 0; i < 200; ++i) {
      if (!c.send_chunk("data: tick\n\n") || c.client_closed(50ms)) {
        server.note("closed");
        return;
      }
    }
    server.note("finished");
  });
  auto client = HttpClient::create(server.base());
  ASSERT_TRUE(client);
  int parts = 0;
  auto started = Clock::now();
  auto head =
      client->request_streaming("GET", "/", "", "", {nullptr, [&](std::string_view) { return ++parts < 2; }});
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(parts, 2);
  EXPECT_LT(Clock::now() - started, 2s);
  EXPECT_TRUE(server.wait_note("closed"));
}

TEST(HttpStreaming, AbortFromAnotherThreadClosesTheConnectionPromptly) {
  ScriptedServer server([&](Connection& c, const std::string&) {
    c.send(kChunkedHead);
    c.send_chunk("data: first\n\n");
    // Then nothing, as an upstream that is slow to produce its next token.
    server.note(c.client_closed(8s) ? "closed" : "still open");
  });
  auto client = HttpClient::create(server.base());
  ASSERT_TRUE(client);
  std::atomic<bool> abort{false};
  std::atomic<bool> got_part{false};
  std::atomic<Clock::rep> aborted_at{0};
  std::thread aborter([&] {
    while (!got_part)
      std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(100ms);
    aborted_at = Clock::now().time_since_epoch().count();
    abort = true;
  });
  Received got;
  HttpStreamHandlers handlers = got.handlers();
  handlers.on_body = [&](std::string_view part) {
    got.parts.emplace_back(part);
    got_part = true;
    return true;
  };
  auto result = client->request_streaming("GET", "/", "", "", handlers, &abort);
  auto returned = Clock::now().time_since_epoch().count();
  got_part = true;  // lets the aborter end even if nothing arrived
  aborter.join();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kIo);
  EXPECT_EQ(result.error().message, "aborted");
  EXPECT_EQ(got.body(), "data: first\n\n");
  EXPECT_LT(std::chrono::nanoseconds(returned - aborted_at.load()), 500ms);
  EXPECT_TRUE(server.wait_note("closed"));
}

TEST(HttpStreaming, AbortBeforeTheHeadArrivesStopsToo) {
  ScriptedServer server(
      [&](Connection& c, const std::string&) { server.note(c.client_closed(8s) ? "closed" : "still open"); });
  auto client = HttpClient::create(server.base());
  ASSERT_TRUE(client);
  std::atomic<bool> abort{false};
  std::thread aborter([&] {
    std::this_thread::sleep_for(100ms);
    abort = true;
  });
  auto started = Clock::now();
  auto result = client->request_streaming("GET", "/", "", "", {}, &abort);
  aborter.join();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message, "aborted");
  EXPECT_LT(Clock::now() - started, 1s);
  EXPECT_TRUE(server.wait_note("closed"));
}

TEST(HttpStreaming, BodyOverTheLimitIsRefused) {
  ScriptedServer server([](Connection& c, const std::string&) {
    c.send(kChunkedHead);
    for (int i = 0; i < 5; ++i)
      if (!c.send_chunk(std::string(1000, 'x'))) return;
    c.send("0\r\n\r\n");
  });
  HttpClientOptions options;
  options.max_response_bytes = 2048;
  auto client = HttpClient::create(server.base(), options);
  ASSERT_TRUE(client);
  Received got;
  auto result = client->request_streaming("GET", "/", "", "", got.handlers());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kLimitExceeded);
  EXPECT_LE(got.body().size(), 2048u);
}

TEST(HttpStreaming, TimeoutBoundsSilenceNotTheWholeStream) {
  ScriptedServer server([](Connection& c, const std::string& request) {
    c.send(kChunkedHead);
    if (request.find("/steady") != std::string::npos) {
      // 1 s in all, never silent for long.
      for (int i = 0; i < 10; ++i) {
        c.pause(100ms);
        if (!c.send_chunk("data: x\n\n")) return;
      }
      c.send("0\r\n\r\n");
    } else {
      c.send_chunk("data: x\n\n");
      c.pause(3s);
    }
  });
  HttpClientOptions options;
  options.timeout = 400ms;
  auto client = HttpClient::create(server.base(), options);
  ASSERT_TRUE(client);

  Received steady;
  auto ok = client->request_streaming("GET", "/steady", "", "", steady.handlers());
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(steady.body().size(), 10 * std::string("data: x\n\n").size());

  Received stalled;
  auto started = Clock::now();
  auto failed = client->request_streaming("GET", "/stalled", "", "", stalled.handlers());
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kIo);
  EXPECT_TRUE(failed.error().message.starts_with("timed out after 400 ms (receive"))
      << failed.error().message;
  EXPECT_EQ(stalled.body(), "data: x\n\n");
  EXPECT_LT(Clock::now() - started, 2s);
}

TEST(HttpStreaming, SendsTheBodyAndTheConfiguredHeaders) {
  ScriptedServer server([](Connection& c, const std::string&) {
    c.send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  });
  HttpClientOptions options;
  options.headers = {{"Authorization", "Bearer sk-test"}};
  auto client = HttpClient::create(server.base() + "/v1", options);
  ASSERT_TRUE(client);

  Received got;
  ASSERT_TRUE(client->request_streaming("POST", "/chat/completions", R"({"a":1})", "application/json",
                                        got.handlers()));
  std::string request = server.last_request();
  EXPECT_TRUE(request.starts_with("POST /v1/chat/completions HTTP/1.1\r\n")) << request;
  EXPECT_NE(request.find("\r\nAuthorization: Bearer sk-test\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << request;
  EXPECT_TRUE(request.ends_with("\r\n\r\n{\"a\":1}")) << request;

  // The plain request() sends them too.
  auto plain = client->get("/models");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->body, "{}");
  EXPECT_NE(server.last_request().find("\r\nAuthorization: Bearer sk-test\r\n"), std::string::npos);
}

TEST(HttpStreaming, RefusesHeadersThatCouldInjectLines) {
  HttpClientOptions injected;
  injected.headers = {{"Authorization", "Bearer x\r\nX-Evil: 1"}};
  EXPECT_EQ(HttpClient::create("http://127.0.0.1:1", injected).error().code, ErrorCode::kInvalidInput);
  HttpClientOptions bad_name;
  bad_name.headers = {{"Bad Name", "v"}};
  EXPECT_EQ(HttpClient::create("http://127.0.0.1:1", bad_name).error().code, ErrorCode::kInvalidInput);
  HttpClientOptions empty_name;
  empty_name.headers = {{"", "v"}};
  EXPECT_EQ(HttpClient::create("http://127.0.0.1:1", empty_name).error().code, ErrorCode::kInvalidInput);
}

TEST(HttpStreaming, NothingListeningIsAConnectError) {
  uint16_t port = 0;
  {
    ScriptedServer closed([](Connection&, const std::string&) {});
    port = closed.port();
  }
  auto client = HttpClient::create("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(client);
  auto result = client->request_streaming("GET", "/", "", "", {});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kIo);
  EXPECT_TRUE(result.error().message.starts_with("connect 127.0.0.1:")) << result.error().message;
}

}  // namespace
}  // namespace infernet::net
