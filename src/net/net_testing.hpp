// Test-only helpers shared by the net tests: recorders for what a client and a server saw, with waits that
// time out instead of hanging a test run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "net/server.hpp"
#include "net/websocket_client.hpp"

namespace infernet::net::testing {

constexpr auto kWait = std::chrono::seconds(10);

// What one WebSocketClient reported. Held by shared_ptr from the client's handlers.
struct ClientEvents {
  std::mutex mu;
  std::condition_variable changed;
  bool opened = false;                // guarded by mu
  int close_count = 0;                // guarded by mu
  std::optional<Error> closed;        // guarded by mu
  std::vector<std::string> messages;  // guarded by mu

  static WebSocketClientHandlers handlers(const std::shared_ptr<ClientEvents>& events) {
    return WebSocketClientHandlers{[events] {
                                     std::lock_guard lock(events->mu);
                                     events->opened = true;
                                     events->changed.notify_all();
                                   },
                                   [events](std::string_view message) {
                                     std::lock_guard lock(events->mu);
                                     events->messages.emplace_back(message);
                                     events->changed.notify_all();
                                   },
                                   [events](const Error& error) {
                                     std::lock_guard lock(events->mu);
                                     events->closed = error;
                                     ++events->close_count;
                                     events->changed.notify_all();
                                   }};
  }

  bool wait_open() {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, kWait, [&] { return opened || closed; }) && opened;
  }
  bool wait_closed() {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, kWait, [&] { return closed.has_value(); });
  }
  bool wait_messages(size_t count) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, kWait, [&] { return messages.size() >= count; });
  }
  std::string close_message() {
    std::lock_guard lock(mu);
    return closed ? closed->message : "";
  }
};

// What the server's WebSocket side saw, across all connections.
struct ServerEvents {
  std::mutex mu;
  std::condition_variable changed;
  int opened = 0;                                                 // guarded by mu
  int closed = 0;                                                 // guarded by mu
  std::vector<std::shared_ptr<WebSocketConnection>> connections;  // guarded by mu

  bool wait_closed(int count) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, kWait, [&] { return closed >= count; });
  }
  bool wait_opened(int count) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, kWait, [&] { return opened >= count; });
  }
};

// Sends every text message back on the same connection.
class EchoHandler : public WebSocketHandler {
 public:
  EchoHandler(std::shared_ptr<WebSocketConnection> connection, std::shared_ptr<ServerEvents> events)
      : connection_(std::move(connection)), events_(std::move(events)) {
    std::lock_guard lock(events_->mu);
    ++events_->opened;
    events_->connections.push_back(connection_);
    events_->changed.notify_all();
  }
  void on_text(std::string_view message) override { connection_->send(std::string(message)); }
  void on_close() override {
    std::lock_guard lock(events_->mu);
    ++events_->closed;
    events_->changed.notify_all();
  }

 private:
  std::shared_ptr<WebSocketConnection> connection_;
  std::shared_ptr<ServerEvents> events_;
};

inline ServerHandlers echo_handlers(const std::shared_ptr<ServerEvents>& events) {
  ServerHandlers handlers;
  handlers.websocket = [events](std::shared_ptr<WebSocketConnection> connection, const HttpRequest&) {
    return std::make_unique<EchoHandler>(std::move(connection), events);
  };
  return handlers;
}

inline std::string ws_url(uint16_t port, std::string_view path = "/") {
  return "ws://127.0.0.1:" + std::to_string(port) + std::string(path);
}

}  // namespace infernet::net::testing
