// Namespace operations: each one read-modify-writes inodes and entries under mu_ and
// commits one WriteBatch. Extended attributes are in namespace_xattr.cc.
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"
#include "storage/volume/namespace.h"

#include "storage/volume/quota.h"

namespace quid {
namespace {

bool IsDir(uint32_t mode) {
  return S_ISDIR(mode);
}

Status NotFoundIno(Ino ino) {
  return Status::NotFound("no inode " + std::to_string(ino));
}

}  // namespace

Namespace::Namespace(MetaDb* db, GarbageCollector* gc, Clock* clock,
                     const std::string& name_hash_key, uint64_t next_ino,
                     std::function<void()> wake_flusher, size_t destroy_batch_extents)
    : db_(db),
      gc_(gc),
      clock_(clock),
      wake_flusher_(std::move(wake_flusher)),
      destroy_batch_extents_(std::max<size_t>(destroy_batch_extents, 1)),
      next_ino_(next_ino) {
  std::memcpy(name_hash_key_, name_hash_key.data(),
              std::min(sizeof(name_hash_key_), name_hash_key.size()));
}

// ---------------------------------------------------------------------------------------
// Helpers (REQUIRES: mu_ held)

Status Namespace::LoadInode(Ino ino, meta::Inode* inode) const {
  Status s = db_->GetProto(Cf::kInodes, InodeKey(ino), inode);
  if (s.code() == Code::kNotFound) return NotFoundIno(ino);
  return s;
}

void Namespace::PutInode(rocksdb::WriteBatch* batch, Ino ino, const meta::Inode& inode) const {
  db_->PutProto(batch, Cf::kInodes, InodeKey(ino), inode);
}

uint64_t Namespace::NameHash(std::string_view name) const {
  // SipHash keyed per volume: stable on disk, and no one can craft colliding names.
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, reinterpret_cast<const uint8_t*>(name.data()), name.size(),
                   reinterpret_cast<const uint8_t*>(name_hash_key_));
  uint64_t h;
  std::memcpy(&h, out, sizeof(h));
  return h & kNameHashMask;
}

Result<meta::DirEntry> Namespace::LookupEntry(Ino parent, std::string_view name) const {
  meta::DirEntry entry;
  Status s = db_->GetProto(Cf::kDirents, DirentKey(parent, NameHash(name), name), &entry);
  if (!s.ok()) return s;
  return entry;
}

Status Namespace::CheckName(std::string_view name) const {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
    return Status::Invalid("invalid name");
  if (name.size() > kMaxNameBytes) return Status(Code::kNameTooLong, "name too long");
  return Status::Ok();
}

Attr Namespace::ToAttr(Ino ino, const meta::Inode& inode) const {
  Attr a;
  a.ino = ino;
  a.mode = inode.mode();
  a.nlink = inode.nlink();
  a.uid = inode.uid();
  a.gid = inode.gid();
  a.rdev = inode.rdev();
  a.size = inode.size();
  a.atime_ns = inode.atime_ns();
  a.mtime_ns = inode.mtime_ns();
  a.ctime_ns = inode.ctime_ns();
  uint64_t stored = inode.is_inline() ? inode.inline_data().size() : inode.stored_bytes();
  if (S_ISLNK(inode.mode())) stored = 0;
  auto it = dirty_.find(ino);
  if (it != dirty_.end()) {
    const DirtyFile& dirty = *it->second;
    a.size = dirty.size();
    if (dirty.mtime_ns() != 0) {
      a.mtime_ns = std::max(a.mtime_ns, dirty.mtime_ns());
      a.ctime_ns = std::max(a.ctime_ns, dirty.mtime_ns());
    }
    stored = std::min(a.size, stored + dirty.dirty_bytes());
  }
  a.blocks = (stored + 511) / 512;
  return a;
}

Result<Attr> Namespace::AttrOf(Ino ino) const {
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  return ToAttr(ino, inode);
}

