// Read-ahead of a FUSE mount. The kernel offers a FUSE file system at most its
// backing-device read-ahead (128 KiB by default) when the session starts, whatever the
// daemon asks for in INIT, so a sequential read arrives as 128 KiB requests with one more
// in flight: the daemon's own prefetch is then fed too slowly to keep both cores busy.
// The device's read_ahead_kb can be raised once the mount exists (root only), and files
// opened afterwards use it; a random read is not inflated by it (the kernel reads ahead only
// on a sequential pattern).
#pragma once

#include <string>

#include "storage/base/status.h"

namespace quid {

// What a mount reads ahead: one chunk, so a sequential reader keeps the prefetch of whole
// chunks fed (cold 1 GiB reads through `quid demo`: about 410 MB/s at the kernel's 128 KiB,
// 500-540 at 4 MiB). Asked for in INIT as well, since the kernel keeps the smaller of the
// device's setting and INIT's answer.
constexpr unsigned kMountReadAheadBytes = 4u << 20;

// Sets the read-ahead of the FUSE mount at `mountpoint` to `kib` KiB through
// /sys/class/bdi/<device>/read_ahead_kb. Reads only /proc/self/mountinfo (never the mount
// itself, whose requests may not be served yet). Fails without root, or without sysfs.
Status SetMountReadAhead(const std::string& mountpoint, unsigned kib);

}  // namespace quid
