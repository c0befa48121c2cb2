// ShardStore: where the shards of encrypted, erasure-coded chunks rest. One small
// interface with many implementations: a local folder (FolderStore), a host reached over
// the network (net/, next), an in-memory fake for tests (MemoryStore), and wrappers that
// add behaviour (fault injection in tests). Stores see opaque ids, sizes and times only.
//
// Every method is safe for concurrent use by multiple threads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "storage/base/bytes.h"
#include "storage/base/status.h"
#include "storage/stores/store_stamp.h"

namespace quid {

constexpr size_t kShardIdBytes = 16;

// An opaque shard name, derived by the volume so that no two volumes' ids correlate.
struct ShardId {
  std::array<uint8_t, kShardIdBytes> bytes{};

  std::string hex() const { return ToHex(bytes); }
  static bool FromHexString(std::string_view hex, ShardId* out) { return FromHex(hex, out->bytes); }
  bool operator==(const ShardId&) const = default;
  auto operator<=>(const ShardId&) const = default;
};

struct ShardInfo {
  uint64_t size = 0;     // payload bytes, as given to put()
  int64_t mtime_ns = 0;  // when it was stored
};

struct StoreUsage {
  uint64_t used_bytes = 0;      // payload bytes stored
  uint64_t capacity_bytes = 0;  // bytes this store may hold in all (used + free)
  uint64_t shard_count = 0;
};

class ShardStore {
 public:
  virtual ~ShardStore() = default;

  // A short human name ("folder:/srv/a", "host:127.0.0.1:7001") for status and logs.
  virtual std::string name() const = 0;

  // Stores `data` under `id`, replacing any shard of that id. Returns OK only once the
  // bytes are durable (fsynced); a crash before that leaves the old shard or nothing,
  // never a torn one. kNoSpace when the store is full.
  virtual Status Put(const ShardId& id, ByteSpan data) = 0;

  // Returns the whole shard, verified against the checksum taken at Put: rot gives
  // kCorrupt, a missing shard kNotFound, an unreachable store kUnavailable.
  virtual Result<Bytes> Get(const ShardId& id) = 0;

  // Reads exactly out.size() bytes at `offset` of the shard, without whole-shard
  // verification (the caller authenticates them: chunk segments carry AEAD tags).
  // kInvalid if the range runs past the end.
  virtual Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) = 0;

  // Removes the shard. Removing a missing shard is OK (deletion is idempotent).
  virtual Status Remove(const ShardId& id) = 0;

  virtual Result<ShardInfo> Stat(const ShardId& id) = 0;

  // Calls `fn` for every shard held; stops early when `fn` returns false.
  virtual Status List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) = 0;

  virtual Result<StoreUsage> Usage() = 0;

  // Which volume the store belongs to (store_stamp.h; the policy is in stamped_store.h).
  // The stamp the store carries: nullopt if it has none.
  virtual Result<std::optional<StoreStamp>> ReadStamp() = 0;
  // Gives the store `stamp` if it carries none (durably, before returning), and returns
  // the stamp it carries afterwards: `stamp`, or the other volume's it already had (a
  // claim never replaces a stamp). Concurrent claims agree on one winner.
  virtual Result<StoreStamp> ClaimStamp(const StoreStamp& stamp) = 0;
};

}  // namespace quid
