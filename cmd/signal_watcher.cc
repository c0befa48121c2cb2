#include "cmd/signal_watcher.h"

#include <pthread.h>

#include <csignal>

namespace quid {
namespace {

// The destructor wakes the watcher with this signal, sent to the watcher thread alone.
constexpr int kStopSignal = SIGUSR1;

sigset_t WatchedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, kStopSignal);
  return set;
}

}  // namespace

SignalWatcher::SignalWatcher(std::function<void(int signo)> on_signal)
    : on_signal_(std::move(on_signal)) {
  const sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] {
    const sigset_t watched = WatchedSignals();
    while (true) {
      int signo = 0;
      if (sigwait(&watched, &signo) != 0) continue;
      if (signo == kStopSignal) {
        // A SIGUSR1 from outside must not silence the watcher.
        if (stopping_.load()) return;
        continue;
      }
      on_signal_(signo);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  stopping_.store(true);
  pthread_kill(thread_.native_handle(), kStopSignal);
  thread_.join();
}

}  // namespace quid
