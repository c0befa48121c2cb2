// statfs and `quid status`: capacity from the stores after erasure-coding overhead, and
// the health of every chunk as metadata records it.
#include <algorithm>

#include "storage/meta/metadata_keys.h"
#include "storage/repair/availability.h"
#include "storage/repair/chunk_health.h"
#include "storage/volume/store_probe.h"
#include "storage/volume/volume_impl.h"

namespace quid {

void VolumeImpl::RefreshQuota() {
  std::vector<std::optional<uint64_t>> capacities;
  const std::vector<bool> draining = Draining();
  for (const Result<StoreUsage>& usage : ProbeStores(*chunks_, *io_pool_)) {
    // A store whose lease ends gives nothing from now on.
    const bool ending = capacities.size() < draining.size() && draining[capacities.size()];
    capacities.push_back(ending       ? std::optional<uint64_t>(0)
                         : usage.ok() ? std::optional<uint64_t>(usage->capacity_bytes)
                                      : std::nullopt);
  }
  quota_->SetCapacities(capacities);
}

Result<StatFs> VolumeImpl::StatFilesystem() {
  StatFs out;
  const double usable = static_cast<double>(config_.data_shards()) /
                        static_cast<double>(config_.data_shards() + config_.parity_shards());
  uint64_t capacity = 0, used = 0;
  for (const auto& usage : ProbeStores(*chunks_, *io_pool_)) {
    if (!usage.ok()) continue;
    capacity += usage->capacity_bytes;
    used += std::min(usage->used_bytes, usage->capacity_bytes);
  }
  out.total_blocks = static_cast<uint64_t>(static_cast<double>(capacity) * usable) / out.block_size;
  out.free_blocks =
      static_cast<uint64_t>(static_cast<double>(capacity - used) * usable) / out.block_size;
  {
    auto lock = ns_->Lock();
    out.files = ns_->next_ino();
  }
  out.free_files = (uint64_t{1} << 32);
  return out;
}

VolumeStatus VolumeImpl::GetStatus() {
  VolumeStatus status;
  status.data_shards = static_cast<int>(config_.data_shards());
  status.parity_shards = static_cast<int>(config_.parity_shards());
  std::vector<bool> reachable;
  const std::vector<std::shared_ptr<ShardStore>> stores = chunks_->stores();
  const std::vector<Result<StoreUsage>> usages = ProbeStores(*chunks_, *io_pool_);
  const std::vector<bool> draining = Draining();
  for (size_t i = 0; i < usages.size() && i < stores.size(); ++i) {
    VolumeStatus::Store s;
    s.name = stores[i]->name();
    s.draining = i < draining.size() && draining[i];
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
  // Health as DESIGN.md words it: a store that does not answer now is away (degraded at
  // once), and lost only once the repair engine has waited out its grace period.
  const std::vector<HostState> engine =
      repairer_ ? repairer_->host_states() : std::vector<HostState>();
  const std::vector<bool> distrusted = repairer_ ? repairer_->distrusted() : std::vector<bool>();
  const std::vector<StoreCalls> calls = chunks_->store_calls();
  for (size_t i = 0; i < status.stores.size(); ++i) {
    VolumeStatus::Store& store = status.stores[i];
    store.state = reachable[i]                                         ? HostState::kUp
                  : i < engine.size() && engine[i] == HostState::kLost ? HostState::kLost
                                                                       : HostState::kAway;
    store.distrusted = i < distrusted.size() && distrusted[i];
    if (i < calls.size()) {
      store.audits_ok = calls[i].audits_ok;
      store.audits_failed = calls[i].audits_failed;
    }
  }
  {
    const std::vector<double> probed =
        repairer_ ? repairer_->probe_uptimes() : std::vector<double>();
    std::vector<double> node_measured;
    {
      std::lock_guard lock(leases_mu_);
      node_measured = uptimes_;
    }
    std::vector<double> measured;
    int eligible = 0;
    for (size_t i = 0; i < status.stores.size(); ++i) {
      VolumeStatus::Store& store = status.stores[i];
      store.uptime = i < node_measured.size() && node_measured[i] >= 0 ? node_measured[i]
                     : i < probed.size()                               ? probed[i]
                                                                       : -1;
      if (store.draining || store.distrusted) continue;
      if (store.uptime >= 0) measured.push_back(store.uptime);
      if (store.reachable) ++eligible;
    }
    if (!measured.empty())
      status.scheme_availability =
          SchemeAvailability(status.data_shards, status.parity_shards, measured);
    status.placement_shortfall = std::max(0, status.data_shards + status.parity_shards - eligible);
  }
  // A distrusted store's shards are not believed: for health they are as good as lost.
  const auto state = [&](uint32_t s) {
    if (s >= status.stores.size()) return HostState::kLost;
    return status.stores[s].distrusted ? HostState::kLost : status.stores[s].state;
  };
  if (repairer_) status.repair = repairer_->progress();
  status.degraded_reads = chunks_->stats().degraded_reads;
  status.stuck_shards = flusher_->stuck_shards();
  // The chunk and inode counts read one implicit snapshot each, without the namespace
  // lock: file operations never wait behind a status of a large volume.
  auto it = db_->NewIterator(Cf::kChunks);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    meta::Chunk chunk;
    if (!chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
    status.chunks++;
    status.logical_bytes += chunk.plain_size();
    const std::span<const uint32_t> on(chunk.stores().data(),
                                       static_cast<size_t>(chunk.stores_size()));
    // Threshold 0: only the health words are wanted here, not the repair decision.
    switch (AssessChunk(on, static_cast<int>(chunk.k()), 0, 0, state).health) {
      case ChunkHealthClass::kHealthy:
        status.chunks_healthy++;
        break;
      case ChunkHealthClass::kDegraded:
        status.chunks_degraded++;
        break;
      case ChunkHealthClass::kLost:
        status.chunks_lost++;
        break;
    }
  }
  auto inodes = db_->NewIterator(Cf::kInodes);
  for (inodes->SeekToFirst(); inodes->Valid(); inodes->Next()) status.files++;
  {
    auto lock = ns_->Lock();
    for (const auto& [ino, dirty] : ns_->dirty()) status.pending_bytes += dirty->dirty_bytes();
  }
  status.pending_deletes = gc_->pending();
  status.swept_shards = gc_->last_sweep_removed();
  status.cleanup_passes = gc_->sweeps();
  status.journal_used_bytes = journal_->used_bytes();
  status.journal_capacity_bytes = journal_->capacity_bytes();
  status.journal_full = journal_->out_of_space();
  status.writers_waiting = journal_->waiting_appends();
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
