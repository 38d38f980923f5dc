// The proxy engine against (1) a scripted OpenAI-compatible server on plain sockets, whose every byte and
// pause a test chooses, and (2) a real llama-server (INFERNET_LLAMA_SERVER) running INFERNET_TINY_MODEL,
// skipped with the reason when either is unknown.
#include "engine/proxy/proxy_engine.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "net/http_client.hpp"

namespace infernet::engine {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------------------
// The scripted server.

// A request as the scripted server read it.
struct Request {
  std::string method;
  std::string path;
  std::string head;  // request line and headers, as sent
  std::string body;
  json::object json() const {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }
};

// One accepted connection, as a script sees it.
class Connection {
 public:
  Connection(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool read_request(Request& out) {
    std::string raw;
    size_t body_at = std::string::npos;
    size_t length = 0;
    for (;;) {
      if (body_at == std::string::npos && (body_at = raw.find("\r\n\r\n")) != std::string::npos) {
        body_at += 4;
        out.head = raw.substr(0, body_at);
        std::string lower = out.head;
        for (char& c : lower)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t at = lower.find("content-length:");
        if (at != std::string::npos) length = std::stoul(lower.substr(at + 15));
        std::istringstream line(out.head);
        line >> out.method >> out.path;
      }
      if (body_at != std::string::npos && raw.size() >= body_at + length) {
        out.body = raw.substr(body_at, length);
        return true;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      raw.append(buf, static_cast<size_t>(n));
    }
  }

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
  // A whole answer with a Content-Length.
  bool respond(int status, std::string_view content_type, std::string_view body) {
    return send("HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + std::string(content_type) +
                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                std::string(body));
  }
  bool start_stream() {
    return send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
  }
  bool event(std::string_view data) { return send_chunk("data: " + std::string(data) + "\n\n"); }
  bool end_stream() { return send_chunk("data: [DONE]\n\n") && send("0\r\n\r\n"); }

  // True when the client closed the connection (end of stream or reset) within `wait`.
  bool client_closed(std::chrono::milliseconds wait) {
    auto until = Clock::now() + wait;
    while (!stopping_ && Clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char c;
      ssize_t n = ::recv(fd_, &c, 1, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
    }
    return false;
  }

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
};

constexpr std::string_view kModelList =
    R"({"object":"list","data":[{"id":"tiny","object":"model","meta":{"n_ctx":512,"n_params":1234}},)"
    R"({"id":"other","object":"model","max_model_len":4096}]})";

// An OpenAI-compatible server: GET /v1/models answers kModelList (or `models_body`), anything else runs the
// test's script on its own thread. Records every request and lets scripts leave notes for the test.
class FakeUpstream {
 public:
  using Script = std::function<void(Connection&, const Request&)>;

  explicit FakeUpstream(Script script, std::string models_body = std::string(kModelList),
                        int models_status = 200)
      : script_(std::move(script)), models_body_(std::move(models_body)), models_status_(models_status) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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
  ~FakeUpstream() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& t : connections_)
      t.join();
    ::close(listener_);
  }
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

  void note(std::string what) {
    std::lock_guard lock(mu_);
    notes_.push_back(std::move(what));
    changed_.notify_all();
  }
  bool wait_note(const std::string& what, std::chrono::milliseconds wait = 10s) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, wait, [&] { return count_locked(what) > 0; });
  }
  bool wait_requests(size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, 10s, [&] { return generation_requests_.size() >= n; });
  }
  std::vector<Request> requests() {
    std::lock_guard lock(mu_);
    return generation_requests_;
  }
  std::vector<Request> model_requests() {
    std::lock_guard lock(mu_);
    return model_requests_;
  }

 private:
  size_t count_locked(const std::string& what) const {
    return std::count(notes_.begin(), notes_.end(), what);
  }

  void accept_loop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      connections_.emplace_back([this, fd] {
        Connection connection(fd, stopping_);
        Request request;
        if (!connection.read_request(request)) return;
        if (request.method == "GET" && request.path == "/v1/models") {
          {
            std::lock_guard lock(mu_);
            model_requests_.push_back(request);
          }
          connection.respond(models_status_, "application/json", models_body_);
          return;
        }
        {
          std::lock_guard lock(mu_);
          generation_requests_.push_back(request);
          changed_.notify_all();
        }
        script_(connection, request);
      });
    }
  }

  Script script_;
  std::string models_body_;
  int models_status_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor thread's, then the destructor's
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> notes_;            // guarded by mu_
  std::vector<Request> generation_requests_;  // guarded by mu_
  std::vector<Request> model_requests_;       // guarded by mu_
};

std::string chat_chunk(std::string_view content) {
  return json::serialize(json::object{
      {"object", "chat.completion.chunk"},
      {"choices",
       json::array{json::object{
           {"index", 0}, {"delta", json::object{{"content", content}}}, {"finish_reason", nullptr}}}}});
}
std::string text_chunk(std::string_view text, const char* finish = nullptr) {
  json::value reason = finish ? json::value(finish) : json::value(nullptr);
  return json::serialize(json::object{
      {"object", "text_completion"},
      {"choices", json::array{json::object{{"index", 0}, {"text", text}, {"finish_reason", reason}}}}});
}

