// Where the log of each kind of process goes. spdlog's default logger is what every module
// logs to, so choosing it here routes the volume's messages too.
#pragma once

#include <string>

#include "storage/base/status.h"

namespace quid {

// Short-lived commands (init, status, umount): warnings and errors on stderr, so their own
// output stays the few lines they promise. SPDLOG_LEVEL overrides the level.
void UseCommandLogging();

// `quid mount --foreground`: everything from info up, on stderr.
void UseForegroundLogging();

// The mount daemon: appended to `path` (home/mount.log), flushed at every message so that
// the file tells what happened even after a kill -9.
Status UseDaemonLogging(const std::string& path);

}  // namespace quid
