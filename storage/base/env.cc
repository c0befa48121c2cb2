// The Env helpers every implementation shares, built only on Env's own calls.
#include "storage/base/env.h"

#include <vector>

namespace quid {

Status File::ReadExact(uint64_t offset, MutableByteSpan out) {
  size_t done = 0;
  while (done < out.size()) {
    QUID_ASSIGN_OR_RETURN(size_t n, ReadAt(offset + done, out.subspan(done)));
    if (n == 0) return Status::Corrupt("unexpected end of file");
    done += n;
  }
  return Status::Ok();
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  while (slash != std::string::npos && slash > 0 && slash + 1 == path.size()) {
    slash = path.find_last_of('/', slash - 1);  // "a/b/" is inside "a"
  }
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool Env::Exists(const std::string& path) {
  return Stat(path).ok();
}

Status Env::CreateDirs(const std::string& path, unsigned mode) {
  if (path.empty()) return Status::Ok();
  auto st = Stat(path);
  if (st.ok()) {
    if (!st->is_dir) return Status(Code::kNotDir, path + " is not a folder");
    return Status::Ok();
  }
  if (st.status().code() != Code::kNotFound) return st.status();
  const std::string parent = ParentDir(path);
  if (parent != path && parent != "." && parent != "/")
    QUID_RETURN_IF_ERROR(CreateDirs(parent, mode));
  Status made = CreateDir(path, mode);
  if (made.code() == Code::kExists) return Status::Ok();  // raced with another creator
  QUID_RETURN_IF_ERROR(made);
  // The new folder's entry must survive a power loss like what will be put in it.
  return SyncDir(parent);
}

Status Env::WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode) {
  const std::string tmp = path + ".tmp";
  {
    QUID_ASSIGN_OR_RETURN(auto file, Open(tmp, OpenMode::kCreateTruncate, mode));
    QUID_RETURN_IF_ERROR(file->WriteAt(0, data));
    QUID_RETURN_IF_ERROR(file->Sync());
  }
  QUID_RETURN_IF_ERROR(Rename(tmp, path));
  return SyncDir(ParentDir(path));
}

Result<std::string> Env::ReadWholeFile(const std::string& path) {
  QUID_ASSIGN_OR_RETURN(auto file, Open(path, OpenMode::kRead));
  std::string out;
  uint64_t offset = 0;
  std::vector<uint8_t> buf(64 * 1024);
  for (;;) {
    QUID_ASSIGN_OR_RETURN(size_t n, file->ReadAt(offset, buf));
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), n);
    offset += n;
  }
  return out;
}

}  // namespace quid