// ---------------------------------------------------------------------------------------------------------
// What the engine reported for one run.

struct Outcome {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::pair<std::string, uint32_t>> pieces;  // guarded by mu
  std::optional<Result<GenerateUsage>> done;             // guarded by mu
  int done_calls = 0;                                    // guarded by mu

  GenerateCallbacks callbacks() {
    return {[this](std::string_view piece, uint32_t tokens) {
              std::lock_guard lock(mu);
              pieces.emplace_back(piece, tokens);
              changed.notify_all();
            },
            [this](Result<GenerateUsage> result) {
              std::lock_guard lock(mu);
              done = std::move(result);
              ++done_calls;
              changed.notify_all();
            }};
  }
  bool wait_done(std::chrono::milliseconds wait = 10s) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, wait, [&] { return done.has_value(); });
  }
  bool wait_pieces(size_t n) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, 10s, [&] { return pieces.size() >= n || done.has_value(); }) &&
           pieces.size() >= n;
  }
  bool is_done() {
    std::lock_guard lock(mu);
    return done.has_value();
  }
  size_t piece_count() {
    std::lock_guard lock(mu);
    return pieces.size();
  }
  std::string text() {
    std::lock_guard lock(mu);
    std::string all;
    for (const auto& [p, n] : pieces)
      all += p;
    return all;
  }
  Error error() {
    std::lock_guard lock(mu);
    if (!done || *done) return Error{ErrorCode::kInternal, "no error"};
    return done->error();
  }
};

std::unique_ptr<Engine> make_engine(const FakeUpstream& upstream, ProxyEngineOptions options = {}) {
  options.base_url = upstream.base();
  auto engine = make_proxy_engine(options);
  EXPECT_TRUE(engine) << engine.error().message;
  return engine ? std::move(*engine) : nullptr;
}

GenerateRequest chat_request(std::string id, std::string model = "tiny") {
  GenerateRequest r;
  r.id = std::move(id);
  r.model = std::move(model);
  r.messages = {{"system", "Be brief."}, {"user", "Say hello."}};
  r.max_tokens = 16;
  return r;
}

GenerateRequest prompt_request(std::string id, std::string prompt = "Once upon a time") {
  GenerateRequest r;
  r.id = std::move(id);
  r.model = "tiny";
  r.prompt = std::move(prompt);
  r.max_tokens = 3;
  return r;
}

// A script that streams one chat piece every `every` until the client goes away (or 400 pieces), noting
// "closed" or "finished".
FakeUpstream::Script endless_stream(FakeUpstream*& self, std::chrono::milliseconds every) {
  return [&self, every](Connection& c, const Request&) {
    c.start_stream();
    for (int i = 0; i < 400; ++i) {
      if (!c.event(chat_chunk("tick ")) || c.client_closed(every)) {
        self->note("closed");
        return;
      }
    }
    c.end_stream();
    self->note("finished");
  };
}

// ---------------------------------------------------------------------------------------------------------
// Against the scripted server.

TEST(ProxyEngine, MakeDescribesTheUpstreamsModels) {
  FakeUpstream upstream([](Connection&, const Request&) {});
  ProxyEngineOptions options;
  options.api_key = "sk-local";
  auto engine = make_engine(upstream, options);
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->name(), "proxy");
  auto models = engine->models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].name, "tiny");
  EXPECT_EQ(models[0].context_length, 512u);
  EXPECT_EQ(models[0].parameters, 1234u);
  EXPECT_EQ(models[0].capabilities, (std::vector<std::string>{"text-generation", "chat"}));
  EXPECT_EQ(models[0].determinism, "");
  EXPECT_EQ(models[1].name, "other");
  EXPECT_EQ(models[1].context_length, 4096u);
  // An OpenAI-style upstream counts tokens only in a completion's usage: estimates use their bound.
  auto counted = engine->count_tokens("tiny", "hello", {});
  ASSERT_FALSE(counted);
  EXPECT_EQ(counted.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(counted.error().message, "the proxy engine counts a prompt's tokens only by running it");
  ASSERT_EQ(upstream.model_requests().size(), 1u);
  EXPECT_NE(upstream.model_requests()[0].head.find("\r\nAuthorization: Bearer sk-local\r\n"),
            std::string::npos);
}

TEST(ProxyEngine, GivenModelsAreServedListedOrNot) {
  FakeUpstream upstream([](Connection&, const Request&) {});
  ProxyEngineOptions options;
  options.models = {"tiny", "alias"};
  auto engine = make_engine(upstream, options);
  ASSERT_TRUE(engine);
  auto models = engine->models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].name, "tiny");
  EXPECT_EQ(models[0].context_length, 512u);
  EXPECT_EQ(models[1].name, "alias");
  EXPECT_EQ(models[1].context_length, 0u);
  EXPECT_EQ(engine->submit(chat_request("a", "other"), {}).error().code, ErrorCode::kInvalidInput);

  // An upstream without a model list is fine when the names are given.
  FakeUpstream no_list([](Connection&, const Request&) {}, R"({"error":{"message":"not found"}})", 404);
  ProxyEngineOptions named;
  named.models = {"m"};
  EXPECT_TRUE(make_engine(no_list, named));
}

