#include "net/http_client.hpp"

#include <cctype>
#include <optional>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
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

// Runs the event loop until the operation started on it completes (true) or `deadline` passes (false). On
// false the caller cancels the operation and calls drain() so its handler runs before the objects it uses
// are destroyed.
bool run_until(asio::io_context& io, SteadyTime deadline) {
  io.restart();
  io.run_until(deadline);
  return io.stopped();
}

void drain(asio::io_context& io) {
  io.restart();
  io.run();
}

// One request on one connection. Every step starts an asynchronous operation and runs the private event
// loop until it finishes or the shared deadline passes, which gives blocking calls a real timeout.
class Exchange {
 public:
  Exchange(const ParsedUrl& url, const HttpClientOptions& options)
      : url_(url),
        options_(options),
        deadline_(std::chrono::steady_clock::now() + options.timeout),
        resolver_(io_),
        stream_(io_) {}

  Result<HttpResponse> run(http::request<http::string_body>& request) {
    tcp::resolver::results_type endpoints;
    if (auto st = resolve(endpoints); !st) return tl::unexpected(st.error());
    if (auto st = connect(endpoints); !st) return tl::unexpected(st.error());
    if (auto sent = send(request); !sent) {
      // A server may answer early and close, e.g. 413 for a body it will not read; that answer beats the
      // send error.
      if (sent.error().message.rfind("timed out", 0) == 0) return tl::unexpected(sent.error());
      auto early = receive();
      if (early) return early;
      return tl::unexpected(sent.error());
    }
    return receive();
  }

 private:
  Error timed_out(std::string_view stage) const {
    return Error{ErrorCode::kIo, "timed out after " + std::to_string(options_.timeout.count()) + " ms (" +
                                     std::string(stage) + " " + host_port(url_) + ")"};
  }

  Status resolve(tcp::resolver::results_type& endpoints) {
    std::optional<error_code> result;
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [&](error_code ec, tcp::resolver::results_type r) {
                              result = ec;
                              endpoints = std::move(r);
                            });
    if (!run_until(io_, deadline_)) {
      resolver_.cancel();
      drain(io_);
      return tl::unexpected(timed_out("resolve"));
    }
    if (*result) return make_error(ErrorCode::kIo, "resolve " + url_.host + ": " + result->message());
    return {};
  }

  Status connect(const tcp::resolver::results_type& endpoints) {
    std::optional<error_code> result;
    stream_.expires_at(deadline_);
    stream_.async_connect(endpoints, [&](error_code ec, const tcp::endpoint&) { result = ec; });
    run_until(io_, deadline_ + std::chrono::seconds(1));  // the stream's own timer fires at the deadline
    if (!result) {
      stream_.close();
      drain(io_);
      return tl::unexpected(timed_out("connect"));
    }
    if (*result == beast::error::timeout) return tl::unexpected(timed_out("connect"));
    if (*result) return make_error(ErrorCode::kIo, "connect " + host_port(url_) + ": " + result->message());
    return {};
  }

  Status send(http::request<http::string_body>& request) {
    std::optional<error_code> result;
    stream_.expires_at(deadline_);
    http::async_write(stream_, request, [&](error_code ec, size_t) { result = ec; });
    run_until(io_, deadline_ + std::chrono::seconds(1));
    if (!result) {
      stream_.close();
      drain(io_);
      return tl::unexpected(timed_out("send"));
    }
    if (*result == beast::error::timeout) return tl::unexpected(timed_out("send"));
    if (*result) return make_error(ErrorCode::kIo, "send to " + host_port(url_) + ": " + result->message());
    return {};
  }

  Result<HttpResponse> receive() {
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(options_.max_response_bytes);
    beast::flat_buffer buffer;
    std::optional<error_code> result;
    stream_.expires_at(deadline_);
    http::async_read(stream_, buffer, parser, [&](error_code ec, size_t) { result = ec; });
    run_until(io_, deadline_ + std::chrono::seconds(1));
    if (!result) {
      stream_.close();
      drain(io_);
      return tl::unexpected(timed_out("receive"));
    }
    if (*result == beast::error::timeout) return tl::unexpected(timed_out("receive"));
    if (*result == http::error::body_limit) {
      return make_error(ErrorCode::kLimitExceeded, "response from " + host_port(url_) + " is larger than " +
                                                       std::to_string(options_.max_response_bytes) +
                                                       " bytes");
    }
    if (*result) {
      return make_error(ErrorCode::kIo, "receive from " + host_port(url_) + ": " + result->message());
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);

    auto& message = parser.get();
    HttpResponse response;
    response.status = static_cast<int>(message.result_int());
    response.content_type = "";
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (char& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "content-type") {
        response.content_type = std::string(field.value());
      } else {
        response.headers.emplace_back(std::move(name), std::string(field.value()));
      }
    }
    response.body = std::move(message.body());
    return response;
  }

  const ParsedUrl& url_;
  const HttpClientOptions& options_;
  SteadyTime deadline_;
  asio::io_context io_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
};

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
  return HttpClient(std::move(*url), std::move(options));
}

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                         std::string_view body, std::string_view content_type) const {
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
  std::string full_target = url_.target == "/" ? std::string(target) : url_.target + std::string(target);

  http::request<http::string_body> request;
  request.method_string(method);
  request.target(full_target);
  request.version(11);
  bool ipv6 = url_.host.find(':') != std::string::npos;
  std::string host = ipv6 ? "[" + url_.host + "]" : url_.host;
  if (url_.port != 80) host += ":" + std::to_string(url_.port);
  request.set(http::field::host, host);
  request.set(http::field::user_agent, options_.user_agent);
  request.set(http::field::accept, "application/json");
  request.keep_alive(false);
  if (!body.empty()) {
    request.set(http::field::content_type, content_type);
    request.body() = std::string(body);
  }
  request.prepare_payload();

  Exchange exchange(url_, options_);
  return exchange.run(request);
}

}  // namespace infernet::net
