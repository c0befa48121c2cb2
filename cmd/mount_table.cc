#include "cmd/mount_table.h"

#include <fstream>
#include <sstream>

namespace quid {
namespace {

constexpr const char* kMountInfo = "/proc/self/mountinfo";
// mountinfo fields: id, parent id, major:minor, root, mount point, ...
constexpr int kMountPointField = 4;

bool IsOctal(char c) {
  return c >= '0' && c <= '7';
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

Result<bool> IsMountPoint(const std::string& path) {
  std::ifstream in(kMountInfo);
  if (!in) return Status::IoError(std::string("cannot read ") + kMountInfo);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string field;
    int index = 0;
    while (index <= kMountPointField && fields >> field) ++index;
    if (index > kMountPointField && UnescapeMountPath(field) == path) return true;
  }
  return false;
}

}  // namespace quid
