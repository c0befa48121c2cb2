// A volume on the node's leases (VolumeConfig.on_leases) follows them: hosts of new leases
// join the volume's store list, and known hosts take the address the node daemon last
// heard, at open and then while mounted, on a thread of its own so that a slow node daemon
// never holds up writes or the flusher.
#include <spdlog/spdlog.h>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/volume_impl.h"

namespace quid {

Status VolumeImpl::FollowLeases() {
  Result<std::vector<StoreSpec>> hosts = options_.lease_hosts();
  std::lock_guard lock(leases_mu_);
  if (!hosts.ok()) {
    if (!chunks_) {
      spdlog::warn("the node's leases are unknown ({}); the volume keeps the {} hosts it has",
                   hosts.status().message(), config_.stores_size());
      store_warnings_.push_back("the node's leases are unknown: " + hosts.status().message());
    }
    return Status::Ok();  // the node daemon may be restarting: the next round asks again
  }
  std::vector<int> changed;  // store indices added or given a new address
  for (const StoreSpec& host : *hosts) {
    const std::string key(host.public_key.begin(), host.public_key.end());
    int index = -1;
    for (int i = 0; i < config_.stores_size(); ++i)
      if (config_.stores(i).kind() == "host" && config_.stores(i).public_key() == key) index = i;
    if (index < 0) {
      if (static_cast<size_t>(config_.stores_size()) >= kMaxStores) {
        spdlog::warn("the volume has {} stores already; the lease at {} is not used", kMaxStores,
                     host.location);
        continue;
      }
      meta::StoreConfig* added = config_.add_stores();
      added->set_kind("host");
      added->set_public_key(key);
      added->set_location(host.location);
      spdlog::info("the volume grows onto the new lease at {}", host.location);
      changed.push_back(config_.stores_size() - 1);
    } else if (config_.stores(index).location() != host.location) {
      spdlog::info("store {} moved from {} to {}", index, config_.stores(index).location(),
                   host.location);
      config_.mutable_stores(index)->set_location(host.location);
      changed.push_back(index);
    }
  }
  if (changed.empty()) return Status::Ok();
  // The configuration names a store before any chunk record can: a crash after this write
  // leaves a store no chunk uses yet, never a chunk on a store the volume does not know.
  rocksdb::WriteBatch batch;
  db_->PutProto(&batch, Cf::kConfig, std::string(kVolumeConfigKey), config_);
  QUID_RETURN_IF_ERROR(db_->Write(&batch, /*sync=*/true));
  if (!chunks_) return Status::Ok();  // at open: the stores are opened from config_ next

  for (int index : changed) {
    std::shared_ptr<ShardStore> store = OpenConfiguredStore(config_.stores(index));
    const size_t at = static_cast<size_t>(index);
    if (at < chunks_->store_count()) {
      QUID_RETURN_IF_ERROR(chunks_->ReplaceStore(static_cast<uint32_t>(index), std::move(store)));
    } else {
      QUID_ASSIGN_OR_RETURN(uint32_t added, chunks_->AddStore(std::move(store)));
      if (added != at)
        return Status::Corrupt("store list out of step with the configuration: store " +
                               std::to_string(added) + " added as " + std::to_string(at));
    }
  }
  RefreshQuota();  // new capacity counts at once, not at the next periodic refresh
  return Status::Ok();
}

void VolumeImpl::WatchLeases() {
  std::unique_lock lock(lease_watch_mu_);
  while (!lease_watch_stop_) {
    lease_watch_cv_.wait_for(lock, std::chrono::nanoseconds(options_.lease_refresh_ns),
                             [this] { return lease_watch_stop_; });
    if (lease_watch_stop_) break;
    lock.unlock();
    const Status followed = FollowLeases();
    if (!followed.ok()) spdlog::warn("following the node's leases: {}", followed.message());
    lock.lock();
  }
}

}  // namespace quid
