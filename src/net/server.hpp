// HTTP/1.1 and WebSocket server on one port (Boost.Beast underneath, none of it in this header).
//
// One io_context run by a small pool (IoPool) serves every connection; each connection has its own strand, so
// the application's callbacks for one connection never run concurrently and arrive in order, while different
// connections run in parallel. Callbacks must not block: hand slow work to another queue and answer later
// through WebSocketConnection::send().
//
// Limits (ServerOptions) are enforced at the edge:
//   - HTTP: a malformed request gets 400, a body over max_http_body_bytes 413, headers over 16 KiB 431;
//     each then closes the connection. Idle keep-alive connections are closed after idle_timeout.
//   - WebSocket: a message over max_message_bytes fails the connection with close code 1009 (sent by Beast,
//     without a reason text). Binary messages are refused with close code 1003 "binary messages are not
//     accepted": every Infernet and Nostr message is text, so a binary frame is a confused client, and
//     telling it beats silently dropping its data. permessage-deflate is off. A connection idle for half of
//     idle_timeout is pinged, and a peer silent for idle_timeout is dropped (Beast's server timeouts).
//   - Outbound: a connection whose unwritten bytes would exceed max_outbound_bytes is cut off (TCP closed, no
//     close frame: the peer is not reading), so a slow reader costs memory bounded by that limit and never
//     slows other connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "net/http.hpp"
#include "net/io_pool.hpp"

namespace infernet::net {

// Thread-safe handle the application uses to talk to one WebSocket peer; every method may be called from any
// thread, including from inside the connection's own callbacks. Held by shared_ptr; holding it does not keep
// the socket open, and calls after the connection has ended do nothing (send() returns false).
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // Queues a text frame and returns true. Never blocks. Returns false, and drops `text`, when the connection
  // is closing or closed, or when the bytes queued but not yet written would exceed max_outbound_bytes; in
  // that last case the connection is cut off (a slow reader is dropped instead of slowing anyone else).
  virtual bool send(std::string text) = 0;
  // Sends a close frame with `code` and `reason` (truncated to 123 bytes) after the frames already queued,
  // then shuts the connection down once the peer answers (or after 30 s). Later send() calls return false.
  virtual void close(uint16_t code, std::string reason) = 0;
  // Unique among the connections of one Server, never 0.
  virtual uint64_t id() const = 0;
  // The peer's IP address without port.
  virtual const std::string& remote_address() const = 0;
  // Bytes accepted by send() and not yet written to the socket.
  virtual size_t queued_bytes() const = 0;
};

// What the application implements per WebSocket connection. Calls for one connection come in order, never
// concurrently (the connection's strand). Exceptions thrown by these methods are caught and logged, and the
// connection is closed with 1011.
class WebSocketHandler {
 public:
  virtual ~WebSocketHandler() = default;
  // One complete text message; the view is valid only during the call.
  virtual void on_text(std::string_view message) = 0;
  // Called exactly once when the connection has ended for any reason (peer closed, error, cut off, server
  // stopped, handshake failed). The handler is destroyed right after it, releasing what it holds.
  virtual void on_close() = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IP address to bind (IPv4 or IPv6); "0.0.0.0" for every interface
  uint16_t port = 0;               // 0: the OS picks; see Server::port()
  size_t threads = 2;
  size_t max_message_bytes = 1 << 20;   // largest WebSocket message accepted
  size_t max_outbound_bytes = 8 << 20;  // per connection, see WebSocketConnection::send()
  size_t max_http_body_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{300};  // HTTP keep-alive and WebSocket silence
};

struct ServerHandlers {
  // Answers any request that is not a WebSocket upgrade, on the connection's strand. Missing: every request
  // gets 404. Exceptions become a 500 JSON error response.
  std::function<HttpResponse(const HttpRequest&)> http;
  // Called for a WebSocket upgrade request before the handshake is answered, on the connection's strand.
  // Returning nullptr (or a missing function) refuses the upgrade with 403. The connection may be used (send,
  // close) immediately; frames queued before the handshake completes are written right after it. on_close()
  // is called even if the handshake then fails.
  std::function<std::unique_ptr<WebSocketHandler>(std::shared_ptr<WebSocketConnection>, const HttpRequest&)>
      websocket;
};

// Thread-safe: start(), stop() and port() may be called from any thread. stop() joins the pool's threads, so
// from a handler (one of those threads) it logs an error and does nothing.
class Server {
 public:
  Server(ServerOptions options, ServerHandlers handlers);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the threads. Errors: kInvalidInput (host is not an IP address), kIo (address in
  // use, permission denied, ...). Calling it while running returns kAlreadyExists. After stop() it may be
  // called again; it binds options.port again (so with port 0, a new port).
  Status start();
  // The bound port while running; 0 before start() and after stop().
  uint16_t port() const;
  // Closes the listener and every connection (TCP closed without close frames, so it returns promptly even
  // when peers do not answer; every WebSocketHandler gets on_close() first), then joins the threads. Waits at
  // most about 2 s for callbacks that are slow to return. Idempotent.
  void stop();
  // The server's event loop, for clients (WebSocketClient) and timers that share the pool. It runs between
  // start() and stop(); work from others that is still pending at stop() resumes on the next start() or is
  // destroyed with the Server.
  asio::io_context& io_context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace infernet::net
