// Placement: which store holds which shard of a chunk. A policy interface with no I/O,
// threads or clock inside, so the mount daemon, the repair engine and the simulator drive
// the same code with the same inputs and get the same answers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/crypto/chunk_id.h"

namespace quid {

// What placement knows about one candidate store (in the exchange: one host's lease).
struct PlacementCandidate {
  uint32_t store_index = 0;  // index in the volume's store list
  std::string name;          // stable identity, hashed for rendezvous ordering
  double weight = 1.0;       // > 0; higher gets proportionally more shards
  bool available = true;     // false: not to be chosen now (down, full, draining)
  // Failure domains the store belongs to, one per label ("site=home", "owner=alice"):
  // stores sharing a domain may fail together.
  std::vector<std::string> domains;
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  // Returns `shard_count` store indexes for the shards of `chunk`, in shard order, each
  // store at most once while enough available candidates exist; with fewer, stores are
  // reused round-robin (the volume reports itself degraded). Empty if none is available.
  virtual std::vector<uint32_t> Place(const ChunkId& chunk, int shard_count,
                                      const std::vector<PlacementCandidate>& candidates) const = 0;
  // For a chunk that keeps shards on `kept` (repair): up to `count` further stores, none
  // of them in `kept` and each at most once, best first, honouring the domain limit
  // counted over the kept stores too. Fewer (or none) when too few candidates qualify:
  // repair never doubles a chunk up on one store.
  virtual std::vector<uint32_t> PlaceMore(
      const ChunkId& chunk, int count, const std::vector<uint32_t>& kept,
      const std::vector<PlacementCandidate>& candidates) const = 0;
};

// Weighted rendezvous (highest random weight) hashing: each (chunk, store) pair gets a
// score -weight / ln(hash01); the top scores win. Stable when stores come and go: only
// the shards of a changed store move, and a store joining N others takes about 1/(N+1)
// of the shards. With `max_per_domain` > 0 (the volume's m, so one domain's loss never
// costs a chunk more than its parity), a store whose domain already holds that many shards
// of the chunk is passed over for the next in rank, unless too few stores are left
// otherwise (then the domain limit gives way before the one-shard-per-store rule).
class RendezvousPlacement : public PlacementPolicy {
 public:
  explicit RendezvousPlacement(int max_per_domain = 0) : max_per_domain_(max_per_domain) {}
  std::vector<uint32_t> Place(const ChunkId& chunk, int shard_count,
                              const std::vector<PlacementCandidate>& candidates) const override;
  std::vector<uint32_t> PlaceMore(const ChunkId& chunk, int count,
                                  const std::vector<uint32_t>& kept,
                                  const std::vector<PlacementCandidate>& candidates) const override;

 private:
  int max_per_domain_;
};

}  // namespace quid
