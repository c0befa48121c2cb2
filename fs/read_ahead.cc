#include "fs/read_ahead.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace quid {
namespace {

// Undoes mountinfo's octal escapes (\040 for a space, \011, \012, \134).
std::string Unescape(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    const auto octal = [&](size_t j, char top) { return field[j] >= '0' && field[j] <= top; };
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1, '3') && octal(i + 2, '7') &&
        octal(i + 3, '7')) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at < line.size()) {
    const size_t end = std::min(line.find(' ', at), line.size());
    if (end > at) out.push_back(line.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

}  // namespace

std::optional<std::string> MountDevice(std::string_view mountinfo, std::string_view mountpoint) {
  // Each line: id parent major:minor root mountpoint options ... - type source super-options
  std::optional<std::string> found;
  size_t at = 0;
  while (at < mountinfo.size()) {
    const size_t end = std::min(mountinfo.find('\n', at), mountinfo.size());
    const std::vector<std::string_view> f = Fields(mountinfo.substr(at, end - at));
    at = end + 1;
    if (f.size() < 5 || f[2].find(':') == std::string_view::npos) continue;
    if (Unescape(f[4]) == mountpoint) found = std::string(f[2]);
  }
  return found;
}

Status SetMountReadAhead(const std::string& mountpoint, unsigned kib) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Status::IoError("cannot read /proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  const std::optional<std::string> device = MountDevice(text.str(), mountpoint);
  if (!device) return Status::NotFound(mountpoint + " is not in /proc/self/mountinfo");
  const std::string path = fmt::format("/sys/class/bdi/{}/read_ahead_kb", *device);
  std::ofstream out(path);
  out << kib << '\n';
  out.flush();
  if (!out) return Status::IoError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  return Status::Ok();
}

}  // namespace quid
