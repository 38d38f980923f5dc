#include "net/server.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace infernet::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using beast::error_code;

constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
// How long stop() waits for connections to run their on_close() and let go.
constexpr auto kStopGrace = std::chrono::seconds(2);
// After accept() fails (e.g. out of file descriptors) the listener pauses instead of spinning.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
constexpr std::string_view kServerName = "infernet";

// Anything the server can close when it stops.
class Session {
 public:
  virtual ~Session() = default;
  // Closes the connection from any thread, promptly and without waiting for the peer.
  virtual void shutdown() = 0;
};

// What the server and its connections share. Connections hold it by shared_ptr, so it outlives the last of
// them even when their handlers are destroyed with the io_context after the Server is gone.
struct Shared {
  Shared(ServerOptions o, ServerHandlers h) : options(std::move(o)), handlers(std::move(h)) {}

  // Registers a live connection; false once the server is stopping (the caller then closes itself).
  bool add(Session* session, std::weak_ptr<Session> handle) {
    std::lock_guard lock(mu);
    if (stopping) return false;
    sessions.emplace(session, std::move(handle));
    return true;
  }
  void remove(Session* session) {
    std::lock_guard lock(mu);
    if (sessions.erase(session) > 0 && sessions.empty()) drained.notify_all();
  }

  const ServerOptions options;
  const ServerHandlers handlers;
  std::atomic<uint64_t> next_id{1};
  std::mutex mu;
  std::condition_variable drained;                                // notified when sessions becomes empty
  bool stopping = false;                                          // guarded by mu
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
};

std::string remote_address_of(const tcp::socket& socket) {
  error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  auto address = endpoint.address();
  // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; rate limits and logs want the plain IPv4 form.
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

HttpRequest to_http_request(const http::request<http::string_body>& request, const std::string& remote) {
  HttpRequest out;
  out.method = std::string(request.method_string());
  out.target = std::string(request.target());
  for (const auto& field : request) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto [it, inserted] = out.headers.emplace(std::move(name), std::string(field.value()));
    if (!inserted) {
      it->second += ", ";
      it->second += field.value();
    }
  }
  out.body = request.body();
  out.remote_address = remote;
  return out;
}

// Serializes the application's response. The server owns the framing headers, so the application cannot break
// the connection by setting them; header lines with CR or LF would allow response splitting and are dropped.
// Writing our own bytes (instead of Beast's serializer) lets every HTTP write share one instantiation of
// asio::async_write, which keeps this file's compile time down.
std::string serialize_response(const HttpResponse& response, unsigned version, bool keep_alive, bool head) {
  const unsigned status = response.status >= 100 && response.status <= 599 ? response.status : 500;
  std::string out = version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += http::obsolete_reason(http::int_to_status(status));
  out += "\r\nServer: ";
  out += kServerName;
  out += "\r\nContent-Type: ";
  out += response.content_type;
  auto bad_line = [](std::string_view text) { return text.find_first_of("\r\n") != std::string_view::npos; };
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || bad_line(name) || bad_line(value) || name.find(':') != std::string::npos ||
        beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
        beast::iequals(name, "connection")) {
      spdlog::warn("net: dropped response header \"{}\": reserved or malformed", name);
      continue;
    }
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  // HTTP/1.0 clients close unless asked to keep alive; HTTP/1.1 clients keep alive unless told to close.
  if (!keep_alive) {
    out += "\r\nConnection: close";
  } else if (version == 10) {
    out += "\r\nConnection: keep-alive";
  }
  out += "\r\nContent-Length: ";
  out += std::to_string(response.body.size());
  out += "\r\n\r\n";
  if (!head) out += response.body;
  return out;
}

// One handler type for every HTTP read and write, so each Beast/asio operation is instantiated once.
using IoHandler = std::function<void(error_code, size_t)>;

void write_bytes(beast::tcp_stream& stream, const std::string& bytes, IoHandler done) {
  asio::async_write(stream, asio::buffer(bytes), std::move(done));
}

class WebSocketSession;

