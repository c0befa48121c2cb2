#include "storage/stores/memory_store.h"

#include <cstring>
#include <limits>
#include <utility>

#include "storage/erasure/checksum.h"

namespace quid {

MemoryStore::MemoryStore(uint64_t capacity_bytes, std::string name, const Clock* clock)
    : capacity_bytes_(capacity_bytes), name_(std::move(name)), clock_(clock) {}

std::string MemoryStore::name() const {
  return name_;
}

Status MemoryStore::Put(const ShardId& id, ByteSpan data) {
  // Copy and checksum outside the lock: they are the slow part.
  Shard shard{Bytes(data.begin(), data.end()), Crc32c(data), clock_->now_ns()};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(id);
  uint64_t old_size = it == shards_.end() ? 0 : it->second.data.size();
  uint64_t after = used_bytes_ - old_size + data.size();
  if (capacity_bytes_ != 0 && after > capacity_bytes_) {
    uint64_t free = capacity_bytes_ > used_bytes_ ? capacity_bytes_ - used_bytes_ : 0;
    return Status::NoSpace(name_ + ": put shard " + id.hex() + ": " + std::to_string(data.size()) +
                           " bytes do not fit, " + std::to_string(free) + " of " +
                           std::to_string(capacity_bytes_) + " bytes free");
  }
  used_bytes_ = after;
  if (it == shards_.end()) {
    shards_.emplace(id, std::move(shard));
  } else {
    it->second = std::move(shard);
  }
  return Status::Ok();
}

Result<Bytes> MemoryStore::Get(const ShardId& id) {
  Shard copy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = shards_.find(id);
    if (it == shards_.end()) return Status::NotFound(name_ + ": get shard " + id.hex());
    copy = it->second;
  }
  if (Crc32c(copy.data) != copy.crc) {
    return Status::Corrupt(name_ + ": get shard " + id.hex() + ": payload checksum mismatch");
  }
  return std::move(copy.data);
}

Status MemoryStore::ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": read shard " + id.hex());
  const Bytes& data = it->second.data;
  if (offset > data.size() || out.size() > data.size() - offset) {
    return Status::Invalid(name_ + ": read shard " + id.hex() + ": range " +
                           std::to_string(offset) + "+" + std::to_string(out.size()) +
                           " past the end (" + std::to_string(data.size()) + " bytes)");
  }
  if (!out.empty()) std::memcpy(out.data(), data.data() + offset, out.size());
  return Status::Ok();
}

Status MemoryStore::Remove(const ShardId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::Ok();
  used_bytes_ -= it->second.data.size();
  shards_.erase(it);
  return Status::Ok();
}

Result<ShardInfo> MemoryStore::Stat(const ShardId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": stat shard " + id.hex());
  return ShardInfo{it->second.data.size(), it->second.mtime_ns};
}

Status MemoryStore::List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) {
  std::vector<std::pair<ShardId, ShardInfo>> snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot.reserve(shards_.size());
    for (const auto& [id, shard] : shards_) {
      snapshot.emplace_back(id, ShardInfo{shard.data.size(), shard.mtime_ns});
    }
  }
  for (const auto& [id, info] : snapshot) {
    if (!fn(id, info)) break;
  }
  return Status::Ok();
}

Result<StoreUsage> MemoryStore::Usage() {
  std::lock_guard<std::mutex> lock(mu_);
  StoreUsage usage;
  usage.used_bytes = used_bytes_;
  usage.capacity_bytes =
      capacity_bytes_ != 0 ? capacity_bytes_ : std::numeric_limits<uint64_t>::max();
  usage.shard_count = shards_.size();
  return usage;
}

Result<std::optional<StoreStamp>> MemoryStore::ReadStamp() {
  std::lock_guard<std::mutex> lock(mu_);
  return stamp_;
}

Result<StoreStamp> MemoryStore::ClaimStamp(const StoreStamp& stamp) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stamp_) stamp_ = stamp;
  return *stamp_;
}

void MemoryStore::ClearStamp() {
  std::lock_guard<std::mutex> lock(mu_);
  stamp_.reset();
}

void MemoryStore::CorruptByte(const ShardId& id, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(id);
  if (it == shards_.end() || offset >= it->second.data.size()) return;
  it->second.data[offset] ^= 0xff;
}

void MemoryStore::Drop(const ShardId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return;
  used_bytes_ -= it->second.data.size();
  shards_.erase(it);
}

size_t MemoryStore::shard_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return shards_.size();
}

std::vector<ShardId> MemoryStore::ids() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ShardId> out;
  out.reserve(shards_.size());
  for (const auto& entry : shards_) out.push_back(entry.first);
  return out;
}

}  // namespace quid
