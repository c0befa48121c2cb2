// Namespace: the volume's names, inodes and in-memory file state, behind one lock.
//
// It owns the namespace lock and everything it guards: metadata read-modify-write
// (inodes, directory entries, xattrs, chunk refcounts), the dirty map (each open file's
// journal pieces not yet flushed), and the kernel's lookup and open counts. Each POSIX
// operation takes the lock, reads what it needs and commits one WriteBatch; none does
// store I/O or waits for journal space while holding it.
//
// The data path (volume_io.cc) and the flusher use the lock-holding helpers below, under
// Lock(); they never call a POSIX operation with it held.
//
// Lock order: the volume's write-order lock, then this lock, then leaf locks (journal,
// read gate, chunk reader). The flusher's own lock is never held while taking this one.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/base/clock.h"
#include "storage/journal/dirty_file.h"
#include "storage/journal/journal.h"
#include "storage/meta/meta.pb.h"
#include "storage/meta/metadata.h"
#include "storage/volume/garbage_collector.h"
#include "storage/volume/volume.h"

namespace quid {

class Quota;

class Namespace {
 public:
  // `name_hash_key` keys directory-entry hashes (16 bytes of the volume id). `next_ino`
  // comes from the committed counters. `wake_flusher` is called when there is work for
  // the flusher (shards to delete); it may be called with the lock held.
  // Unlinked files are destroyed `destroy_batch_extents` extents per batch.
  Namespace(MetaDb* db, GarbageCollector* gc, Clock* clock, const std::string& name_hash_key,
            uint64_t next_ino, std::function<void()> wake_flusher,
            size_t destroy_batch_extents = 1024);

  // The journal is opened after the namespace (its replay fills the dirty map): set once,
  // before any operation.
  void AttachJournal(Journal* journal) { journal_ = journal; }
  // The quota learns of every chunk record dropped here (set once, before any operation).
  void AttachQuota(Quota* quota) { quota_ = quota; }