DirtyFile* Namespace::DirtyFor(Ino ino, uint64_t committed_size) {
  auto& slot = dirty_[ino];
  if (!slot) slot = std::make_unique<DirtyFile>(committed_size, &dirty_total_);
  return slot.get();
}

DirtyFile* Namespace::FindDirty(Ino ino) {
  auto it = dirty_.find(ino);
  return it == dirty_.end() ? nullptr : it->second.get();
}

Status Namespace::AdjustChunkRef(const ChunkId& id, int64_t delta,
                                 std::map<ChunkId, meta::Chunk>* pending) {
  auto it = pending->find(id);
  if (it == pending->end()) {
    meta::Chunk chunk;
    Status s = db_->GetProto(Cf::kChunks, ChunkKey(id), &chunk);
    if (!s.ok()) return Status::Corrupt("extent points at unknown chunk " + ChunkIdHex(id));
    it = pending->emplace(id, chunk).first;
  }
  int64_t refs = static_cast<int64_t>(it->second.refcount()) + delta;
  it->second.set_refcount(static_cast<uint64_t>(std::max<int64_t>(refs, 0)));
  return Status::Ok();
}

void Namespace::FinishChunkRefs(rocksdb::WriteBatch* batch,
                                std::map<ChunkId, meta::Chunk>* pending) {
  for (auto& [id, chunk] : *pending) {
    if (chunk.refcount() > 0) {
      db_->PutProto(batch, Cf::kChunks, ChunkKey(id), chunk);
    } else {
      // The last reference is gone: the shards go on the durable to-delete list in this
      // same batch, and are removed after it commits.
      db_->Delete(batch, Cf::kChunks, ChunkKey(id));
      if (quota_ != nullptr)
        quota_->RemoveChunk(chunk.shard_size(),
                            {chunk.stores().data(), static_cast<size_t>(chunk.stores_size())});
      meta::PendingDelete pd;
      *pd.mutable_chunk() = chunk;
      db_->PutProto(batch, Cf::kDeletes, DeleteKey(id, chunk.generation()), pd);
      gc_->NotePendingDeletes(1);
    }
  }
  pending->clear();
}

Status Namespace::DestroyStep(Ino ino, bool* finished) {
  rocksdb::WriteBatch batch;
  std::map<ChunkId, meta::Chunk> pending;
  auto it = db_->NewIterator(Cf::kExtents);
  const std::string prefix = ExtentPrefix(ino);
  size_t extents = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (extents == destroy_batch_extents_) break;
    meta::Extent extent;
    if (!extent.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return Status::Corrupt("unparsable extent");
    QUID_RETURN_IF_ERROR(AdjustChunkRef(ChunkIdOf(extent.chunk_id()), -1, &pending));
    batch.Delete(db_->handle(Cf::kExtents), it->key());
    ++extents;
  }
  *finished = !(it->Valid() && it->key().starts_with(prefix));
  if (*finished) {
    auto xit = db_->NewIterator(Cf::kXattrs);
    const std::string xprefix = XattrPrefix(ino);
    for (xit->Seek(xprefix); xit->Valid() && xit->key().starts_with(xprefix); xit->Next())
      batch.Delete(db_->handle(Cf::kXattrs), xit->key());
    db_->Delete(&batch, Cf::kInodes, InodeKey(ino));
    // Until this batch, the orphan mark lets a mount after a crash finish the job.
    db_->Delete(&batch, Cf::kConfig, OrphanKey(ino));
  }
  FinishChunkRefs(&batch, &pending);
  return db_->Write(&batch, false);
}

