#include "storage/meta/env_file_system.h"

#include <rocksdb/io_status.h>
#include <rocksdb/slice.h>

#include <atomic>
#include <cstdarg>
#include <string>
#include <utility>
#include <vector>

namespace quid {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

// Folders RocksDB creates hold the volume's metadata: private, like the Env's files (0600).
constexpr unsigned kDirMode = 0700;

// RocksDB tells a missing file from a failing disk by status kind, not by message: ENOENT
// is PathNotFound everywhere (as in its PosixFileSystem) except FileExists, which must
// answer NotFound (DB::Open creates a new database only on FileExists(CURRENT).IsNotFound).
IOStatus ToIOStatus(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return IOStatus::OK();
    case Code::kNotFound:
      return IOStatus::PathNotFound(s.message());
    case Code::kNoSpace:
      return IOStatus::NoSpace(s.message());
    case Code::kBusy:
      return IOStatus::IOError("lock held elsewhere", s.message());
    case Code::kInvalid:
      return IOStatus::InvalidArgument(s.message());
    case Code::kNotSupported:
      return IOStatus::NotSupported(s.message());
    case Code::kCorrupt:
      return IOStatus::Corruption(s.message());
    default:
      return IOStatus::IOError(s.ToString());
  }
}

ByteSpan SliceBytes(const rocksdb::Slice& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Up to n bytes at offset into scratch, fewer only at end of file (RocksDB reads a short
// result as end of file, so a short ReadAt in the middle must not leak through).
Result<size_t> ReadFull(File* file, uint64_t offset, size_t n, char* scratch) {
  size_t done = 0;
  while (done < n) {
    QUID_ASSIGN_OR_RETURN(
        size_t got,
        file->ReadAt(offset + done,
                     MutableByteSpan(reinterpret_cast<uint8_t*>(scratch) + done, n - done)));
    if (got == 0) break;
    done += got;
  }
  return done;
}

class EnvSequentialFile : public rocksdb::FSSequentialFile {
 public:
  explicit EnvSequentialFile(std::unique_ptr<File> file) : file_(std::move(file)) {}

  IOStatus Read(size_t n, const IOOptions& /*options*/, rocksdb::Slice* result, char* scratch,
                IODebugContext* /*dbg*/) override {
    Result<size_t> got = ReadFull(file_.get(), offset_, n, scratch);
    if (!got.ok()) {
      *result = rocksdb::Slice();
      return ToIOStatus(got.status());
    }
    offset_ += *got;
    *result = rocksdb::Slice(scratch, *got);
    return IOStatus::OK();
  }

  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& /*options*/,
                          rocksdb::Slice* result, char* scratch, IODebugContext* /*dbg*/) override {
    Result<size_t> got = ReadFull(file_.get(), offset, n, scratch);
    if (!got.ok()) {
      *result = rocksdb::Slice();
      return ToIOStatus(got.status());
    }
    *result = rocksdb::Slice(scratch, *got);
    return IOStatus::OK();
  }

  IOStatus Skip(uint64_t n) override {
    offset_ += n;
    return IOStatus::OK();
  }

  IOStatus InvalidateCache(size_t /*offset*/, size_t /*length*/) override { return IOStatus::OK(); }

 private:
  std::unique_ptr<File> file_;
  uint64_t offset_ = 0;  // one thread at a time, per RocksDB's contract
};

class EnvRandomAccessFile : public rocksdb::FSRandomAccessFile {
 public:
  explicit EnvRandomAccessFile(std::unique_ptr<File> file) : file_(std::move(file)) {}

  // Concurrent readers are fine: File reads are positional and thread-safe.
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& /*options*/, rocksdb::Slice* result,
                char* scratch, IODebugContext* /*dbg*/) const override {
    Result<size_t> got = ReadFull(file_.get(), offset, n, scratch);
    if (!got.ok()) {
      *result = rocksdb::Slice();
      return ToIOStatus(got.status());
    }
    *result = rocksdb::Slice(scratch, *got);
    return IOStatus::OK();
  }

  IOStatus InvalidateCache(size_t /*offset*/, size_t /*length*/) override { return IOStatus::OK(); }

 private:
  std::unique_ptr<File> file_;
};

