#include "net/server.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
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
#include <boost/beast/websocket/rfc6455.hpp>

#include "net/server_internal.hpp"

namespace infernet::net {
namespace server_detail {

// How long stop() waits for connections to run their on_close() and let go.
constexpr auto kStopGrace = std::chrono::seconds(2);
// After accept() fails (e.g. out of file descriptors) the listener pauses instead of spinning.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

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
  if (!response.stream) {
    out += "\r\nContent-Length: ";
    out += std::to_string(response.body.size());
  } else if (version != 10) {
    out += "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache";
  } else {
    out += "\r\nCache-Control: no-cache";
  }
  out += "\r\n\r\n";
  if (!head && !response.stream) out += response.body;
  return out;
}

void write_bytes(beast::tcp_stream& stream, const std::string& bytes, IoHandler done) {
  asio::async_write(stream, asio::buffer(bytes), std::move(done));
}
namespace {

namespace websocket = beast::websocket;

class HttpSession;

// The application's handle on a streamed response body; like ConnectionHandle, it refers to the session
// weakly. Chunk framing happens here, off the connection's strand.
class BodyWriter final : public HttpBodyWriter {
 public:
  BodyWriter(std::weak_ptr<HttpSession> session, size_t max_outbound, bool chunked)
      : session_(std::move(session)), max_outbound_(max_outbound), chunked_(chunked) {}

  bool write(std::string bytes) override;
  void finish() override;
  bool respond(HttpResponse response) override;
  void on_end(std::function<void()> callback) override {
    {
      std::lock_guard lock(mu_);
      if (!ended_) {
        on_end_ = std::move(callback);
        return;
      }
    }
    callback();
  }

  // Called by the session, on its strand.
  void release(size_t bytes) { queued_.fetch_sub(bytes, std::memory_order_relaxed); }
  void end() {
    std::function<void()> callback;
    {
      std::lock_guard lock(mu_);
      if (ended_) return;
      ended_ = true;
      callback = std::move(on_end_);
    }
    closed_.store(true, std::memory_order_release);
    if (callback) callback();
  }

 private:
  const std::weak_ptr<HttpSession> session_;
  const size_t max_outbound_;
  const bool chunked_;
  std::atomic<size_t> queued_{0};
  std::atomic<bool> closed_{false};   // finish() or respond() was called, or the body ended
  std::atomic<bool> started_{false};  // write(), finish() or respond() was called: respond() refuses
  std::mutex mu_;
  bool ended_ = false;  // guarded by mu_
  std::function<void()> on_end_;
};

// One accepted TCP connection while it speaks HTTP; an upgrade hands the socket to a WebSocketSession.
class HttpSession final : public Session, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : executor_(socket.get_executor()),
        remote_(remote_address_of(socket)),
        stream_(std::move(socket)),
        shared_(std::move(shared)) {}

