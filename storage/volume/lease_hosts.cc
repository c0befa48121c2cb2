// A volume on the node's leases (VolumeConfig.on_leases) follows them: hosts of new leases
// join the volume's store list, and known hosts take the address the node daemon last
// heard, at open and then while mounted, on a thread of its own so that a slow node daemon
// never holds up writes or the flusher.
#include <spdlog/spdlog.h>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/volume_impl.h"

namespace quid {

std::vector<PlacedOnHost> VolumeImpl::PlacedOnHosts() {
  std::vector<PlacedOnHost> placed;
  if (!chunks_ || !quota_) return placed;
  const std::vector<uint64_t> bytes = quota_->PlacedPerStore();
  const std::vector<StoreCalls> calls = chunks_->store_calls();
  std::lock_guard lock(leases_mu_);
  for (int i = 0; i < config_.stores_size(); ++i) {
    if (config_.stores(i).kind() != "host") continue;
    const auto at = static_cast<size_t>(i);
    PlacedOnHost p;
    p.public_key.assign(config_.stores(i).public_key().begin(),
                        config_.stores(i).public_key().end());
    p.bytes = at < bytes.size() ? bytes[at] : 0;
    if (at < calls.size()) {
      p.puts_ok = calls[at].puts_ok;
      p.puts_failed = calls[at].puts_failed;
      p.reads_ok = calls[at].reads_ok;
      // A shard found missing or wrong by an audit is a read the host failed: standing
      // counts it as one.
      p.reads_failed = calls[at].reads_failed + calls[at].audits_failed;
    }
    placed.push_back(std::move(p));
  }
  return placed;
}

Status VolumeImpl::FollowLeases() {
  bool capacity_changed = false;
  QUID_RETURN_IF_ERROR(ApplyLeases(options_.lease_hosts(PlacedOnHosts()), &capacity_changed));
  // Outside leases_mu_: the quota asks Draining(), which takes it.
  if (capacity_changed && chunks_) RefreshQuota();
  return Status::Ok();
}

Status VolumeImpl::ApplyLeases(const Result<std::vector<LeaseHost>>& hosts,
                               bool* capacity_changed) {
  std::lock_guard lock(leases_mu_);
  if (!hosts.ok()) {
    if (!chunks_) {
      spdlog::warn("the node's leases are unknown ({}); the volume keeps the {} hosts it has",
                   hosts.status().message(), config_.stores_size());
      store_warnings_.push_back("the node's leases are unknown: " + hosts.status().message());
    } else if (!node_silent_) {
      spdlog::warn("the node daemon does not answer ({}); the volume keeps the {} hosts it has",
                   hosts.status().message(), config_.stores_size());
    }
    node_silent_ = true;
    return Status::Ok();  // the node daemon may be restarting: the next round asks again
  }
  if (node_silent_ && chunks_) spdlog::info("the node daemon answers again");
  node_silent_ = false;
  std::vector<int> changed;  // store indices added or given a new address
  std::vector<bool> named(static_cast<size_t>(config_.stores_size()), false);
  std::vector<bool> draining(static_cast<size_t>(config_.stores_size()), false);
  for (const LeaseHost& lease : *hosts) {
    const StoreSpec& host = lease.spec;
    const std::string key(host.public_key.begin(), host.public_key.end());
    int index = -1;
    for (int i = 0; i < config_.stores_size(); ++i)
      if (config_.stores(i).kind() == "host" && config_.stores(i).public_key() == key) index = i;
    if (index >= 0) {
      named[static_cast<size_t>(index)] = true;
      draining[static_cast<size_t>(index)] = lease.draining;
      if (uptimes_.size() <= static_cast<size_t>(index)) uptimes_.resize(index + 1, -1);
      uptimes_[static_cast<size_t>(index)] = lease.uptime;
      // Placement keeps a chunk's shards from crowding into one of the host's domains.
      if (labels_.size() <= static_cast<size_t>(index)) labels_.resize(index + 1);
      labels_[static_cast<size_t>(index)] = lease.labels;
      if (chunks_ && static_cast<size_t>(index) < chunks_->store_count())
        chunks_->SetStoreDomains(static_cast<uint32_t>(index), lease.labels);
    }
    if (host.location.empty()) continue;  // its address is not known yet
    if (index < 0) {
      if (lease.draining) continue;  // a lease that ends is no place to grow onto
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
      named.push_back(true);
      draining.push_back(false);
    } else if (config_.stores(index).location() != host.location) {
      spdlog::info("store {} moved from {} to {}", index, config_.stores(index).location(),
                   host.location);
      config_.mutable_stores(index)->set_location(host.location);
      changed.push_back(index);
    }
  }
  // A host the node no longer names holds no lease for this volume any more: like one
  // whose lease is ending, it takes nothing new, and what it holds moves.
  for (size_t i = 0; i < named.size(); ++i)
    if (config_.stores(static_cast<int>(i)).kind() == "host" && !named[i]) draining[i] = true;
  if (draining != draining_) {
    for (size_t i = 0; i < draining.size(); ++i) {
      const bool was = i < draining_.size() && draining_[i];
      if (draining[i] != was)
        spdlog::info("store {} ({}) {}", i, config_.stores(static_cast<int>(i)).location(),
                     draining[i] ? "is draining: its lease ends, its shards move to other leases"
                                 : "takes shards again");
    }
    draining_ = draining;
    *capacity_changed = true;
  }
  if (chunks_)
    for (size_t i = 0; i < draining_.size() && i < chunks_->store_count(); ++i)
      chunks_->SetDraining(static_cast<uint32_t>(i), draining_[i]);
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
  for (size_t i = 0; i < draining_.size() && i < chunks_->store_count(); ++i)
    chunks_->SetDraining(static_cast<uint32_t>(i), draining_[i]);
  *capacity_changed = true;  // new capacity counts at once, not at the next periodic refresh
  return Status::Ok();
}

std::vector<bool> VolumeImpl::Draining() {
  std::lock_guard lock(leases_mu_);
  return draining_;
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