class EnvWritableFile : public rocksdb::FSWritableFile {
 public:
  EnvWritableFile(std::unique_ptr<File> file, uint64_t offset, const rocksdb::FileOptions& options)
      : rocksdb::FSWritableFile(options), file_(std::move(file)), offset_(offset) {}

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& /*options*/,
                  IODebugContext* /*dbg*/) override {
    const uint64_t at = offset_.load();
    IOStatus s = ToIOStatus(file_->WriteAt(at, SliceBytes(data)));
    if (s.ok()) offset_.store(at + data.size());
    return s;
  }

  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                            const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    IOStatus s = ToIOStatus(file_->WriteAt(offset, SliceBytes(data)));
    if (s.ok()) offset_.store(offset + data.size());
    return s;
  }

  IOStatus Truncate(uint64_t size, const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    IOStatus s = ToIOStatus(file_->Truncate(size));
    if (s.ok()) offset_.store(size);
    return s;
  }

  // The File stays open until destruction, so a Sync racing a Close (IsSyncThreadSafe)
  // never finds it gone; nothing is buffered here, so closing has nothing to write.
  IOStatus Close(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return IOStatus::OK();
  }
  IOStatus Flush(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return IOStatus::OK();
  }
  IOStatus Sync(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return ToIOStatus(file_->Sync());
  }
  IOStatus Fsync(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return ToIOStatus(file_->Sync());
  }
  // Starting writeback early is an optimization; durability comes only from Sync.
  IOStatus RangeSync(uint64_t /*offset*/, uint64_t /*nbytes*/, const IOOptions& /*options*/,
                     IODebugContext* /*dbg*/) override {
    return IOStatus::OK();
  }
  bool IsSyncThreadSafe() const override { return true; }

  uint64_t GetFileSize(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return offset_.load();
  }

  IOStatus InvalidateCache(size_t /*offset*/, size_t /*length*/) override { return IOStatus::OK(); }

 private:
  std::unique_ptr<File> file_;
  // Appends come from one thread; GetFileSize may be asked from another.
  std::atomic<uint64_t> offset_;
};

class EnvRandomRWFile : public rocksdb::FSRandomRWFile {
 public:
  explicit EnvRandomRWFile(std::unique_ptr<File> file) : file_(std::move(file)) {}

  IOStatus Write(uint64_t offset, const rocksdb::Slice& data, const IOOptions& /*options*/,
                 IODebugContext* /*dbg*/) override {
    return ToIOStatus(file_->WriteAt(offset, SliceBytes(data)));
  }

  IOStatus Read(uint64_t offset, size_t n, const IOOptions& /*options*/, rocksdb::Slice* result,
                char* scratch, IODebugContext* /*dbg*/) const override {
    Result<size_t> got = ReadFull(file_.get(), offset, n, scratch);
    if (!got.ok()) {
      *result = rocksdb::Slice();
      return ToIOStatus(got.status());
    }
    *result = rocksdb::Slice(scratch, *got);
    return IOStatus::OK();
  }

  IOStatus Flush(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return IOStatus::OK();
  }
  IOStatus Sync(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return ToIOStatus(file_->Sync());
  }
  IOStatus Fsync(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return ToIOStatus(file_->Sync());
  }
  IOStatus Close(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return IOStatus::OK();
  }

 private:
  std::unique_ptr<File> file_;
};

class EnvDirectory : public rocksdb::FSDirectory {
 public:
  EnvDirectory(Env* env, std::string path) : env_(env), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return ToIOStatus(env_->SyncDir(path_));
  }
  IOStatus Close(const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return IOStatus::OK();
  }

 private:
  Env* env_;
  const std::string path_;
};

