#include "net/http_client.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace infernet::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr size_t kMaxResponseHeaderBytes = 16 * 1024;

bool has_space_or_control(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return true;
  }
  return false;
}

std::string host_port(const ParsedUrl& url) {
  bool ipv6 = url.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

// How often a streaming request looks at its abort flag while it waits.
constexpr auto kAbortPoll = std::chrono::milliseconds(10);
// The part of a streamed body handed over at once.
constexpr size_t kStreamPartBytes = 16 * 1024;

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

enum class Waited { kDone, kTimedOut, kAborted };

// Runs the event loop until the operation started on it completes, `deadline` passes, or `abort` (when not
// null) becomes true, which it checks every kAbortPoll. Unless kDone, the caller cancels the operation and
// calls drain() so its handler runs before the objects it uses are destroyed.
Waited run_until(asio::io_context& io, SteadyTime deadline, const std::atomic<bool>* abort = nullptr) {
  io.restart();
  if (abort == nullptr) {
    io.run_until(deadline);
    return io.stopped() ? Waited::kDone : Waited::kTimedOut;
  }
  for (;;) {
    if (abort->load()) return Waited::kAborted;
    io.run_until(std::min(deadline, std::chrono::steady_clock::now() + kAbortPoll));
    if (io.stopped()) return Waited::kDone;
    if (std::chrono::steady_clock::now() >= deadline) return Waited::kTimedOut;
  }
}

template <class Fields>
void copy_head(const Fields& fields, std::string& content_type,
               std::vector<std::pair<std::string, std::string>>& headers) {
  content_type.clear();
  for (const auto& field : fields) {
    std::string name(field.name_string());
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "content-type") {
      content_type = std::string(field.value());
    } else {
      headers.emplace_back(std::move(name), std::string(field.value()));
    }
  }
}

void drain(asio::io_context& io) {
  io.restart();
  io.run();
}

// One request on one connection. Every step starts an asynchronous operation and runs the private event
// loop until it finishes or the shared deadline passes, which gives blocking calls a real timeout.
class Exchange {
 public:
  Exchange(const ParsedUrl& url, const HttpClientOptions& options, const std::atomic<bool>* abort = nullptr)
      : url_(url),
        options_(options),
        abort_(abort),
        deadline_(std::chrono::steady_clock::now() + options.timeout),
        resolver_(io_),
        stream_(io_) {}

  Result<HttpResponse> run(http::request<http::string_body>& request) {
    if (auto st = open_and_send(request); !st) {
      // A server may answer early and close, e.g. 413 for a body it will not read; that answer beats the
      // send error.
      if (!st.error().message.starts_with("send")) return tl::unexpected(st.error());
      auto early = receive();
      if (early) return early;
      return tl::unexpected(st.error());
    }
    return receive();
  }

