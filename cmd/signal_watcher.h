// Turns SIGINT, SIGTERM and SIGHUP into calls on a thread of its own, so the mount daemon can
// answer them with code that is not async-signal-safe (logging, RequestUnmount).
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace quid {

class SignalWatcher {
 public:
  // Blocks the watched signals in the calling thread and starts the watcher.
  // REQUIRES: no other thread yet: threads inherit the signal mask when they start, and a
  // thread that had these signals unblocked could take one and die of it.
  explicit SignalWatcher(std::function<void(int signo)> on_signal);
  // Stops and joins the watcher; the signals stay blocked.
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::function<void(int)> on_signal_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace quid