TEST(ProxyEngine, MakeFailsClearlyWhenTheUpstreamIsUnreachableOrListsNothing) {
  std::string base;
  {
    FakeUpstream gone([](Connection&, const Request&) {});
    base = gone.base();
  }
  ProxyEngineOptions options;
  options.base_url = base;
  options.timeout = 2s;
  auto unreachable = make_proxy_engine(options);
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().code, ErrorCode::kIo);
  EXPECT_NE(unreachable.error().message.find("unreachable"), std::string::npos)
      << unreachable.error().message;
  options.models = {"given"};
  EXPECT_FALSE(make_proxy_engine(options)) << "an unreachable upstream fails even with models given";

  FakeUpstream empty([](Connection&, const Request&) {}, R"({"object":"list","data":[]})");
  options = {};
  options.base_url = empty.base();
  auto none = make_proxy_engine(options);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kIo);
  EXPECT_NE(none.error().message.find("lists no models"), std::string::npos) << none.error().message;

  FakeUpstream garbage([](Connection&, const Request&) {}, "<html>hi</html>");
  options.base_url = garbage.base();
  auto not_a_list = make_proxy_engine(options);
  ASSERT_FALSE(not_a_list);
  EXPECT_EQ(not_a_list.error().code, ErrorCode::kIo);

  FakeUpstream locked([](Connection&, const Request&) {}, R"({"error":{"message":"Invalid API Key"}})", 401);
  options.base_url = locked.base();
  options.models = {"given"};
  auto refused = make_proxy_engine(options);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("HTTP 401: Invalid API Key"), std::string::npos)
      << refused.error().message;

  options.base_url = "ftp://127.0.0.1/v1";
  EXPECT_EQ(make_proxy_engine(options).error().code, ErrorCode::kInvalidInput);
  options.base_url = locked.base();
  options.api_key = "key\r\nX-Evil: 1";
  EXPECT_EQ(make_proxy_engine(options).error().code, ErrorCode::kInvalidInput);
}

TEST(ProxyEngine, ChatStreamsPiecesInOrderWithUsageAndFinishReason) {
  FakeUpstream upstream([](Connection& c, const Request&) {
    c.start_stream();
    // As llama-server: a role-only delta, the text, a finish chunk, then usage with no choices.
    c.event(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]})");
    for (std::string_view piece : {"Hel", "lo", " wörld"}) {
      std::this_thread::sleep_for(20ms);
      c.event(chat_chunk(piece));
    }
    c.event(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})");
    c.event(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}})");
    c.end_stream();
  });
  ProxyEngineOptions options;
  options.api_key = "sk-local";
  auto engine = make_engine(upstream, options);
  ASSERT_TRUE(engine);

  GenerateRequest request = chat_request("r1");
  request.sampling.temperature = 0.7;
  request.sampling.top_k = 40;
  request.sampling.top_p = 0.9;
  request.sampling.min_p = 0.05;
  request.sampling.repeat_penalty = 1.1;
  request.sampling.repeat_last_n = 32;
  request.sampling.seed = 42;
  request.sampling.stop = {"\n\n", "END"};
  Outcome out;
  ASSERT_TRUE(engine->submit(request, out.callbacks()));
  ASSERT_TRUE(out.wait_done());
  ASSERT_TRUE(*out.done) << out.done->error().message;
  EXPECT_EQ(out.pieces,
            (std::vector<std::pair<std::string, uint32_t>>{{"Hel", 1}, {"lo", 2}, {" wörld", 3}}));
  EXPECT_EQ((*out.done)->input_tokens, 7u);
  EXPECT_EQ((*out.done)->output_tokens, 3u);
  EXPECT_EQ((*out.done)->finish_reason, FinishReason::kStop);
  EXPECT_GT((*out.done)->first_token_seconds, 0);
  EXPECT_GE((*out.done)->seconds, 0.04);

  ASSERT_EQ(upstream.requests().size(), 1u);
  const Request sent = upstream.requests()[0];
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.path, "/v1/chat/completions");
  EXPECT_NE(sent.head.find("\r\nAuthorization: Bearer sk-local\r\n"), std::string::npos);
  json::object body = sent.json();
  EXPECT_EQ(body["model"], "tiny");
  EXPECT_EQ(body["messages"], json::parse(R"([{"role":"system","content":"Be brief."},)"
                                          R"({"role":"user","content":"Say hello."}])"));
  EXPECT_FALSE(body.contains("prompt"));
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], json::parse(R"({"include_usage":true})"));
  EXPECT_EQ(body["max_tokens"].to_number<int>(), 16);
  EXPECT_DOUBLE_EQ(body["temperature"].to_number<double>(), 0.7);
  EXPECT_DOUBLE_EQ(body["top_p"].to_number<double>(), 0.9);
  EXPECT_EQ(body["seed"].to_number<uint64_t>(), 42u);
  EXPECT_EQ(body["stop"], json::parse(R"(["\n\n","END"])"));
  EXPECT_EQ(body["top_k"].to_number<int>(), 40);
  EXPECT_DOUBLE_EQ(body["min_p"].to_number<double>(), 0.05);
  EXPECT_DOUBLE_EQ(body["repeat_penalty"].to_number<double>(), 1.1);
  EXPECT_EQ(body["repeat_last_n"].to_number<int>(), 32);
}

