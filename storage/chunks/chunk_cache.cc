#include "storage/chunks/chunk_cache.h"

namespace quid {

std::shared_ptr<const Bytes> ChunkCache::Get(const ChunkId& id) {
  if (!enabled()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void ChunkCache::Put(const ChunkId& id, std::shared_ptr<const Bytes> data) {
  if (!enabled() || data->size() > capacity_) return;
  std::lock_guard lock(mu_);
  if (index_.count(id)) return;
  lru_.emplace_front(id, data);
  index_[id] = lru_.begin();
  used_ += data->size();
  while (used_ > capacity_ && !lru_.empty()) {
    used_ -= lru_.back().second->size();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

uint64_t ChunkCache::used_bytes() const {
  std::lock_guard lock(mu_);
  return used_;
}

}  // namespace quid
