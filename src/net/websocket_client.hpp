// WebSocket client for ws:// and wss:// URLs (Boost.Beast underneath, none of it in this header).
//
// wss:// always verifies the server: the certificate chain against the system trust store (or
// ClientOptions::ca_file), and the certificate's names against the URL's host (RFC 6125 via OpenSSL's
// X509_check_host / X509_check_ip). SNI is sent for host names. There is deliberately no switch to turn
// verification off: tests trust their own certificate through ca_file instead.
//
// The client runs on an io_context the caller runs (Server::io_context() or an IoPool) and has its own
// strand: its callbacks run there, in order, never concurrently, and must not block.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "net/io_pool.hpp"

namespace infernet::net {

struct ParsedUrl {
  bool tls = false;    // wss
  std::string host;    // without brackets for IPv6 literals, e.g. "::1"
  uint16_t port = 0;   // the URL's port, or 80 (ws) / 443 (wss)
  std::string target;  // path and query, "/" when the URL has none
};

// Parses "ws://host[:port][/path][?query]" and the same with wss. The scheme and host are case-insensitive;
// the host is returned in lower case. Errors (kInvalidInput, the message names the problem): another scheme,
// an empty host, user info ("user@"), a port that is not 1-65535, a fragment, spaces or control characters.
Result<ParsedUrl> parse_ws_url(std::string_view url);

struct WebSocketClientHandlers {
  std::function<void()> on_open;                  // the handshake completed; send() now queues
  std::function<void(std::string_view)> on_text;  // one complete text message, valid during the call
  // Exactly once per connect(): the connection failed or ended. The Error (kIo unless noted) names the stage:
  // "resolve ...", "connect ...", "tls handshake ...: certificate verify failed ...", "websocket handshake
  // ...", "closed by peer: 1000 ...", "closed by client", "message too big" (kLimitExceeded), "send queue
  // full" (kLimitExceeded). The handlers are released right after it, so they may capture the client's
  // shared_ptr.
  std::function<void(const Error&)> on_close;
};

struct ClientOptions {
  size_t max_message_bytes = 4 << 20;        // larger incoming messages end the connection (close 1009)
  size_t max_outbound_bytes = 8 << 20;       // send() beyond this ends the connection, see send()
  std::chrono::seconds connect_timeout{10};  // resolve + TCP + TLS + WebSocket handshake, each
  // A silent server is pinged after half of this and dropped after all of it; 0 disables pings.
  std::chrono::seconds idle_timeout{120};
  // PEM file of CA certificates to trust instead of the system store (for tests and private relays).
  std::string ca_file;
  std::string user_agent = "infernet";
};

// Thread-safe: every method may be called from any thread.
class WebSocketClient {
 public:
  // Validates `url` (parse_ws_url) and, for wss with a ca_file, loads it. Nothing connects until connect().
  // Errors: kInvalidInput (bad URL), kIo (ca_file unreadable or not PEM). `io` must outlive every pending
  // operation of the client (run it until the client has closed, or destroy it after the client's last use).
  static Result<std::shared_ptr<WebSocketClient>> create(asio::io_context& io, std::string_view url,
                                                         WebSocketClientHandlers handlers,
                                                         ClientOptions options = {});
  virtual ~WebSocketClient() = default;

  // Starts connecting; later on_open, or on_close with the reason it failed. A client connects once: a second
  // call, or a call after close(), does nothing (create a new client to reconnect). While connecting or open
  // the client keeps itself alive through its pending operations; close() is how to end it.
  virtual void connect() = 0;
  // Queues a text frame and returns true; never blocks. Returns false, dropping `text`, when the connection
  // is not open (not yet, closing, closed) or when unwritten bytes would exceed max_outbound_bytes, which
  // also closes the connection (on_close with kLimitExceeded).
  virtual bool send(std::string text) = 0;
  // Sends a normal close frame after the frames already queued and ends the connection; on_close follows with
  // "closed by client". Before the handshake completes it aborts the attempt. Idempotent.
  virtual void close() = 0;
  // True between on_open and the start of closing.
  virtual bool is_open() const = 0;
  virtual const ParsedUrl& url() const = 0;
};

}  // namespace infernet::net
