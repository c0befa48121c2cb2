#include "storage/stores/stamped_store.h"

#include <utility>

namespace quid {
namespace {

Status OtherVolume(const ShardStore& store, const StoreStamp& held, const StoreStamp& mine) {
  return Status(Code::kPermission, store.name() + " belongs to another volume (its stamp " +
                                       held.short_hex() + ", this volume's " + mine.short_hex() +
                                       ")");
}

}  // namespace

Status ClaimForVolume(ShardStore& store, const StoreStamp& mine) {
  QUID_ASSIGN_OR_RETURN(StoreStamp held, store.ClaimStamp(mine));
  if (held != mine) return OtherVolume(store, held, mine);
  return Status::Ok();
}

Status CheckStoreIsFree(ShardStore& store, const StoreStamp& mine) {
  QUID_ASSIGN_OR_RETURN(std::optional<StoreStamp> held, store.ReadStamp());
  if (held) {
    if (*held != mine) return OtherVolume(store, *held, mine);
    return Status::Ok();
  }
  QUID_ASSIGN_OR_RETURN(StoreUsage usage, store.Usage());
  if (usage.shard_count > 0) {
    return Status(Code::kPermission,
                  store.name() + " holds " + std::to_string(usage.shard_count) +
                      " shards and no volume stamp: another volume's (made before stores were "
                      "stamped?); give a new or empty store");
  }
  return Status::Ok();
}

StampedStore::StampedStore(std::shared_ptr<ShardStore> inner, const StoreStamp& mine)
    : inner_(std::move(inner)), mine_(mine) {}

Status StampedStore::Ready(bool fresh) {
  if (!fresh && ours_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (!refused_.ok()) return refused_;
  if (!fresh && ours_.load(std::memory_order_acquire)) return Status::Ok();
  Status claimed = ClaimForVolume(*inner_, mine_);
  // Another volume's stamp, or a stamp file that cannot be read: either way the store is
  // not known to be ours, and a guess could sweep someone else's shards.
  if (claimed.code() == Code::kPermission || claimed.code() == Code::kCorrupt) {
    // Down for this volume, for good: the same answer to every call from now on.
    ours_.store(false, std::memory_order_release);
    refused_ = Status::Unavailable(claimed.message());
    foreign_.store(true, std::memory_order_release);
    return refused_;
  }
  if (claimed.ok()) ours_.store(true, std::memory_order_release);
  return claimed;
}

Status StampedStore::Verify() {
  return Ready(/*fresh=*/false);
}

std::string StampedStore::name() const {
  return inner_->name();
}

Status StampedStore::Put(const ShardId& id, ByteSpan data) {
  QUID_RETURN_IF_ERROR(Ready(false));
  return inner_->Put(id, data);
}

Result<Bytes> StampedStore::Get(const ShardId& id) {
  QUID_RETURN_IF_ERROR(Ready(false));
  return inner_->Get(id);
}

Status StampedStore::ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
  QUID_RETURN_IF_ERROR(Ready(false));
  return inner_->ReadRange(id, offset, out);
}

Status StampedStore::Remove(const ShardId& id) {
  QUID_RETURN_IF_ERROR(Ready(false));
  return inner_->Remove(id);
}

Result<ShardInfo> StampedStore::Stat(const ShardId& id) {
  QUID_RETURN_IF_ERROR(Ready(false));
  return inner_->Stat(id);
}

Status StampedStore::List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) {
  QUID_RETURN_IF_ERROR(Ready(/*fresh=*/true));
  return inner_->List(fn);
}

Result<StoreUsage> StampedStore::Usage() {
  QUID_RETURN_IF_ERROR(Ready(false));
  return inner_->Usage();
}

Result<std::optional<StoreStamp>> StampedStore::ReadStamp() {
  return inner_->ReadStamp();
}

Result<StoreStamp> StampedStore::ClaimStamp(const StoreStamp& stamp) {
  return inner_->ClaimStamp(stamp);
}

}  // namespace quid