// Failover: a text completion continues after the prompt and the resumed text; a chat is generated again
// and the resumed bytes are not delivered (docs/market-failover.md).
TEST(ProxyEngine, AResumedRunContinuesACompletionAndSkipsTheRepeatedStartOfAChat) {
  FakeUpstream upstream([](Connection& c, const Request& r) {
    c.start_stream();
    if (r.path == "/v1/completions") {
      c.event(text_chunk(" a"));
      c.event(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})");
    } else {
      for (std::string_view piece : {"Hel", "lo", " there"})
        c.event(chat_chunk(piece));
      c.event(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})");
    }
    c.end_stream();
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  GenerateRequest text = prompt_request("p1");
  text.max_tokens = 40;
  text.resume_text = " there was";  // 10 bytes: about 3 tokens
  Outcome out;
  ASSERT_TRUE(engine->submit(text, out.callbacks()));
  ASSERT_TRUE(out.wait_done());
  ASSERT_TRUE(*out.done) << out.done->error().message;
  EXPECT_EQ(out.text(), " a");
  json::object body = upstream.requests().at(0).json();
  EXPECT_EQ(body["prompt"], "Once upon a time there was");
  EXPECT_EQ(body["max_tokens"].to_number<int>(), 37);

  GenerateRequest chat = chat_request("c1");
  chat.resume_text = "Hell";
  Outcome chat_out;
  ASSERT_TRUE(engine->submit(chat, chat_out.callbacks()));
  ASSERT_TRUE(chat_out.wait_done());
  ASSERT_TRUE(*chat_out.done) << chat_out.done->error().message;
  EXPECT_EQ(chat_out.text(), "o there");
  EXPECT_EQ(upstream.requests().at(1).json()["max_tokens"].to_number<int>(), 16);
}

TEST(ProxyEngine, RawPromptGoesToCompletionsAndLengthIsCarried) {
  FakeUpstream upstream([](Connection& c, const Request&) {
    c.start_stream();
    c.event(text_chunk(" there"));
    c.event(text_chunk(" was"));
    c.event(text_chunk(""));  // no text: not a token
    c.event(text_chunk(" a"));
    // As llama-server's /completions: the finish reason and usage in one last chunk.
    c.event(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}],)"
            R"("usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}})");
    c.end_stream();
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  Outcome out;
  ASSERT_TRUE(engine->submit(prompt_request("p1"), out.callbacks()));
  ASSERT_TRUE(out.wait_done());
  ASSERT_TRUE(*out.done) << out.done->error().message;
  EXPECT_EQ(out.text(), " there was a");
  EXPECT_EQ(out.pieces.back().second, 3u);
  EXPECT_EQ((*out.done)->input_tokens, 4u);
  EXPECT_EQ((*out.done)->output_tokens, 3u);
  EXPECT_EQ((*out.done)->finish_reason, FinishReason::kLength);

  const Request sent = upstream.requests().at(0);
  EXPECT_EQ(sent.path, "/v1/completions");
  json::object body = sent.json();
  EXPECT_EQ(body["prompt"], "Once upon a time");
  EXPECT_FALSE(body.contains("messages"));
  EXPECT_FALSE(body.contains("stop"));
  EXPECT_EQ(body["temperature"].to_number<double>(), 0);
  EXPECT_EQ(body["stream"], true);
}

TEST(ProxyEngine, EventsSplitAnywhereWithCommentsAndCrLfAreRead) {
  FakeUpstream upstream([](Connection& c, const Request&) {
    c.start_stream();
    std::string all = ": keep-alive\r\n\r\nevent: message\r\ndata: " + text_chunk("ab") +
                      "\r\n\r\ndata: " + text_chunk("cd", "stop") + "\n\n" +
                      "data: " + R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}})" +
                      "\n\ndata: [DONE]\n\n";
    // Three bytes at a time: lines and events cut at every position.
    for (size_t i = 0; i < all.size(); i += 3)
      c.send_chunk(all.substr(i, 3));
    c.send("0\r\n\r\n");
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  Outcome out;
  ASSERT_TRUE(engine->submit(prompt_request("split"), out.callbacks()));
  ASSERT_TRUE(out.wait_done());
  ASSERT_TRUE(*out.done) << out.done->error().message;
  EXPECT_EQ(out.text(), "abcd");
  EXPECT_EQ((*out.done)->output_tokens, 2u);
  EXPECT_EQ((*out.done)->finish_reason, FinishReason::kStop);
}

