// A small pool of threads running one asio::io_context: the process's single event loop (DESIGN.md, "Threads
// and data flow"). Server owns one; a process without a server (a consumer talking only to remote relays) can
// run its WebSocketClients on its own IoPool.
//
// Including this header does not pull in asio: io_context is only forward-declared.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace infernet::net {

namespace asio = boost::asio;

// Thread-safe: start() and stop() may be called from any thread except the pool's own threads (stop() joins
// them, so it logs an error and does nothing there). Handlers that throw are logged and the thread keeps
// running, so one bad handler cannot stop the loop.
class IoPool {
 public:
  // `threads` is clamped to at least 1. Nothing runs until start().
  explicit IoPool(size_t threads);
  ~IoPool();  // stop()
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // Starts the threads; they run until stop() even when no work is queued. Does nothing when running.
  void start();
  // Stops the io_context and joins the threads. Handlers still queued stay queued and run after the next
  // start(); objects they own are destroyed with the IoPool. Idempotent.
  void stop();
  bool running() const;

  // Valid for the IoPool's lifetime, across start/stop cycles.
  asio::io_context& io_context();

 private:
  struct State;
  std::unique_ptr<State> state_;
  mutable std::mutex mu_;
  std::vector<std::thread> threads_;  // guarded by mu_
  size_t thread_count_;
};

}  // namespace infernet::net
