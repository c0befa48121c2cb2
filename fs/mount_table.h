// The kernel's mount table (/proc/self/mountinfo): whether a folder is a mount point, and
// which device is mounted there. Reading the table never touches the file system mounted
// there, so it cannot hang on a daemon that stopped answering (or not yet serving), as a
// stat() of the folder could. No FUSE here: the command line's utilities link it alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "storage/base/status.h"

namespace quid {

// REQUIRES: `path` absolute and normalized (see AbsolutePath).
Result<bool> IsMountPoint(const std::string& path);

// mountinfo writes space, tab, newline and backslash in paths as octal escapes ("\040").
std::string UnescapeMountPath(std::string_view escaped);

// The device ("major:minor") mounted at `mountpoint` according to mountinfo's text
// `mountinfo`: the last such line, as a later mount hides an earlier one. `mountpoint` is
// plain text, absolute and normalized.
std::optional<std::string> MountDevice(std::string_view mountinfo, std::string_view mountpoint);

// The same, from this process's /proc/self/mountinfo (kNotFound when nothing is mounted
// there).
Result<std::string> MountDeviceOf(const std::string& mountpoint);

}  // namespace quid
