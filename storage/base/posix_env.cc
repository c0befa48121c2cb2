// PosixEnv: Env on the real disk. Retries EINTR and short transfers; errors name the path.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "storage/base/env.h"

namespace quid {
namespace {

int OpenRetry(const std::string& path, int flags, unsigned mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

FileStat ToFileStat(const struct stat& st) {
  FileStat out;
  out.is_dir = S_ISDIR(st.st_mode);
  out.is_regular = S_ISREG(st.st_mode);
  out.mode = static_cast<uint32_t>(st.st_mode & 07777);
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  out.device = static_cast<uint64_t>(st.st_dev);
  out.inode = static_cast<uint64_t>(st.st_ino);
  return out;
}

class PosixFile : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    // Not retried on EINTR: on Linux the descriptor is released either way.
    ::close(fd_);
  }

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "read " + path_);
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Status WriteAt(uint64_t offset, std::span<const ByteSpan> parts) override {
    std::vector<iovec> iov;
    iov.reserve(parts.size());
    uint64_t total = 0;
    for (ByteSpan part : parts) {
      if (part.empty()) continue;
      iov.push_back({const_cast<uint8_t*>(part.data()), part.size()});
      total += part.size();
    }
    uint64_t done = 0;
    size_t first = 0;
    while (done < total) {
      const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
      ssize_t n = ::pwritev(fd_, iov.data() + first, count, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno(errno, "write " + path_);
      done += static_cast<uint64_t>(n);
      size_t left = static_cast<size_t>(n);
      while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < iov.size()) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      return Status::FromErrno(errno, "truncate " + path_);
    return Status::Ok();
  }

  Status Sync() override {
    int rc;
    do {
      rc = ::fdatasync(fd_);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return Status::FromErrno(errno, "sync " + path_);
    return Status::Ok();
  }

  Result<FileStat> Stat() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat " + path_);
    return ToFileStat(st);
  }

  void StartWriteback(uint64_t offset, uint64_t length) override {
    // Queues the range for writeback and returns; errors surface at the next Sync.
    (void)::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                            SYNC_FILE_RANGE_WRITE);
  }

  Result<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const int fd_;
  const std::string path_;
};

class PosixLock : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { ::close(fd_); }  // closing drops the flock

 private:
  int fd_;
};

class PosixEnv : public Env {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode open_mode,
                                     unsigned mode) override {
    int flags = 0;
    switch (open_mode) {
      case OpenMode::kRead:
        flags = O_RDONLY;
        break;
      case OpenMode::kReadWrite:
        flags = O_RDWR;
        break;
      case OpenMode::kCreate:
        flags = O_RDWR | O_CREAT;
        break;
      case OpenMode::kCreateExclusive:
        flags = O_RDWR | O_CREAT | O_EXCL;
        break;
      case OpenMode::kCreateTruncate:
        flags = O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    int fd = OpenRetry(path, flags, mode);
    if (fd < 0) return Status::FromErrno(errno, "open " + path);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return Status::FromErrno(errno, "rename " + from + " to " + to);
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "remove " + path);
    return Status::Ok();
  }

  Status CreateDir(const std::string& path, unsigned mode) override {
    if (::mkdir(path.c_str(), mode) != 0) return Status::FromErrno(errno, "create folder " + path);
    return Status::Ok();
  }

  Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return Status::FromErrno(errno, "remove folder " + path);
    return Status::Ok();
  }

  Status SyncDir(const std::string& path) override {
    int fd = OpenRetry(path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return Status::FromErrno(errno, "open folder " + path);
    int rc;
    do {
      rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return Status::FromErrno(err, "sync folder " + path);
    return Status::Ok();
  }

  Status ListDir(const std::string& path,
                 const std::function<bool(const std::string&)>& fn) override {
    DIR* d = ::opendir(path.c_str());
    if (!d) return Status::FromErrno(errno, "list " + path);
    Status status;
    for (;;) {
      errno = 0;
      dirent* e = ::readdir(d);
      if (!e) {
        if (errno != 0) status = Status::FromErrno(errno, "list " + path);
        break;
      }
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (!fn(name)) break;
    }
    ::closedir(d);
    return status;
  }

  Result<FileStat> Stat(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    return ToFileStat(st);
  }

  Status SetMtime(const std::string& path, int64_t mtime_ns) override {
    timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = mtime_ns / 1'000'000'000;
    times[1].tv_nsec = mtime_ns % 1'000'000'000;
    if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0)
      return Status::FromErrno(errno, "set mtime of " + path);
    return Status::Ok();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = OpenRetry(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0) return Status::FromErrno(errno, "open lock " + path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status(Code::kBusy, path + " is locked by another process");
      return Status::FromErrno(err, "lock " + path);
    }
    return std::unique_ptr<FileLock>(new PosixLock(fd));
  }

  Result<uint64_t> FreeBytes(const std::string& path) override {
    struct statvfs vfs {};
    if (::statvfs(path.c_str(), &vfs) != 0) return Status::FromErrno(errno, "statvfs " + path);
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();  // never destroyed: used until exit
  return env;
}

}  // namespace quid
