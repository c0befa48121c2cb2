#include "fs/read_ahead.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "fs/mount_table.h"

namespace quid {

Status SetMountReadAhead(const std::string& mountpoint, unsigned kib) {
  QUID_ASSIGN_OR_RETURN(std::string device, MountDeviceOf(mountpoint));
  const std::string path = fmt::format("/sys/class/bdi/{}/read_ahead_kb", device);
  std::ofstream out(path);
  out << kib << '\n';
  out.flush();
  if (!out) return Status::IoError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  return Status::Ok();
}

}  // namespace quid
