#define FUSE_USE_VERSION 314

#include "fs/fuse_frontend.h"

#include <fuse_lowlevel.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/fuse_ops.h"
#include "fs/read_ahead.h"

namespace quid {
namespace {

// How soon the wake-up thread notices a session that a signal handler told to exit. Signal
// handlers cannot notify a condition variable, so for them it polls.
constexpr auto kExitPollInterval = std::chrono::milliseconds(100);

// The one ServeFuse in progress, as RequestUnmount and the wake-up thread see it.
struct Serving {
  fuse_session* session = nullptr;  // from fuse_session_new until just before destroy
  bool exit_requested = false;      // RequestUnmount was called
  bool loop_done = false;           // fuse_session_loop_mt has returned
};

// Lock order: g_mu is a leaf; nothing else is locked while holding it, and no FUSE request
// is waited for under it.
std::mutex g_mu;
std::condition_variable g_changed;  // any Serving field changed
Serving* g_serving = nullptr;       // guarded by g_mu; lives on ServeFuse's stack

// fuse_session_new's command line: the fixed options, then the user's.
std::vector<std::string> SessionArgs(const MountOptions& options) {
  std::vector<std::string> args = {"quidfs",        "-o", "default_permissions", "-o",
                                   "fsname=quidfs", "-o", "subtype=quid"};
  for (const std::string& option : options.fuse_options) {
    if (option.empty()) continue;
    args.push_back("-o");
    args.push_back(option);
  }
  return args;
}

fuse_session* NewSession(const MountOptions& options, FuseContext* context) {
  std::vector<std::string> strings = SessionArgs(options);
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_lowlevel_ops& ops = QuidFuseOps();
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), context);
  fuse_opt_free_args(&args);  // frees only the copy the option parser allocated
  return session;
}

// Once the session is told to exit, sends the kernel one request so that a worker wakes up,
// sees the exit flag, and lets fuse_session_loop_mt return: the loop's workers block in
// read(/dev/fuse) and its main thread in sem_wait, and nothing else wakes them. statfs always
// reaches the daemon (the kernel caches no answer) and needs no permission inside the mount.
void WakeLoopOnExit(Serving* serving, const std::string& mountpoint) {
  std::unique_lock lock(g_mu);
  while (!serving->loop_done && !serving->exit_requested &&
         !fuse_session_exited(serving->session)) {
    g_changed.wait_for(lock, kExitPollInterval);
  }
  if (serving->loop_done) return;
  lock.unlock();
  // The answer does not matter. If the loop has already stopped, this waits until
  // fuse_session_unmount closes the device, then fails with ENOTCONN.
  struct statvfs ignored {};
  static_cast<void>(statvfs(mountpoint.c_str(), &ignored));
}

Status LoopStatus(int err) {
  // libfuse reports a signal that ended the loop as its (positive) number: a clean exit.
  if (err >= 0) return Status::Ok();
  return Status::FromErrno(-err, "fuse session loop");
}

// Mounts, serves until unmounted or told to exit, and unmounts.
Status MountAndServe(Serving* serving, fuse_session* session, const std::string& mountpoint,
                     const MountOptions& options, const std::function<void()>& on_mounted) {
  if (fuse_session_mount(session, mountpoint.c_str()) != 0) {
    return Status::IoError("cannot mount FUSE at " + mountpoint);
  }
  if (fuse_set_signal_handlers(session) != 0) {
    fuse_session_unmount(session);
    return Status::IoError("cannot install the FUSE signal handlers");
  }
  // Best effort: without root the mount works as well, only sequential reads are slower.
  if (Status ra = SetMountReadAhead(mountpoint, kMountReadAheadBytes / 1024); !ra.ok())
    spdlog::info("mount read-ahead left at the kernel's default: {}", ra.message());
  on_mounted();
  std::thread waker(WakeLoopOnExit, serving, mountpoint);

  // clone_fd off: one /dev/fuse descriptor is enough at these thread counts.
  std::unique_ptr<fuse_loop_config, decltype(&fuse_loop_cfg_destroy)> config(
      fuse_loop_cfg_create(), &fuse_loop_cfg_destroy);
  if (config != nullptr) {  // null only without memory; the loop then uses its defaults
    fuse_loop_cfg_set_clone_fd(config.get(), 0);
    fuse_loop_cfg_set_max_threads(config.get(), options.max_threads);
  }
  int err = fuse_session_loop_mt(session, config.get());

  fuse_remove_signal_handlers(session);
  {
    std::lock_guard lock(g_mu);
    serving->loop_done = true;
  }
  g_changed.notify_all();
  // Closes the device before detaching the mount, which also releases a wake-up statfs
  // still waiting for an answer; only then can the waker be joined.
  fuse_session_unmount(session);
  waker.join();
  return LoopStatus(err);
}

Status Serve(Serving* serving, Volume* volume, const MountOptions& options,
             const std::string& mountpoint, const std::function<void()>& on_mounted) {
  // Outlives the session: fuse_session_destroy() still calls `destroy` with it.
  FuseContext context;
  context.volume = volume;
  context.attr_timeout_s = options.attr_timeout_s;
  context.entry_timeout_s = options.entry_timeout_s;

  fuse_session* session = NewSession(options, &context);
  if (session == nullptr) {
    return Status::Invalid("cannot start a FUSE session (unknown mount option?)");
  }
  {
    std::lock_guard lock(g_mu);
    serving->session = session;
    // Asked before there was a session to tell: the loop will return as soon as it starts.
    if (serving->exit_requested) fuse_session_exit(session);
  }
  Status result = MountAndServe(serving, session, mountpoint, options, on_mounted);
  {
    std::lock_guard lock(g_mu);
    serving->session = nullptr;
  }
  fuse_session_destroy(session);  // runs `destroy` (the final SyncAll) if the kernel got INIT
  if (result.ok()) result = context.destroy_status;
  return result;
}

}  // namespace

Status ServeFuse(Volume* volume, const MountOptions& options,
                 const std::function<void()>& on_mounted) {
  if (options.max_threads == 0) return Status::Invalid("max_threads must be at least 1");
  // Absolute, so the wake-up statfs reaches the mount whatever the working directory.
  std::unique_ptr<char, decltype(&free)> resolved(realpath(options.mountpoint.c_str(), nullptr),
                                                  &free);
  if (resolved == nullptr) return Status::FromErrno(errno, "mount point " + options.mountpoint);
  const std::string mountpoint = resolved.get();

  Serving serving;
  {
    std::lock_guard lock(g_mu);
    if (g_serving != nullptr) return Status(Code::kBusy, "a FUSE session is already served");
    g_serving = &serving;
  }
  Status result = Serve(&serving, volume, options, mountpoint, on_mounted);
  {
    std::lock_guard lock(g_mu);
    g_serving = nullptr;
  }
  return result;
}

void RequestUnmount() {
  std::lock_guard lock(g_mu);
  if (g_serving == nullptr) return;
  g_serving->exit_requested = true;
  if (g_serving->session != nullptr) fuse_session_exit(g_serving->session);
  g_changed.notify_all();
}

}  // namespace quid
