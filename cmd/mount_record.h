// Which home folder serves a mount point, so that `quid umount MOUNTPOINT` finds the mount
// daemon (and its control socket) from the mount point alone.
//
// One small file per mount in a runtime folder that vanishes at reboot, as mounts do:
// /run/quid/mounts for root, else $XDG_RUNTIME_DIR/quid/mounts, else /tmp/quid-UID/mounts;
// QUID_RUNTIME_DIR overrides all three (tests). The file is named by a hash of the mount
// point and holds the home and the mount point, so a hash collision is noticed, not obeyed.
#pragma once

#include <string>

#include "storage/base/status.h"

namespace quid {

// The folder records live in (not created).
std::string MountRecordDir();

// Records that `home`'s daemon serves `mountpoint` (both absolute), replacing any older
// record atomically.
Status WriteMountRecord(const std::string& mountpoint, const std::string& home);

// The home recorded for `mountpoint`; kNotFound when there is no record.
Result<std::string> ReadMountRecord(const std::string& mountpoint);

// Removes the record, but only if it still names `home`: a later mount of another volume at
// the same place keeps its own.
void RemoveMountRecord(const std::string& mountpoint, const std::string& home);

}  // namespace quid
