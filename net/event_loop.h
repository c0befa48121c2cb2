// EventLoop: one libuv loop on its own thread. Everything that touches a socket runs
// there; other threads hand it work with Post() and wait on futures of their own, so a
// FUSE thread never blocks the loop and the loop never blocks on a FUSE thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/base/status.h"

struct uv_loop_s;

namespace quid::net {

class EventLoop {
 public:
  // Starts the loop thread.
  static Result<std::unique_ptr<EventLoop>> Start(const char* name);
  // Stops the loop (runs what was posted before, closes every handle) and joins the
  // thread. REQUIRES: not called on the loop thread.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs `fn` on the loop thread, soon. Thread-safe. After shutdown began, fn is dropped.
  void Post(std::function<void()> fn);
  // True when called on the loop thread.
  bool InLoopThread() const;
  // The libuv loop. REQUIRES: used only on the loop thread.
  uv_loop_s* loop();

 private:
  EventLoop() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quid::net