  // --- POSIX operations; each takes the lock ---
  void Forget(Ino ino, uint64_t nlookup);
  Result<Attr> Lookup(Ino parent, std::string_view name);
  Result<Attr> GetAttr(Ino ino);
  // Modes, owners and times. A size change is the data path's (a journal record);
  // CheckTruncatable says whether one is allowed.
  Result<Attr> SetAttr(Ino ino, const SetAttrRequest& request);
  Status CheckTruncatable(Ino ino);
  Result<std::string> ReadLink(Ino ino);
  Result<Attr> Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                     const Caller& caller);
  Result<Attr> Mkdir(Ino parent, std::string_view name, uint32_t mode, const Caller& caller);
  Result<Attr> Symlink(Ino parent, std::string_view name, std::string_view target,
                       const Caller& caller);
  Result<Attr> Link(Ino ino, Ino new_parent, std::string_view new_name);
  Status Unlink(Ino parent, std::string_view name);
  Status Rmdir(Ino parent, std::string_view name);
  Status Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                RenameFlags flags);
  Status ReadDir(Ino dir, uint64_t cookie, bool plus,
                 const std::function<bool(const DirEntryInfo&, uint64_t next)>& fn);
  // Counts an open handle; `*regular` says whether the inode is a regular file.
  Status Open(Ino ino, bool* regular);
  void Release(Ino ino);
  Status SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode);
  Result<Bytes> GetXattr(Ino ino, std::string_view name);
  Result<std::vector<std::string>> ListXattr(Ino ino);
  Status RemoveXattr(Ino ino, std::string_view name);

  // --- for the data path and the flusher ---
  std::unique_lock<std::mutex> Lock() const { return std::unique_lock(mu_); }

  // Bytes acknowledged but not yet stored, over every file (any thread, no lock needed).
  uint64_t dirty_total() const { return dirty_total_.load(std::memory_order_relaxed); }

  // REQUIRES: Lock() held, for everything below.
  Status LoadInode(Ino ino, meta::Inode* inode) const;
  void PutInode(rocksdb::WriteBatch* batch, Ino ino, const meta::Inode& inode) const;
  // The dirty state of `ino`, made (from its committed size) if it has none.
  DirtyFile* DirtyFor(Ino ino, uint64_t committed_size);
  DirtyFile* FindDirty(Ino ino);
  // The whole dirty map: the flusher picks from it and erases files it has made clean.
  std::unordered_map<Ino, std::unique_ptr<DirtyFile>>& dirty() { return dirty_; }
  uint64_t next_ino() const { return next_ino_; }
  // Adds `delta` to chunk `id`'s refcount; `pending` accumulates the records touched in
  // one batch so several changes to one chunk compose. FinishChunkRefs writes them into
  // `batch`, moving a chunk that reached zero to the pending-delete list in that batch.
  Status AdjustChunkRef(const ChunkId& id, int64_t delta, std::map<ChunkId, meta::Chunk>* pending);
  void FinishChunkRefs(rocksdb::WriteBatch* batch, std::map<ChunkId, meta::Chunk>* pending);
  // Feeds one journal record into the dirty map (replay); takes a reference if kept.
  Status ApplyRecord(const JournalRecord& record, Journal* journal);
  // Destroys inodes that lost their last link while open when the volume went down.
  Status RemoveOrphans();
  // One bounded batch of destroying the unlinked files too big for one (flusher thread;
  // takes the lock). True while more remain.
  bool DestroyDoomedStep();

 private:
  // REQUIRES: mu_ held.
  Result<meta::DirEntry> LookupEntry(Ino parent, std::string_view name) const;
  Attr ToAttr(Ino ino, const meta::Inode& inode) const;
  Result<Attr> AttrOf(Ino ino) const;
  uint64_t NameHash(std::string_view name) const;
  Result<Attr> CreateNode(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                          std::string_view symlink_target, const Caller& caller);
  // Drops one link of `ino` in `batch` (nlink--, ctime); an unlinked inode gets an orphan
  // mark, so a crash before it is destroyed is finished at the next mount.
  Status DropLink(rocksdb::WriteBatch* batch, Ino ino, meta::Inode* inode);
  // Removes the inode, its extents and xattrs, and the chunk references they held: at
  // once for a file of up to destroy_batch_extents_ extents, else the first batch now and
  // the rest through DestroyDoomedStep.
  Status DestroyInode(Ino ino);
  // One batch of that: up to destroy_batch_extents_ extents, and once none are left, the
  // inode, its xattrs and its orphan mark. `*finished` says whether it got that far.
  Status DestroyStep(Ino ino, bool* finished);
  // Destroys `ino` if nothing holds it: no link, no kernel lookup, no open handle.
  void MaybeDestroy(Ino ino);
  Status CheckName(std::string_view name) const;
  int64_t Now() const { return clock_->now_ns(); }

  MetaDb* const db_;
  GarbageCollector* const gc_;
  Quota* quota_ = nullptr;
  Clock* const clock_;
  const std::function<void()> wake_flusher_;
  const size_t destroy_batch_extents_;
  Journal* journal_ = nullptr;
  uint64_t name_hash_key_[2] = {0, 0};

  mutable std::mutex mu_;
  uint64_t next_ino_;  // guarded by mu_
  // Sum of dirty_bytes() over dirty_ (declared first: the files subtract theirs as they go).
  std::atomic<uint64_t> dirty_total_{0};
  std::unordered_map<Ino, std::unique_ptr<DirtyFile>> dirty_;  // guarded by mu_
  std::unordered_map<Ino, uint64_t> lookups_;                  // guarded by mu_
  std::unordered_map<Ino, uint64_t> opens_;                    // guarded by mu_
  std::deque<Ino> doomed_;  // guarded by mu_: unlinked files destroyed in steps
};

}  // namespace quid