  // request_streaming(): the head within the deadline, then the body part by part, each part within
  // options.timeout of the one before.
  Result<HttpResponseHead> stream(http::request<http::string_body>& request,
                                  const HttpStreamHandlers& handlers) {
    if (auto st = open_and_send(request); !st) return tl::unexpected(st.error());

    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(options_.max_response_bytes);
    beast::flat_buffer buffer;
    if (auto st = step("receive", deadline_,
                       [&](auto done) { http::async_read_header(stream_, buffer, parser, std::move(done)); });
        !st) {
      return tl::unexpected(st.error());
    }
    HttpResponseHead head;
    head.status = static_cast<int>(parser.get().result_int());
    copy_head(parser.get(), head.content_type, head.headers);
    if (handlers.on_head && !handlers.on_head(head)) return finish_early(head);

    std::array<char, kStreamPartBytes> part;
    while (!parser.is_done()) {
      parser.get().body().data = part.data();
      parser.get().body().size = part.size();
      auto st = step("receive", std::chrono::steady_clock::now() + options_.timeout,
                     [&](auto done) { http::async_read_some(stream_, buffer, parser, std::move(done)); });
      if (!st) return tl::unexpected(st.error());
      size_t got = part.size() - parser.get().body().size;
      if (got > 0 && handlers.on_body && !handlers.on_body(std::string_view(part.data(), got))) {
        return finish_early(head);
      }
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return head;
  }

 private:
  Error timed_out(std::string_view stage) const {
    return Error{ErrorCode::kIo, "timed out after " + std::to_string(options_.timeout.count()) + " ms (" +
                                     std::string(stage) + " " + host_port(url_) + ")"};
  }

  static Error aborted() { return Error{ErrorCode::kIo, "aborted"}; }

  Status open_and_send(http::request<http::string_body>& request) {
    tcp::resolver::results_type endpoints;
    if (auto st = resolve(endpoints); !st) return st;
    if (auto st = step("connect", deadline_,
                       [&](auto done) {
                         stream_.async_connect(
                             endpoints,
                             [done = std::move(done)](error_code ec, const tcp::endpoint&) { done(ec, 0); });
                       });
        !st) {
      return st;
    }
    return step("send", deadline_, [&](auto done) { http::async_write(stream_, request, std::move(done)); });
  }

  Status resolve(tcp::resolver::results_type& endpoints) {
    std::optional<error_code> result;
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [&](error_code ec, tcp::resolver::results_type r) {
                              result = ec;
                              endpoints = std::move(r);
                            });
    Waited waited = run_until(io_, deadline_, abort_);
    if (waited != Waited::kDone) {
      resolver_.cancel();
      drain(io_);
      return tl::unexpected(waited == Waited::kAborted ? aborted() : timed_out("resolve"));
    }
    if (*result) return make_error(ErrorCode::kIo, "resolve " + url_.host + ": " + result->message());
    return {};
  }

  // Starts one operation on the stream through `start(handler)`, with the stream's own timer set to
  // `deadline`, and waits for it. Errors name `stage` ("connect", "send", "receive").
  template <class Start>
  Status step(std::string_view stage, SteadyTime deadline, Start&& start) {
    std::optional<error_code> result;
    stream_.expires_at(deadline);
    start([&result](error_code ec, size_t) { result = ec; });
    // The stream's timer fires at the deadline; the loop's own limit is a backstop.
    Waited waited = run_until(io_, deadline + std::chrono::seconds(1), abort_);
    if (waited == Waited::kAborted || !result) {
      stream_.close();
      drain(io_);
      return tl::unexpected(waited == Waited::kAborted ? aborted() : timed_out(stage));
    }
    const error_code ec = *result;
    if (!ec || ec == http::error::need_buffer) return {};  // need_buffer: the part is full
    if (ec == beast::error::timeout) return tl::unexpected(timed_out(stage));
    if (ec == http::error::body_limit) {
      return make_error(ErrorCode::kLimitExceeded, "response from " + host_port(url_) + " is larger than " +
                                                       std::to_string(options_.max_response_bytes) +
                                                       " bytes");
    }
    if (stage == "connect")
      return make_error(ErrorCode::kIo, "connect " + host_port(url_) + ": " + ec.message());
    const char* preposition = stage == "send" ? " to " : " from ";
    return make_error(ErrorCode::kIo,
                      std::string(stage) + preposition + host_port(url_) + ": " + ec.message());
  }

  // Closes the connection with the rest of the response unread, which is how an HTTP/1.1 client tells a
  // server to stop producing it.
  Result<HttpResponseHead> finish_early(HttpResponseHead& head) {
    error_code ignored;
    stream_.socket().close(ignored);
    return std::move(head);
  }

  Result<HttpResponse> receive() {
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(options_.max_response_bytes);
    beast::flat_buffer buffer;
    if (auto st = step("receive", deadline_,
                       [&](auto done) { http::async_read(stream_, buffer, parser, std::move(done)); });
        !st) {
      return tl::unexpected(st.error());
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);

    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    copy_head(message, response.content_type, response.headers);
    response.body = std::move(message.body());
    return response;
  }

  const ParsedUrl& url_;
  const HttpClientOptions& options_;
  const std::atomic<bool>* abort_;
  SteadyTime deadline_;
  asio::io_context io_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
};

