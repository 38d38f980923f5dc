#include "net/websocket_client.hpp"

#include <array>
#include <atomic>
#include <cctype>
#include <deque>
#include <optional>
#include <utility>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace infernet::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using beast::error_code;

Error io_error(std::string message) {
  return Error{ErrorCode::kIo, std::move(message)};
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::shared_ptr<ssl::context> make_tls_context() {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_verify_mode(ssl::verify_peer);
  return context;
}

// The system trust store is read once per process; an SSL_CTX is safe to share between connections.
Result<std::shared_ptr<ssl::context>> system_tls_context() {
  static const Result<std::shared_ptr<ssl::context>> context = []() -> Result<std::shared_ptr<ssl::context>> {
    auto created = make_tls_context();
    error_code ec;
    created->set_default_verify_paths(ec);
    if (ec) return tl::unexpected(io_error("tls: cannot load the system trust store: " + ec.message()));
    return created;
  }();
  return context;
}

Result<std::shared_ptr<ssl::context>> tls_context_with_ca(const std::string& ca_file) {
  auto context = make_tls_context();
  error_code ec;
  context->load_verify_file(ca_file, ec);
  if (ec) return tl::unexpected(io_error("ca_file " + ca_file + ": " + ec.message()));
  return context;
}

enum class Phase { kIdle, kConnecting, kOpen, kClosing, kClosed };

using IoCompletion = asio::any_completion_handler<void(error_code, size_t)>;
using TeardownCompletion = asio::any_completion_handler<void(error_code)>;
constexpr size_t kMaxBuffers = 8;

// The first non-empty buffers of a sequence, as one fixed type. A read_some or write_some may transfer less
// than it was offered, so passing a prefix keeps the operation's meaning.
template <class Buffer, class Sequence>
std::array<Buffer, kMaxBuffers> first_buffers(const Sequence& buffers) {
  std::array<Buffer, kMaxBuffers> out{};
  size_t count = 0;
  for (auto it = asio::buffer_sequence_begin(buffers);
       it != asio::buffer_sequence_end(buffers) && count < kMaxBuffers; ++it) {
    Buffer buffer(*it);
    if (buffer.size() > 0) out[count++] = buffer;
  }
  return out;
}

// Plain TCP or TLS over TCP behind one type, with type-erased handlers, so that websocket::stream and the TLS
// operations are each instantiated once instead of once per stream type and per Beast operation. This keeps
// this file's compile time to about a third of the two-instantiation version (ASan/UBSan debug build); the
// cost is one small allocation per socket read or write.
class ClientTransport {
 public:
  using executor_type = asio::any_io_executor;

  ClientTransport(asio::any_io_executor executor, ssl::context* tls) : executor_(executor) {
    if (tls) {
      tls_.emplace(executor, *tls);
    } else {
      plain_.emplace(executor);
    }
  }

  executor_type get_executor() const noexcept { return executor_; }
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  // Null for plain TCP.
  beast::ssl_stream<beast::tcp_stream>* tls() { return tls_ ? &*tls_ : nullptr; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, size_t)>(
        [this](IoCompletion handler, const std::array<asio::mutable_buffer, kMaxBuffers>& prefix) {
          read_some(prefix, std::move(handler));
        },
        token, first_buffers<asio::mutable_buffer>(buffers));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, size_t)>(
        [this](IoCompletion handler, const std::array<asio::const_buffer, kMaxBuffers>& prefix) {
          write_some(prefix, std::move(handler));
        },
        token, first_buffers<asio::const_buffer>(buffers));
  }

  // Beast's customization points for closing and for the end of a WebSocket session.
  friend void beast_close_socket(ClientTransport& transport) {
    error_code ignored;
    transport.tcp().socket().close(ignored);
  }
  friend void teardown(beast::role_type role, ClientTransport& transport, error_code& ec) {
    using websocket::teardown;
    if (transport.tls_) {
      teardown(role, *transport.tls_, ec);
    } else {
      teardown(role, transport.plain_->socket(), ec);
    }
  }
  template <class Handler>
  friend void async_teardown(beast::role_type role, ClientTransport& transport, Handler&& handler) {
    transport.teardown_async(role, TeardownCompletion(std::forward<Handler>(handler)));
  }

 private:
  // The erased handlers are bound to our strand: Boost 1.81's any_completion_executor cannot be posted to,
  // and every handler in this stack runs on the strand anyway.
  void read_some(const std::array<asio::mutable_buffer, kMaxBuffers>& buffers, IoCompletion handler) {
    auto bound = asio::bind_executor(executor_, std::move(handler));
    if (tls_) {
      tls_->async_read_some(buffers, std::move(bound));
    } else {
      plain_->async_read_some(buffers, std::move(bound));
    }
  }
  void write_some(const std::array<asio::const_buffer, kMaxBuffers>& buffers, IoCompletion handler) {
    auto bound = asio::bind_executor(executor_, std::move(handler));
    if (tls_) {
      tls_->async_write_some(buffers, std::move(bound));
    } else {
      plain_->async_write_some(buffers, std::move(bound));
    }
  }
  void teardown_async(beast::role_type role, TeardownCompletion handler) {
    using websocket::async_teardown;
    auto bound = asio::bind_executor(executor_, std::move(handler));
    if (tls_) {
      async_teardown(role, *tls_, std::move(bound));
    } else {
      async_teardown(role, plain_->socket(), std::move(bound));
    }
  }

  asio::any_io_executor executor_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
};