Status Namespace::DestroyInode(Ino ino) {
  bool finished = false;
  QUID_RETURN_IF_ERROR(DestroyStep(ino, &finished));
  auto dirty = dirty_.find(ino);
  if (dirty != dirty_.end()) {
    dirty->second->DropAll(journal_);
    // A flush in flight finds the inode gone at commit and discards its work.
    dirty_.erase(dirty);
  }
  lookups_.erase(ino);
  opens_.erase(ino);
  // A big file goes in bounded steps on the flusher thread, so one unlink never holds the
  // namespace lock for a whole file's extents. Nothing can reach it meanwhile: it has no
  // name, no handle and no kernel reference, and its orphan mark stays until the end.
  if (!finished && std::find(doomed_.begin(), doomed_.end(), ino) == doomed_.end())
    doomed_.push_back(ino);
  wake_flusher_();  // shards to delete, maybe more of the file to destroy
  return Status::Ok();
}

bool Namespace::DestroyDoomedStep() {
  std::lock_guard lock(mu_);
  if (doomed_.empty()) return false;
  const Ino ino = doomed_.front();
  bool finished = false;
  Status s = DestroyStep(ino, &finished);
  if (!s.ok()) {
    // Its orphan mark stays: the next mount tries again.
    spdlog::error("destroying inode {}: {}", ino, s.message());
    finished = true;
  }
  if (finished) doomed_.pop_front();
  return !doomed_.empty();
}

void Namespace::MaybeDestroy(Ino ino) {
  if (ino == kRootIno) return;
  auto l = lookups_.find(ino);
  auto o = opens_.find(ino);
  if ((l != lookups_.end() && l->second > 0) || (o != opens_.end() && o->second > 0)) return;
  meta::Inode inode;
  if (!LoadInode(ino, &inode).ok() || inode.nlink() > 0) return;
  (void)DestroyInode(ino);
}

