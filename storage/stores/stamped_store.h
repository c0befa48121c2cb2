// Stores belong to one volume: the policy over the stamps of store_stamp.h.
//
// StampedStore wraps each store a volume uses, so that no call reaches a store before the
// store is known to be this volume's. The first call claims it (ShardStore::ClaimStamp: a
// store with no stamp, new or wiped, becomes this volume's). A store stamped by another
// volume (or whose stamp cannot be read) answers every call with kUnavailable, "<name>
// belongs to another volume ...", so the volume treats it as down: nothing is placed there or read
// from there, and above all nothing there is swept (a sweep removes every shard its volume does not
// know, which on another volume's store is all of them). List, which only the sweep uses, claims
// again each time, so a store wiped and taken by another volume while this one runs is not swept
// either. A store that cannot be asked (a host away at mount) is asked at its next call.
//
// Init is stricter than mount (CheckStoreIsFree): before a new volume claims anything,
// every store must carry no stamp and hold no shard (a store of a volume made before
// stamps existed holds shards and no stamp), or carry the new volume's stamp already.
//
// Thread-safe, as every ShardStore.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "storage/stores/shard_store.h"

namespace quid {

// Claims `store` for the volume stamped `mine`: OK if it carried no stamp (it carries
// `mine` now, durably) or `mine`; kPermission naming the store if another volume's; the
// store's own error (kUnavailable ...) if it could not be asked.
Status ClaimForVolume(ShardStore& store, const StoreStamp& mine);

// For `quid init`, before any store is claimed: OK if `store` carries `mine`, or carries
// no stamp and holds no shard. kPermission naming the store otherwise.
Status CheckStoreIsFree(ShardStore& store, const StoreStamp& mine);

class StampedStore : public ShardStore {
 public:
  StampedStore(std::shared_ptr<ShardStore> inner, const StoreStamp& mine);
  StampedStore(const StampedStore&) = delete;
  StampedStore& operator=(const StampedStore&) = delete;

  // Claims the store now unless that is already done: OK once it is this volume's; the
  // refusal (kUnavailable, "... belongs to another volume ...") or the store's own error
  // otherwise. The volume calls it at open for stores that answer at once (folders), so
  // the mount can say why a store is down.
  Status Verify();

  std::string name() const override;
  Status Put(const ShardId& id, ByteSpan data) override;
  Result<Bytes> Get(const ShardId& id) override;
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) override;
  Status Remove(const ShardId& id) override;
  Result<ShardInfo> Stat(const ShardId& id) override;
  // Claims again first, every time (see above).
  Status List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) override;
  Result<StoreUsage> Usage() override;
  // Forwarded as they are: they are how a store is claimed.
  Result<std::optional<StoreStamp>> ReadStamp() override;
  Result<StoreStamp> ClaimStamp(const StoreStamp& stamp) override;

  // True once the store was found to carry another volume's stamp (or an unreadable one).
  bool foreign() const { return foreign_.load(std::memory_order_acquire); }

 private:
  // Claims (again, with `fresh`) unless known to be ours; a refusal is final.
  Status Ready(bool fresh);

  const std::shared_ptr<ShardStore> inner_;
  const StoreStamp mine_;
  std::atomic<bool> ours_{false};  // claimed: calls pass with one load
  std::atomic<bool> foreign_{false};
  std::mutex mu_;   // one claim at a time
  Status refused_;  // guarded by mu_: set once another volume's stamp is seen
};

}  // namespace quid