// The request both request() and request_streaming() send, after checking what goes into its first lines.
Result<http::request<http::string_body>> build_request(const ParsedUrl& url, const HttpClientOptions& options,
                                                       std::string_view method, std::string_view target,
                                                       std::string_view body, std::string_view content_type,
                                                       std::string_view accept) {
  if (method.empty() || has_space_or_control(method)) {
    return make_error(ErrorCode::kInvalidInput, "method: must be a token such as GET");
  }
  if (target.empty() || target.front() != '/' || has_space_or_control(target)) {
    return make_error(ErrorCode::kInvalidInput, "target: must start with '/' and contain no spaces");
  }
  if (has_space_or_control(content_type)) {
    // Spaces are legal in media type parameters, but never needed here and a CR or LF must never pass.
    return make_error(ErrorCode::kInvalidInput, "content type: contains a space or control character");
  }
  std::string full_target = url.target == "/" ? std::string(target) : url.target + std::string(target);

  http::request<http::string_body> request;
  request.method_string(method);
  request.target(full_target);
  request.version(11);
  bool ipv6 = url.host.find(':') != std::string::npos;
  std::string host = ipv6 ? "[" + url.host + "]" : url.host;
  if (url.port != 80) host += ":" + std::to_string(url.port);
  request.set(http::field::host, host);
  request.set(http::field::user_agent, options.user_agent);
  request.set(http::field::accept, accept);
  for (const auto& [name, value] : options.headers)
    request.set(name, value);
  request.keep_alive(false);
  if (!body.empty()) {
    request.set(http::field::content_type, content_type);
    request.body() = std::string(body);
  }
  request.prepare_payload();
  return request;
}

}  // namespace

Result<ParsedUrl> parse_http_url(std::string_view url) {
  // Same grammar as ws:// URLs after the scheme, so the WebSocket parser does the work once the scheme is
  // checked here.
  size_t colon = url.find("://");
  if (colon == std::string_view::npos)
    return make_error(ErrorCode::kInvalidInput, "url: must start with http://");
  std::string scheme(url.substr(0, colon));
  for (char& c : scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest(url.substr(colon));
  if (scheme == "http") return parse_ws_url("ws" + rest);
  if (scheme == "https") return parse_ws_url("wss" + rest);
  return make_error(ErrorCode::kInvalidInput, "url: scheme must be http or https, got \"" + scheme + "\"");
}

Result<std::string> websocket_url_for(std::string_view http_url) {
  auto parsed = parse_http_url(http_url);
  if (!parsed) return tl::unexpected(parsed.error());
  size_t colon = http_url.find("://");
  return std::string(parsed->tls ? "wss" : "ws") + std::string(http_url.substr(colon));
}

Result<HttpClient> HttpClient::create(std::string_view base_url, HttpClientOptions options) {
  auto url = parse_http_url(base_url);
  if (!url) return tl::unexpected(url.error());
  if (url->tls) return make_error(ErrorCode::kUnsupported, "url: https is not supported; use http://");
  if (url->target.find('?') != std::string::npos) {
    return make_error(ErrorCode::kInvalidInput, "url: a base URL cannot have a query (?...)");
  }
  while (url->target.size() > 1 && url->target.back() == '/')
    url->target.pop_back();
  for (const auto& [name, value] : options.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
      return make_error(ErrorCode::kInvalidInput, "headers: a name must be an HTTP token");
    }
    // Tabs are legal inside a value; CR, LF and the other control characters would end the header line.
    bool bad = std::any_of(value.begin(), value.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return (u < 0x20 && c != '\t') || u == 0x7f;
    });
    if (bad)
      return make_error(ErrorCode::kInvalidInput, "headers: " + name + ": contains a control character");
  }
  return HttpClient(std::move(*url), std::move(options));
}

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                         std::string_view body, std::string_view content_type) const {
  auto request = build_request(url_, options_, method, target, body, content_type, "application/json");
  if (!request) return tl::unexpected(request.error());
  Exchange exchange(url_, options_);
  return exchange.run(*request);
}

Result<HttpResponseHead> HttpClient::request_streaming(std::string_view method, std::string_view target,
                                                       std::string_view body, std::string_view content_type,
                                                       const HttpStreamHandlers& handlers,
                                                       const std::atomic<bool>* abort) const {
  auto request = build_request(url_, options_, method, target, body, content_type, "*/*");
  if (!request) return tl::unexpected(request.error());
  Exchange exchange(url_, options_, abort);
  return exchange.stream(*request, handlers);
}

}  // namespace infernet::net
