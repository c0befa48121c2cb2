// `quid mount` without --foreground: the command returns once the volume is mounted, and a
// daemon serves it. The two halves talk over a pipe, so the command can exit non-zero with
// the daemon's own reason (a wrong passphrase, say) rather than leave the user guessing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "storage/base/status.h"

namespace quid {

// How mounting went, told once to whoever started the mount daemon.
class StartupReport {
 public:
  virtual ~StartupReport() = default;
  // Something the user must know although the mount goes ahead (damaged journal records);
  // said before Mounted().
  virtual void Warn(const std::string& message) = 0;
  virtual void Mounted() = 0;
  virtual void Failed(const std::string& message) = 0;
};

struct DaemonFork {
  bool is_child = false;
  std::unique_ptr<StartupReport> report;  // set in the child
  std::vector<std::string> warnings;      // in the parent: what the child warned of
};

// Forks. The child returns at once with is_child and a report that reaches the parent; it is
// in a session of its own, in "/", stdin from /dev/null, stdout and stderr appended to
// `log_fd`. The parent returns when the child reported: OK (is_child false) once mounted, or
// the child's message, or a message naming `log_path` when the child died before reporting.
// REQUIRES: no other thread (fork copies only the calling one).
Result<DaemonFork> ForkDaemon(int log_fd, const std::string& log_path);

}  // namespace quid
