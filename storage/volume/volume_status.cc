// statfs and `quid status`: capacity from the stores after erasure-coding overhead, and
// the health of every chunk as metadata records it.
#include <algorithm>
#include <chrono>
#include <future>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/volume_impl.h"

namespace quid {
namespace {
// statfs and status answer within this even when a host has silently vanished (its own
// request timeout is far longer): a store that has not answered by then counts as
// unreachable.
constexpr auto kUsageWait = std::chrono::milliseconds(1500);
}  // namespace

std::vector<Result<StoreUsage>> VolumeImpl::ProbeStores() {
  std::vector<std::future<Result<StoreUsage>>> asked;
  for (const auto& store : chunks_->stores())
    asked.push_back(io_pool_->Submit([store] { return store->Usage(); }));
  const auto deadline = std::chrono::steady_clock::now() + kUsageWait;
  std::vector<Result<StoreUsage>> answers;
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i].wait_until(deadline) == std::future_status::ready) {
      answers.push_back(asked[i].get());
    } else {
      // The task finishes on its own later; a packaged_task's future does not block here.
      answers.push_back(Status::Unavailable(chunks_->stores()[i]->name() + " did not answer"));
    }
  }
  return answers;
}

Result<StatFs> VolumeImpl::StatFilesystem() {
  StatFs out;
  const double usable = static_cast<double>(config_.data_shards()) /
                        static_cast<double>(config_.data_shards() + config_.parity_shards());
  uint64_t capacity = 0, used = 0;
  for (const auto& usage : ProbeStores()) {
    if (!usage.ok()) continue;
    capacity += usage->capacity_bytes;
    used += std::min(usage->used_bytes, usage->capacity_bytes);
  }
  out.total_blocks = static_cast<uint64_t>(static_cast<double>(capacity) * usable) / out.block_size;
  out.free_blocks =
      static_cast<uint64_t>(static_cast<double>(capacity - used) * usable) / out.block_size;
  std::lock_guard lock(mu_);
  out.files = next_ino_;
  out.free_files = (uint64_t{1} << 32);
  return out;
}

VolumeStatus VolumeImpl::GetStatus() {
  VolumeStatus status;
  status.data_shards = static_cast<int>(config_.data_shards());
  status.parity_shards = static_cast<int>(config_.parity_shards());
  std::vector<bool> reachable;
  const std::vector<Result<StoreUsage>> usages = ProbeStores();
  for (size_t i = 0; i < usages.size(); ++i) {
    VolumeStatus::Store s;
    s.name = chunks_->stores()[i]->name();
    const Result<StoreUsage>& usage = usages[i];
    s.reachable = usage.ok();
    if (usage.ok()) {
      s.used_bytes = usage->used_bytes;
      s.capacity_bytes = usage->capacity_bytes;
      s.shard_count = usage->shard_count;
    } else {
      s.problem = usage.status().message();
    }
    reachable.push_back(s.reachable);
    status.stores.push_back(s);
  }
  status.degraded_reads = chunks_->stats().degraded_reads;
  std::lock_guard lock(mu_);
  auto it = db_->NewIterator(Cf::kChunks);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    meta::Chunk chunk;
    if (!chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
    status.chunks++;
    status.logical_bytes += chunk.plain_size();
    bool healthy = true;
    std::vector<uint32_t> seen;
    for (uint32_t store : chunk.stores()) {
      if (store >= reachable.size() || !reachable[store] ||
          std::find(seen.begin(), seen.end(), store) != seen.end())
        healthy = false;
      seen.push_back(store);
    }
    (healthy ? status.chunks_healthy : status.chunks_degraded)++;
  }
  auto inodes = db_->NewIterator(Cf::kInodes);
  for (inodes->SeekToFirst(); inodes->Valid(); inodes->Next()) status.files++;
  for (const auto& [ino, dirty] : dirty_) status.pending_bytes += dirty->dirty_bytes();
  status.pending_deletes = gc_->pending();
  status.swept_shards = gc_->last_sweep_removed();
  status.cleanup_passes = gc_->sweeps();
  for (const JournalDamage& damage : journal_->damage())
    status.journal_damage.push_back(damage.ToString() + "; the writes they held are lost");
  return status;
}

std::vector<std::string> VolumeImpl::OpenWarnings() const {
  std::vector<std::string> warnings;
  for (const JournalDamage& damage : journal_->damage())
    warnings.push_back(damage.ToString() + "; the writes they held are lost");
  warnings.insert(warnings.end(), store_warnings_.begin(), store_warnings_.end());
  return warnings;
}

}  // namespace quid
