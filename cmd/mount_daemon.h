// The life of a mounted volume, the same in the daemon and with --foreground: open the
// volume, answer on the control socket, serve FUSE until unmounted, store what is pending,
// close, clean up.
#pragma once

#include <cstdint>

#include "cmd/daemonize.h"
#include "fs/fuse_frontend.h"
#include "storage/volume/volume.h"

namespace quid {

// How long the daemon waits, after unmounting, for the stores to take what is pending. What
// they cannot take in that time stays in the journal and is stored at the next mount.
constexpr int64_t kFinalDrainTimeoutNs = 10ll * 60 * 1000 * 1000 * 1000;

struct MountDaemonOptions {
  VolumeOpenOptions volume;  // home (absolute), key source, cache sizes
  MountOptions mount;        // mountpoint (absolute), FUSE options
  int64_t drain_timeout_ns = kFinalDrainTimeoutNs;
};

// Runs until the volume is unmounted and closed; returns the process's exit code. Failures
// before the volume is mounted go to `report` (and give 1); later ones go to the log.
// SIGINT, SIGTERM and SIGHUP unmount; a second one while pending data is stored exits at once
// (the journal keeps that data for the next mount).
// REQUIRES: no other thread yet (see SignalWatcher); passphrase is wiped once used.
int RunMountDaemon(MountDaemonOptions options, StartupReport& report);

}  // namespace quid
