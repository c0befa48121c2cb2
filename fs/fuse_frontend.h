// The FUSE frontend: serves a Volume at a mount point through the libfuse3 low-level API,
// multi-threaded. Each callback translates one request into one Volume call and replies
// once; nothing here knows how data is stored.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "storage/status.h"
#include "storage/volume.h"

namespace quid {

struct MountOptions {
  std::string mountpoint;
  // Options as mount(8) and fstab pass them ("allow_other", "ro", ...), split on commas.
  std::vector<std::string> fuse_options;
  // Entry and attribute timeouts the kernel may cache replies for (seconds).
  double attr_timeout_s = 1.0;
  double entry_timeout_s = 1.0;
  unsigned max_threads = 8;
};

// Serves `volume` until the file system is unmounted (fusermount3 -u, umount) or
// RequestUnmount() is called. `on_mounted` runs once the kernel mount is in place (the
// daemon tells its parent it may return). Returns OK after a clean unmount.
// REQUIRES: at most one Serve per process at a time.
Status ServeFuse(Volume* volume, const MountOptions& options,
                 const std::function<void()>& on_mounted);

// Asks a running ServeFuse to unmount and return (safe from any thread; not from a
// signal handler — use the session's own signal handlers for that).
void RequestUnmount();

}  // namespace quid
