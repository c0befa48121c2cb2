// FolderStore: shards as files in a local folder. The store a host daemon serves from,
// and the one a volume uses for a local disk. All disk access goes through the Env seam
// (the real disk, or MemEnv in power-loss tests); MemoryStore is its in-memory twin.
//
// Layout: <dir>/<first two hex digits of the id>/<32 hex digits>.shard. Fan-out folders
// keep any one directory small; they are created on demand.
//
// File format (all integers big-endian):
//   0  "QSHD"            magic
//   4  u32               format version (1)
//   8  u64               payload length
//   16 u32               CRC-32C of the payload
//   20 u32               CRC-32C of bytes 0..19 (so a torn or rotted header is detected
//                        before its length is trusted)
//   24 payload
//
// Durability: Put writes a temp file beside the final name, fsyncs it, renames it over the
// final name and fsyncs the fan-out folder, so a crash leaves the old shard or the new
// one, never a torn one. Temp files left by a crash are removed at Open.
//
// One FolderStore per folder: Open takes an exclusive lock (flock on <dir>/LOCK) because
// the temp-file cleanup at Open would otherwise delete another live store's uploads.
// The same lock makes a claim of the volume stamp (<dir>/VOLUME, store_stamp.h) safe
// against other processes; a mutex orders claims within this one.
//
// Every method is safe for concurrent use by multiple threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "storage/base/env.h"
#include "storage/stores/shard_store.h"

namespace quid {

class FolderStore : public ShardStore {
 public:
  // Bytes of the fixed header in front of every payload.
  static constexpr uint64_t kHeaderBytes = 24;

  // Opens (creating it and its parents if missing) the store in `dir`. `capacity_bytes`
  // caps the payload bytes held; 0 means "whatever the filesystem has free". Removes temp
  // files left by a crash and counts the shards present. kBusy if another FolderStore
  // (in this or another process) has the folder open; kIoError and friends on disk errors.
  static Result<std::shared_ptr<FolderStore>> Open(const std::string& dir, uint64_t capacity_bytes,
                                                   Env* env = nullptr);

  ~FolderStore() override;
  FolderStore(const FolderStore&) = delete;
  FolderStore& operator=(const FolderStore&) = delete;

  // "folder:<dir>".
  std::string name() const override;

  // Atomic and durable (see above). kNoSpace, with the free bytes in the message, if the
  // payload would take the store past its capacity; nothing is stored then.
  Status Put(const ShardId& id, ByteSpan data) override;

  // Reads and verifies header and payload CRCs: kCorrupt (naming the shard) on any
  // mismatch or a truncated file, kNotFound if there is no such shard.
  Result<Bytes> Get(const ShardId& id) override;

  // Verifies the header only (to know the payload length); the payload bytes are not
  // checked. kInvalid if [offset, offset + out.size()) is not inside the payload.
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) override;

  // Unlinks and fsyncs the folder; a missing shard is OK.
  Status Remove(const ShardId& id) override;

  // Size from the file length (cheap; rot is found by Get), mtime from the file.
  Result<ShardInfo> Stat(const ShardId& id) override;

  // Walks the fan-out folders in no particular order; temp files and names that are not
  // shards are skipped. Shards put or removed during the walk may or may not be seen.
  Status List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) override;

  // used_bytes and shard_count from counters kept since Open; capacity_bytes is the
  // configured capacity, or the filesystem's free space plus used_bytes.
  Result<StoreUsage> Usage() override;

  // The stamp file <dir>/VOLUME; kCorrupt if it cannot be read as one.
  Result<std::optional<StoreStamp>> ReadStamp() override;
  // Writes the stamp file if there is none (temp file, fsync, rename, fsync of <dir>).
  Result<StoreStamp> ClaimStamp(const StoreStamp& stamp) override;

  const std::string& dir() const { return dir_; }

  // What a shard file's header says about its payload (exposed for the decoder only).
  struct ShardHeader {
    uint64_t payload_length = 0;
    uint32_t payload_crc = 0;
  };

 private:
  FolderStore(Env* env, std::string dir, uint64_t capacity_bytes, std::unique_ptr<FileLock> lock);

  // Opens a shard and checks its header; `what` names the operation in errors.
  Result<ShardHeader> OpenShard(const ShardId& id, const std::string& what,
                                std::unique_ptr<File>* out) const;
  // Payload bytes of the shard file at `path`, 0 if there is none.
  uint64_t PayloadOf(const std::string& path) const;

  Status Scan();
  std::string FanoutDir(const ShardId& id) const;
  std::string ShardPath(const ShardId& id) const;
  Status EnsureFanoutDir(const ShardId& id);
  // Free bytes on the filesystem for an unprivileged writer.
  Result<uint64_t> FilesystemFreeBytes() const;
  // kNoSpace if storing `size` bytes over a shard of `old_size` bytes would not fit.
  Status CheckSpace(const ShardId& id, uint64_t size, uint64_t old_size) const;
  std::string Describe(const std::string& what, const ShardId& id) const;

  Env* const env_;
  const std::string dir_;
  const uint64_t capacity_bytes_;         // 0: the filesystem's free space
  const std::unique_ptr<FileLock> lock_;  // held for the store's lifetime

  // Serialises the steps that change which shards exist (rename, unlink) with the
  // counter updates, so used_bytes_ and shard_count_ match the folder. The slow parts
  // (writing and fsyncing the temp file, fsyncing the folder) run outside it.
  std::mutex mutate_mu_;
  std::atomic<uint64_t> used_bytes_{0};
  std::atomic<uint64_t> shard_count_{0};

  // Fan-out folders whose entry in <dir> is known durable, so Put need not fsync <dir>
  // again. Guarded for creation by fanout_mu_; read without it.
  std::mutex fanout_mu_;
  std::array<std::atomic<bool>, 256> fanout_durable_{};

  std::atomic<uint64_t> temp_counter_{0};

  std::mutex stamp_mu_;  // one claim at a time: read, then write only if absent
};

}  // namespace quid
