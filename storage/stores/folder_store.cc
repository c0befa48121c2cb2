#include "storage/stores/folder_store.h"
#include "storage/base/byte_order.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/erasure/checksum.h"

namespace quid {
namespace {

constexpr char kMagic[4] = {'Q', 'S', 'H', 'D'};
constexpr uint32_t kFormatVersion = 1;
constexpr std::string_view kShardSuffix = ".shard";
// Temp files are "<hex>.shard.tmp.<pid>.<counter>": never a valid shard name, so List
// skips them, and recognisable, so Open removes them.
constexpr std::string_view kTempMarker = ".tmp.";
constexpr size_t kShardNameLength = kShardIdBytes * 2 + kShardSuffix.size();

std::array<uint8_t, FolderStore::kHeaderBytes> EncodeHeader(ByteSpan payload) {
  std::array<uint8_t, FolderStore::kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, sizeof(kMagic));
  PutBigEndian32(kFormatVersion, h.data() + 4);
  PutBigEndian64(payload.size(), h.data() + 8);
  PutBigEndian32(Crc32c(payload), h.data() + 16);
  PutBigEndian32(Crc32c(ByteSpan(h.data(), 20)), h.data() + 20);
  return h;
}

struct Header {
  uint64_t payload_length = 0;
  uint32_t payload_crc = 0;
};

// Checks magic, version and header CRC, and that the file holds exactly the payload the
// header announces. Returns a reason for the caller's kCorrupt message, or empty.
std::string DecodeHeader(const uint8_t* h, uint64_t file_size, Header* out) {
  if (std::memcmp(h, kMagic, sizeof(kMagic)) != 0) return "bad magic";
  if (GetBigEndian32(h + 20) != Crc32c(ByteSpan(h, 20))) return "header checksum mismatch";
  uint32_t version = GetBigEndian32(h + 4);
  if (version != kFormatVersion) return "unknown format version " + std::to_string(version);
  out->payload_length = GetBigEndian64(h + 8);
  out->payload_crc = GetBigEndian32(h + 16);
  if (file_size - FolderStore::kHeaderBytes != out->payload_length) {
    return "file holds " + std::to_string(file_size - FolderStore::kHeaderBytes) +
           " payload bytes, header says " + std::to_string(out->payload_length);
  }
  return {};
}

// Closes the descriptor when it goes out of scope.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    // Not retried on EINTR: on Linux the descriptor is released either way.
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int OpenRetry(const std::string& path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Reads until `len` bytes or end of file; returns the bytes read or -1 (errno set).
ssize_t PreadFull(int fd, uint8_t* buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool PwriteFull(int fd, const uint8_t* buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

int FsyncRetry(int fd) {
  int rc;
  do {
    rc = ::fsync(fd);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

// Makes the entries of folder `path` (creations, renames, unlinks) durable.
int FsyncDir(const std::string& path) {
  UniqueFd fd(OpenRetry(path, O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return -1;
  return FsyncRetry(fd.get());
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Payload bytes a shard file of `file_size` bytes accounts for. Used for every counter
// update, so the counters stay consistent even for a truncated file.
uint64_t PayloadBytes(uint64_t file_size) {
  return file_size > FolderStore::kHeaderBytes ? file_size - FolderStore::kHeaderBytes : 0;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A fan-out folder name: two lower-case hex digits.
bool IsFanoutName(std::string_view name) {
  return name.size() == 2 && IsLowerHex(name);
}

// True if `name` is a shard file that belongs in fan-out folder `fanout`.
bool ParseShardName(std::string_view name, std::string_view fanout, ShardId* id) {
  if (name.size() != kShardNameLength || !name.ends_with(kShardSuffix)) return false;
  std::string_view hex = name.substr(0, kShardIdBytes * 2);
  if (!IsLowerHex(hex) || hex.substr(0, 2) != fanout) return false;
  return ShardId::FromHexString(hex, id);
}

bool IsTempName(std::string_view name) {
  return name.find(kShardSuffix) != std::string_view::npos &&
         name.find(kTempMarker) != std::string_view::npos;
}

// Calls fn(name) for each entry of folder `path` except "." and "..".
template <typename Fn>
Status ForEachEntry(const std::string& path, Fn fn) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Status::FromErrno(errno, "open folder " + path);
  Status status;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) status = Status::FromErrno(errno, "read folder " + path);
      break;
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!fn(name)) break;
  }
  ::closedir(d);
  return status;
}

// The fan-out folders under `dir`; entries with a fan-out name that are not folders are
// garbage and skipped.
Status ListFanouts(const std::string& dir, std::vector<std::string>* out) {
  return ForEachEntry(dir, [&](std::string_view name) {
    if (!IsFanoutName(name)) return true;
    struct stat st;
    std::string path = dir + "/" + std::string(name);
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out->emplace_back(name);
    return true;
  });
}

}  // namespace

FolderStore::FolderStore(std::string dir, uint64_t capacity_bytes, int lock_fd)
    : dir_(std::move(dir)), capacity_bytes_(capacity_bytes), lock_fd_(lock_fd) {}

FolderStore::~FolderStore() {
  ::close(lock_fd_);
}

Result<std::shared_ptr<FolderStore>> FolderStore::Open(const std::string& dir,
                                                       uint64_t capacity_bytes) {
  if (dir.empty()) return Status::Invalid("folder store: empty path");
  std::string path = dir;
  while (path.size() > 1 && path.back() == '/') path.pop_back();

  std::error_code ec;
  bool created = std::filesystem::create_directories(path, ec);
  if (ec) return Status::FromErrno(ec.value(), "folder:" + path + ": create folder");
  if (created) {
    // The new folder's own entry must survive a crash like the shards in it.
    std::string parent = std::filesystem::path(path).parent_path().string();
    if (parent.empty()) parent = ".";
    if (FsyncDir(parent) < 0) {
      return Status::FromErrno(errno, "folder:" + path + ": fsync parent " + parent);
    }
  }

  std::string lock_path = path + "/LOCK";
  UniqueFd lock_fd(OpenRetry(lock_path, O_RDWR | O_CREAT, 0600));
  if (lock_fd.get() < 0) return Status::FromErrno(errno, "folder:" + path + ": open LOCK");
  if (::flock(lock_fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) {
      return Status(Code::kBusy, "folder:" + path + ": in use by another store");
    }
    return Status::FromErrno(errno, "folder:" + path + ": lock");
  }

  std::shared_ptr<FolderStore> store(
      new FolderStore(std::move(path), capacity_bytes, lock_fd.release()));
  QUID_RETURN_IF_ERROR(store->Scan());
  return store;
}

Status FolderStore::Scan() {
  std::vector<std::string> fanouts;
  QUID_RETURN_IF_ERROR(ListFanouts(dir_, &fanouts));

  uint64_t used = 0;
  uint64_t count = 0;
  for (const std::string& fanout : fanouts) {
    std::string fanout_path = dir_ + "/" + fanout;
    bool removed_temp = false;
    Status failed;
    QUID_RETURN_IF_ERROR(ForEachEntry(fanout_path, [&](std::string_view entry) {
      std::string file = fanout_path + "/" + std::string(entry);
      ShardId id;
      if (ParseShardName(entry, fanout, &id)) {
        struct stat fst;
        if (::stat(file.c_str(), &fst) == 0 && S_ISREG(fst.st_mode)) {
          used += PayloadBytes(static_cast<uint64_t>(fst.st_size));
          ++count;
        }
      } else if (IsTempName(entry)) {
        // An upload cut short by a crash: never acknowledged, so safe to drop.
        if (::unlink(file.c_str()) < 0 && errno != ENOENT) {
          failed = Status::FromErrno(errno, name() + ": remove temp file " + file);
          return false;
        }
        removed_temp = true;
      }
      return true;
    }));
    QUID_RETURN_IF_ERROR(failed);
    if (removed_temp && FsyncDir(fanout_path) < 0) {
      return Status::FromErrno(errno, name() + ": fsync " + fanout_path);
    }
    uint8_t index = 0;
    if (FromHex(fanout, MutableByteSpan(&index, 1))) fanout_durable_[index].store(true);
  }
  // Makes every fan-out folder seen above durable, so Put can trust fanout_durable_.
  if (FsyncDir(dir_) < 0) return Status::FromErrno(errno, name() + ": fsync folder");
  used_bytes_.store(used);
  shard_count_.store(count);
  return Status::Ok();
}

std::string FolderStore::name() const {
  return "folder:" + dir_;
}

std::string FolderStore::FanoutDir(const ShardId& id) const {
  return dir_ + "/" + ToHex(ByteSpan(id.bytes.data(), 1));
}

std::string FolderStore::ShardPath(const ShardId& id) const {
  return FanoutDir(id) + "/" + id.hex() + std::string(kShardSuffix);
}

std::string FolderStore::Describe(const std::string& what, const ShardId& id) const {
  return name() + ": " + what + " shard " + id.hex();
}

Status FolderStore::EnsureFanoutDir(const ShardId& id) {
  std::atomic<bool>& durable = fanout_durable_[id.bytes[0]];
  if (durable.load(std::memory_order_acquire)) return Status::Ok();
  // Under the mutex so that a second Put into a folder being created waits for the
  // first one's fsync of <dir> instead of acknowledging before it.
  std::lock_guard<std::mutex> lock(fanout_mu_);
  if (durable.load(std::memory_order_acquire)) return Status::Ok();
  std::string path = FanoutDir(id);
  if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST) {
    return Status::FromErrno(errno, name() + ": create " + path);
  }
  if (FsyncDir(dir_) < 0) return Status::FromErrno(errno, name() + ": fsync folder");
  durable.store(true, std::memory_order_release);
  return Status::Ok();
}

Result<uint64_t> FolderStore::FilesystemFreeBytes() const {
  struct statvfs vfs;
  int rc;
  do {
    rc = ::statvfs(dir_.c_str(), &vfs);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return Status::FromErrno(errno, name() + ": statvfs");
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

Status FolderStore::CheckSpace(const ShardId& id, uint64_t size, uint64_t old_size) const {
  if (capacity_bytes_ != 0) {
    uint64_t used = used_bytes_.load();
    uint64_t after = used - std::min(old_size, used) + size;
    if (after > capacity_bytes_) {
      uint64_t free = capacity_bytes_ > used ? capacity_bytes_ - used : 0;
      return Status::NoSpace(Describe("put", id) + ": " + std::to_string(size) +
                             " bytes do not fit, " + std::to_string(free) + " of " +
                             std::to_string(capacity_bytes_) + " bytes free");
    }
    return Status::Ok();
  }
  // The old file stays until the rename, so the whole new file must fit beside it.
  QUID_ASSIGN_OR_RETURN(uint64_t free, FilesystemFreeBytes());
  if (size + kHeaderBytes > free) {
    return Status::NoSpace(Describe("put", id) + ": " + std::to_string(size) +
                           " bytes do not fit, " + std::to_string(free) +
                           " bytes free on the filesystem");
  }
  return Status::Ok();
}

Status FolderStore::Put(const ShardId& id, ByteSpan data) {
  std::string final_path = ShardPath(id);
  auto old_payload = [&]() -> uint64_t {
    struct stat st;
    if (::stat(final_path.c_str(), &st) < 0) return 0;
    return PayloadBytes(static_cast<uint64_t>(st.st_size));
  };
  // Early refusal so a full store does not write a file only to throw it away; the check
  // that counts is repeated under mutate_mu_ below.
  QUID_RETURN_IF_ERROR(CheckSpace(id, data.size(), old_payload()));
  QUID_RETURN_IF_ERROR(EnsureFanoutDir(id));

  std::string temp_path = final_path + std::string(kTempMarker) + std::to_string(::getpid()) + "." +
                          std::to_string(temp_counter_.fetch_add(1));
  UniqueFd fd(OpenRetry(temp_path, O_WRONLY | O_CREAT | O_EXCL, 0600));
  if (fd.get() < 0) return Status::FromErrno(errno, Describe("create temp file for", id));
  auto fail = [&](const std::string& what) {
    Status s = Status::FromErrno(errno, Describe(what, id));
    ::unlink(temp_path.c_str());
    return s;
  };
  std::array<uint8_t, kHeaderBytes> header = EncodeHeader(data);
  if (!PwriteFull(fd.get(), header.data(), header.size(), 0) ||
      !PwriteFull(fd.get(), data.data(), data.size(), kHeaderBytes)) {
    return fail("write");
  }
  if (FsyncRetry(fd.get()) < 0) return fail("fsync");
  if (::close(fd.release()) < 0 && errno != EINTR) return fail("close");

  {
    std::lock_guard<std::mutex> lock(mutate_mu_);
    struct stat st;
    bool existed = ::stat(final_path.c_str(), &st) == 0;
    uint64_t old_size = existed ? PayloadBytes(static_cast<uint64_t>(st.st_size)) : 0;
    // Only a configured capacity is checked again: against the filesystem's free space
    // the temp file already has its room.
    if (capacity_bytes_ != 0) {
      Status space = CheckSpace(id, data.size(), old_size);
      if (!space.ok()) {
        ::unlink(temp_path.c_str());
        return space;
      }
    }
    if (::rename(temp_path.c_str(), final_path.c_str()) < 0) return fail("rename");
    used_bytes_.fetch_add(data.size());
    used_bytes_.fetch_sub(old_size);
    if (!existed) shard_count_.fetch_add(1);
  }
  if (FsyncDir(FanoutDir(id)) < 0) {
    return Status::FromErrno(errno, Describe("fsync folder of", id));
  }
  return Status::Ok();
}

Result<Bytes> FolderStore::Get(const ShardId& id) {
  UniqueFd fd(OpenRetry(ShardPath(id), O_RDONLY));
  if (fd.get() < 0) return Status::FromErrno(errno, Describe("get", id));
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return Status::FromErrno(errno, Describe("stat", id));
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kHeaderBytes) {
    return Status::Corrupt(Describe("get", id) + ": truncated header (" +
                           std::to_string(file_size) + " bytes)");
  }
  std::array<uint8_t, kHeaderBytes> header;
  ssize_t n = PreadFull(fd.get(), header.data(), header.size(), 0);
  if (n < 0) return Status::FromErrno(errno, Describe("read", id));
  if (static_cast<size_t>(n) != header.size()) {
    return Status::Corrupt(Describe("get", id) + ": truncated header");
  }
  Header h;
  std::string bad = DecodeHeader(header.data(), file_size, &h);
  if (!bad.empty()) return Status::Corrupt(Describe("get", id) + ": " + bad);

  Bytes payload(h.payload_length);
  n = PreadFull(fd.get(), payload.data(), payload.size(), kHeaderBytes);
  if (n < 0) return Status::FromErrno(errno, Describe("read", id));
  if (static_cast<uint64_t>(n) != h.payload_length) {
    return Status::Corrupt(Describe("get", id) + ": file shrank while reading");
  }
  if (Crc32c(payload) != h.payload_crc) {
    return Status::Corrupt(Describe("get", id) + ": payload checksum mismatch");
  }
  return payload;
}

Status FolderStore::ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
  UniqueFd fd(OpenRetry(ShardPath(id), O_RDONLY));
  if (fd.get() < 0) return Status::FromErrno(errno, Describe("read", id));
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return Status::FromErrno(errno, Describe("stat", id));
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::array<uint8_t, kHeaderBytes> header;
  ssize_t n = file_size < kHeaderBytes ? 0 : PreadFull(fd.get(), header.data(), header.size(), 0);
  if (n < 0) return Status::FromErrno(errno, Describe("read", id));
  if (static_cast<size_t>(n) != header.size()) {
    return Status::Corrupt(Describe("read", id) + ": truncated header");
  }
  Header h;
  std::string bad = DecodeHeader(header.data(), file_size, &h);
  if (!bad.empty()) return Status::Corrupt(Describe("read", id) + ": " + bad);
  if (offset > h.payload_length || out.size() > h.payload_length - offset) {
    return Status::Invalid(Describe("read", id) + ": range " + std::to_string(offset) + "+" +
                           std::to_string(out.size()) + " past the end (" +
                           std::to_string(h.payload_length) + " bytes)");
  }
  n = PreadFull(fd.get(), out.data(), out.size(), kHeaderBytes + offset);
  if (n < 0) return Status::FromErrno(errno, Describe("read", id));
  if (static_cast<size_t>(n) != out.size()) {
    return Status::Corrupt(Describe("read", id) + ": file shrank while reading");
  }
  return Status::Ok();
}

Status FolderStore::Remove(const ShardId& id) {
  std::string path = ShardPath(id);
  {
    std::lock_guard<std::mutex> lock(mutate_mu_);
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::FromErrno(errno, Describe("remove", id));
    }
    if (::unlink(path.c_str()) < 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::FromErrno(errno, Describe("remove", id));
    }
    used_bytes_.fetch_sub(PayloadBytes(static_cast<uint64_t>(st.st_size)));
    shard_count_.fetch_sub(1);
  }
  if (FsyncDir(FanoutDir(id)) < 0) {
    return Status::FromErrno(errno, Describe("fsync folder of", id));
  }
  return Status::Ok();
}

Result<ShardInfo> FolderStore::Stat(const ShardId& id) {
  struct stat st;
  if (::stat(ShardPath(id).c_str(), &st) < 0) {
    return Status::FromErrno(errno, Describe("stat", id));
  }
  return ShardInfo{PayloadBytes(static_cast<uint64_t>(st.st_size)), MtimeNs(st)};
}

Status FolderStore::List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) {
  std::vector<std::string> fanouts;
  Status listed = ListFanouts(dir_, &fanouts);
  if (!listed.ok()) return Status(listed.code(), name() + ": list: " + listed.message());
  bool stopped = false;
  for (const std::string& fanout : fanouts) {
    std::string fanout_path = dir_ + "/" + fanout;
    Status s = ForEachEntry(fanout_path, [&](std::string_view entry) {
      ShardId id;
      if (!ParseShardName(entry, fanout, &id)) return true;
      struct stat st;
      std::string file = fanout_path + "/" + std::string(entry);
      // A shard removed since readdir saw it is simply not listed.
      if (::stat(file.c_str(), &st) < 0 || !S_ISREG(st.st_mode)) return true;
      if (!fn(id, ShardInfo{PayloadBytes(static_cast<uint64_t>(st.st_size)), MtimeNs(st)})) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (!s.ok()) return Status(s.code(), name() + ": list: " + s.message());
    if (stopped) break;
  }
  return Status::Ok();
}

Result<StoreUsage> FolderStore::Usage() {
  StoreUsage usage;
  usage.used_bytes = used_bytes_.load();
  usage.shard_count = shard_count_.load();
  if (capacity_bytes_ != 0) {
    usage.capacity_bytes = capacity_bytes_;
  } else {
    QUID_ASSIGN_OR_RETURN(uint64_t free, FilesystemFreeBytes());
    usage.capacity_bytes = free + usage.used_bytes;
  }
  return usage;
}

}  // namespace quid
