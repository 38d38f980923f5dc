#include "net/io_pool.hpp"

#include <algorithm>
#include <exception>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace infernet::net {

struct IoPool::State {
  asio::io_context io;
  // Keeps run() from returning while the pool is started but momentarily has nothing to do.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
};

IoPool::IoPool(size_t threads)
    : state_(std::make_unique<State>()), thread_count_(std::max<size_t>(1, threads)) {}

IoPool::~IoPool() {
  stop();
}

void IoPool::start() {
  std::lock_guard lock(mu_);
  if (!threads_.empty()) return;
  state_->io.restart();
  state_->work.emplace(state_->io.get_executor());
  for (size_t i = 0; i < thread_count_; ++i) {
    threads_.emplace_back([this] {
      // run() returns only when stopped; an escaping exception (a bug in some handler) is logged and the loop
      // resumes, so the process keeps serving everyone else.
      for (;;) {
        try {
          state_->io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("net: handler threw on the io pool: {}", e.what());
        } catch (...) {
          spdlog::error("net: handler threw a non-standard exception on the io pool");
        }
      }
    });
  }
}

void IoPool::stop() {
  std::lock_guard lock(mu_);
  if (threads_.empty()) return;
  if (state_->io.get_executor().running_in_this_thread()) {
    // A thread cannot join itself; this is a bug in the caller.
    spdlog::error("net: IoPool::stop() called from one of its own threads; ignored");
    return;
  }
  state_->work.reset();
  state_->io.stop();
  for (auto& thread : threads_)
    thread.join();
  threads_.clear();
}

bool IoPool::running() const {
  std::lock_guard lock(mu_);
  return !threads_.empty();
}

asio::io_context& IoPool::io_context() {
  return state_->io;
}

}  // namespace infernet::net