// The application's handle on one WebSocket connection. It refers to the session weakly so that an
// application holding it (often inside the session's own WebSocketHandler) neither forms a cycle nor keeps a
// dead socket around.
class ConnectionHandle final : public WebSocketConnection {
 public:
  ConnectionHandle(uint64_t id, std::string remote, size_t max_outbound,
                   std::weak_ptr<WebSocketSession> session)
      : id_(id), remote_(std::move(remote)), max_outbound_(max_outbound), session_(std::move(session)) {}

  bool send(std::string text) override;
  void close(uint16_t code, std::string reason) override;
  uint64_t id() const override { return id_; }
  const std::string& remote_address() const override { return remote_; }
  size_t queued_bytes() const override { return queued_.load(std::memory_order_relaxed); }

  // Called by the session (on its strand) when bytes were written or dropped.
  void release(size_t bytes) { queued_.fetch_sub(bytes, std::memory_order_relaxed); }
  void mark_closed() { closed_.store(true, std::memory_order_release); }

 private:
  const uint64_t id_;
  const std::string remote_;
  const size_t max_outbound_;
  const std::weak_ptr<WebSocketSession> session_;
  std::atomic<size_t> queued_{0};
  std::atomic<bool> closed_{false};
};

// One WebSocket connection after the upgrade request has been read. Everything below runs on the socket's
// strand except the public entry points that post to it.
class WebSocketSession final : public Session, public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(beast::tcp_stream&& stream, std::shared_ptr<Shared> shared, std::string remote)
      : executor_(stream.get_executor()),
        ws_(std::move(stream)),
        shared_(std::move(shared)),
        remote_(std::move(remote)) {}

  ~WebSocketSession() override {
    // Reached without finish() only when the io_context is destroyed with our handlers still queued.
    notify_closed();
    shared_->remove(this);
  }

  void start(http::request<http::string_body> request) {
    upgrade_request_ = std::move(request);
    auto self = shared_from_this();
    handle_ = std::make_shared<ConnectionHandle>(shared_->next_id.fetch_add(1), remote_,
                                                 shared_->options.max_outbound_bytes, weak_from_this());
    if (!shared_->add(this, self)) {
      handle_->mark_closed();
      close_socket();
      return;
    }
    if (shared_->handlers.websocket) {
      try {
        handler_ = shared_->handlers.websocket(handle_, to_http_request(upgrade_request_, remote_));
      } catch (const std::exception& e) {
        spdlog::error("net: websocket handler factory threw: {}", e.what());
      }
    }
    if (!handler_) return refuse();

    ws_.set_option(websocket::permessage_deflate{});  // both directions off: CPU per message for little gain
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.idle_timeout = shared_->options.idle_timeout;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, kServerName); }));
    ws_.read_message_max(shared_->options.max_message_bytes);
    beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts above take over
    ws_.async_accept(upgrade_request_, beast::bind_front_handler(&WebSocketSession::on_accept, self));
  }

  void shutdown() override {
    asio::post(executor_, [self = shared_from_this()] {
      self->handle_->mark_closed();
      self->finish();
    });
  }

  // ConnectionHandle's entry points, from any thread.
  void post_send(std::string text) {
    asio::post(executor_, [self = shared_from_this(), text = std::move(text)]() mutable {
      self->enqueue(Outbound{std::move(text), std::nullopt});
    });
  }
  void post_close(uint16_t code, std::string reason) {
    asio::post(executor_, [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->begin_close(code, reason);
    });
  }
  void post_cut_off() {
    asio::post(executor_, [self = shared_from_this()] {
      spdlog::warn("net: websocket {} from {} cut off: over {} bytes queued for a peer that does not read",
                   self->handle_->id(), self->remote_, self->shared_->options.max_outbound_bytes);
      self->finish();
    });
  }

 private:
  // A text frame, or (close set) the close frame that ends the queue.
  struct Outbound {
    std::string text;
    std::optional<websocket::close_reason> close;
  };

  void refuse() {
    handle_->mark_closed();
    refusal_ = serialize_response(error_response(403, "permission_denied", "websocket upgrade refused"),
                                  upgrade_request_.version(), false, false);
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    write_bytes(ws_.next_layer(), refusal_, [self = shared_from_this()](error_code, size_t) {
      error_code ignored;
      self->ws_.next_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->close_socket();
    });
  }

  void on_accept(error_code ec) {
    if (ec) {
      spdlog::debug("net: websocket handshake from {} failed: {}", remote_, ec.message());
      return finish();
    }
    if (finished_) return;
    open_ = true;
    ws_.text(true);
    do_read();
    if (!queue_.empty() && !writing_) do_write();
  }

  void do_read() {
    ws_.async_read(read_buffer_, beast::bind_front_handler(&WebSocketSession::on_read, shared_from_this()));
  }

  void on_read(error_code ec, size_t) {
    if (ec) {
      if (ec == websocket::error::message_too_big) {
        spdlog::debug("net: websocket {} from {}: message over {} bytes, closed with 1009", handle_->id(),
                      remote_, shared_->options.max_message_bytes);
      } else if (ec != websocket::error::closed && ec != asio::error::operation_aborted) {
        spdlog::debug("net: websocket {} from {}: {}", handle_->id(), remote_, ec.message());
      }
      return finish();
    }
    if (!close_requested_ && handler_) {
      if (!ws_.got_text()) {
        begin_close(websocket::close_code::unknown_data, "binary messages are not accepted");
      } else {
        auto data = read_buffer_.cdata();
        std::string_view message(static_cast<const char*>(data.data()), data.size());
        try {
          handler_->on_text(message);
        } catch (const std::exception& e) {
          spdlog::error("net: websocket handler threw: {}", e.what());
          begin_close(websocket::close_code::internal_error, "internal error");
        }
      }
    }
    read_buffer_.consume(read_buffer_.size());
    if (!finished_) do_read();
  }

  void enqueue(Outbound item) {
    if (finished_ || close_requested_) {
      handle_->release(item.text.size());
      return;
    }
    queue_.push_back(std::move(item));
    if (open_ && !writing_) do_write();
  }

  void begin_close(uint16_t code, std::string_view reason) {
    handle_->mark_closed();
    if (close_requested_ || finished_) return;
    // A close frame's payload is at most 125 bytes: the 2-byte code and 123 bytes of reason.
    websocket::close_reason close(static_cast<websocket::close_code>(code), reason.substr(0, 123));
    queue_.push_back(Outbound{{}, std::move(close)});
    close_requested_ = true;
    if (open_ && !writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    Outbound& front = queue_.front();
    if (front.close) {
      ws_.async_close(*front.close, [self = shared_from_this()](error_code) { self->finish(); });
      return;
    }
    ws_.async_write(asio::buffer(front.text),
                    beast::bind_front_handler(&WebSocketSession::on_write, shared_from_this()));
  }

  void on_write(error_code ec, size_t) {
    writing_ = false;
    handle_->release(queue_.front().text.size());
    queue_.pop_front();
    if (ec) return finish();
    if (!queue_.empty() && !finished_) do_write();
  }

  // Ends the connection: idempotent, on the strand. Pending operations complete with errors afterwards and
  // release the session.
  void finish() {
    if (finished_) return;
    finished_ = true;
    open_ = false;
    handle_->mark_closed();
    close_socket();
    notify_closed();
  }

  void notify_closed() {
    if (!handler_) return;
    auto handler = std::move(handler_);
    try {
      handler->on_close();
    } catch (const std::exception& e) {
      spdlog::error("net: websocket on_close threw: {}", e.what());
    }
  }

  void close_socket() {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  asio::any_io_executor executor_;  // the connection's strand
  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<Shared> shared_;
  std::string remote_;
  http::request<http::string_body> upgrade_request_;
  std::string refusal_;  // the 403 being written
  std::shared_ptr<ConnectionHandle> handle_;
  std::unique_ptr<WebSocketHandler> handler_;  // reset after on_close()
  beast::flat_buffer read_buffer_;
  std::deque<Outbound> queue_;
  bool open_ = false;             // handshake done and not finished
  bool writing_ = false;          // an async_write or async_close is in flight for queue_.front()
  bool close_requested_ = false;  // a close frame is queued; nothing more is queued or delivered
  bool finished_ = false;
};

bool ConnectionHandle::send(std::string text) {
  if (closed_.load(std::memory_order_acquire)) return false;
  const size_t size = text.size();
  if (queued_.fetch_add(size, std::memory_order_relaxed) + size > max_outbound_) {
    queued_.fetch_sub(size, std::memory_order_relaxed);
    if (!closed_.exchange(true)) {
      if (auto session = session_.lock()) session->post_cut_off();
    }
    return false;
  }
  auto session = session_.lock();
  if (!session) {
    queued_.fetch_sub(size, std::memory_order_relaxed);
    return false;
  }
  session->post_send(std::move(text));
  return true;
}

void ConnectionHandle::close(uint16_t code, std::string reason) {
  if (closed_.exchange(true)) return;
  if (auto session = session_.lock()) session->post_close(code, std::move(reason));
}

// One accepted TCP connection while it speaks HTTP; an upgrade hands the socket to a WebSocketSession.
class HttpSession final : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : executor_(socket.get_executor()),
        remote_(remote_address_of(socket)),
        stream_(std::move(socket)),
        shared_(std::move(shared)) {}

  ~HttpSession() override { shared_->remove(this); }

  void start() {
    if (!shared_->add(this, shared_from_this())) {
      error_code ignored;
      stream_.socket().close(ignored);
      return;
    }
    asio::dispatch(executor_, [self = shared_from_this()] { self->do_read(); });
  }

  void shutdown() override {
    asio::post(executor_, [self = shared_from_this()] {
      if (self->upgraded_) return;  // stream_ now belongs to the WebSocketSession
      error_code ignored;
      self->stream_.socket().close(ignored);
    });
  }

 private:
  // What follows a write.
  enum class Then { kReadNext, kReadBody, kClose };

  void do_read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(shared_->options.max_http_body_bytes);
    stream_.expires_after(shared_->options.idle_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        IoHandler([self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); }));
  }

  void on_header(error_code ec) {
    if (ec || parser_->is_done()) return on_read(ec);
    // Clients such as curl wait (about a second) for "100 Continue" before sending a large body.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return write(kContinue, Then::kReadBody);
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     IoHandler([self = shared_from_this()](error_code ec, size_t) { self->on_read(ec); }));
  }

  void on_read(error_code ec) {
    if (ec == http::error::end_of_stream) return close();
    if (ec == http::error::body_limit) {
      return send_error(
          413, "limit_exceeded",
          "request body over " + std::to_string(shared_->options.max_http_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return send_error(431, "limit_exceeded",
                        "request headers over " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return send_error(400, "invalid_input", "malformed HTTP request: " + ec.message());
    }
    if (ec) return close();  // timeout, reset, or closed by stop()

    auto request = parser_->release();
    if (websocket::is_upgrade(request)) {
      upgraded_ = true;
      std::make_shared<WebSocketSession>(std::move(stream_), shared_, remote_)->start(std::move(request));
      return;
    }
    respond(request);
  }

  void respond(const http::request<http::string_body>& request) {
    const bool keep_alive = request.keep_alive();
    HttpResponse response;
    if (!shared_->handlers.http) {
      response = error_response(404, "not_found", "no such resource");
    } else {
      try {
        response = shared_->handlers.http(to_http_request(request, remote_));
      } catch (const std::exception& e) {
        spdlog::error("net: http handler threw on {} {}: {}", std::string(request.method_string()),
                      std::string(request.target()), e.what());
        response = error_response(500, "internal", "internal error");
      }
    }
    out_ = serialize_response(response, request.version(), keep_alive, request.method() == http::verb::head);
    write(out_, keep_alive ? Then::kReadNext : Then::kClose);
  }

  void send_error(int status, std::string_view code, const std::string& message) {
    // Nothing after a request we could not read can be trusted to be framed right: answer and close.
    out_ = serialize_response(error_response(status, code, message), 11, false, false);
    write(out_, Then::kClose);
  }

  // `bytes` must stay alive until the write completes (out_ or a static).
  void write(const std::string& bytes, Then then) {
    stream_.expires_after(shared_->options.idle_timeout);
    write_bytes(stream_, bytes, [self = shared_from_this(), then](error_code ec, size_t) {
      if (ec || then == Then::kClose) return self->close();
      if (then == Then::kReadBody) return self->read_body();
      self->do_read();
    });
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  asio::any_io_executor executor_;  // the connection's strand
  std::string remote_;
  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the response being written
  bool upgraded_ = false;
};

// Accepts connections until closed. Held by shared_ptr from its own pending handlers, so a handler left
// queued when the pool stops never points at a destroyed acceptor.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, std::shared_ptr<Shared> shared)
      : io_(io),
        acceptor_(asio::make_strand(io)),
        retry_timer_(acceptor_.get_executor()),
        shared_(std::move(shared)) {}

  Status open(const tcp::endpoint& endpoint) {
    error_code ec;
    auto where = [&] { return endpoint.address().to_string() + ":" + std::to_string(endpoint.port()); };
    if (acceptor_.open(endpoint.protocol(), ec)) return make_error(ErrorCode::kIo, "socket: " + ec.message());
    if (acceptor_.set_option(asio::socket_base::reuse_address(true), ec)) {
      return make_error(ErrorCode::kIo, "setsockopt: " + ec.message());
    }
    if (acceptor_.bind(endpoint, ec))
      return make_error(ErrorCode::kIo, "bind " + where() + ": " + ec.message());
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec)) {
      return make_error(ErrorCode::kIo, "listen " + where() + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return {};
  }

  uint16_t port() const { return port_; }

  void start() {
    asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->accept(); });
  }

  // Closes the acceptor on its strand and waits (boundedly) until that is done.
  void close() {
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    asio::post(acceptor_.get_executor(), [self = shared_from_this(), done] {
      error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_timer_.cancel();
      done->set_value();
    });
    closed.wait_for(kStopGrace);
  }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(io_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      spdlog::warn("net: accept failed: {}", ec.message());
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec && self->acceptor_.is_open()) self->accept();
      });
      return;
    }
    // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold small frames back by up to 40 ms.
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<HttpSession>(std::move(socket), shared_)->start();
    accept();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;  // on its own strand
  asio::steady_timer retry_timer_;
  std::shared_ptr<Shared> shared_;
  uint16_t port_ = 0;
};

}  // namespace