// One client connection. Every member below the public entry points runs on strand_.
class ClientConnection final : public WebSocketClient, public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(asio::io_context& io, ParsedUrl url, WebSocketClientHandlers handlers,
                   ClientOptions options, std::shared_ptr<ssl::context> tls)
      : strand_(asio::make_strand(io)),
        url_(std::move(url)),
        handlers_(std::move(handlers)),
        options_(std::move(options)),
        tls_(std::move(tls)),
        resolver_(strand_),
        resolve_timer_(strand_),
        ws_(strand_, tls_.get()) {}

  void connect() override {
    Phase expected = Phase::kIdle;
    if (!phase_.compare_exchange_strong(expected, Phase::kConnecting)) return;
    asio::post(strand_, [self = shared_from_this()] { self->resolve(); });
  }

  bool send(std::string text) override {
    if (phase_.load(std::memory_order_acquire) != Phase::kOpen) return false;
    const size_t size = text.size();
    if (queued_.fetch_add(size, std::memory_order_relaxed) + size > options_.max_outbound_bytes) {
      queued_.fetch_sub(size, std::memory_order_relaxed);
      asio::post(strand_, [self = shared_from_this()] {
        self->finish(Error{ErrorCode::kLimitExceeded, "send queue full: the server is not reading"});
      });
      return false;
    }
    asio::post(strand_, [self = shared_from_this(), text = std::move(text)]() mutable {
      self->enqueue(std::move(text));
    });
    return true;
  }

  void close() override {
    asio::post(strand_, [self = shared_from_this()] { self->begin_close(); });
  }

  bool is_open() const override { return phase_.load(std::memory_order_acquire) == Phase::kOpen; }
  const ParsedUrl& url() const override { return url_; }

 private:
  std::string where() const {
    return (url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host) + ":" +
           std::to_string(url_.port);
  }

  void resolve() {
    if (finished_) return;  // close() came first
    resolve_timer_.expires_after(options_.connect_timeout);
    resolve_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->resolver_.cancel();
    });
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            beast::bind_front_handler(&ClientConnection::on_resolve, shared_from_this()));
  }

  void on_resolve(error_code ec, const tcp::resolver::results_type& endpoints) {
    const bool timed_out = resolve_timer_.expiry() <= std::chrono::steady_clock::now();
    resolve_timer_.cancel();
    if (finished_) return;
    if (ec) return finish(io_error("resolve " + url_.host + ": " + (timed_out ? "timed out" : ec.message())));
    auto& tcp_layer = ws_.next_layer().tcp();
    tcp_layer.expires_after(options_.connect_timeout);
    tcp_layer.async_connect(endpoints,
                            beast::bind_front_handler(&ClientConnection::on_connect, shared_from_this()));
  }

  void on_connect(error_code ec, const tcp::endpoint&) {
    if (finished_) return;
    if (ec) return finish(io_error("connect " + where() + ": " + ec.message()));
    error_code ignored;  // small frames must not wait for Nagle's algorithm
    ws_.next_layer().tcp().socket().set_option(tcp::no_delay(true), ignored);
    if (auto* tls = ws_.next_layer().tls()) {
      SSL* ssl = tls->native_handle();
      // SNI carries names only; an IP literal is checked against the certificate's IP addresses instead.
      const bool ip = is_ip_literal(url_.host);
      if (!ip && SSL_set_tlsext_host_name(ssl, url_.host.c_str()) != 1) {
        return finish(io_error("tls: cannot set SNI for " + url_.host));
      }
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size());
      if (set != 1) return finish(io_error("tls: cannot set the name to verify for " + url_.host));
      ws_.next_layer().tcp().expires_after(options_.connect_timeout);
      tls->async_handshake(
          ssl::stream_base::client,
          beast::bind_front_handler(&ClientConnection::on_tls_handshake, shared_from_this()));
    } else {
      websocket_handshake();
    }
  }

  void on_tls_handshake(error_code ec) {
    if (finished_) return;
    if (ec) {
      std::string message = "tls handshake with " + where() + ": " + ec.message();
      if (auto* tls = ws_.next_layer().tls()) {
        const long verify = SSL_get_verify_result(tls->native_handle());
        if (verify != X509_V_OK) message += std::string(": ") + X509_verify_cert_error_string(verify);
      }
      return finish(io_error(std::move(message)));
    }
    websocket_handshake();
  }

  void websocket_handshake() {
    ws_.next_layer().tcp().expires_never();  // the websocket timeouts below take over
    websocket::stream_base::timeout timeouts =
        websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeouts.handshake_timeout = options_.connect_timeout;
    if (options_.idle_timeout.count() > 0) {
      timeouts.idle_timeout = options_.idle_timeout;
      timeouts.keep_alive_pings = true;
    }
    ws_.set_option(timeouts);
    ws_.set_option(websocket::permessage_deflate{});  // off
    ws_.set_option(
        websocket::stream_base::decorator([agent = options_.user_agent](websocket::request_type& request) {
          request.set(http::field::user_agent, agent);
        }));
    ws_.read_message_max(options_.max_message_bytes);
    const bool default_port = url_.port == (url_.tls ? 443 : 80);
    std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    if (!default_port) host += ":" + std::to_string(url_.port);
    ws_.async_handshake(host, url_.target,
                        beast::bind_front_handler(&ClientConnection::on_handshake, shared_from_this()));
  }

  void on_handshake(error_code ec) {
    if (finished_) return;
    if (ec)
      return finish(io_error("websocket handshake with " + where() + url_.target + ": " + ec.message()));
    phase_.store(Phase::kOpen, std::memory_order_release);
    ws_.text(true);
    do_read();
    if (handlers_.on_open) {
      try {
        handlers_.on_open();
      } catch (const std::exception& e) {
        spdlog::error("net: websocket client on_open threw: {}", e.what());
      }
    }
  }

  void do_read() {
    ws_.async_read(read_buffer_, beast::bind_front_handler(&ClientConnection::on_read, shared_from_this()));
  }

  void on_read(error_code ec, size_t) {
    if (finished_) return;
    if (ec) {
      if (close_requested_) return finish(io_error("closed by client"));
      if (ec == websocket::error::closed) {
        const auto& reason = ws_.reason();
        return finish(io_error("closed by peer: " + std::to_string(reason.code) +
                               (reason.reason.empty() ? "" : " " + std::string(reason.reason.c_str()))));
      }
      if (ec == websocket::error::message_too_big) {
        return finish(
            Error{ErrorCode::kLimitExceeded,
                  "message too big: over " + std::to_string(options_.max_message_bytes) + " bytes"});
      }
      return finish(io_error("read from " + where() + ": " + ec.message()));
    }
    if (!ws_.got_text()) {
      // Nostr relays speak text only; a binary frame means a confused peer, so say so and leave.
      begin_close(websocket::close_code::unknown_data, "binary messages are not accepted");
    } else if (!close_requested_ && handlers_.on_text) {
      auto data = read_buffer_.cdata();
      try {
        handlers_.on_text(std::string_view(static_cast<const char*>(data.data()), data.size()));
      } catch (const std::exception& e) {
        spdlog::error("net: websocket client on_text threw: {}", e.what());
      }
    }
    read_buffer_.consume(read_buffer_.size());
    if (!finished_) do_read();
  }

  void enqueue(std::string text) {
    if (finished_ || close_requested_) {
      queued_.fetch_sub(text.size(), std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(text));
    if (!writing_) do_write();
  }

  void begin_close() { begin_close(websocket::close_code::normal, ""); }

  void begin_close(uint16_t code, std::string_view reason) {
    if (finished_ || close_requested_) return;
    Phase idle = Phase::kIdle;
    if (phase_.compare_exchange_strong(idle, Phase::kClosed)) {
      finished_ = true;  // never connected: there is nothing to report, and connect() is now a no-op
      return;
    }
    if (phase_.load() != Phase::kOpen) return finish(io_error("closed by client"));
    close_requested_ = true;
    close_reason_.emplace(static_cast<websocket::close_code>(code), reason.substr(0, 123));
    phase_.store(Phase::kClosing, std::memory_order_release);
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    if (queue_.empty()) {
      // Only the close frame is left: it goes after everything queued before close().
      ws_.async_close(*close_reason_, [self = shared_from_this()](error_code) {
        self->finish(io_error("closed by client"));
      });
      return;
    }
    ws_.async_write(asio::buffer(queue_.front()),
                    beast::bind_front_handler(&ClientConnection::on_write, shared_from_this()));
  }

  void on_write(error_code ec, size_t) {
    writing_ = false;
    queued_.fetch_sub(queue_.front().size(), std::memory_order_relaxed);
    queue_.pop_front();
    if (finished_) return;
    if (ec) return finish(io_error("write to " + where() + ": " + ec.message()));
    if (!queue_.empty() || close_requested_) do_write();
  }

  // Ends the connection once, reporting `reason`; pending operations then fail and release the client.
  void finish(const Error& reason) {
    if (finished_) return;
    finished_ = true;
    phase_.store(Phase::kClosed, std::memory_order_release);
    resolver_.cancel();
    resolve_timer_.cancel();
    error_code ignored;
    ws_.next_layer().tcp().socket().close(ignored);
    // Moved out first: the handlers may hold this client's shared_ptr, and dropping them breaks that cycle.
    auto handlers = std::move(handlers_);
    handlers_ = {};
    if (handlers.on_close) {
      try {
        handlers.on_close(reason);
      } catch (const std::exception& e) {
        spdlog::error("net: websocket client on_close threw: {}", e.what());
      }
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  const ParsedUrl url_;
  WebSocketClientHandlers handlers_;
  const ClientOptions options_;
  std::shared_ptr<ssl::context> tls_;  // null for ws://
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  websocket::stream<ClientTransport> ws_;
  beast::flat_buffer read_buffer_;
  std::deque<std::string> queue_;
  std::optional<websocket::close_reason> close_reason_;
  std::atomic<Phase> phase_{Phase::kIdle};
  std::atomic<size_t> queued_{0};
  bool writing_ = false;
  bool close_requested_ = false;
  bool finished_ = false;
};

}  // namespace

Result<ParsedUrl> parse_ws_url(std::string_view url) {
  for (char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f)
      return make_error(ErrorCode::kInvalidInput, "url: contains a space or control character");
  }
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return make_error(ErrorCode::kInvalidInput, "url: must start with ws:// or wss://");
  }
  std::string scheme(url.substr(0, scheme_end));
  for (char& c : scheme)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ParsedUrl out;
  if (scheme == "wss") {
    out.tls = true;
  } else if (scheme != "ws") {
    return make_error(ErrorCode::kInvalidInput, "url: scheme must be ws or wss, got \"" + scheme + "\"");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find('#') != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidInput, "url: fragments (#...) are not allowed");
  }
  const size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidInput, "url: user info (user@) is not allowed");
  }

  std::string_view host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return make_error(ErrorCode::kInvalidInput, "url: unclosed '[' in host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return make_error(ErrorCode::kInvalidInput, "url: unexpected text after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return make_error(ErrorCode::kInvalidInput, "url: port must be 1-65535");
    }
    error_code ec;
    asio::ip::make_address_v6(std::string(host), ec);
    if (ec)
      return make_error(ErrorCode::kInvalidInput,
                        "url: \"" + std::string(host) + "\" is not an IPv6 address");
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return make_error(ErrorCode::kInvalidInput, "url: port must be 1-65535");
    }
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
        return make_error(ErrorCode::kInvalidInput, "url: host contains '" + std::string(1, c) + "'");
      }
    }
  }
  if (host.empty()) return make_error(ErrorCode::kInvalidInput, "url: host is empty");
  out.host = std::string(host);
  for (char& c : out.host)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

  out.port = out.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned long port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        return make_error(ErrorCode::kInvalidInput, "url: port must be 1-65535");
      }
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) return make_error(ErrorCode::kInvalidInput, "url: port must be 1-65535");
    out.port = static_cast<uint16_t>(port);
  }
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

Result<std::shared_ptr<WebSocketClient>> WebSocketClient::create(asio::io_context& io, std::string_view url,
                                                                 WebSocketClientHandlers handlers,
                                                                 ClientOptions options) {
  auto parsed = parse_ws_url(url);
  if (!parsed) return tl::unexpected(parsed.error());
  std::shared_ptr<ssl::context> tls;
  if (parsed->tls) {
    auto context = options.ca_file.empty() ? system_tls_context() : tls_context_with_ca(options.ca_file);
    if (!context) return tl::unexpected(context.error());
    tls = std::move(*context);
  }
  return std::make_shared<ClientConnection>(io, std::move(*parsed), std::move(handlers), std::move(options),
                                            std::move(tls));
}

}  // namespace infernet::net
