// VolumeImpl: the Volume as a composition of parts, each with one job and its own lock:
//   Namespace         names, inodes, the dirty map, lookup/open counts (namespace.h)
//   data path         Read/Write/Truncate here (volume_io.cc): journal appends under the
//                     write-order lock, reads of one consistent version of a file
//   ChunkReader       committed bytes from the stores, with a cache and read-ahead
//   Flusher           the background thread: flush rounds, deletes, sweeps (flusher.h)
//   GarbageCollector  pending deletes and the sweep, on the flusher thread
//   ReadGate          keeps shards alive while reads that may need them are in flight
//   Repairer          its own thread: host states, rebuilding lost shards (repairer.h)
// Lock order: write_order_mu_, then the namespace lock, then leaf locks (journal, read
// gate, chunk reader, flusher control). Shard I/O runs on io_pool_, chunk building on
// cpu_pool_ (separate pools, so a task never waits on work queued behind it).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "storage/chunks/chunk_store.h"
#include "storage/chunks/chunker.h"
#include "storage/journal/journal.h"
#include "storage/meta/meta.pb.h"
#include "storage/meta/metadata.h"
#include "storage/volume/chunk_reader.h"
#include "storage/volume/flusher.h"
#include "storage/volume/garbage_collector.h"
#include "storage/volume/namespace.h"
#include "storage/volume/quota.h"
#include "storage/volume/read_gate.h"
#include "storage/volume/repairer.h"
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
  Result<CheckReport> Check(const CheckOptions& options,
                            const std::function<void(const CheckProgress&)>& progress) override;
  Status Drain(int64_t timeout_ns, const std::function<void(uint64_t)>& progress) override;
  Status Close() override;

 private:
  // --- data path (volume_io.cc; committed bytes come from reader_) ---
  Status Truncate(Ino ino, uint64_t size);
  // Appends a record with `try_append` (an append that never waits) under the write-order
  // lock, which `order` holds when this returns OK. Waiting for journal room happens
  // without that lock, so a full journal stalls writers only, never the flusher copying
  // records forward to make room (relocate.cc).
  Result<JournalRecord> AppendInOrder(uint64_t payload_bytes, std::unique_lock<std::mutex>& order,
                                      const std::function<Result<JournalRecord>()>& try_append);
  int64_t Now() const { return clock_->now_ns(); }
  // Asks every store for its capacity (bounded wait) and hands the answers to the quota.
  void RefreshQuota();
  // A volume on the node's leases: adds the hosts of new leases and updates addresses, in
  // the configuration and (once open) in the chunk store (lease_hosts.cc).
  Status FollowLeases();
  // FollowLeases under leases_mu_: `*capacity_changed` when the quota must look again.
  Status ApplyLeases(const Result<std::vector<LeaseHost>>& hosts, bool* capacity_changed);
  // The lease watcher thread: FollowLeases every options_.lease_refresh_ns until Close.
  void WatchLeases();
  // What the volume holds on each host, for the node daemon's ledger.
  std::vector<PlacedOnHost> PlacedOnHosts();
  // Per store index: its lease is ending (the last FollowLeases said so).
  std::vector<bool> Draining();
  // The store a configuration entry names, opened (or an offline stand-in) and stamped.
  std::shared_ptr<ShardStore> OpenConfiguredStore(const meta::StoreConfig& entry);
  std::shared_ptr<ShardStore> StampForVolume(std::shared_ptr<ShardStore> store, bool claim_now);
  void WakeFlusher() {
    if (flusher_) flusher_->Wake();
  }
  void NoteWriteToFlusher() {
    if (flusher_) flusher_->NoteWrite();
  }

  VolumeOpenOptions options_;
  Clock* clock_ = nullptr;
  Env* env_ = nullptr;
  meta::VolumeConfig config_;
  VolumeKeys keys_;
  std::unique_ptr<Chunker> chunker_;
  std::unique_ptr<MetaDb> db_;
  std::unique_ptr<ThreadPool> io_pool_;
  std::unique_ptr<ThreadPool> cpu_pool_;
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<ChunkReader> reader_;
  // Stores found unusable at open (another volume's), one line each; set before the
  // flusher starts and never changed after.
  std::vector<std::string> store_warnings_;
  ReadGate read_gate_;
  std::unique_ptr<GarbageCollector> gc_;
  std::unique_ptr<Namespace> ns_;
  std::unique_ptr<Quota> quota_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Flusher> flusher_;
  std::unique_ptr<Repairer> repairer_;  // null when options.repair_enabled is false

  // Serializes "append to the journal, then apply to the dirty map", so the in-memory
  // state and a replay of the journal agree on which of two overlapping writes came
  // last. Never held while waiting for journal room (AppendInOrder); taken before the
  // namespace lock, never after it; the flusher takes it only to copy records forward.
  std::mutex write_order_mu_;
  std::mutex shard_move_mu_;  // one shard mover at a time (FlusherParts::shard_move_mu)
  std::mutex close_mu_;
  bool closed_ = false;  // guarded by close_mu_

  // Serializes changes to config_'s store list (FollowLeases); a leaf lock.
  std::mutex leases_mu_;
  std::vector<bool> draining_;   // guarded by leases_mu_; per store index
  std::vector<double> uptimes_;  // guarded by leases_mu_; per store index, -1: unknown
  std::vector<std::vector<std::string>> labels_;  // guarded by leases_mu_; failure domains
  bool node_silent_ = false;  // guarded by leases_mu_: the last lease_hosts call failed
  std::thread lease_watch_;
  std::mutex lease_watch_mu_;
  std::condition_variable lease_watch_cv_;
  bool lease_watch_stop_ = false;  // guarded by lease_watch_mu_
};

}  // namespace quid