struct Server::Impl {
  Impl(ServerOptions options, ServerHandlers handlers)
      : shared(std::make_shared<Shared>(std::move(options), std::move(handlers))),
        pool(shared->options.threads) {}

  std::shared_ptr<Shared> shared;
  IoPool pool;
  std::mutex mu;                       // serializes start() and stop()
  std::shared_ptr<Listener> listener;  // guarded by mu; set while running
  std::atomic<uint16_t> port{0};
};

Server::Server(ServerOptions options, ServerHandlers handlers)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handlers))) {}

Server::~Server() {
  stop();
}

Status Server::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->listener) return make_error(ErrorCode::kAlreadyExists, "server: already started");
  error_code ec;
  auto address = asio::ip::make_address(impl_->shared->options.host, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidInput,
                      "host: must be an IP address, got \"" + impl_->shared->options.host + "\"");
  }
  {
    std::lock_guard shared_lock(impl_->shared->mu);
    impl_->shared->stopping = false;
  }
  auto listener = std::make_shared<Listener>(impl_->pool.io_context(), impl_->shared);
  if (auto opened = listener->open(tcp::endpoint(address, impl_->shared->options.port)); !opened) {
    return make_error(opened.error().code, "server: " + opened.error().message);
  }
  impl_->port = listener->port();
  impl_->pool.start();
  listener->start();
  impl_->listener = std::move(listener);
  return {};
}

uint16_t Server::port() const {
  return impl_->port.load();
}

void Server::stop() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->listener) return;
  if (impl_->pool.io_context().get_executor().running_in_this_thread()) {
    // Joining the pool from one of its own threads would deadlock; this is a bug in the caller.
    spdlog::error("net: Server::stop() called from a server thread; ignored");
    return;
  }
  impl_->listener->close();

  Shared& shared = *impl_->shared;
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard shared_lock(shared.mu);
    shared.stopping = true;
    for (auto& [raw, weak] : shared.sessions) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  for (auto& session : open)
    session->shutdown();
  open.clear();  // our references must not keep them registered
  {
    std::unique_lock shared_lock(shared.mu);
    if (!shared.drained.wait_for(shared_lock, kStopGrace, [&] { return shared.sessions.empty(); })) {
      spdlog::warn("net: server stopped with {} connections still finishing", shared.sessions.size());
    }
  }
  impl_->pool.stop();
  impl_->listener.reset();
  impl_->port = 0;
}

asio::io_context& Server::io_context() {
  return impl_->pool.io_context();
}

}  // namespace infernet::net
