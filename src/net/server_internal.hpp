// Internals of net::Server shared by its HTTP sessions (server.cpp) and WebSocket sessions
// (server_websocket.cpp). Not part of the module's interface: Beast appears here, and only those two files
// include it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "net/server.hpp"

namespace infernet::net::server_detail {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using beast::error_code;

inline constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
inline constexpr std::string_view kServerName = "infernet";

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

// The peer's IP address; IPv4-mapped IPv6 addresses in their plain IPv4 form.
std::string remote_address_of(const tcp::socket& socket);

HttpRequest to_http_request(const http::request<http::string_body>& request, const std::string& remote);

// Serializes the application's response. The server owns the framing headers, so the application cannot break
// the connection by setting them; header lines with CR or LF would allow response splitting and are dropped.
// A streamed response (response.stream) gets its headers only: chunked for HTTP/1.1.
std::string serialize_response(const HttpResponse& response, unsigned version, bool keep_alive, bool head);

// One handler type for every HTTP read and write, so each Beast/asio operation is instantiated once.
using IoHandler = std::function<void(error_code, size_t)>;

// `bytes` must stay alive until `done` runs.
void write_bytes(beast::tcp_stream& stream, const std::string& bytes, IoHandler done);

// Hands a connection whose upgrade request has been read to a new WebSocket session, which answers the
// handshake (or refuses it with 403 when the application's websocket handler returns nullptr).
void start_websocket_session(beast::tcp_stream&& stream, std::shared_ptr<Shared> shared, std::string remote,
                             http::request<http::string_body> request);

}  // namespace infernet::net::server_detail
