// Extended attributes: one RocksDB key per (inode, name); a change also bumps ctime.
#include "storage/meta/metadata_keys.h"
#include "storage/volume/namespace.h"

namespace quid {

Status Namespace::SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode) {
  std::lock_guard lock(mu_);
  if (name.empty() || name.size() > 255) return Status(Code::kRange, "bad attribute name");
  // POSIX ACLs are not enforced by this volume; storing them as plain bytes would let
  // `cp -a` believe it had set a file's permissions through an ACL that nothing applies.
  // Refusing makes such tools fall back to chmod, as on a file system mounted noacl.
  if (name.starts_with("system.posix_acl_"))
    return Status(Code::kNotSupported, "POSIX ACLs are not supported");
  if (value.size() > 65536) return Status(Code::kRange, "attribute value too large");
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  std::string existing;
  const std::string key = XattrKey(ino, name);
  const bool exists = db_->Get(Cf::kXattrs, key, &existing).ok();
  if (mode == XattrMode::kCreateOnly && exists) return Status::Exists("attribute exists");
  if (mode == XattrMode::kReplaceOnly && !exists) return Status(Code::kNoData, "no such attribute");
  rocksdb::WriteBatch batch;
  batch.Put(db_->handle(Cf::kXattrs), key,
            rocksdb::Slice(reinterpret_cast<const char*>(value.data()), value.size()));
  inode.set_ctime_ns(Now());
  PutInode(&batch, ino, inode);
  return db_->Write(&batch, false);
}

Result<Bytes> Namespace::GetXattr(Ino ino, std::string_view name) {
  std::lock_guard lock(mu_);
  std::string value;
  Status s = db_->Get(Cf::kXattrs, XattrKey(ino, name), &value);
  if (s.code() == Code::kNotFound) {
    meta::Inode inode;
    QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
    return Status(Code::kNoData, "no such attribute");
  }
  QUID_RETURN_IF_ERROR(s);
  return Bytes(value.begin(), value.end());
}

Result<std::vector<std::string>> Namespace::ListXattr(Ino ino) {
  std::lock_guard lock(mu_);
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  std::vector<std::string> names;
  auto it = db_->NewIterator(Cf::kXattrs);
  const std::string prefix = XattrPrefix(ino);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    names.emplace_back(it->key().data() + prefix.size(), it->key().size() - prefix.size());
  return names;
}

Status Namespace::RemoveXattr(Ino ino, std::string_view name) {
  std::lock_guard lock(mu_);
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  std::string value;
  const std::string key = XattrKey(ino, name);
  if (!db_->Get(Cf::kXattrs, key, &value).ok()) return Status(Code::kNoData, "no such attribute");
  rocksdb::WriteBatch batch;
  db_->Delete(&batch, Cf::kXattrs, key);
  inode.set_ctime_ns(Now());
  PutInode(&batch, ino, inode);
  return db_->Write(&batch, false);
}

}  // namespace quid