Status Namespace::DropLink(rocksdb::WriteBatch* batch, Ino ino, meta::Inode* inode) {
  uint32_t nlink = inode->nlink();
  if (IsDir(inode->mode()))
    nlink = 0;  // an emptied directory loses "." and its entry
  else if (nlink > 0)
    --nlink;
  inode->set_nlink(nlink);
  inode->set_ctime_ns(Now());
  PutInode(batch, ino, *inode);
  // Kept until the kernel forgets it and the last handle is closed; the orphan mark lets
  // a mount after a crash finish the job.
  if (nlink == 0) batch->Put(db_->handle(Cf::kConfig), OrphanKey(ino), "");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------

void Namespace::Forget(Ino ino, uint64_t nlookup) {
  std::lock_guard lock(mu_);
  auto it = lookups_.find(ino);
  if (it == lookups_.end()) return;
  it->second -= std::min(it->second, nlookup);
  if (it->second == 0) {
    lookups_.erase(it);
    MaybeDestroy(ino);
  }
}

Result<Attr> Namespace::Lookup(Ino parent, std::string_view name) {
  std::lock_guard lock(mu_);
  QUID_RETURN_IF_ERROR(CheckName(name));
  QUID_ASSIGN_OR_RETURN(meta::DirEntry entry, LookupEntry(parent, name));
  QUID_ASSIGN_OR_RETURN(Attr attr, AttrOf(entry.ino()));
  lookups_[entry.ino()]++;
  return attr;
}

Result<Attr> Namespace::GetAttr(Ino ino) {
  std::lock_guard lock(mu_);
  return AttrOf(ino);
}

Status Namespace::CheckTruncatable(Ino ino) {
  std::lock_guard lock(mu_);
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  if (IsDir(inode.mode())) return Status(Code::kIsDir, "is a directory");
  if (!S_ISREG(inode.mode())) return Status::Invalid("not a regular file");
  return Status::Ok();
}

Result<Attr> Namespace::SetAttr(Ino ino, const SetAttrRequest& request) {
  std::lock_guard lock(mu_);
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  const int64_t now = Now();
  auto time_of = [now](int64_t t) { return t == SetAttrRequest::kTimeNow ? now : t; };
  if (request.mode) inode.set_mode((inode.mode() & S_IFMT) | (*request.mode & 07777));
  if (request.uid) inode.set_uid(*request.uid);
  if (request.gid) inode.set_gid(*request.gid);
  if (request.atime_ns) inode.set_atime_ns(time_of(*request.atime_ns));
  if (request.mtime_ns) {
    inode.set_mtime_ns(time_of(*request.mtime_ns));
    // An explicit mtime wins over the time of writes made before it (tar, rsync -t).
    auto dirty = dirty_.find(ino);
    if (dirty != dirty_.end()) dirty->second->clear_mtime();
  }
  inode.set_ctime_ns(now);
  rocksdb::WriteBatch batch;
  PutInode(&batch, ino, inode);
  QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
  return ToAttr(ino, inode);
}

Result<std::string> Namespace::ReadLink(Ino ino) {
  std::lock_guard lock(mu_);
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  if (!S_ISLNK(inode.mode())) return Status::Invalid("not a symlink");
  return inode.symlink_target();
}

Result<Attr> Namespace::CreateNode(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                                   std::string_view symlink_target, const Caller& caller) {
  std::lock_guard lock(mu_);
  QUID_RETURN_IF_ERROR(CheckName(name));
  meta::Inode dir;
  QUID_RETURN_IF_ERROR(LoadInode(parent, &dir));
  if (!IsDir(dir.mode())) return Status(Code::kNotDir, "parent is not a directory");
  if (LookupEntry(parent, name).ok()) return Status::Exists("entry exists");

  const Ino ino = next_ino_++;
  const int64_t now = Now();
  meta::Inode inode;
  inode.set_mode(mode);
  inode.set_uid(caller.uid);
  // BSD/setgid semantics: in a setgid directory new entries take its group.
  inode.set_gid((dir.mode() & S_ISGID) ? dir.gid() : caller.gid);
  if (IsDir(mode) && (dir.mode() & S_ISGID)) inode.set_mode(mode | S_ISGID);
  inode.set_nlink(IsDir(mode) ? 2 : 1);
  inode.set_rdev(rdev);
  inode.set_atime_ns(now);
  inode.set_mtime_ns(now);
  inode.set_ctime_ns(now);
  inode.set_btime_ns(now);
  if (S_ISLNK(mode)) {
    inode.set_symlink_target(std::string(symlink_target));
    inode.set_size(symlink_target.size());
  }
  // Journal records older than this inode may carry its number from a lost, never
  // synced creation; they must not be replayed into it.
  inode.set_flushed_seq(journal_->last_seq());
  if (S_ISREG(mode)) inode.set_is_inline(true);

  rocksdb::WriteBatch batch;
  PutInode(&batch, ino, inode);
  meta::DirEntry entry;
  entry.set_ino(ino);
  entry.set_type(mode & S_IFMT);
  db_->PutProto(&batch, Cf::kDirents, DirentKey(parent, NameHash(name), name), entry);
  if (IsDir(mode)) dir.set_nlink(dir.nlink() + 1);
  dir.set_mtime_ns(now);
  dir.set_ctime_ns(now);
  PutInode(&batch, parent, dir);
  meta::Counters counters;
  counters.set_next_ino(next_ino_);
  counters.set_journal_seq(journal_->last_seq());
  db_->PutProto(&batch, Cf::kConfig, std::string(kCountersKey), counters);
  QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
  lookups_[ino]++;
  return ToAttr(ino, inode);
}

Result<Attr> Namespace::Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                              const Caller& caller) {
  const uint32_t type = mode & S_IFMT;
  if (type == 0)
    mode |= S_IFREG;
  else if (type != S_IFREG && type != S_IFIFO && type != S_IFCHR && type != S_IFBLK &&
           type != S_IFSOCK)
    return Status::Invalid("unsupported file type");
  return CreateNode(parent, name, mode, rdev, {}, caller);
}

Result<Attr> Namespace::Mkdir(Ino parent, std::string_view name, uint32_t mode,
                              const Caller& caller) {
  return CreateNode(parent, name, S_IFDIR | (mode & 07777), 0, {}, caller);
}

