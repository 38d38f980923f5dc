#include <deque>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>

#include "net/server_internal.hpp"

namespace infernet::net::server_detail {
namespace {

namespace websocket = beast::websocket;

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

}  // namespace

void start_websocket_session(beast::tcp_stream&& stream, std::shared_ptr<Shared> shared, std::string remote,
                             http::request<http::string_body> request) {
  std::make_shared<WebSocketSession>(std::move(stream), std::move(shared), std::move(remote))
      ->start(std::move(request));
}

}  // namespace infernet::net::server_detail
