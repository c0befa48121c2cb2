// ChunkCache: the read side of the cache tier. Plaintext of whole chunks, by chunk id
// (chunks are immutable and content-addressed, so entries never go stale), evicted least
// recently used once `capacity_bytes` is reached. Capacity 0 disables it.
// Thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "storage/base/bytes.h"
#include "storage/crypto/chunk_id.h"

namespace quid {

class ChunkCache {
 public:
  explicit ChunkCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  bool enabled() const { return capacity_ > 0; }
  std::shared_ptr<const Bytes> Get(const ChunkId& id);
  void Put(const ChunkId& id, std::shared_ptr<const Bytes> data);
  uint64_t used_bytes() const;

 private:
  struct IdHash {
    size_t operator()(const ChunkId& id) const {
      size_t h;
      std::memcpy(&h, id.data(), sizeof(h));
      return h;
    }
  };
  using Lru = std::list<std::pair<ChunkId, std::shared_ptr<const Bytes>>>;

  const uint64_t capacity_;
  mutable std::mutex mu_;
  Lru lru_;  // most recent first
  std::unordered_map<ChunkId, Lru::iterator, IdHash> index_;
  uint64_t used_ = 0;
};

}  // namespace quid