Result<Attr> Namespace::Symlink(Ino parent, std::string_view name, std::string_view target,
                                const Caller& caller) {
  if (target.empty() || target.size() > 4095) return Status::Invalid("bad symlink target");
  return CreateNode(parent, name, S_IFLNK | 0777, 0, target, caller);
}

Result<Attr> Namespace::Link(Ino ino, Ino new_parent, std::string_view new_name) {
  std::lock_guard lock(mu_);
  QUID_RETURN_IF_ERROR(CheckName(new_name));
  meta::Inode inode, dir;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  QUID_RETURN_IF_ERROR(LoadInode(new_parent, &dir));
  if (IsDir(inode.mode())) return Status(Code::kPermission, "cannot hard-link a directory");
  if (!IsDir(dir.mode())) return Status(Code::kNotDir, "parent is not a directory");
  if (LookupEntry(new_parent, new_name).ok()) return Status::Exists("entry exists");
  if (inode.nlink() >= 65000) return Status(Code::kTooManyLinks, "too many links");
  const int64_t now = Now();
  rocksdb::WriteBatch batch;
  if (inode.nlink() == 0) db_->Delete(&batch, Cf::kConfig, OrphanKey(ino));
  inode.set_nlink(inode.nlink() + 1);
  inode.set_ctime_ns(now);
  PutInode(&batch, ino, inode);
  meta::DirEntry entry;
  entry.set_ino(ino);
  entry.set_type(inode.mode() & S_IFMT);
  db_->PutProto(&batch, Cf::kDirents, DirentKey(new_parent, NameHash(new_name), new_name), entry);
  dir.set_mtime_ns(now);
  dir.set_ctime_ns(now);
  PutInode(&batch, new_parent, dir);
  QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
  lookups_[ino]++;
  return ToAttr(ino, inode);
}

Status Namespace::Unlink(Ino parent, std::string_view name) {
  std::lock_guard lock(mu_);
  QUID_RETURN_IF_ERROR(CheckName(name));
  QUID_ASSIGN_OR_RETURN(meta::DirEntry entry, LookupEntry(parent, name));
  meta::Inode inode, dir;
  QUID_RETURN_IF_ERROR(LoadInode(entry.ino(), &inode));
  QUID_RETURN_IF_ERROR(LoadInode(parent, &dir));
  if (IsDir(inode.mode())) return Status(Code::kIsDir, "is a directory");
  const int64_t now = Now();
  rocksdb::WriteBatch batch;
  db_->Delete(&batch, Cf::kDirents, DirentKey(parent, NameHash(name), name));
  dir.set_mtime_ns(now);
  dir.set_ctime_ns(now);
  PutInode(&batch, parent, dir);
  QUID_RETURN_IF_ERROR(DropLink(&batch, entry.ino(), &inode));
  QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
  MaybeDestroy(entry.ino());
  return Status::Ok();
}

Status Namespace::Rmdir(Ino parent, std::string_view name) {
  std::lock_guard lock(mu_);
  QUID_RETURN_IF_ERROR(CheckName(name));
  QUID_ASSIGN_OR_RETURN(meta::DirEntry entry, LookupEntry(parent, name));
  meta::Inode inode, dir;
  QUID_RETURN_IF_ERROR(LoadInode(entry.ino(), &inode));
  QUID_RETURN_IF_ERROR(LoadInode(parent, &dir));
  if (!IsDir(inode.mode())) return Status(Code::kNotDir, "not a directory");
  auto it = db_->NewIterator(Cf::kDirents);
  const std::string prefix = DirentPrefix(entry.ino());
  it->Seek(prefix);
  if (it->Valid() && it->key().starts_with(prefix))
    return Status(Code::kNotEmpty, "directory not empty");
  const int64_t now = Now();
  rocksdb::WriteBatch batch;
  db_->Delete(&batch, Cf::kDirents, DirentKey(parent, NameHash(name), name));
  dir.set_nlink(dir.nlink() > 2 ? dir.nlink() - 1 : 2);
  dir.set_mtime_ns(now);
  dir.set_ctime_ns(now);
  PutInode(&batch, parent, dir);
  QUID_RETURN_IF_ERROR(DropLink(&batch, entry.ino(), &inode));
  QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
  MaybeDestroy(entry.ino());
  return Status::Ok();
}

