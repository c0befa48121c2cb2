// The Volume's namespace operations: the Namespace does them; the two that also change a
// file's contents (a size in SetAttr, O_TRUNC in Open) add a journal record through the
// data path first.
#include <fcntl.h>

#include "storage/volume/volume_impl.h"

namespace quid {

void VolumeImpl::Forget(Ino ino, uint64_t nlookup) {
  ns_->Forget(ino, nlookup);
}

Result<Attr> VolumeImpl::Lookup(Ino parent, std::string_view name) {
  return ns_->Lookup(parent, name);
}

Result<Attr> VolumeImpl::GetAttr(Ino ino) {
  return ns_->GetAttr(ino);
}

Result<Attr> VolumeImpl::SetAttr(Ino ino, const SetAttrRequest& request) {
  if (request.size) {
    QUID_RETURN_IF_ERROR(ns_->CheckTruncatable(ino));
    QUID_RETURN_IF_ERROR(Truncate(ino, *request.size));
  }
  return ns_->SetAttr(ino, request);
}

Result<std::string> VolumeImpl::ReadLink(Ino ino) {
  return ns_->ReadLink(ino);
}

Result<Attr> VolumeImpl::Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                               const Caller& caller) {
  return ns_->Mknod(parent, name, mode, rdev, caller);
}

Result<Attr> VolumeImpl::Mkdir(Ino parent, std::string_view name, uint32_t mode,
                               const Caller& caller) {
  return ns_->Mkdir(parent, name, mode, caller);
}

Result<Attr> VolumeImpl::Symlink(Ino parent, std::string_view name, std::string_view target,
                                 const Caller& caller) {
  return ns_->Symlink(parent, name, target, caller);
}

Result<Attr> VolumeImpl::Link(Ino ino, Ino new_parent, std::string_view new_name) {
  return ns_->Link(ino, new_parent, new_name);
}

Status VolumeImpl::Unlink(Ino parent, std::string_view name) {
  return ns_->Unlink(parent, name);
}

Status VolumeImpl::Rmdir(Ino parent, std::string_view name) {
  return ns_->Rmdir(parent, name);
}

Status VolumeImpl::Rename(Ino parent, std::string_view name, Ino new_parent,
                          std::string_view new_name, RenameFlags flags) {
  return ns_->Rename(parent, name, new_parent, new_name, flags);
}

Status VolumeImpl::ReadDir(Ino dir, uint64_t cookie, bool plus,
                           const std::function<bool(const DirEntryInfo&, uint64_t next)>& fn) {
  return ns_->ReadDir(dir, cookie, plus, fn);
}

Status VolumeImpl::Open(Ino ino, int flags) {
  bool regular = false;
  QUID_RETURN_IF_ERROR(ns_->Open(ino, &regular));
  if (!(flags & O_TRUNC) || !regular) return Status::Ok();
  Status s = Truncate(ino, 0);
  if (!s.ok()) ns_->Release(ino);
  return s;
}

void VolumeImpl::Release(Ino ino) {
  ns_->Release(ino);
}

Status VolumeImpl::SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode) {
  return ns_->SetXattr(ino, name, value, mode);
}

Result<Bytes> VolumeImpl::GetXattr(Ino ino, std::string_view name) {
  return ns_->GetXattr(ino, name);
}

Result<std::vector<std::string>> VolumeImpl::ListXattr(Ino ino) {
  return ns_->ListXattr(ino);
}

Status VolumeImpl::RemoveXattr(Ino ino, std::string_view name) {
  return ns_->RemoveXattr(ino, name);
}

}  // namespace quid
