#include "cmd/mount_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace quid {
namespace {

constexpr const char* kRuntimeEnv = "QUID_RUNTIME_DIR";

// FNV-1a: stable across builds and machines (std::hash is not promised to be), and the
// record itself guards against collisions.
uint64_t Fnv1a64(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string RecordPath(const std::string& mountpoint) {
  return fmt::format("{}/{:016x}", MountRecordDir(), Fnv1a64(mountpoint));
}

// A shared folder such as /tmp could hold a look-alike made by another user to capture or
// redirect our records; only a folder of our own, closed to others, is used.
Status CheckOwnFolder(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::FromErrno(errno, path);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    return Status(
        Code::kPermission,
        path + " is not a private folder of this user; remove it or set QUID_RUNTIME_DIR");
  }
  return Status::Ok();
}

Status MakeRecordDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return CheckOwnFolder(dir);
}

}  // namespace

std::string MountRecordDir() {
  const char* env = std::getenv(kRuntimeEnv);
  if (env != nullptr && env[0] != '\0') return std::string(env) + "/mounts";
  if (::geteuid() == 0) return "/run/quid/mounts";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] != '\0') return std::string(xdg) + "/quid/mounts";
  return fmt::format("/tmp/quid-{}/mounts", ::geteuid());
}

Status WriteMountRecord(const std::string& mountpoint, const std::string& home) {
  const std::string dir = MountRecordDir();
  QUID_RETURN_IF_ERROR(MakeRecordDir(dir));
  const std::string path = RecordPath(mountpoint);
  const std::string temp = fmt::format("{}.{}.tmp", path, ::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << home << '\n' << mountpoint << '\n';
    out.flush();
    if (!out) {
      std::filesystem::remove(temp);
      return Status::IoError("cannot write mount record " + temp);
    }
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    Status status = Status::FromErrno(errno, "cannot write mount record " + path);
    ::unlink(temp.c_str());
    return status;
  }
  return Status::Ok();
}

Result<std::string> ReadMountRecord(const std::string& mountpoint) {
  std::ifstream in(RecordPath(mountpoint));
  std::string home;
  std::string recorded_mountpoint;
  if (!in || !std::getline(in, home) || !std::getline(in, recorded_mountpoint) ||
      recorded_mountpoint != mountpoint || home.empty()) {
    return Status::NotFound("no quid mount recorded at " + mountpoint);
  }
  return home;
}

void RemoveMountRecord(const std::string& mountpoint, const std::string& home) {
  Result<std::string> recorded = ReadMountRecord(mountpoint);
  if (recorded.ok() && *recorded == home) ::unlink(RecordPath(mountpoint).c_str());
}

}  // namespace quid
