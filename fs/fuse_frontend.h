// The FUSE frontend: serves a Volume at a mount point through the libfuse3 low-level API,
// multi-threaded. Each callback translates one request into one Volume call and replies
// once; nothing here knows how data is stored.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "storage/base/status.h"
#include "storage/volume/volume.h"

namespace quid {

struct MountOptions {
  std::string mountpoint;
  // Options as mount(8) and fstab pass them ("allow_other", "ro", ...), split on commas.
  std::vector<std::string> fuse_options;
  // Entry and attribute timeouts the kernel may cache replies for (seconds).
  double attr_timeout_s = 1.0;
  double entry_timeout_s = 1.0;
  // Workers serving requests. More than the kernel's background requests (8, fuse_ops.cc),
  // so that writes waiting for journal room never take every worker.
  unsigned max_threads = 16;
};

// Serves `volume` until the file system is unmounted (fusermount3 -u, umount),
// RequestUnmount() is called, or the process gets SIGINT, SIGTERM or SIGHUP (libfuse's
// handlers are installed while serving, where those signals are still at their defaults).
// `on_mounted` runs on the calling thread once the kernel mount is in place (the daemon
// tells its parent it may return) and before any request is answered, so it must not touch
// the mount itself. Mount options always include default_permissions (the kernel checks
// modes), fsname=quidfs and subtype=quid. At exit the Volume is synced (SyncAll), not closed.
// Returns OK after a clean unmount, kBusy if another ServeFuse is running.
// Threads: requests run on up to `max_threads` libfuse workers plus one internal wake-up
// thread; all are joined before ServeFuse returns. `volume` must outlive the call.
// REQUIRES: at most one Serve per process at a time.
Status ServeFuse(Volume* volume, const MountOptions& options,
                 const std::function<void()>& on_mounted);

// Asks a running ServeFuse to unmount and return. Safe from any thread, including
// on_mounted and FUSE requests; not from a signal handler (the session's own signal handlers
// cover that). Returns at once; ServeFuse returns shortly after, and files still open on the
// mount then fail with ENOTCONN. No effect when nothing is being served.
// How: the session is told to exit, then the wake-up thread's statfs on the mount point wakes
// a worker so that fuse_session_loop_mt notices; ServeFuse itself then closes /dev/fuse and
// detaches the mount (fuse_session_unmount), so no descriptor is closed under a running
// worker.
void RequestUnmount();

}  // namespace quid
