#include "storage/volume/quota.h"

#include <algorithm>
#include <numeric>
#include <string>

namespace quid {
namespace {

std::string Mib(uint64_t bytes) {
  return std::to_string((bytes + (1 << 19)) >> 20) + " MiB";
}

}  // namespace

uint64_t Quota::FeasibleRaw(const std::vector<uint64_t>& capacities, size_t width) {
  if (width == 0) return 0;
  if (capacities.size() < width)
    return std::accumulate(capacities.begin(), capacities.end(), uint64_t{0});
  // S, the bytes of one shard column (each chunk's shard size, summed over chunks), is
  // feasible when sum(min(c, S)) >= width * S: a store holds at most one shard of each
  // chunk, so at most S. Binary search, since the left side grows slower than the right
  // past the answer; S is at most sum(c) / width.
  uint64_t sum = 0;
  for (uint64_t c : capacities)
    if (__builtin_add_overflow(sum, c, &sum)) sum = UINT64_MAX;
  uint64_t lo = 0, hi = sum / width;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2 + 1;  // hi - lo + 1 would wrap at 2^64
    // Saturating: capacities near 2^64 (a store that reports no limit) must not wrap.
    uint64_t need = 0;
    if (__builtin_mul_overflow(mid, static_cast<uint64_t>(width), &need)) need = UINT64_MAX;
    uint64_t room = 0;
    for (uint64_t c : capacities)
      if (__builtin_add_overflow(room, std::min(c, mid), &room)) room = UINT64_MAX;
    if (room >= need) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  uint64_t total = 0;
  if (__builtin_mul_overflow(lo, static_cast<uint64_t>(width), &total)) return UINT64_MAX;
  return total;
}

void Quota::SetCapacities(const std::vector<std::optional<uint64_t>>& capacities) {
  std::lock_guard lock(mu_);
  capacities_.resize(capacities.size());
  for (size_t i = 0; i < capacities.size(); ++i)
    if (capacities[i]) capacities_[i] = capacities[i];
  std::vector<uint64_t> known;
  usable_raw_.reset();
  for (const std::optional<uint64_t>& c : capacities_) {
    if (!c) {  // a store that never answered: the capacity is unknown
      RecomputeRoomLocked();
      return;
    }
    known.push_back(*c > largest_shard_ ? *c - largest_shard_ : 0);
  }
  if (!known.empty()) usable_raw_ = FeasibleRaw(known, n_);
  RecomputeRoomLocked();
}

void Quota::RecomputeRoomLocked() {
  // What more can go where: each store's capacity less what the chunk records put there
  // and one largest shard, then the most k+m distinct shards per chunk can place in that.
  // Unlike the total, this sees stores that filled faster than others.
  room_raw_.reset();
  if (!usable_raw_) return;
  std::vector<uint64_t> rooms;
  for (size_t i = 0; i < capacities_.size(); ++i) {
    const uint64_t capacity = *capacities_[i];
    const uint64_t placed = i < placed_.size() ? placed_[i] : 0;
    const uint64_t reserved = placed + largest_shard_;
    rooms.push_back(capacity > reserved ? capacity - reserved : 0);
  }
  room_raw_ = FeasibleRaw(rooms, n_);
}

void Quota::AddChunk(uint64_t shard_size, std::span<const uint32_t> stores) {
  const uint64_t charge = std::max(shard_size, min_charge_);
  std::lock_guard lock(mu_);
  chunk_raw_ += charge * stores.size();
  for (uint32_t s : stores) {
    if (s >= placed_.size()) placed_.resize(s + 1, 0);
    placed_[s] += charge;
  }
  RecomputeRoomLocked();
}

void Quota::RemoveChunk(uint64_t shard_size, std::span<const uint32_t> stores) {
  const uint64_t charge = std::max(shard_size, min_charge_);
  std::lock_guard lock(mu_);
  chunk_raw_ -= std::min(chunk_raw_, charge * stores.size());
  for (uint32_t s : stores)
    if (s < placed_.size()) placed_[s] -= std::min(placed_[s], charge);
  RecomputeRoomLocked();
}

void Quota::MoveShard(uint64_t shard_size, uint32_t from, uint32_t to) {
  const uint64_t charge = std::max(shard_size, min_charge_);
  std::lock_guard lock(mu_);
  if (from < placed_.size()) placed_[from] -= std::min(placed_[from], charge);
  if (to >= placed_.size()) placed_.resize(to + 1, 0);
  placed_[to] += charge;
  RecomputeRoomLocked();
}

std::vector<uint64_t> Quota::PlacedPerStore() const {
  std::lock_guard lock(mu_);
  return placed_;
}

std::optional<uint64_t> Quota::usable_raw() const {
  std::lock_guard lock(mu_);
  return usable_raw_;
}

uint64_t Quota::chunk_raw() const {
  std::lock_guard lock(mu_);
  return chunk_raw_;
}

uint64_t Quota::Coded(uint64_t plain) const {
  return (plain * n_ + k_ - 1) / k_;
}
uint64_t Quota::PlainOf(uint64_t raw) const {
  return raw * k_ / n_;
}

Status Quota::Admit(uint64_t pending_bytes, uint64_t write_bytes) const {
  std::optional<uint64_t> usable, room;
  uint64_t chunks = 0;
  {
    std::lock_guard lock(mu_);
    usable = usable_raw_;
    room = room_raw_;
    chunks = chunk_raw_;
  }
  if (!usable) return Status::Ok();
  const uint64_t used = chunks + Coded(pending_bytes);
  const uint64_t more = Coded(write_bytes);
  // Both: the total must fit, and what is not stored yet must fit where there is room.
  const bool fits_total = used <= *usable && more <= *usable - used;
  const uint64_t unstored = Coded(pending_bytes) + more;
  const bool fits_room = !room || unstored <= *room;
  if (fits_total && fits_room) return Status::Ok();
  return Status::NoSpace("the volume is full: its stores give " + Mib(PlainOf(*usable)) +
                         " of file space and " + Mib(PlainOf(used)) +
                         " are stored or waiting to be (free some, or get more leases)");
}

}  // namespace quid
