// MemoryStore: the in-memory twin of FolderStore, for tests. Keeps a CRC-32C per shard
// as FolderStore does, so rot injected through CorruptByte is reported by Get as
// kCorrupt, just as rot on disk would be.
//
// Every method, test hooks included, is safe for concurrent use by multiple threads.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/base/clock.h"
#include "storage/stores/shard_store.h"

namespace quid {

class MemoryStore : public ShardStore {
 public:
  // `capacity_bytes` caps the payload bytes held; 0 means unlimited (Usage then reports
  // the largest uint64_t as capacity). `name` is what name() returns. `clock` stamps
  // mtimes (a FakeClock lets tests age shards); it must outlive the store.
  explicit MemoryStore(uint64_t capacity_bytes = 0, std::string name = "memory",
                       const Clock* clock = RealClock::Get());
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  std::string name() const override;
  // Replaces any shard of that id; kNoSpace if it would exceed the capacity (nothing is
  // stored then).
  Status Put(const ShardId& id, ByteSpan data) override;
  // Verifies the CRC taken at Put: kCorrupt after CorruptByte, kNotFound if absent.
  Result<Bytes> Get(const ShardId& id) override;
  // No CRC check, as FolderStore; kInvalid if the range runs past the end.
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) override;
  // A missing shard is OK.
  Status Remove(const ShardId& id) override;
  Result<ShardInfo> Stat(const ShardId& id) override;
  // Calls `fn` on a snapshot taken first, without holding the lock, so `fn` may call
  // back into the store.
  Status List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) override;
  Result<StoreUsage> Usage() override;
  // The stamp lives in memory beside the shards.
  Result<std::optional<StoreStamp>> ReadStamp() override;
  Result<StoreStamp> ClaimStamp(const StoreStamp& stamp) override;

  // Test hooks.
  // Flips the bits of payload byte `offset` without updating the CRC. No effect if there
  // is no such shard or byte.
  void CorruptByte(const ShardId& id, uint64_t offset);
  // Loses the shard, as a failed disk would (no accounting of why).
  void Drop(const ShardId& id);
  size_t shard_count();
  // The ids held, in ascending order.
  std::vector<ShardId> ids();
  // Forgets the stamp, as wiping a folder store would.
  void ClearStamp();

 private:
  struct Shard {
    Bytes data;
    uint32_t crc = 0;
    int64_t mtime_ns = 0;
  };

  const uint64_t capacity_bytes_;  // 0: unlimited
  const std::string name_;
  const Clock* const clock_;

  std::mutex mu_;
  std::map<ShardId, Shard> shards_;  // guarded by mu_
  uint64_t used_bytes_ = 0;          // guarded by mu_
  std::optional<StoreStamp> stamp_;  // guarded by mu_
};

}  // namespace quid