TEST(ProxyEngine, Upstream400IsInvalidInputWithItsMessage) {
  FakeUpstream upstream([](Connection& c, const Request&) {
    c.respond(
        400, "application/json",
        R"({"error":{"code":400,"message":"the request exceeds the available context size, try increasing it",)"
        R"("type":"exceed_context_size_error","n_prompt_tokens":600,"n_ctx":512}})");
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  Outcome out;
  ASSERT_TRUE(engine->submit(prompt_request("big"), out.callbacks()));
  ASSERT_TRUE(out.wait_done());
  Error e = out.error();
  EXPECT_EQ(e.code, ErrorCode::kInvalidInput);
  EXPECT_EQ(e.message, "upstream: the request exceeds the available context size, try increasing it");
  EXPECT_TRUE(out.pieces.empty());
}

TEST(ProxyEngine, Upstream500IsIo) {
  FakeUpstream upstream([](Connection& c, const Request&) {
    c.respond(500, "application/json",
              R"({"error":{"code":500,"message":"model crashed\nbadly","type":"server_error"}})");
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  Outcome out;
  ASSERT_TRUE(engine->submit(chat_request("x"), out.callbacks()));
  ASSERT_TRUE(out.wait_done());
  Error e = out.error();
  EXPECT_EQ(e.code, ErrorCode::kIo);
  EXPECT_FALSE(is_canceled(e));
  EXPECT_EQ(e.message, "upstream: HTTP 500: model crashed badly");
}

TEST(ProxyEngine, MalformedStreamsAreIoErrorsNotCrashes) {
  // Each of these follows one good piece.
  const std::vector<std::string> bad = {
      "data: {not json\n\n",
      "data: [1,2]\n\n",
      R"(data: {"choices":"many"})"
      "\n\n",
      R"(data: {"choices":[7]})"
      "\n\n",
      R"(data: {"choices":[{"delta":{"content":12}}]})"
      "\n\n",
      R"(data: {"choices":[{"delta":{},"finish_reason":5}]})"
      "\n\n",
      R"(data: {"choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":2}})"
      "\n\n",
      R"(data: {"choices":[],"usage":{"prompt_tokens":99999999999,"completion_tokens":2}})"
      "\n\n",
      "data: " + std::string(2 << 20, 'x') + "\n\n",  // an event over the 1 MiB bound
  };
  std::atomic<size_t> next{0};
  FakeUpstream upstream([&](Connection& c, const Request&) {
    c.start_stream();
    c.event(chat_chunk("ok"));
    c.send_chunk(bad.at(next++));
    c.end_stream();
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  for (size_t i = 0; i < bad.size(); ++i) {
    Outcome out;
    ASSERT_TRUE(engine->submit(chat_request("bad" + std::to_string(i)), out.callbacks()));
    ASSERT_TRUE(out.wait_done()) << i;
    Error e = out.error();
    EXPECT_EQ(e.code, ErrorCode::kIo) << i << ": " << e.message;
    EXPECT_TRUE(e.message.starts_with("upstream: ")) << i << ": " << e.message;
    EXPECT_LT(e.message.size(), 2000u) << i;
    EXPECT_EQ(out.text(), "ok") << i;
  }
}

TEST(ProxyEngine, StreamsThatEndEarlyOrReportAnErrorAreIoErrors) {
  std::atomic<int> calls{0};
  FakeUpstream upstream([&](Connection& c, const Request&) {
    int call = calls++;
    if (call == 0) {  // cut off: no finish reason, no [DONE]
      c.start_stream();
      c.event(chat_chunk("par"));
      c.send("0\r\n\r\n");
    } else if (call == 1) {  // llama-server's mid-stream error event
      c.start_stream();
      c.event(chat_chunk("par"));
      c.event(R"({"error":{"code":500,"message":"decode failed","type":"server_error"}})");
      c.end_stream();
    } else {  // a 200 that is not a stream
      c.respond(200, "application/json", R"({"choices":[{"message":{"content":"hi"}}]})");
    }
  });
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  for (std::string expected :
       {"upstream: the stream ended before the generation finished", "upstream: decode failed",
        "upstream: answered application/json, not a stream (text/event-stream)"}) {
    Outcome out;
    ASSERT_TRUE(engine->submit(chat_request("e"), out.callbacks()));
    ASSERT_TRUE(out.wait_done());
    EXPECT_EQ(out.error().code, ErrorCode::kIo);
    EXPECT_EQ(out.error().message, expected);
  }
}

TEST(ProxyEngine, CancelMidStreamStopsWithinOneChunkAndClosesTheConnection) {
  FakeUpstream* self = nullptr;
  FakeUpstream upstream(endless_stream(self, 30ms));
  self = &upstream;
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  Outcome out;
  ASSERT_TRUE(engine->submit(chat_request("long"), out.callbacks()));
  ASSERT_TRUE(out.wait_pieces(3));
  auto canceled_at = Clock::now();
  engine->cancel("long");
  size_t pieces_at_cancel = out.piece_count();
  ASSERT_TRUE(out.wait_done(2s));
  EXPECT_LT(Clock::now() - canceled_at, 500ms);
  EXPECT_TRUE(is_canceled(out.error())) << out.error().message;
  EXPECT_LE(out.piece_count(), pieces_at_cancel + 1);
  EXPECT_TRUE(upstream.wait_note("closed", 3s)) << "the upstream did not see the connection close";
  EXPECT_EQ(out.done_calls, 1);
  engine->cancel("long");  // already finished: ignored
  engine->cancel("nobody");
}

TEST(ProxyEngine, CanceledWhileQueuedFinishesInsideCancel) {
  FakeUpstream* self = nullptr;
  FakeUpstream upstream(endless_stream(self, 50ms));
  self = &upstream;
  ProxyEngineOptions options;
  options.slots = 1;
  auto engine = make_engine(upstream, options);
  ASSERT_TRUE(engine);
  Outcome running, queued;
  ASSERT_TRUE(engine->submit(chat_request("running"), running.callbacks()));
  ASSERT_TRUE(running.wait_pieces(1));
  ASSERT_TRUE(engine->submit(chat_request("queued"), queued.callbacks()));
  engine->cancel("queued");
  EXPECT_TRUE(queued.is_done()) << "a queued run finishes inside cancel()";
  EXPECT_TRUE(is_canceled(queued.error()));
  EXPECT_EQ(upstream.requests().size(), 1u) << "a queued run never reaches the upstream";
  EXPECT_FALSE(running.is_done());
  engine->cancel("running");
  ASSERT_TRUE(running.wait_done());
  EXPECT_TRUE(is_canceled(running.error()));
}

TEST(ProxyEngine, FullQueueIsLimitExceeded) {
  FakeUpstream* self = nullptr;
  FakeUpstream upstream(endless_stream(self, 50ms));
  self = &upstream;
  ProxyEngineOptions options;
  options.slots = 1;
  options.queue_capacity = 1;
  auto engine = make_engine(upstream, options);
  ASSERT_TRUE(engine);
  Outcome a, b, c;
  ASSERT_TRUE(engine->submit(chat_request("a"), a.callbacks()));
  ASSERT_TRUE(upstream.wait_requests(1));  // a has left the queue for the slot
  ASSERT_TRUE(engine->submit(chat_request("b"), b.callbacks()));
  auto refused = engine->submit(chat_request("c"), c.callbacks());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kLimitExceeded);
  EXPECT_FALSE(c.is_done()) << "a refused run's callbacks are not called";
  engine->stop();
  EXPECT_TRUE(a.is_done());
  EXPECT_TRUE(b.is_done());
}

TEST(ProxyEngine, StopCancelsRunsInFlightAndRefusesNewOnes) {
  FakeUpstream* self = nullptr;
  FakeUpstream upstream(endless_stream(self, 50ms));
  self = &upstream;
  ProxyEngineOptions options;
  options.slots = 2;
  auto engine = make_engine(upstream, options);
  ASSERT_TRUE(engine);
  Outcome r1, r2, q;
  ASSERT_TRUE(engine->submit(chat_request("1"), r1.callbacks()));
  ASSERT_TRUE(engine->submit(chat_request("2"), r2.callbacks()));
  ASSERT_TRUE(engine->submit(chat_request("3"), q.callbacks()));
  ASSERT_TRUE(r1.wait_pieces(1));
  ASSERT_TRUE(r2.wait_pieces(1));
  auto started = Clock::now();
  engine->stop();
  EXPECT_LT(Clock::now() - started, 1s);
  for (Outcome* o : {&r1, &r2, &q}) {
    ASSERT_TRUE(o->is_done()) << "stop() returns after every on_done";
    EXPECT_TRUE(is_canceled(o->error()));
    EXPECT_EQ(o->done_calls, 1);
  }
  auto late = engine->submit(chat_request("4"), {});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, ErrorCode::kIo);
  engine->stop();  // idempotent
  EXPECT_TRUE(upstream.wait_note("closed"));
}

TEST(ProxyEngine, SubmitRefusesUnknownModelsAndBadRequests) {
  FakeUpstream upstream([](Connection&, const Request&) {});
  auto engine = make_engine(upstream);
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->submit(chat_request("a", "missing"), {}).error().code, ErrorCode::kInvalidInput);
  GenerateRequest bad_top_p = chat_request("b");
  bad_top_p.sampling.top_p = 0;
  EXPECT_EQ(engine->submit(bad_top_p, {}).error().message, "top_p: must be greater than 0 and at most 1");
  GenerateRequest bad_role = chat_request("c");
  bad_role.messages[0].role = "tool";
  EXPECT_EQ(engine->submit(bad_role, {}).error().code, ErrorCode::kInvalidInput);
  GenerateRequest both = chat_request("d");
  both.prompt = "and a prompt";
  EXPECT_EQ(engine->submit(both, {}).error().code, ErrorCode::kInvalidInput);
  GenerateRequest bad_utf8 = prompt_request("e", "\xff\xfe");
  EXPECT_EQ(engine->submit(bad_utf8, {}).error().code, ErrorCode::kInvalidInput);
  EXPECT_TRUE(upstream.requests().empty());
}

// ---------------------------------------------------------------------------------------------------------
// Against a real llama-server.

// A child process that is always ended: SIGTERM, then SIGKILL if it lingers, and reaped. The child also gets
// SIGKILL if this process dies first (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool start(const std::vector<std::string>& argv, const std::string& log_path) {
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0) return false;
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(log);
    return pid_ > 0;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {  // 5 s
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// A port that was free a moment ago: bound to port 0 and released.
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string tail_of(const std::string& path, size_t bytes = 3000) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

class RealLlamaServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string server = INFERNET_LLAMA_SERVER;
    const std::string model = INFERNET_TINY_MODEL;
    if (server.empty() || server.ends_with("NOTFOUND")) {
      skip_ = "INFERNET_LLAMA_SERVER was empty at configure time (no llama-server: run scripts/llama-cpp.sh)";
      return;
    }
    if (model.empty()) {
      skip_ = "INFERNET_TINY_MODEL was empty at configure time (no tiny GGUF model to serve)";
      return;
    }
    // Known at configure time but missing now is a broken build, not a reason to skip.
    if (!std::filesystem::exists(server)) {
      setup_error_ = "llama-server not found at " + server;
      return;
    }
    if (!std::filesystem::exists(model)) {
      setup_error_ = "model not found at " + model;
      return;
    }
    port_ = free_port();
    log_ = (std::filesystem::temp_directory_path() /
            ("proxy-llama-server-" + std::to_string(::getpid()) + ".log"))
               .string();
    child_ = new ChildProcess();
    // -c 512 -np 2: two slots of 256 tokens, as the engine's two; --no-webui: nothing but the API;
    // --context-shift: a generation may outgrow its slot, so that a long one lasts long enough to be
    // canceled; --metrics: the count of tokens generated, which shows the upstream stopped.
    if (!child_->start({server, "--host", "127.0.0.1", "--port", std::to_string(port_), "-m", model, "-c",
                        "512", "-np", "2", "-t", "2", "--no-webui", "--context-shift", "--metrics"},
                       log_)) {
      setup_error_ = "cannot start " + server;
      return;
    }
    auto health = net::HttpClient::create("http://127.0.0.1:" + std::to_string(port_), {.timeout = 2s});
    auto until = Clock::now() + 120s;
    while (Clock::now() < until) {
      if (!child_->running()) {
        setup_error_ = "llama-server exited at start:\n" + tail_of(log_);
        return;
      }
      auto r = health->get("/health");
      if (r && r->status == 200) return;
      std::this_thread::sleep_for(100ms);
    }
    setup_error_ = "llama-server did not become healthy within 120 s:\n" + tail_of(log_);
  }

  static void TearDownTestSuite() {
    delete child_;  // SIGTERM, waitpid
    child_ = nullptr;
    if (!log_.empty()) std::filesystem::remove(log_);
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    ProxyEngineOptions options;
    options.base_url = base() + "/v1";
    options.timeout = 60s;
    auto made = make_proxy_engine(options);
    ASSERT_TRUE(made) << made.error().message;
    engine_ = std::move(*made);
  }

  static std::string base() { return "http://127.0.0.1:" + std::to_string(port_); }

  // llama-server's own non-streaming answer to `body`.
  static json::object direct(const std::string& target, json::object body) {
    body["stream"] = false;
    auto client = net::HttpClient::create(base() + "/v1", {.timeout = 60s});
    auto r = client->post(target, json::serialize(body));
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }

  // The request body the proxy sends, for sending it directly too.
  static json::object same_as_proxy(const GenerateRequest& r) {
    json::object body{{"model", r.model},
                      {"max_tokens", r.max_tokens},
                      {"temperature", r.sampling.temperature},
                      {"top_p", r.sampling.top_p},
                      {"seed", r.sampling.seed},
                      {"top_k", r.sampling.top_k},
                      {"min_p", r.sampling.min_p},
                      {"repeat_penalty", r.sampling.repeat_penalty},
                      {"repeat_last_n", r.sampling.repeat_last_n}};
    if (r.messages.empty()) {
      body["prompt"] = r.prompt;
    } else {
      json::array messages;
      for (const auto& m : r.messages)
        messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
      body["messages"] = std::move(messages);
    }
    return body;
  }

  std::string model_name() { return engine_->models().at(0).name; }

  // A value from llama-server's Prometheus metrics (--metrics), or -1.
  static double metric(const std::string& name) {
    auto client = net::HttpClient::create(base(), {.timeout = 10s});
    auto r = client->get("/metrics");
    if (!r || r->status != 200) return -1;
    std::istringstream lines(r->body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.starts_with(name + " ")) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }

  static inline std::string skip_;
  static inline std::string setup_error_;
  static inline std::string log_;
  static inline uint16_t port_ = 0;
  static inline ChildProcess* child_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

TEST_F(RealLlamaServer, ListsItsModelWithTheContextOfASlot) {
  auto models = engine_->models();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_FALSE(models[0].name.empty());
  EXPECT_EQ(models[0].context_length, 256u);  // -c 512 shared by -np 2 slots
  EXPECT_GT(models[0].parameters, 0u);
  EXPECT_EQ(models[0].determinism, "");
}

TEST_F(RealLlamaServer, ChatStreamsWhatLlamaServerAnswersDirectly) {
  GenerateRequest request;
  request.id = "chat";
  request.model = model_name();
  request.messages = {{"user", "Tell me a story about a cat."}};
  request.max_tokens = 24;
  request.sampling.seed = 7;  // greedy (temperature 0) anyway
  Outcome out;
  ASSERT_TRUE(engine_->submit(request, out.callbacks()));
  ASSERT_TRUE(out.wait_done(60s));
  ASSERT_TRUE(*out.done) << out.done->error().message;
  const GenerateUsage usage = **out.done;
  EXPECT_GT(usage.input_tokens, 0u);
  EXPECT_GT(usage.output_tokens, 0u);
  EXPECT_LE(usage.output_tokens, 24u);
  EXPECT_FALSE(out.pieces.empty());
  for (size_t i = 1; i < out.pieces.size(); ++i)
    EXPECT_GT(out.pieces[i].second, out.pieces[i - 1].second);

  json::object answer = direct("/chat/completions", same_as_proxy(request));
  ASSERT_TRUE(answer.contains("choices")) << json::serialize(answer);
  const json::object& choice = answer["choices"].as_array().at(0).as_object();
  EXPECT_EQ(out.text(), choice.at("message").as_object().at("content").as_string());
  EXPECT_EQ(to_string(usage.finish_reason), choice.at("finish_reason").as_string());
  EXPECT_EQ(usage.output_tokens, answer["usage"].as_object()["completion_tokens"].to_number<uint32_t>());
  EXPECT_EQ(usage.input_tokens, answer["usage"].as_object()["prompt_tokens"].to_number<uint32_t>());
}

TEST_F(RealLlamaServer, RawCompletionStreamsWhatLlamaServerAnswersDirectly) {
  GenerateRequest request;
  request.id = "raw";
  request.model = model_name();
  request.prompt = "Once upon a time";
  request.max_tokens = 12;
  Outcome out;
  ASSERT_TRUE(engine_->submit(request, out.callbacks()));
  ASSERT_TRUE(out.wait_done(60s));
  ASSERT_TRUE(*out.done) << out.done->error().message;
  const GenerateUsage usage = **out.done;
  EXPECT_GT(usage.input_tokens, 0u);
  EXPECT_GT(usage.output_tokens, 0u);

  json::object answer = direct("/completions", same_as_proxy(request));
  ASSERT_TRUE(answer.contains("choices")) << json::serialize(answer);
  const json::object& choice = answer["choices"].as_array().at(0).as_object();
  EXPECT_EQ(out.text(), choice.at("text").as_string());
  EXPECT_EQ(to_string(usage.finish_reason), choice.at("finish_reason").as_string());
  EXPECT_EQ(usage.output_tokens, answer["usage"].as_object()["completion_tokens"].to_number<uint32_t>());
  if (usage.output_tokens == request.max_tokens) {
    EXPECT_EQ(usage.finish_reason, FinishReason::kLength);
  }
}

TEST_F(RealLlamaServer, ContextOverflowIsInvalidInputWithLlamaServersMessage) {
  GenerateRequest request;
  request.id = "overflow";
  request.model = model_name();
  std::string prompt;
  for (int i = 0; i < 600; ++i)
    prompt += "word" + std::to_string(i) + " ";
  request.prompt = prompt;
  request.max_tokens = 4;
  Outcome out;
  ASSERT_TRUE(engine_->submit(request, out.callbacks()));
  ASSERT_TRUE(out.wait_done(60s));
  ASSERT_FALSE(*out.done);
  EXPECT_EQ(out.error().code, ErrorCode::kInvalidInput) << out.error().message;
  EXPECT_TRUE(out.error().message.starts_with("upstream: ")) << out.error().message;
}

TEST_F(RealLlamaServer, CancelEndsALongGenerationQuickly) {
  const double predicted_before = metric("llamacpp:tokens_predicted_total");
  GenerateRequest request;
  request.id = "long";
  request.model = model_name();
  request.prompt = "Count to one thousand:";
  request.max_tokens = 2000;
  Outcome out;
  ASSERT_TRUE(engine_->submit(request, out.callbacks()));
  ASSERT_TRUE(out.wait_pieces(3)) << (out.is_done() && !*out.done ? out.error().message : "ended early");
  auto canceled_at = Clock::now();
  engine_->cancel("long");
  ASSERT_TRUE(out.wait_done(5s));
  EXPECT_LT(Clock::now() - canceled_at, 1s);
  ASSERT_FALSE(*out.done) << "the 2000 tokens were done before cancel(); the test needs a longer generation";
  EXPECT_TRUE(is_canceled(out.error())) << out.error().message;

  // The upstream stopped generating when the connection closed: it is soon idle, having made far fewer than
  // the 2000 tokens asked for.
  auto until = Clock::now() + 5s;
  while (metric("llamacpp:requests_processing") != 0 && Clock::now() < until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(metric("llamacpp:requests_processing"), 0);
  const double predicted = metric("llamacpp:tokens_predicted_total") - predicted_before;
  EXPECT_GE(predicted, 3);
  EXPECT_LT(predicted, 2000) << "the upstream went on generating after the cancel";

  // And both its slots serve again.
  Outcome a, b;
  GenerateRequest shorter = request;
  shorter.max_tokens = 4;
  shorter.id = "a";
  ASSERT_TRUE(engine_->submit(shorter, a.callbacks()));
  shorter.id = "b";
  ASSERT_TRUE(engine_->submit(shorter, b.callbacks()));
  ASSERT_TRUE(a.wait_done(60s));
  ASSERT_TRUE(b.wait_done(60s));
  EXPECT_TRUE(*a.done) << a.error().message;
  EXPECT_TRUE(*b.done) << b.error().message;
}

}  // namespace
}  // namespace infernet::engine
