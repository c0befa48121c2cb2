// FaultyStore: a ShardStore that forwards every call to another one, unless a test has
// switched on a fault. The EnvWrapper idea from LevelDB: a test breaks a store with one
// switch instead of writing a fake.
//
// Faults, checked in this order on each call:
//   read gate      while closed, Get and ReadRange wait at it (a read held in flight at
//                  a moment the test chooses; readers_waiting() says how many);
//   delay          every call first sleeps for the set time (a slow host);
//   down           every call returns kUnavailable "store down" (an unreachable host);
//   refuse writes  Put returns kNoSpace (a full host);
//   fail next puts the next N Puts return kIoError without reaching the inner store;
//   fail next lists the next N Lists return kUnavailable (a host that answers a probe
//                  but not yet a listing);
//   corrupt reads  Get and ReadRange return the inner store's bytes with one bit
//                  flipped. The flip happens after the inner store verified its
//                  checksum, so Get still returns OK: this is a store that lies on the
//                  wire, and only the caller's AEAD can catch it.
//
// Every method, setters and counters included, is safe for concurrent use by multiple
// threads; a switch takes effect for calls that start after it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "storage/stores/shard_store.h"

namespace quid {

class FaultyStore : public ShardStore {
 public:
  explicit FaultyStore(std::shared_ptr<ShardStore> inner);
  FaultyStore(const FaultyStore&) = delete;
  FaultyStore& operator=(const FaultyStore&) = delete;

  // The inner store's name, so logs read the same with or without the wrapper.
  std::string name() const override;
  Status Put(const ShardId& id, ByteSpan data) override;
  Result<Bytes> Get(const ShardId& id) override;
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) override;
  Status Remove(const ShardId& id) override;
  Result<ShardInfo> Stat(const ShardId& id) override;
  Status List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) override;
  Result<StoreUsage> Usage() override;
  // Forwarded, or kUnavailable while down (a host that cannot be asked).
  Result<std::optional<StoreStamp>> ReadStamp() override;
  Result<StoreStamp> ClaimStamp(const StoreStamp& stamp) override;

  void SetDown(bool down) { down_.store(down); }
  void SetRefuseWrites(bool refuse) { refuse_writes_.store(refuse); }
  void SetDelay(std::chrono::milliseconds delay) { delay_ms_.store(delay.count()); }
  void SetCorruptReads(bool corrupt) { corrupt_reads_.store(corrupt); }
  // Reads wait while the gate is closed; readers_waiting() says how many do.
  void CloseReadGate();
  void OpenReadGate();
  int readers_waiting();
  // The next `n` Puts fail with kIoError (replaces any count still pending).
  void FailNextPuts(int n) { fail_next_puts_.store(n); }
  // The next `n` Lists fail with kUnavailable.
  void FailNextLists(int n) { fail_next_lists_.store(n); }

  // Calls made, faulted ones included.
  uint64_t puts() const { return puts_.load(); }
  uint64_t gets() const { return gets_.load(); }
  uint64_t reads() const { return reads_.load(); }  // ReadRange
  uint64_t removes() const { return removes_.load(); }
  uint64_t lists() const { return lists_.load(); }

  ShardStore* inner() const { return inner_.get(); }

 private:
  // Sleeps for the delay, then returns kUnavailable if the store is down.
  Status Enter();
  bool TakeFailedPut();
  void PassReadGate();

  const std::shared_ptr<ShardStore> inner_;
  std::atomic<bool> down_{false};
  std::atomic<bool> refuse_writes_{false};
  std::atomic<bool> corrupt_reads_{false};
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<int> fail_next_puts_{0};
  std::atomic<int> fail_next_lists_{0};
  std::atomic<uint64_t> lists_{0};
  std::atomic<uint64_t> puts_{0};
  std::atomic<uint64_t> gets_{0};
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> removes_{0};
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_closed_ = false;
  int readers_waiting_ = 0;
};

}  // namespace quid
