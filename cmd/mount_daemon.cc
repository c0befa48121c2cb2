#include "cmd/mount_daemon.h"

#include <fmt/format.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "cmd/control_socket.h"
#include "cmd/mount_record.h"
#include "cmd/signal_watcher.h"
#include "cmd/size_parse.h"
#include "cmd/status_json.h"

namespace quid {
namespace {

// Progress of a long drain goes to the log at most this often.
constexpr auto kProgressLogInterval = std::chrono::seconds(5);

// What the signal watcher, the control socket and FUSE's mount callback share.
struct DaemonState {
  std::atomic<bool> mounted{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> skip_final_drain{false};
  std::atomic<int> signals_seen{0};
};

std::string OpenFailure(const Status& status, const VolumeOpenOptions& options) {
  if (status.code() == Code::kBadKey) {
    return options.key_file.empty() ? "wrong passphrase" : "wrong key file " + options.key_file;
  }
  return status.message();
}

void Unmount(DaemonState& state) {
  state.stop_requested.store(true);
  // Before the mount is in place there is nothing to unmount yet; the mount callback sees
  // stop_requested and unmounts right away.
  if (state.mounted.load()) RequestUnmount();
}

void OnSignal(DaemonState& state, const std::string& home, int signo) {
  if (state.signals_seen.fetch_add(1) == 0) {
    spdlog::info("signal {}: unmounting", signo);
    Unmount(state);
    return;
  }
  spdlog::warn(
      "signal {} again: exiting now; data not yet stored stays in {}/journal and is "
      "stored at the next mount",
      signo, home);
  std::_Exit(1);
}

// Logs a drain's progress now and then, so a long wait shows it is moving.
class ProgressLog {
 public:
  void operator()(uint64_t pending) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    if (now - last_ < kProgressLogInterval) return;
    last_ = now;
    spdlog::info("storing pending data: {} left", FormatSize(pending));
  }

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
};

// Stores what is pending, logging progress and passing it on to `progress`; returns the
// bytes still pending after it (0: everything stored).
uint64_t DrainPending(Volume& volume, int64_t timeout_ns,
                      const std::function<void(uint64_t)>& progress) {
  ProgressLog log;
  const Status status = volume.Drain(timeout_ns, [&](uint64_t pending) {
    log(pending);
    progress(pending);
  });
  if (status.ok()) return 0;
  spdlog::warn("storing pending data: {}", status.message());
  return volume.GetStatus().pending_bytes;
}

ControlHandlers MakeHandlers(Volume& volume, DaemonState& state, const MountDaemonOptions& opts) {
  ControlHandlers handlers;
  handlers.status_json = [&volume, &opts] {
    return StatusToJson({opts.volume.home, opts.mount.mountpoint, volume.GetStatus()});
  };
  handlers.drain = [&volume, &opts](const std::function<void(uint64_t)>& progress) {
    spdlog::info("storing pending data before unmounting");
    return DrainPending(volume, opts.drain_timeout_ns, progress);
  };
  handlers.long_request = [&volume](const std::string& request,
                                    const std::function<bool(const std::string&)>& send,
                                    const std::function<bool()>& stopping) {
    CheckOptions options;
    options.deep = request.find(" deep") != std::string::npos;
    options.repair = request.find(" repair") != std::string::npos;
    std::atomic<bool> client_gone{false};
    options.cancelled = [&] { return stopping() || client_gone.load(); };
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    Result<CheckReport> report = volume.Check(options, [&](const CheckProgress& p) {
      // About four lines a second at most: a terminal's bar needs no more.
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(250) && p.done != p.total) return;
      last = now;
      if (!send(fmt::format("progress {} {} {}", p.phase, p.done, p.total))) client_gone = true;
    });
    send(report.ok() ? "report " + CheckReportToJson(*report)
                     : "error " + report.status().message());
  };
  handlers.unmount = [&state](bool force) {
    spdlog::info("unmount requested{}",
                 force ? " (forced: pending data stays in the journal)" : "");
    if (force) state.skip_final_drain.store(true);
    Unmount(state);
  };
  return handlers;
}

// The failure that stops the mount has been reported; a second one only goes to the log.
void CloseAfterFailure(Volume& volume) {
  const Status closed = volume.Close();
  if (!closed.ok()) spdlog::error("closing the volume: {}", closed.message());
}

// After FUSE let go: store what is pending (unless forced), stop answering, close.
int Shutdown(Volume& volume, std::unique_ptr<ControlServer> server, const DaemonState& state,
             const MountDaemonOptions& options) {
  const std::string& home = options.volume.home;
  if (!state.skip_final_drain.load()) {
    const uint64_t left = DrainPending(volume, options.drain_timeout_ns, [](uint64_t) {});
    if (left == 0) {
      spdlog::info("all data stored");
    } else {
      spdlog::warn("{} not yet stored stays in {}/journal; the next mount stores it",
                   FormatSize(left), home);
    }
  }
  server->Stop();
  const Status closed = volume.Close();
  // The socket file goes last: `quid umount` waits for it to vanish as the sign that the
  // volume is closed.
  server.reset();
  RemoveMountRecord(options.mount.mountpoint, home);
  if (!closed.ok()) {
    spdlog::error("closing the volume: {}", closed.message());
    return 1;
  }
  spdlog::info("volume closed");
  return 0;
}

}  // namespace

int RunMountDaemon(MountDaemonOptions options, StartupReport& report) {
  DaemonState state;
  const std::string home = options.volume.home;
  SignalWatcher signals([&state, home](int signo) { OnSignal(state, home, signo); });

  Result<std::unique_ptr<Volume>> opened = Volume::Open(options.volume);
  sodium_memzero(options.volume.passphrase.data(), options.volume.passphrase.size());
  options.volume.passphrase.clear();
  if (!opened.ok()) {
    report.Failed(OpenFailure(opened.status(), options.volume));
    return 1;
  }
  std::unique_ptr<Volume> volume = std::move(opened).value();
  for (const std::string& warning : volume->OpenWarnings()) report.Warn(warning);

  Result<std::unique_ptr<ControlServer>> server =
      ControlServer::Start(ControlSocketPath(home), MakeHandlers(*volume, state, options));
  Status ready = server.ok() ? WriteMountRecord(options.mount.mountpoint, home) : server.status();
  if (!ready.ok()) {
    report.Failed(ready.code() == Code::kBusy ? "the volume in " + home + " is already mounted"
                                              : ready.message());
    if (server.ok()) server->reset();
    CloseAfterFailure(*volume);
    return 1;
  }

  spdlog::info("mounting {} at {}", home, options.mount.mountpoint);
  const Status served = ServeFuse(volume.get(), options.mount, [&] {
    state.mounted.store(true);
    spdlog::info("mounted {} at {}", home, options.mount.mountpoint);
    report.Mounted();
    if (state.stop_requested.load()) RequestUnmount();
  });
  if (!served.ok()) {
    if (!state.mounted.load()) {
      report.Failed(served.message());
      state.skip_final_drain.store(true);
    }
    spdlog::error("serving {}: {}", options.mount.mountpoint, served.message());
  } else {
    spdlog::info("unmounted {}", options.mount.mountpoint);
  }
  const int code = Shutdown(*volume, std::move(*server), state, options);
  return state.mounted.load() ? code : 1;
}

}  // namespace quid