Status Namespace::Rename(Ino parent, std::string_view name, Ino new_parent,
                         std::string_view new_name, RenameFlags flags) {
  std::lock_guard lock(mu_);
  QUID_RETURN_IF_ERROR(CheckName(name));
  QUID_RETURN_IF_ERROR(CheckName(new_name));
  QUID_ASSIGN_OR_RETURN(meta::DirEntry src, LookupEntry(parent, name));
  auto dst = LookupEntry(new_parent, new_name);
  if (!dst.ok() && dst.status().code() != Code::kNotFound) return dst.status();
  const bool exchange = flags == RenameFlags::kExchange;
  if (flags == RenameFlags::kNoReplace && dst.ok()) return Status::Exists("target exists");
  if (exchange && !dst.ok()) return Status::NotFound("exchange target missing");
  if (dst.ok() && dst->ino() == src.ino()) return Status::Ok();  // same inode: nothing to do

  meta::Inode src_inode, old_dir, new_dir;
  QUID_RETURN_IF_ERROR(LoadInode(src.ino(), &src_inode));
  QUID_RETURN_IF_ERROR(LoadInode(parent, &old_dir));
  QUID_RETURN_IF_ERROR(LoadInode(new_parent, &new_dir));
  if (!IsDir(new_dir.mode())) return Status(Code::kNotDir, "target parent is not a directory");
  const bool same_dir = parent == new_parent;
  const int64_t now = Now();
  rocksdb::WriteBatch batch;
  const std::string src_key = DirentKey(parent, NameHash(name), name);
  const std::string dst_key = DirentKey(new_parent, NameHash(new_name), new_name);

  meta::Inode dst_inode;
  if (dst.ok()) QUID_RETURN_IF_ERROR(LoadInode(dst->ino(), &dst_inode));
  const bool src_is_dir = IsDir(src_inode.mode());
  const bool dst_is_dir = dst.ok() && IsDir(dst_inode.mode());

  if (exchange) {
    db_->PutProto(&batch, Cf::kDirents, src_key, *dst);
    db_->PutProto(&batch, Cf::kDirents, dst_key, src);
    if (!same_dir && src_is_dir != dst_is_dir) {
      // A directory changes parent: the parents' subdirectory counts swap too.
      int delta = src_is_dir ? 1 : -1;
      old_dir.set_nlink(old_dir.nlink() - delta);
      new_dir.set_nlink(new_dir.nlink() + delta);
    }
    dst_inode.set_ctime_ns(now);
    PutInode(&batch, dst->ino(), dst_inode);
  } else {
    if (dst.ok()) {
      if (src_is_dir && !dst_is_dir) return Status(Code::kNotDir, "target is not a directory");
      if (!src_is_dir && dst_is_dir) return Status(Code::kIsDir, "target is a directory");
      if (dst_is_dir) {
        auto it = db_->NewIterator(Cf::kDirents);
        const std::string prefix = DirentPrefix(dst->ino());
        it->Seek(prefix);
        if (it->Valid() && it->key().starts_with(prefix))
          return Status(Code::kNotEmpty, "target directory not empty");
        new_dir.set_nlink(new_dir.nlink() - 1);
      }
      QUID_RETURN_IF_ERROR(DropLink(&batch, dst->ino(), &dst_inode));
    }
    db_->Delete(&batch, Cf::kDirents, src_key);
    db_->PutProto(&batch, Cf::kDirents, dst_key, src);
    if (src_is_dir && !same_dir) {
      old_dir.set_nlink(old_dir.nlink() - 1);
      new_dir.set_nlink(new_dir.nlink() + 1);
    }
  }
  src_inode.set_ctime_ns(now);
  PutInode(&batch, src.ino(), src_inode);
  old_dir.set_mtime_ns(now);
  old_dir.set_ctime_ns(now);
  if (same_dir) {
    // One inode in both roles; only the new_dir copy carries changes in this case.
    new_dir.set_mtime_ns(now);
    new_dir.set_ctime_ns(now);
    PutInode(&batch, parent, new_dir);
  } else {
    new_dir.set_mtime_ns(now);
    new_dir.set_ctime_ns(now);
    PutInode(&batch, parent, old_dir);
    PutInode(&batch, new_parent, new_dir);
  }
  QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
  if (dst.ok() && !exchange) MaybeDestroy(dst->ino());
  return Status::Ok();
}

