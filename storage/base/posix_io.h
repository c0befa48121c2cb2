// Small POSIX helpers for the local disk: exact reads and writes that retry on EINTR and
// short transfers, directory fsync and creation. Errors name the path.
#pragma once

#include <sys/uio.h>

#include <functional>
#include <string>

#include "storage/base/bytes.h"
#include "storage/base/status.h"

namespace quid {

Status PreadExact(int fd, MutableByteSpan out, uint64_t offset, const std::string& path);
Status PwriteExact(int fd, ByteSpan data, uint64_t offset, const std::string& path);
// Writes `total` bytes described by `iov` at `offset`.
Status PwritevExact(int fd, const iovec* iov, int count, uint64_t offset, uint64_t total,
                    const std::string& path);
Status SyncDir(const std::string& dir);
// mkdir -p, each created folder with `mode`.
Status MakeDirs(const std::string& dir, unsigned mode);
// Calls fn for each entry name except "." and "..".
Status ListDir(const std::string& dir, const std::function<void(const std::string&)>& fn);
// Writes `data` to `path` atomically and durably (temp file, fsync, rename, dir fsync).
Status WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode);
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace quid
