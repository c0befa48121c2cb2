#define FUSE_USE_VERSION 314

#include "fs/fuse_ops.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <memory>
#include <string>
#include <vector>

#include "fs/read_ahead.h"
#include "storage/base/bytes.h"
#include "storage/volume/volume.h"

namespace quid {
namespace {

// One request carries at most this much write data. libfuse 3.14 sizes its receive buffer
// for 256 pages (FUSE_MAX_MAX_PAGES) plus a header, caps max_write there, and derives the
// max_pages it asks the kernel for from max_write, so 1 MiB is both what it allows and what
// keeps a 1 MiB write(2) in one request.
constexpr unsigned kMaxWriteBytes = 1u << 20;
// Requests the kernel keeps in flight without a caller waiting (writeback of cached pages,
// read-ahead). Fewer than the mount's worker threads (MountOptions::max_threads), so that
// when the journal is full and every background write waits for room, workers remain for
// the lookups, stats and reads that a user is waiting on.
constexpr unsigned kMaxBackgroundRequests = 8;
// st_blksize: the I/O size we prefer callers to use.
constexpr blksize_t kPreferredIoBytes = 4096;
// d_ino for "..": the Volume does not track parents, and libfuse's own high-level layer uses
// this value (FUSE_UNKNOWN_INO in lib/fuse.c) for an inode number it cannot know.
constexpr fuse_ino_t kUnknownIno = 0xffffffff;
// Directory offsets: 0 is ".", 1 is "..", 2 + c is the Volume's cookie c.
// REQUIRES of the Volume: cookies stay below INT64_MAX - kDotEntries (they are 62-bit name
// hashes), so that offsets stay positive off_t values.
constexpr uint64_t kDotEntries = 2;
constexpr int64_t kNsPerSecond = 1'000'000'000;

FuseContext& Context(fuse_req_t req) {
  return *static_cast<FuseContext*>(fuse_req_userdata(req));
}
Volume& Vol(fuse_req_t req) {
  return *Context(req).volume;
}

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

void ReplyStatus(fuse_req_t req, const Status& status) {
  // A non-OK status that maps to errno 0 would read as success to the kernel.
  int err = status.to_errno();
  if (!status.ok() && err == 0) err = EIO;
  fuse_reply_err(req, err);
}

timespec ToTimespec(int64_t ns) {
  int64_t seconds = ns / kNsPerSecond;
  int64_t rest = ns % kNsPerSecond;
  if (rest < 0) {  // times before 1970: tv_nsec must stay in [0, 1e9)
    seconds -= 1;
    rest += kNsPerSecond;
  }
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec = static_cast<long>(rest);
  return ts;
}

int64_t ToNs(const timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSecond + ts.tv_nsec;
}

struct stat ToStat(const Attr& attr) {
  struct stat st {};
  st.st_ino = attr.ino;
  st.st_mode = attr.mode;
  st.st_nlink = attr.nlink;
  st.st_uid = attr.uid;
  st.st_gid = attr.gid;
  st.st_rdev = attr.rdev;
  st.st_size = static_cast<off_t>(attr.size);
  st.st_blocks = static_cast<blkcnt_t>(attr.blocks);
  st.st_blksize = kPreferredIoBytes;
  st.st_atim = ToTimespec(attr.atime_ns);
  st.st_mtim = ToTimespec(attr.mtime_ns);
  st.st_ctim = ToTimespec(attr.ctime_ns);
  return st;
}

fuse_entry_param ToEntry(fuse_req_t req, const Attr& attr) {
  fuse_entry_param entry{};
  entry.ino = attr.ino;
  entry.attr = ToStat(attr);
  entry.attr_timeout = Context(req).attr_timeout_s;
  entry.entry_timeout = Context(req).entry_timeout_s;
  return entry;
}

// For calls that raised the lookup count: the kernel owns that count only if it got the reply.
void ReplyEntry(fuse_req_t req, const Result<Attr>& attr) {
  if (!attr.ok()) return ReplyStatus(req, attr.status());
  fuse_entry_param entry = ToEntry(req, *attr);
  if (fuse_reply_entry(req, &entry) != 0) Vol(req).Forget(attr->ino, 1);
}

void ReplyAttr(fuse_req_t req, const Result<Attr>& attr) {
  if (!attr.ok()) return ReplyStatus(req, attr.status());
  struct stat st = ToStat(*attr);
  fuse_reply_attr(req, &st, Context(req).attr_timeout_s);
}

// getxattr/listxattr: size 0 asks for the length, a short buffer is ERANGE.
void ReplySized(fuse_req_t req, size_t size, const char* data, size_t length) {
  if (size == 0) {
    fuse_reply_xattr(req, length);
  } else if (length > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, data, length);
  }
}

void WantIfCapable(fuse_conn_info* conn, unsigned capability) {
  // libfuse aborts the mount if `want` asks for more than the kernel offers.
  if (conn->capable & capability) conn->want |= capability;
}

void OnInit(void* /*userdata*/, fuse_conn_info* conn) {
  WantIfCapable(conn, FUSE_CAP_WRITEBACK_CACHE);
  WantIfCapable(conn, FUSE_CAP_READDIRPLUS);
  WantIfCapable(conn, FUSE_CAP_ASYNC_READ);
  WantIfCapable(conn, FUSE_CAP_PARALLEL_DIROPS);
  // No NFS export (inode numbers carry no generation); and the kernel, not the Volume,
  // clears setuid/setgid on write, truncate and chown (it sends a setattr for that).
  conn->want &= ~(FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_HANDLE_KILLPRIV);
  conn->max_write = kMaxWriteBytes;
  conn->max_readahead = kMountReadAheadBytes;  // read_ahead.h
  conn->max_background = kMaxBackgroundRequests;
  conn->congestion_threshold = kMaxBackgroundRequests * 3 / 4;
}

void OnDestroy(void* userdata) {
  // Unmount is the last chance to make acknowledged writes durable before the daemon exits.
  auto* context = static_cast<FuseContext*>(userdata);
  context->destroy_status = context->volume->SyncAll();
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyEntry(req, Vol(req).Lookup(parent, name));
}

void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Vol(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Vol(req).Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OnGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  ReplyAttr(req, Vol(req).GetAttr(ino));
}

void OnSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* /*fi*/) {
  SetAttrRequest request;
  if (to_set & FUSE_SET_ATTR_MODE) request.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) request.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) request.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) request.size = static_cast<uint64_t>(attr->st_size);
  // The kernel sets ATIME together with ATIME_NOW (likewise mtime); NOW wins.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    request.atime_ns = SetAttrRequest::kTimeNow;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    request.atime_ns = ToNs(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    request.mtime_ns = SetAttrRequest::kTimeNow;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    request.mtime_ns = ToNs(attr->st_mtim);
  }
  // The reply carries the new attributes, so the kernel's cache (size, mode) is fresh.
  ReplyAttr(req, Vol(req).SetAttr(ino, request));
}

