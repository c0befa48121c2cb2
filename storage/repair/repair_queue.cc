#include "storage/repair/repair_queue.h"

namespace quid {

void RepairQueue::Offer(const RepairItem& item) {
  auto it = by_key_.find(item.key);
  if (it != by_key_.end()) {
    if (it->second.first.first == item.intact_shards) {  // same place: keep its turn
      bytes_ = bytes_ - it->second.second.bytes + item.bytes;
      it->second.second = item;
      return;
    }
    Remove(item.key);
  }
  const Order order{item.intact_shards, next_seq_++};
  by_key_.emplace(item.key, std::make_pair(order, item));
  order_.emplace(order, item.key);
  bytes_ += item.bytes;
}

std::optional<RepairItem> RepairQueue::Pop() {
  if (order_.empty()) return std::nullopt;
  const std::string key = order_.begin()->second;
  RepairItem item = by_key_.at(key).second;
  Remove(key);
  return item;
}

void RepairQueue::Remove(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  order_.erase({it->second.first, key});
  bytes_ -= it->second.second.bytes;
  by_key_.erase(it);
}

void RepairQueue::Clear() {
  by_key_.clear();
  order_.clear();
  bytes_ = 0;
}

}  // namespace quid