Status Namespace::ReadDir(Ino dir, uint64_t cookie, bool plus,
                          const std::function<bool(const DirEntryInfo&, uint64_t next)>& fn) {
  std::lock_guard lock(mu_);
  meta::Inode dir_inode;
  QUID_RETURN_IF_ERROR(LoadInode(dir, &dir_inode));
  if (!IsDir(dir_inode.mode())) return Status(Code::kNotDir, "not a directory");
  auto it = db_->NewIterator(Cf::kDirents);
  const std::string prefix = DirentPrefix(dir);
  for (it->Seek(DirentSeekKey(dir, cookie)); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    meta::DirEntry entry;
    if (!entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return Status::Corrupt("unparsable directory entry");
    DirEntryInfo info;
    info.name = std::string(DirentNameFromKey(key));
    auto attr = AttrOf(entry.ino());
    if (!attr.ok()) continue;  // an entry racing with its inode's removal
    info.attr = *attr;
    if (!fn(info, DirentHashFromKey(key) + 1)) break;
    if (plus) lookups_[entry.ino()]++;
  }
  return Status::Ok();
}

Status Namespace::Open(Ino ino, bool* regular) {
  std::lock_guard lock(mu_);
  meta::Inode inode;
  QUID_RETURN_IF_ERROR(LoadInode(ino, &inode));
  opens_[ino]++;
  *regular = S_ISREG(inode.mode());
  return Status::Ok();
}

void Namespace::Release(Ino ino) {
  std::lock_guard lock(mu_);
  auto it = opens_.find(ino);
  if (it == opens_.end()) return;
  if (--it->second == 0) {
    opens_.erase(it);
    MaybeDestroy(ino);
  }
}

Status Namespace::ApplyRecord(const JournalRecord& record, Journal* journal) {
  meta::Inode inode;
  Status s = LoadInode(record.ino, &inode);
  if (s.code() == Code::kNotFound) return Status::Ok();  // the file is gone
  QUID_RETURN_IF_ERROR(s);
  if (record.seq <= inode.flushed_seq()) return Status::Ok();  // already committed
  if (!S_ISREG(inode.mode())) return Status::Ok();
  journal->AddRef(record.segment, 1);
  DirtyFile* dirty = DirtyFor(record.ino, inode.size());
  if (record.type == JournalRecordType::kWrite)
    dirty->ApplyWrite(record, journal);
  else
    dirty->ApplyTruncate(record, journal);
  return Status::Ok();
}

Status Namespace::RemoveOrphans() {
  std::vector<Ino> orphans;
  auto it = db_->NewIterator(Cf::kConfig);
  for (it->Seek(std::string(kOrphanPrefix));
       it->Valid() && it->key().starts_with(std::string(kOrphanPrefix)); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    orphans.push_back(InodeFromKey(key.substr(kOrphanPrefix.size())));
  }
  for (Ino ino : orphans) {
    meta::Inode inode;
    if (LoadInode(ino, &inode).ok() && inode.nlink() > 0) {
      rocksdb::WriteBatch batch;
      db_->Delete(&batch, Cf::kConfig, OrphanKey(ino));
      QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
      continue;
    }
    QUID_RETURN_IF_ERROR(DestroyInode(ino));
  }
  return Status::Ok();
}

}  // namespace quid