class EnvRocksLock : public rocksdb::FileLock {
 public:
  explicit EnvRocksLock(std::unique_ptr<quid::FileLock> lock) : lock_(std::move(lock)) {}

 private:
  std::unique_ptr<quid::FileLock> lock_;  // released when this dies (UnlockFile)
};

class NullLogger : public rocksdb::Logger {
 public:
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
  void Logv(const rocksdb::InfoLogLevel /*level*/, const char* /*format*/,
            va_list /*ap*/) override {}

 protected:
  rocksdb::Status CloseImpl() override { return rocksdb::Status::OK(); }
};

class EnvFileSystem : public rocksdb::FileSystemWrapper {
 public:
  // The default file system is only a target for what has no path (option sanitizing and
  // the like); every call that names a file is overridden below.
  explicit EnvFileSystem(Env* env)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()), env_(env) {}

  static const char* kClassName() { return "QuidEnvFileSystem"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::Status RegisterDbPaths(const std::vector<std::string>& /*paths*/) override {
    return rocksdb::Status::OK();
  }
  rocksdb::Status UnregisterDbPaths(const std::vector<std::string>& /*paths*/) override {
    return rocksdb::Status::OK();
  }

  IOStatus NewSequentialFile(const std::string& fname, const rocksdb::FileOptions& /*options*/,
                             std::unique_ptr<rocksdb::FSSequentialFile>* result,
                             IODebugContext* /*dbg*/) override {
    result->reset();
    auto file = env_->Open(fname, OpenMode::kRead);
    if (!file.ok()) return ToIOStatus(file.status());
    *result = std::make_unique<EnvSequentialFile>(std::move(file).value());
    return IOStatus::OK();
  }

  IOStatus NewRandomAccessFile(const std::string& fname, const rocksdb::FileOptions& /*options*/,
                               std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                               IODebugContext* /*dbg*/) override {
    result->reset();
    auto file = env_->Open(fname, OpenMode::kRead);
    if (!file.ok()) return ToIOStatus(file.status());
    *result = std::make_unique<EnvRandomAccessFile>(std::move(file).value());
    return IOStatus::OK();
  }

  IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                           IODebugContext* /*dbg*/) override {
    return OpenWritable(fname, OpenMode::kCreateTruncate, /*append=*/false, options, result);
  }

  IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                              IODebugContext* /*dbg*/) override {
    return OpenWritable(fname, OpenMode::kCreate, /*append=*/true, options, result);
  }

  // WAL recycling: the old log is renamed and overwritten from offset 0 without truncating,
  // as PosixFileSystem does (the log reader tells stale records by their log number).
  IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                             const rocksdb::FileOptions& options,
                             std::unique_ptr<rocksdb::FSWritableFile>* result,
                             IODebugContext* /*dbg*/) override {
    result->reset();
    IOStatus s = ToIOStatus(env_->Rename(old_fname, fname));
    if (!s.ok()) return s;
    return OpenWritable(fname, OpenMode::kCreate, /*append=*/false, options, result);
  }

  IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& /*options*/,
                           std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                           IODebugContext* /*dbg*/) override {
    result->reset();
    auto file = env_->Open(fname, OpenMode::kCreate);
    if (!file.ok()) return ToIOStatus(file.status());
    *result = std::make_unique<EnvRandomRWFile>(std::move(file).value());
    return IOStatus::OK();
  }

  IOStatus NewMemoryMappedFileBuffer(
      const std::string& /*fname*/,
      std::unique_ptr<rocksdb::MemoryMappedFileBuffer>* /*result*/) override {
    return IOStatus::NotSupported("memory-mapped files are not available through quid::Env");
  }

  IOStatus NewDirectory(const std::string& name, const IOOptions& /*options*/,
                        std::unique_ptr<rocksdb::FSDirectory>* result,
                        IODebugContext* /*dbg*/) override {
    result->reset();
    auto st = env_->Stat(name);
    if (!st.ok()) return ToIOStatus(st.status());
    if (!st->is_dir) return IOStatus::IOError("open folder " + name + ": not a folder");
    *result = std::make_unique<EnvDirectory>(env_, name);
    return IOStatus::OK();
  }

  IOStatus FileExists(const std::string& fname, const IOOptions& /*options*/,
                      IODebugContext* /*dbg*/) override {
    auto st = env_->Stat(fname);
    if (st.ok()) return IOStatus::OK();
    if (st.status().code() == Code::kNotFound) return IOStatus::NotFound(st.status().message());
    return ToIOStatus(st.status());
  }

  IOStatus GetChildren(const std::string& dir, const IOOptions& /*options*/,
                       std::vector<std::string>* result, IODebugContext* /*dbg*/) override {
    result->clear();
    return ToIOStatus(env_->ListDir(dir, [result](const std::string& name) {
      result->push_back(name);
      return true;
    }));
  }

  IOStatus GetChildrenFileAttributes(const std::string& dir, const IOOptions& options,
                                     std::vector<rocksdb::FileAttributes>* result,
                                     IODebugContext* dbg) override {
    result->clear();
    std::vector<std::string> names;
    IOStatus s = GetChildren(dir, options, &names, dbg);
    if (!s.ok()) return s;
    for (std::string& name : names) {
      auto st = env_->Stat(dir + "/" + name);
      if (!st.ok()) {
        if (st.status().code() == Code::kNotFound) continue;  // deleted since the listing
        return ToIOStatus(st.status());
      }
      result->push_back({std::move(name), st->size});
    }
    return IOStatus::OK();
  }

  IOStatus DeleteFile(const std::string& fname, const IOOptions& /*options*/,
                      IODebugContext* /*dbg*/) override {
    return ToIOStatus(env_->Remove(fname));
  }

  IOStatus Truncate(const std::string& fname, size_t size, const IOOptions& /*options*/,
                    IODebugContext* /*dbg*/) override {
    auto file = env_->Open(fname, OpenMode::kReadWrite);
    if (!file.ok()) return ToIOStatus(file.status());
    return ToIOStatus((*file)->Truncate(size));
  }

  IOStatus CreateDir(const std::string& dirname, const IOOptions& /*options*/,
                     IODebugContext* /*dbg*/) override {
    IOStatus s = ToIOStatus(env_->CreateDir(dirname, kDirMode));
    if (!s.ok()) return s;
    return ToIOStatus(env_->SyncDir(ParentDir(dirname)));  // see the header
  }

  IOStatus CreateDirIfMissing(const std::string& dirname, const IOOptions& /*options*/,
                              IODebugContext* /*dbg*/) override {
    // CreateDirs syncs the parent of every folder it makes, and fails if a file is there.
    return ToIOStatus(env_->CreateDirs(dirname, kDirMode));
  }

  IOStatus DeleteDir(const std::string& dirname, const IOOptions& /*options*/,
                     IODebugContext* /*dbg*/) override {
    return ToIOStatus(env_->RemoveDir(dirname));
  }

  IOStatus GetFileSize(const std::string& fname, const IOOptions& /*options*/, uint64_t* file_size,
                       IODebugContext* /*dbg*/) override {
    auto st = env_->Stat(fname);
    if (!st.ok()) return ToIOStatus(st.status());
    *file_size = st->size;
    return IOStatus::OK();
  }

  // In seconds since the epoch, as RocksDB's PosixFileSystem reports st_mtime.
  IOStatus GetFileModificationTime(const std::string& fname, const IOOptions& /*options*/,
                                   uint64_t* file_mtime, IODebugContext* /*dbg*/) override {
    auto st = env_->Stat(fname);
    if (!st.ok()) return ToIOStatus(st.status());
    *file_mtime = st->mtime_ns > 0 ? static_cast<uint64_t>(st->mtime_ns) / 1000000000u : 0;
    return IOStatus::OK();
  }

  IOStatus RenameFile(const std::string& src, const std::string& target,
                      const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return ToIOStatus(env_->Rename(src, target));
  }

  IOStatus LinkFile(const std::string& /*src*/, const std::string& /*target*/,
                    const IOOptions& /*options*/, IODebugContext* /*dbg*/) override {
    return IOStatus::NotSupported("hard links are not available through quid::Env");
  }
  IOStatus NumFileLinks(const std::string& /*fname*/, const IOOptions& /*options*/,
                        uint64_t* /*count*/, IODebugContext* /*dbg*/) override {
    return IOStatus::NotSupported("hard links are not available through quid::Env");
  }
  IOStatus AreFilesSame(const std::string& /*first*/, const std::string& /*second*/,
                        const IOOptions& /*options*/, bool* /*res*/,
                        IODebugContext* /*dbg*/) override {
    return IOStatus::NotSupported("hard links are not available through quid::Env");
  }

  IOStatus LockFile(const std::string& fname, const IOOptions& /*options*/,
                    rocksdb::FileLock** lock, IODebugContext* /*dbg*/) override {
    *lock = nullptr;
    auto held = env_->LockFile(fname);
    if (!held.ok()) return ToIOStatus(held.status());
    *lock = new EnvRocksLock(std::move(held).value());
    return IOStatus::OK();
  }

  IOStatus UnlockFile(rocksdb::FileLock* lock, const IOOptions& /*options*/,
                      IODebugContext* /*dbg*/) override {
    delete lock;
    return IOStatus::OK();
  }

  IOStatus GetTestDirectory(const IOOptions& /*options*/, std::string* path,
                            IODebugContext* /*dbg*/) override {
    *path = "/tmp/quid-rocksdb-test";
    return ToIOStatus(env_->CreateDirs(*path, kDirMode));
  }

  IOStatus NewLogger(const std::string& /*fname*/, const IOOptions& /*options*/,
                     std::shared_ptr<rocksdb::Logger>* result, IODebugContext* /*dbg*/) override {
    *result = std::make_shared<NullLogger>();
    return IOStatus::OK();
  }

  // Paths go to the Env unchanged, relative or not, so it resolves them the same way always.
  IOStatus GetAbsolutePath(const std::string& db_path, const IOOptions& /*options*/,
                           std::string* output_path, IODebugContext* /*dbg*/) override {
    *output_path = db_path;
    return IOStatus::OK();
  }

  IOStatus GetFreeSpace(const std::string& path, const IOOptions& /*options*/, uint64_t* diskfree,
                        IODebugContext* /*dbg*/) override {
    auto bytes = env_->FreeBytes(path);
    if (!bytes.ok()) return ToIOStatus(bytes.status());
    *diskfree = *bytes;
    return IOStatus::OK();
  }

  IOStatus IsDirectory(const std::string& path, const IOOptions& /*options*/, bool* is_dir,
                       IODebugContext* /*dbg*/) override {
    auto st = env_->Stat(path);
    if (!st.ok()) return ToIOStatus(st.status());
    if (is_dir) *is_dir = st->is_dir;
    return IOStatus::OK();
  }

 private:
  IOStatus OpenWritable(const std::string& fname, OpenMode open_mode, bool append,
                        const rocksdb::FileOptions& options,
                        std::unique_ptr<rocksdb::FSWritableFile>* result) {
    result->reset();
    auto file = env_->Open(fname, open_mode);
    if (!file.ok()) return ToIOStatus(file.status());
    uint64_t offset = 0;
    if (append) {
      auto size = (*file)->Size();
      if (!size.ok()) return ToIOStatus(size.status());
      offset = *size;
    }
    *result = std::make_unique<EnvWritableFile>(std::move(file).value(), offset, options);
    return IOStatus::OK();
  }

  Env* const env_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewEnvFileSystem(Env* env) {
  return std::make_shared<EnvFileSystem>(env);
}

std::unique_ptr<rocksdb::Env> NewRocksEnv(Env* env) {
  return rocksdb::NewCompositeEnv(NewEnvFileSystem(env));
}

}  // namespace quid