void OnReadLink(fuse_req_t req, fuse_ino_t ino) {
  Result<std::string> target = Vol(req).ReadLink(ino);
  if (!target.ok()) return ReplyStatus(req, target.status());
  fuse_reply_readlink(req, target->c_str());
}

void OnMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  ReplyEntry(req, Vol(req).Mknod(parent, name, mode, rdev, CallerOf(req)));
}

void OnMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  // The kernel sends permission bits only; the type is spelled out so the Volume never has
  // to guess it.
  ReplyEntry(req, Vol(req).Mkdir(parent, name, S_IFDIR | (mode & 07777), CallerOf(req)));
}

void OnSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  ReplyEntry(req, Vol(req).Symlink(parent, name, target, CallerOf(req)));
}

// The kernel itself drops the link count of the inode it unlinked (or replaced by rename) and
// invalidates its cached attributes; nothing in these replies could carry them.
void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Vol(req).Unlink(parent, name));
}

void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Vol(req).Rmdir(parent, name));
}

void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags) {
  RenameFlags mode = RenameFlags::kNone;
  if (flags == RENAME_NOREPLACE) {
    mode = RenameFlags::kNoReplace;
  } else if (flags == RENAME_EXCHANGE) {
    mode = RenameFlags::kExchange;
  } else if (flags != 0) {  // RENAME_WHITEOUT (overlayfs) and combinations
    return ReplyStatus(req, Status::Invalid("unsupported rename flags"));
  }
  ReplyStatus(req, Vol(req).Rename(parent, name, new_parent, new_name, mode));
}

void OnLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  // The entry carries the raised link count, which the kernel applies to the shared inode.
  ReplyEntry(req, Vol(req).Link(ino, new_parent, new_name));
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Volume& volume = Vol(req);
  Status opened = volume.Open(ino, fi->flags);
  if (!opened.ok()) return ReplyStatus(req, opened);
  // keep_cache off: each open drops the file's cached pages, so a reopened file is read from
  // the Volume (close-to-open consistency); the price is re-reading after a reopen.
  fi->keep_cache = 0;
  if (fuse_reply_open(req, fi) != 0) volume.Release(ino);  // no handle, so no release
}

void OnCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Volume& volume = Vol(req);
  Result<Attr> made = volume.Mknod(parent, name, S_IFREG | (mode & 07777), 0, CallerOf(req));
  // Another creator won the race: without O_EXCL, open(O_CREAT) opens what is there.
  if (!made.ok() && made.status().code() == Code::kExists && !(fi->flags & O_EXCL)) {
    made = volume.Lookup(parent, name);
  }
  if (!made.ok()) return ReplyStatus(req, made.status());
  Status opened = volume.Open(made->ino, fi->flags);
  if (!opened.ok()) {
    volume.Forget(made->ino, 1);
    return ReplyStatus(req, opened);
  }
  fi->keep_cache = 0;
  fuse_entry_param entry = ToEntry(req, *made);
  if (fuse_reply_create(req, &entry, fi) != 0) {
    volume.Release(made->ino);
    volume.Forget(made->ino, 1);
  }
}

void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* /*fi*/) {
  // Uninitialized on purpose: the Volume fills what it returns and only that is sent.
  auto buffer = std::make_unique_for_overwrite<uint8_t[]>(size);
  Result<size_t> read =
      Vol(req).Read(ino, static_cast<uint64_t>(offset), MutableByteSpan(buffer.get(), size));
  if (!read.ok()) return ReplyStatus(req, read.status());
  fuse_reply_buf(req, reinterpret_cast<const char*>(buffer.get()), *read);
}

void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t offset,
             fuse_file_info* /*fi*/) {
  Result<size_t> written = Vol(req).Write(ino, static_cast<uint64_t>(offset),
                                          ByteSpan(reinterpret_cast<const uint8_t*>(data), size));
  if (!written.ok()) return ReplyStatus(req, written.status());
  fuse_reply_write(req, *written);
}

void OnRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Vol(req).Release(ino);
  fuse_reply_err(req, 0);
}

void OnFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* /*fi*/) {
  ReplyStatus(req, Vol(req).Fsync(ino, datasync != 0));
}

void OnFsyncDir(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  // Namespace changes are batches in one database; syncing it covers this directory.
  ReplyStatus(req, Vol(req).SyncAll());
}

// Packs directory entries into one reply buffer. In plus mode, tracks the inodes whose
// lookup count the Volume raised, so a reply that fails can hand the counts back.
class DirBuffer {
 public:
  DirBuffer(fuse_req_t req, size_t size, bool plus) : req_(req), plus_(plus), buffer_(size) {}

  // "." and "..": the kernel takes no lookup count for them, even in readdirplus.
  bool AddDot(const char* name, fuse_ino_t ino, uint64_t next) {
    fuse_entry_param entry{};  // ino 0: no attributes offered, nothing to link
    entry.attr.st_ino = ino;
    entry.attr.st_mode = S_IFDIR;
    return Add(name, entry, static_cast<off_t>(next));
  }

  // Returns false, and adds nothing, if the entry does not fit: the Volume then does not count
  // it as looked up.
  bool AddEntry(const DirEntryInfo& info, off_t next) {
    fuse_entry_param entry = ToEntry(req_, info.attr);
    if (!Add(info.name.c_str(), entry, next)) return false;
    if (plus_) counted_.push_back(info.attr.ino);
    return true;
  }

  void ForgetCounted(Volume& volume) {
    for (Ino ino : counted_) volume.Forget(ino, 1);
    counted_.clear();
  }

  const char* data() const { return buffer_.data(); }
  size_t used() const { return used_; }

 private:
  bool Add(const char* name, const fuse_entry_param& entry, off_t next) {
    char* out = buffer_.data() + used_;
    size_t room = buffer_.size() - used_;
    // Both calls return the entry's size and write nothing when it exceeds `room`.
    size_t size = plus_ ? fuse_add_direntry_plus(req_, out, room, name, &entry, next)
                        : fuse_add_direntry(req_, out, room, name, &entry.attr, next);
    if (size > room) return false;
    used_ += size;
    return true;
  }

  fuse_req_t req_;
  bool plus_;
  std::vector<char> buffer_;
  size_t used_ = 0;
  std::vector<Ino> counted_;
};

void ReplyDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, bool plus) {
  Volume& volume = Vol(req);
  DirBuffer buffer(req, size, plus);
  // Unsigned: an offset is whatever we handed out, and must never read as "before the dots".
  const uint64_t position = static_cast<uint64_t>(offset);
  bool full = false;
  if (position < 1) full = !buffer.AddDot(".", ino, 1);
  if (!full && position < kDotEntries) {
    full = !buffer.AddDot("..", ino == kRootIno ? kRootIno : kUnknownIno, kDotEntries);
  }
  Status listed;
  if (!full) {
    const uint64_t cookie = position < kDotEntries ? 0 : position - kDotEntries;
    listed = volume.ReadDir(ino, cookie, plus, [&](const DirEntryInfo& info, uint64_t next) {
      return buffer.AddEntry(info, static_cast<off_t>(next + kDotEntries));
    });
  }
  if (!listed.ok()) {
    buffer.ForgetCounted(volume);
    return ReplyStatus(req, listed);
  }
  if (fuse_reply_buf(req, buffer.data(), buffer.used()) != 0) buffer.ForgetCounted(volume);
}

void OnReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* /*fi*/) {
  ReplyDir(req, ino, size, offset, /*plus=*/false);
}

void OnReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
                   fuse_file_info* /*fi*/) {
  ReplyDir(req, ino, size, offset, /*plus=*/true);
}

void OnStatFs(fuse_req_t req, fuse_ino_t /*ino*/) {
  Result<StatFs> fs = Vol(req).StatFilesystem();
  if (!fs.ok()) return ReplyStatus(req, fs.status());
  struct statvfs st {};
  st.f_bsize = fs->block_size;
  st.f_frsize = fs->block_size;
  st.f_blocks = fs->total_blocks;
  st.f_bfree = fs->free_blocks;
  st.f_bavail = fs->free_blocks;
  st.f_files = fs->files;
  st.f_ffree = fs->free_files;
  st.f_favail = fs->free_files;
  st.f_namemax = fs->name_max;
  fuse_reply_statfs(req, &st);
}

void OnSetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  XattrMode mode = XattrMode::kAny;
  if (flags == XATTR_CREATE) {
    mode = XattrMode::kCreateOnly;
  } else if (flags == XATTR_REPLACE) {
    mode = XattrMode::kReplaceOnly;
  } else if (flags != 0) {
    return ReplyStatus(req, Status::Invalid("unsupported setxattr flags"));
  }
  ReplyStatus(req, Vol(req).SetXattr(
                       ino, name, ByteSpan(reinterpret_cast<const uint8_t*>(value), size), mode));
}

void OnGetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Result<Bytes> value = Vol(req).GetXattr(ino, name);
  if (!value.ok()) return ReplyStatus(req, value.status());
  ReplySized(req, size, reinterpret_cast<const char*>(value->data()), value->size());
}

void OnListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Result<std::vector<std::string>> names = Vol(req).ListXattr(ino);
  if (!names.ok()) return ReplyStatus(req, names.status());
  std::string list;  // "name\0name\0...", as listxattr(2) returns it
  for (const std::string& name : *names) {
    list += name;
    list.push_back('\0');
  }
  ReplySized(req, size, list.data(), list.size());
}

void OnRemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  ReplyStatus(req, Vol(req).RemoveXattr(ino, name));
}

void OnAccess(fuse_req_t req, fuse_ino_t ino, int /*mask*/) {
  // The mount always has default_permissions, so the kernel checks modes itself and sends
  // ACCESS only in odd cases; answering whether the inode still exists is enough.
  ReplyStatus(req, Vol(req).GetAttr(ino).status());
}

fuse_lowlevel_ops MakeOps() {
  // opendir/releasedir are left out on purpose: directories need no handle, and libfuse
  // answers both with success when they are missing.
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.destroy = OnDestroy;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetAttr;
  ops.setattr = OnSetAttr;
  ops.readlink = OnReadLink;
  ops.mknod = OnMknod;
  ops.mkdir = OnMkdir;
  ops.symlink = OnSymlink;
  ops.unlink = OnUnlink;
  ops.rmdir = OnRmdir;
  ops.rename = OnRename;
  ops.link = OnLink;
  ops.open = OnOpen;
  ops.create = OnCreate;
  ops.read = OnRead;
  ops.write = OnWrite;
  // No flush: close(2) promises no durability (fsync does) and writes are in the journal
  // once acknowledged, so there is nothing to do at close. Unset, libfuse answers the
  // first FLUSH with ENOSYS and the kernel sends no more: one round trip less per file
  // closed. The kernel still writes back its cached pages at close and reports their
  // errors there.
  ops.release = OnRelease;
  ops.fsync = OnFsync;
  ops.fsyncdir = OnFsyncDir;
  ops.readdir = OnReadDir;
  ops.readdirplus = OnReadDirPlus;
  ops.statfs = OnStatFs;
  ops.setxattr = OnSetXattr;
  ops.getxattr = OnGetXattr;
  ops.listxattr = OnListXattr;
  ops.removexattr = OnRemoveXattr;
  ops.access = OnAccess;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& QuidFuseOps() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace quid
