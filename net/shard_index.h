// ShardIndex: the ids of the shards one tenant keeps on this host, in order, so that a
// listing page resumes from its cursor at the cost of the page alone.
//
// A FolderStore lists its folder in readdir order, so a page "after id X" used to mean
// reading the whole tenant folder and keeping the smallest ids past X: O(N) per page and
// O(N^2) for a full listing of N shards. The index is the sorted view of the same set,
// built once when the host opens the tenant folder and kept in step by every put and
// delete. Ids are kept in 256 sorted vectors, one per first byte (the fan-out folder),
// so an insert moves at most one bucket (about N/256 ids) and the whole index costs 16
// bytes per shard plus vector slack; the shard-count limit per tenant bounds it.
//
// Not thread-safe: HostService guards each tenant's index with a mutex of its own.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "storage/stores/shard_store.h"

namespace quid::net {

class ShardIndex {
 public:
  // True if `id` was not there.
  bool Insert(const ShardId& id);
  // True if `id` was there.
  bool Erase(const ShardId& id);
  bool Contains(const ShardId& id) const;
  size_t size() const { return size_; }

  // Appends to `out`, in increasing order, up to `limit` ids greater than `after` (all
  // ids from the smallest when `after` is null). Costs O(log N + limit).
  void After(const ShardId* after, size_t limit, std::vector<ShardId>* out) const;

 private:
  std::array<std::vector<ShardId>, 256> buckets_;
  size_t size_ = 0;
};

}  // namespace quid::net
