// Quota: whether the volume may take another write, so that a volume on leases fails a
// write that would pass its usable capacity with ENOSPC at write time, not later as bytes
// stuck in the journal that no host takes (DESIGN.md: "quota is ENOSPC").
//
// In raw shard bytes, as hosts charge them:
//   usable = the most a volume of k+m distinct shards per chunk can place on its stores'
//            capacities (FeasibleRaw: no store holds more than one shard of a chunk, so a
//            store's room beyond what the others can match is of no use), each store's
//            capacity less one largest shard (room below a shard holds no shard);
//   used   = every chunk record's shards at the hosts' charge (a shard counts at least the
//            minimum charge), plus the bytes written but not yet stored (the dirty
//            map's total, not the journal's segments: overwritten bytes never count),
//            coded: (k+m)/k per byte.
// A write is admitted while used + write x (k+m)/k stays within usable, and what is not
// stored yet fits in the room the stores have left, store by store (a store that filled
// faster than the others holds no more, whatever the total says). The capacities
// come from the stores' Usage (a lease's capacity for a host); until every store has
// answered once the volume's capacity is unknown and nothing is refused.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "storage/base/status.h"

namespace quid {

class Quota {
 public:
  // `largest_shard` (a full chunk's shard size, 0: none) is room a store needs to take any
  // shard at all: the last bit of room below it on each store is never counted, since a
  // write admitted into it would be acknowledged and then fit on no store.
  Quota(int data_shards, int parity_shards, uint64_t largest_shard = 0,
        uint64_t min_shard_charge = 4096)
      : k_(data_shards),
        n_(data_shards + parity_shards),
        largest_shard_(largest_shard),
        min_charge_(min_shard_charge) {}

  // The largest raw total a volume of `width` distinct shards per chunk can place on
  // stores of these capacities (fewer stores than `width`: their sum, shards doubled up).
  static uint64_t FeasibleRaw(const std::vector<uint64_t>& capacities, size_t width);

  // Per store, its capacity as it last answered (nullopt: it did not answer now, the
  // last answer stays).
  void SetCapacities(const std::vector<std::optional<uint64_t>>& capacities);
  // A chunk record with one shard of `shard_size` on each store in `stores` (the record's
  // store indices, one per shard) was committed, or dropped; a shard moved between stores.
  void AddChunk(uint64_t shard_size, std::span<const uint32_t> stores);
  void RemoveChunk(uint64_t shard_size, std::span<const uint32_t> stores);
  void MoveShard(uint64_t shard_size, uint32_t from, uint32_t to);
  // Per store index, the raw bytes the chunk records place there at the hosts' charge: the
  // volume's own count of what each host holds for it (the ledger's "held by peer").
  std::vector<uint64_t> PlacedPerStore() const;

  // kNoSpace, with the numbers, if `write_bytes` more (with `pending_bytes` written and not
  // yet stored) would not fit.
  Status Admit(uint64_t pending_bytes, uint64_t write_bytes) const;

  // Raw bytes usable and used by chunks; usable is nullopt while unknown.
  std::optional<uint64_t> usable_raw() const;
  uint64_t chunk_raw() const;
  // What `raw` bytes hold in file bytes: raw x k/(k+m).
  uint64_t PlainOf(uint64_t raw) const;

 private:
  uint64_t Coded(uint64_t plain) const;

  const uint64_t k_;
  const uint64_t n_;
  const uint64_t largest_shard_;
  const uint64_t min_charge_;
  mutable std::mutex mu_;
  std::vector<std::optional<uint64_t>> capacities_;
  std::optional<uint64_t> usable_raw_;  // from capacities_, kept so a write costs no search
  std::optional<uint64_t> room_raw_;    // what more fits where there is room (see .cc)
  void RecomputeRoomLocked();           // REQUIRES: mu_ held
  uint64_t chunk_raw_ = 0;
  std::vector<uint64_t> placed_;  // per store index
};

}  // namespace quid
