#include "net/shard_index.h"

#include <algorithm>

namespace quid::net {

bool ShardIndex::Insert(const ShardId& id) {
  std::vector<ShardId>& bucket = buckets_[id.bytes[0]];
  auto it = std::lower_bound(bucket.begin(), bucket.end(), id);
  if (it != bucket.end() && *it == id) return false;
  bucket.insert(it, id);
  ++size_;
  return true;
}

bool ShardIndex::Erase(const ShardId& id) {
  std::vector<ShardId>& bucket = buckets_[id.bytes[0]];
  auto it = std::lower_bound(bucket.begin(), bucket.end(), id);
  if (it == bucket.end() || *it != id) return false;
  bucket.erase(it);
  --size_;
  // A bucket emptied by deletes gives its memory back.
  if (bucket.empty()) std::vector<ShardId>().swap(bucket);
  return true;
}

bool ShardIndex::Contains(const ShardId& id) const {
  const std::vector<ShardId>& bucket = buckets_[id.bytes[0]];
  return std::binary_search(bucket.begin(), bucket.end(), id);
}

void ShardIndex::After(const ShardId* after, size_t limit, std::vector<ShardId>* out) const {
  size_t first = after ? after->bytes[0] : 0;
  for (size_t b = first; b < buckets_.size() && limit > 0; ++b) {
    const std::vector<ShardId>& bucket = buckets_[b];
    auto it = bucket.begin();
    if (after && b == first) it = std::upper_bound(bucket.begin(), bucket.end(), *after);
    for (; it != bucket.end() && limit > 0; ++it, --limit) out->push_back(*it);
  }
}

}  // namespace quid::net
