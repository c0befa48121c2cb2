// Env: the one seam between quidfs and the local disk, in the spirit of LevelDB's Env.
//
// Every file the node keeps on its own disk (journal segments, folder-store shards, key
// files, the node identity, and RocksDB through EnvFileSystem) is reached through an Env,
// so the same code runs on the real disk (PosixEnv) and in memory (MemEnv), where a test
// can drop every byte that was not synced (a power loss) and fail any chosen call.
//
// The durability contract is POSIX's, stated once here and relied on everywhere:
//   - File::Sync makes the file's contents and size durable; nothing else does.
//   - A new, renamed or removed directory entry is durable only after SyncDir on the
//     directory that holds it. A file whose entry is not durable may vanish whole.
// Code that needs a rule to survive power loss must follow these two sentences; MemEnv
// enforces exactly them and no more.
//
// Errors are Status values naming the path. Every method is safe for concurrent use by
// multiple threads; a File may be used by several threads at once for positional reads
// and writes (callers order overlapping writes themselves).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "storage/base/bytes.h"
#include "storage/base/status.h"

namespace quid {

struct FileStat {
  bool is_dir = false;
  bool is_regular = false;
  uint32_t mode = 0;  // permission bits (07777)
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t device = 0;  // with inode: identifies the file (the same folder given twice)
  uint64_t inode = 0;
};

// An open file, read and written at explicit offsets.
class File {
 public:
  virtual ~File() = default;
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Reads up to out.size() bytes at `offset`; returns how many (fewer only at end of file).
  virtual Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) = 0;
  // Writes every byte of every part, back to back, starting at `offset` (extending the
  // file, zero-filled, if offset is past its end).
  virtual Status WriteAt(uint64_t offset, std::span<const ByteSpan> parts) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // Makes the contents and size durable (fdatasync). After a failure the file's state on
  // disk is unknown: callers must not retry as if the data could still become durable.
  virtual Status Sync() = 0;
  virtual Result<uint64_t> Size() = 0;
  // A hint: start writing [offset, offset+length) to the disk now, without waiting, so a
  // later Sync has less to do. Makes nothing durable. Default: nothing.
  virtual void StartWriteback(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
  }
  // What the file is, from the open file itself (no race with a rename of its path).
  virtual Result<FileStat> Stat() = 0;

  // Convenience: exactly out.size() bytes, kCorrupt on a short read.
  Status ReadExact(uint64_t offset, MutableByteSpan out);
  Status WriteAt(uint64_t offset, ByteSpan data) {
    return WriteAt(offset, std::span<const ByteSpan>(&data, 1));
  }
};

// Held while a lock file is locked; unlocks when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode {
  kRead,             // existing file, read only
  kReadWrite,        // existing file
  kCreate,           // created if missing, kept if present
  kCreateExclusive,  // kExists if present
  kCreateTruncate,   // created if missing, emptied if present
};

class Env {
 public:
  virtual ~Env() = default;

  // `mode` is the permission of a newly created file.
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode open_mode,
                                             unsigned mode = 0600) = 0;
  // Replaces `to` atomically if it exists. Durable after SyncDir of both folders.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // kNotFound if there is no such file.
  virtual Status Remove(const std::string& path) = 0;
  // kExists if `path` exists.
  virtual Status CreateDir(const std::string& path, unsigned mode) = 0;
  // kNotEmpty if it holds entries.
  virtual Status RemoveDir(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& path) = 0;
  // Calls fn for each entry name except "." and ".."; fn returns false to stop.
  virtual Status ListDir(const std::string& path,
                         const std::function<bool(const std::string&)>& fn) = 0;
  // kNotFound if nothing is there.
  virtual Result<FileStat> Stat(const std::string& path) = 0;
  // Sets a file's modification time (tests age shards past a grace period).
  virtual Status SetMtime(const std::string& path, int64_t mtime_ns) = 0;
  // An exclusive advisory lock on `path` (created if missing), held by this process until
  // the FileLock dies. kBusy if another holder has it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
  // Bytes an unprivileged writer may still put on the filesystem holding `path`.
  virtual Result<uint64_t> FreeBytes(const std::string& path) = 0;

  // The real disk. Process-wide, never destroyed.
  static Env* Default();

  // --- helpers built on the calls above ---
  // mkdir -p, each created folder with `mode`; the new entries are made durable.
  Status CreateDirs(const std::string& path, unsigned mode);
  bool Exists(const std::string& path);
  // Writes `data` to `path` atomically and durably (temp file, sync, rename, SyncDir).
  Status WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode);
  // kNotFound if missing.
  Result<std::string> ReadWholeFile(const std::string& path);
};

// "a/b/c" -> "a/b"; "c" -> "."; "/c" -> "/".
std::string ParentDir(const std::string& path);

}  // namespace quid
