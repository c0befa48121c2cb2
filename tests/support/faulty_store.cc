#include "tests/support/faulty_store.h"

#include <thread>
#include <utility>

namespace quid {
namespace {

// Flips the low bit of the middle byte: one bit, somewhere a checksum-free reader would
// not notice.
void FlipOneBit(MutableByteSpan bytes) {
  if (!bytes.empty()) bytes[bytes.size() / 2] ^= 0x01;
}

}  // namespace

FaultyStore::FaultyStore(std::shared_ptr<ShardStore> inner) : inner_(std::move(inner)) {}

std::string FaultyStore::name() const {
  return inner_->name();
}

Status FaultyStore::Enter() {
  int64_t delay_ms = delay_ms_.load();
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  if (down_.load()) return Status::Unavailable(inner_->name() + ": store down");
  return Status::Ok();
}

void FaultyStore::CloseReadGate() {
  std::lock_guard lock(gate_mu_);
  gate_closed_ = true;
}

void FaultyStore::OpenReadGate() {
  {
    std::lock_guard lock(gate_mu_);
    gate_closed_ = false;
  }
  gate_cv_.notify_all();
}

int FaultyStore::readers_waiting() {
  std::lock_guard lock(gate_mu_);
  return readers_waiting_;
}

void FaultyStore::PassReadGate() {
  std::unique_lock lock(gate_mu_);
  if (!gate_closed_) return;
  ++readers_waiting_;
  gate_cv_.wait(lock, [&] { return !gate_closed_; });
  --readers_waiting_;
}

namespace {
// Takes one from a pending-failure count; false when none is left.
bool TakeOne(std::atomic<int>& count) {
  int pending = count.load();
  while (pending > 0) {
    if (count.compare_exchange_weak(pending, pending - 1)) return true;
  }
  return false;
}
}  // namespace

bool FaultyStore::TakeFailedPut() {
  return TakeOne(fail_next_puts_);
}

Status FaultyStore::Put(const ShardId& id, ByteSpan data) {
  puts_.fetch_add(1);
  QUID_RETURN_IF_ERROR(Enter());
  if (refuse_writes_.load()) {
    return Status::NoSpace(inner_->name() + ": put shard " + id.hex() + ": refusing writes");
  }
  if (TakeFailedPut()) {
    return Status::IoError(inner_->name() + ": put shard " + id.hex() + ": injected failure");
  }
  return inner_->Put(id, data);
}

Result<Bytes> FaultyStore::Get(const ShardId& id) {
  gets_.fetch_add(1);
  PassReadGate();
  QUID_RETURN_IF_ERROR(Enter());
  Result<Bytes> result = inner_->Get(id);
  if (result.ok() && corrupt_reads_.load()) FlipOneBit(*result);
  return result;
}

Status FaultyStore::ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
  reads_.fetch_add(1);
  PassReadGate();
  QUID_RETURN_IF_ERROR(Enter());
  Status status = inner_->ReadRange(id, offset, out);
  if (status.ok() && corrupt_reads_.load()) FlipOneBit(out);
  return status;
}

Status FaultyStore::Remove(const ShardId& id) {
  removes_.fetch_add(1);
  QUID_RETURN_IF_ERROR(Enter());
  return inner_->Remove(id);
}

Result<ShardInfo> FaultyStore::Stat(const ShardId& id) {
  QUID_RETURN_IF_ERROR(Enter());
  return inner_->Stat(id);
}

Status FaultyStore::List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) {
  lists_.fetch_add(1);
  QUID_RETURN_IF_ERROR(Enter());
  if (TakeOne(fail_next_lists_))
    return Status::Unavailable(inner_->name() + ": list: injected failure");
  return inner_->List(fn);
}

Result<StoreUsage> FaultyStore::Usage() {
  QUID_RETURN_IF_ERROR(Enter());
  return inner_->Usage();
}

Result<std::optional<StoreStamp>> FaultyStore::ReadStamp() {
  QUID_RETURN_IF_ERROR(Enter());
  return inner_->ReadStamp();
}

Result<StoreStamp> FaultyStore::ClaimStamp(const StoreStamp& stamp) {
  QUID_RETURN_IF_ERROR(Enter());
  return inner_->ClaimStamp(stamp);
}

}  // namespace quid
