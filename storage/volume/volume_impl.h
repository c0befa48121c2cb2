// VolumeImpl: the Volume over RocksDB metadata, the write-back journal and a ChunkStore.
//
// Locking (in this order, never the reverse):
//   write_order_mu_  serializes "append to journal, then apply to the dirty map", so the
//                    in-memory state and a replay of the journal agree on which of two
//                    overlapping writes came last. Held across a journal append, which
//                    may wait for room; the flusher never takes it.
//   mu_              guards metadata read-modify-write, the dirty map, lookup and open
//                    counts. Never held across store I/O.
// The flusher thread builds chunks without locks and takes mu_ only to snapshot and to
// commit. Shard I/O runs on io_pool_, chunk building on cpu_pool_ (separate pools, so a
// task never waits on work queued behind it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "storage/chunks/chunk_store.h"
#include "storage/chunks/chunker.h"
#include "storage/journal/dirty_file.h"
#include "storage/journal/journal.h"
#include "storage/meta/meta.pb.h"
#include "storage/meta/metadata.h"
#include "storage/volume/chunk_reader.h"
#include "storage/volume/flush_plan.h"
#include "storage/volume/garbage_collector.h"
#include "storage/volume/read_gate.h"
#include "storage/volume/volume.h"

namespace quid {

class VolumeImpl : public Volume {
 public:
  VolumeImpl() = default;
  ~VolumeImpl() override;

  Status Start(const VolumeOpenOptions& options);

