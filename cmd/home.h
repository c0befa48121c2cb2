// The node's home folder, where its volume keeps metadata, the write-back journal, the mount
// daemon's log and its control socket.
#pragma once

#include <string>

#include "storage/base/status.h"

namespace quid {

// The first that is set wins: `flag` (--home), QUID_HOME, then ~/.local/share/quid (HOME, or
// the passwd entry when HOME is unset). Always absolute and normalized, because the mount
// daemon changes its working folder to "/" and a relative path would then point elsewhere.
Result<std::string> ResolveHome(const std::string& flag);

// `path` made absolute against the current folder and lexically normalized (no "." or ".."),
// without resolving symlinks or requiring that it exist.
std::string AbsolutePath(const std::string& path);

}  // namespace quid