  ~HttpSession() override {
    if (writer_) writer_->end();
    shared_->remove(this);
  }

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
      if (self->writer_) self->writer_->end();
    });
  }

  // BodyWriter's entry points, from any thread. `framed` is ready for the wire.
  void post_body(std::string framed) {
    asio::post(executor_, [self = shared_from_this(), framed = std::move(framed)]() mutable {
      if (!self->writer_ || self->finishing_) return;  // the body ended meanwhile
      self->send_head();
      const size_t counted = framed.size();
      self->body_queue_.push_back(Piece{std::move(framed), counted});
      self->pump_body();
    });
  }
  void post_finish() {
    asio::post(executor_, [self = shared_from_this()] {
      if (!self->writer_ || self->finishing_) return;
      self->send_head();
      self->finishing_ = true;
      if (self->chunked_) self->body_queue_.push_back(Piece{"0\r\n\r\n", 0});
      self->pump_body();
    });
  }
  void post_respond(HttpResponse response) {
    asio::post(executor_, [self = shared_from_this(), response = std::move(response)]() mutable {
      if (!self->writer_ || self->finishing_ || self->head_.empty()) return;
      response.stream = nullptr;
      self->head_.clear();
      self->body_keep_alive_ = self->request_keep_alive_;  // framed by Content-Length: keep-alive works
      self->body_queue_.push_back(
          Piece{serialize_response(response, self->request_version_, self->request_keep_alive_, false), 0});
      self->finishing_ = true;
      self->pump_body();
    });
  }
  void post_cut_off() {
    asio::post(executor_, [self = shared_from_this()] {
      spdlog::warn("net: streamed response to {} cut off: over {} bytes queued for a peer that does not read",
                   self->remote_, self->shared_->options.max_outbound_bytes);
      self->end_body_and_close();
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
      start_websocket_session(std::move(stream_), shared_, remote_, std::move(request));
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
    const bool head = request.method() == http::verb::head;
    out_ = serialize_response(response, request.version(), keep_alive, head);
    if (!response.stream || head) return write(out_, keep_alive ? Then::kReadNext : Then::kClose);
    request_version_ = request.version();
    request_keep_alive_ = keep_alive;
    start_body(response.stream);
  }

  // A streamed response: its status and headers (kept in head_) go with the first piece of body, or give
  // way to a complete response (respond()). A read stays pending meanwhile, so a peer that leaves ends the
  // body at once rather than at the next write.
  void start_body(const std::function<void(std::shared_ptr<HttpBodyWriter>)>& stream) {
    chunked_ = request_version_ != 10;
    body_keep_alive_ = request_keep_alive_ && chunked_;  // an HTTP/1.0 body ends where the connection does
    finishing_ = false;
    head_ = std::move(out_);
    writer_ = std::make_shared<BodyWriter>(weak_from_this(), shared_->options.max_outbound_bytes, chunked_);
    watch_peer();
    try {
      stream(writer_);
    } catch (const std::exception& e) {
      spdlog::error("net: streamed response handler threw: {}", e.what());
      end_body_and_close();
    }
  }

  void watch_peer() {
    watching_ = true;
    stream_.socket().async_read_some(
        buffer_.prepare(1024), IoHandler([self = shared_from_this()](error_code ec, size_t n) {
          self->watching_ = false;
          if (!ec) {
            self->buffer_.commit(n);  // a pipelined request: the parser reads it after the body
            if (!self->writer_) self->do_read();
            return;
          }
          if (ec == asio::error::operation_aborted && self->read_after_watch_) {
            self->read_after_watch_ = false;
            return self->do_read();
          }
          self->end_body_and_close();
        }));
  }

  void pump_body() {
    if (body_writing_ || !writer_) return;
    if (body_queue_.empty()) {
      if (finishing_) body_done();
      return;
    }
    body_writing_ = true;
    stream_.expires_after(shared_->options.idle_timeout);
    write_bytes(stream_, body_queue_.front().bytes, [self = shared_from_this()](error_code ec, size_t) {
      self->body_writing_ = false;
      if (self->writer_) self->writer_->release(self->body_queue_.front().counted);
      self->body_queue_.pop_front();
      if (ec) return self->end_body_and_close();
      self->pump_body();
    });
  }

  // Every byte of a finished body is written: serve the next request, or close.
  void body_done() {
    auto writer = std::move(writer_);
    writer->end();
    if (!body_keep_alive_) return close();
    if (!watching_) return do_read();
    read_after_watch_ = true;  // the watch's completion starts the next read
    error_code ignored;
    stream_.socket().cancel(ignored);
  }

  // The streamed response's status and headers, once, before its first piece.
  void send_head() {
    if (head_.empty()) return;
    body_queue_.push_back(Piece{std::move(head_), 0});
    head_.clear();
  }

  void end_body_and_close() {
    // A write in flight still reads the front; it completes (with an error) after the close below.
    body_queue_.erase(body_queue_.begin() + (body_writing_ ? 1 : 0), body_queue_.end());
    head_.clear();
    if (auto writer = std::move(writer_)) writer->end();
    error_code ignored;
    stream_.socket().close(ignored);
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
  // A streamed body (start_body); writer_ is set while it lasts.
  std::shared_ptr<BodyWriter> writer_;
  // Bytes for the wire; `counted` of them were counted against max_outbound_bytes by the writer.
  struct Piece {
    std::string bytes;
    size_t counted = 0;
  };
  std::deque<Piece> body_queue_;  // the front is being written when body_writing_
  std::string head_;              // the status and headers, until sent (send_head) or replaced (respond)
  unsigned request_version_ = 11;
  bool request_keep_alive_ = true;
  bool body_writing_ = false;
  bool finishing_ = false;  // finish() was called: the queue ends the body
  bool chunked_ = true;
  bool body_keep_alive_ = true;
  bool watching_ = false;          // watch_peer's read is pending
  bool read_after_watch_ = false;  // cancel() of that read means "read the next request"
};

bool BodyWriter::write(std::string bytes) {
  if (closed_.load(std::memory_order_acquire)) return false;
  if (bytes.empty()) return true;  // an empty chunk would end a chunked body
  started_.store(true, std::memory_order_release);
  if (chunked_) {
    char size[20];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    bytes.insert(0, size, static_cast<size_t>(n));
    bytes += "\r\n";
  }
  const size_t size = bytes.size();
  auto session = session_.lock();
  if (!session) return false;
  if (queued_.fetch_add(size, std::memory_order_relaxed) + size > max_outbound_) {
    queued_.fetch_sub(size, std::memory_order_relaxed);
    if (!closed_.exchange(true)) session->post_cut_off();
    return false;
  }
  session->post_body(std::move(bytes));
  return true;
}

void BodyWriter::finish() {
  started_.store(true, std::memory_order_release);
  if (closed_.exchange(true)) return;
  if (auto session = session_.lock()) session->post_finish();
}

bool BodyWriter::respond(HttpResponse response) {
  if (started_.exchange(true) || closed_.exchange(true)) return false;
  auto session = session_.lock();
  if (!session) return false;
  session->post_respond(std::move(response));
  return true;
}

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
}  // namespace server_detail

using namespace server_detail;  // NOLINT(google-build-using-namespace): this file implements them

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