  void Forget(Ino ino, uint64_t nlookup) override;
  Result<Attr> Lookup(Ino parent, std::string_view name) override;
  Result<Attr> GetAttr(Ino ino) override;
  Result<Attr> SetAttr(Ino ino, const SetAttrRequest& request) override;
  Result<std::string> ReadLink(Ino ino) override;
  Result<Attr> Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                     const Caller& caller) override;
  Result<Attr> Mkdir(Ino parent, std::string_view name, uint32_t mode,
                     const Caller& caller) override;
  Result<Attr> Symlink(Ino parent, std::string_view name, std::string_view target,
                       const Caller& caller) override;
  Result<Attr> Link(Ino ino, Ino new_parent, std::string_view new_name) override;
  Status Unlink(Ino parent, std::string_view name) override;
  Status Rmdir(Ino parent, std::string_view name) override;
  Status Rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                RenameFlags flags) override;
  Status Open(Ino ino, int flags) override;
  void Release(Ino ino) override;
  Result<size_t> Read(Ino ino, uint64_t offset, MutableByteSpan out) override;
  Result<size_t> Write(Ino ino, uint64_t offset, ByteSpan data) override;
  Status Fsync(Ino ino, bool datasync) override;
  Status SyncAll() override;
  Status ReadDir(Ino dir, uint64_t cookie, bool plus,
                 const std::function<bool(const DirEntryInfo&, uint64_t next)>& fn) override;
  Status SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode) override;
  Result<Bytes> GetXattr(Ino ino, std::string_view name) override;
  Result<std::vector<std::string>> ListXattr(Ino ino) override;
  Status RemoveXattr(Ino ino, std::string_view name) override;
  Result<StatFs> StatFilesystem() override;
  std::vector<std::string> OpenWarnings() const override;
  VolumeStatus GetStatus() override;
  Status Drain(int64_t timeout_ns, const std::function<void(uint64_t)>& progress) override;
  Status Close() override;

 private:
  // --- metadata helpers (REQUIRES: mu_ held) ---
  Status LoadInode(Ino ino, meta::Inode* inode) const;
  void PutInode(rocksdb::WriteBatch* batch, Ino ino, const meta::Inode& inode) const;
  Result<meta::DirEntry> LookupEntry(Ino parent, std::string_view name) const;
  Attr ToAttr(Ino ino, const meta::Inode& inode) const;
  Result<Attr> AttrOf(Ino ino) const;
  uint64_t NameHash(std::string_view name) const;
  Result<Attr> CreateNode(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                          std::string_view symlink_target, const Caller& caller);
  // Drops one link of `ino` in `batch` (nlink--, ctime); destroys it if nothing holds it.
  Status DropLink(rocksdb::WriteBatch* batch, Ino ino, meta::Inode* inode);
  // Removes the inode, its extents and xattrs, and the chunk references they held.
  Status DestroyInodeLocked(Ino ino);
  void MaybeDestroyLocked(Ino ino);
  // Adds `delta` to chunk `id`'s refcount in `batch`; a chunk reaching zero moves to the
  // pending-delete list in the same batch. `pending` accumulates records touched in this
  // batch so several changes to one chunk compose.
  Status AdjustChunkRef(rocksdb::WriteBatch* batch, const ChunkId& id, int64_t delta,
                        std::map<ChunkId, meta::Chunk>* pending);
  void FinishChunkRefs(rocksdb::WriteBatch* batch, std::map<ChunkId, meta::Chunk>* pending);
  Status CheckName(std::string_view name) const;
  DirtyFile* DirtyFor(Ino ino, uint64_t committed_size);
  int64_t Now() const { return clock_->now_ns(); }

  // --- data path (volume_io.cc; committed bytes come from reader_) ---
  Status Truncate(Ino ino, uint64_t size);
  // Feeds one journal record into the dirty map (replay); takes a reference if kept.
  Status ApplyRecordLocked(const JournalRecord& record, Journal* journal);

  // Every store's usage, asked in parallel; a store silent for long counts as unreachable.
  std::vector<Result<StoreUsage>> ProbeStores();
  // Moves the extra shards of chunks placed twice on one store (written while stores were
  // away) to reachable stores the chunk does not use yet. A bounded amount per call.
  // Returns true if it moved anything. Flusher thread only.
  bool RestoreRedundancy();

  // --- flusher (flusher.cc) ---
  void FlusherLoop();
  // Flushes the given inodes' dirty data; commits in one batch. True if any committed.
  // Three steps (flush_plan.h): plan under mu_, build without locks, commit under mu_.
  bool FlushRound(const std::vector<Ino>& inodes);
  std::vector<FileJob> PlanRound(const std::vector<Ino>& inodes);
  Status BuildChunk(FileJob& file, ChunkJob& chunk);
  void BuildRound(std::vector<FileJob>& files);
  bool CommitRound(std::vector<FileJob>& files);
  std::vector<Ino> PickFlushCandidates(bool everything);
  Status RemoveOrphans();
  void WakeFlusher();

  VolumeOpenOptions options_;
  Clock* clock_ = nullptr;
  Env* env_ = nullptr;
  meta::VolumeConfig config_;
  std::unique_ptr<MetaDb> db_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<ThreadPool> io_pool_;
  std::unique_ptr<ThreadPool> cpu_pool_;
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<ChunkReader> reader_;
  VolumeKeys keys_;
  std::unique_ptr<Chunker> chunker_;
  uint64_t name_hash_key_[2] = {0, 0};
  // Stores found unusable at open (another volume's), one line each; set before the
  // flusher starts and never changed after.
  std::vector<std::string> store_warnings_;

  std::mutex write_order_mu_;
  mutable std::mutex mu_;
  uint64_t next_ino_ = 2;
  std::unordered_map<Ino, std::unique_ptr<DirtyFile>> dirty_;
  std::unordered_map<Ino, uint64_t> lookups_;
  std::unordered_map<Ino, uint64_t> opens_;
  ReadGate read_gate_;
  std::unique_ptr<GarbageCollector> gc_;

  std::thread flusher_;
  std::mutex flusher_mu_;
  std::condition_variable flusher_cv_;
  std::condition_variable flushed_cv_;  // signalled after every round
  bool stopping_ = false;
  int drain_requests_ = 0;
  std::atomic<uint64_t> flush_failures_{0};
  bool closed_ = false;
  std::string redundancy_cursor_;  // chunk key to resume RestoreRedundancy from
};

}  // namespace quid
