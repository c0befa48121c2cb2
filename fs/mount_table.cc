#include "fs/mount_table.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

namespace quid {
namespace {

constexpr const char* kMountInfo = "/proc/self/mountinfo";
// mountinfo fields: id, parent id, major:minor, root, mount point, ...
constexpr size_t kDeviceField = 2;
constexpr size_t kMountPointField = 4;

bool IsOctal(char c) {
  return c >= '0' && c <= '7';
}

// The first fields of one mountinfo line, up to the mount point (split on spaces).
std::vector<std::string_view> LeadingFields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < line.size() && out.size() <= kMountPointField) {
    const size_t end = std::min(line.find(' ', at), line.size());
    if (end > at) out.push_back(line.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

Result<std::string> ReadMountInfo() {
  std::ifstream in(kMountInfo);
  if (!in) return Status::IoError(std::string("cannot read ") + kMountInfo);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string UnescapeMountPath(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\' && i + 3 < escaped.size() && IsOctal(escaped[i + 1]) &&
        IsOctal(escaped[i + 2]) && IsOctal(escaped[i + 3])) {
      out.push_back(static_cast<char>((escaped[i + 1] - '0') * 64 + (escaped[i + 2] - '0') * 8 +
                                      (escaped[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(escaped[i]);
    }
  }
  return out;
}

std::optional<std::string> MountDevice(std::string_view mountinfo, std::string_view mountpoint) {
  std::optional<std::string> found;
  size_t at = 0;
  while (at < mountinfo.size()) {
    const size_t end = std::min(mountinfo.find('\n', at), mountinfo.size());
    const std::vector<std::string_view> f = LeadingFields(mountinfo.substr(at, end - at));
    at = end + 1;
    if (f.size() <= kMountPointField || f[kDeviceField].find(':') == std::string_view::npos)
      continue;
    if (UnescapeMountPath(f[kMountPointField]) == mountpoint) found = std::string(f[kDeviceField]);
  }
  return found;
}

Result<std::string> MountDeviceOf(const std::string& mountpoint) {
  QUID_ASSIGN_OR_RETURN(std::string text, ReadMountInfo());
  std::optional<std::string> device = MountDevice(text, mountpoint);
  if (!device) return Status::NotFound(mountpoint + " is not a mount point");
  return *device;
}

Result<bool> IsMountPoint(const std::string& path) {
  Result<std::string> device = MountDeviceOf(path);
  if (device.ok()) return true;
  if (device.status().code() == Code::kNotFound) return false;
  return device.status();
}

}  // namespace quid
