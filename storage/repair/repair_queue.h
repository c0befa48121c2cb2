// RepairQueue: the chunks waiting to be rebuilt, fewest intact shards first (the chunk
// closest to loss goes first), each chunk once. Keys are opaque (the metadata key of the
// chunk record). Not thread-safe; the owner serializes calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace quid {

struct RepairItem {
  std::string key;
  int intact_shards = 0;
  uint64_t bytes = 0;  // repair traffic it will cost (shards read plus written)
};

class RepairQueue {
 public:
  // Adds the chunk, or updates its place if queued already (its count may have changed).
  void Offer(const RepairItem& item);
  // The chunk with the fewest intact shards (ties: the oldest offer), taken off the queue.
  std::optional<RepairItem> Pop();
  void Remove(const std::string& key);
  bool Contains(const std::string& key) const { return by_key_.contains(key); }
  size_t size() const { return by_key_.size(); }
  uint64_t bytes() const { return bytes_; }
  bool empty() const { return by_key_.empty(); }
  void Clear();

 private:
  using Order = std::pair<int, uint64_t>;  // (intact shards, offer sequence)
  std::map<std::string, std::pair<Order, RepairItem>> by_key_;
  std::set<std::pair<Order, std::string>> order_;
  uint64_t next_seq_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace quid
