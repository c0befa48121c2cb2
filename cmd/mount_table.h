// Whether a folder is a mount point, from the kernel's own table (/proc/self/mountinfo).
// Reading the table never touches the file system mounted there, so it cannot hang on a
// daemon that stopped answering, as a stat() of the folder could.
#pragma once

#include <string>
#include <string_view>

#include "storage/base/status.h"

namespace quid {

// REQUIRES: `path` absolute and normalized (see AbsolutePath).
Result<bool> IsMountPoint(const std::string& path);

// mountinfo writes space, tab, newline and backslash in paths as octal escapes ("\040").
std::string UnescapeMountPath(std::string_view escaped);

}  // namespace quid
