#include "storage/base/posix_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace quid {

Status PreadExact(int fd, MutableByteSpan out, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + path);
    if (n == 0) return Status::Corrupt("read " + path + ": unexpected end of file");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PwriteExact(int fd, ByteSpan data, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write " + path);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PwritevExact(int fd, const iovec* iov, int count, uint64_t offset, uint64_t total,
                    const std::string& path) {
  std::vector<iovec> rest(iov, iov + count);
  uint64_t done = 0;
  size_t first = 0;
  while (done < total) {
    ssize_t n = ::pwritev(fd, rest.data() + first, static_cast<int>(rest.size() - first),
                          static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write " + path);
    done += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (first < rest.size() && left >= rest[first].iov_len) left -= rest[first++].iov_len;
    if (first < rest.size()) {
      rest[first].iov_base = static_cast<char*>(rest[first].iov_base) + left;
      rest[first].iov_len -= left;
    }
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open folder " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(err, "sync folder " + dir);
  return Status::Ok();
}

Status MakeDirs(const std::string& dir, unsigned mode) {
  if (dir.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status(Code::kNotDir, dir + " is not a folder");
    return Status::Ok();
  }
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    QUID_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash), mode));
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    return Status::FromErrno(errno, "create folder " + dir);
  return Status::Ok();
}

Status ListDir(const std::string& dir, const std::function<void(const std::string&)>& fn) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno(errno, "list " + dir);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    fn(name);
  }
  ::closedir(d);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status s = PwriteExact(fd, data, 0, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "sync " + tmp);
  ::close(fd);
  if (!s.ok()) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "rename " + tmp);
  size_t slash = path.find_last_of('/');
  return SyncDir(slash == std::string::npos ? "." : path.substr(0, slash));
}

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace quid
