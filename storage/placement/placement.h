// Placement: which store holds which shard of a chunk. A policy interface, so the
// simulator and the real system drive the same engine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/crypto/chunk_id.h"

namespace quid {

// What placement knows about one candidate store.
struct PlacementCandidate {
  uint32_t store_index = 0;  // index in the volume's store list
  std::string name;          // stable identity, hashed for rendezvous ordering
  double weight = 1.0;       // > 0; higher gets proportionally more shards
  bool available = true;     // false: not to be chosen now (down, full)
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  // Returns `shard_count` store indexes for the shards of `chunk`, in shard order, each
  // store at most once while enough available candidates exist; with fewer, stores are
  // reused round-robin (the volume reports itself degraded). Empty if none is available.
  virtual std::vector<uint32_t> Place(const ChunkId& chunk, int shard_count,
                                      const std::vector<PlacementCandidate>& candidates) const = 0;
};

// Weighted rendezvous (highest random weight) hashing: each (chunk, store) pair gets a
// score -weight / ln(hash01); the top scores win. Stable when stores come and go: only
// the shards of a changed store move.
class RendezvousPlacement : public PlacementPolicy {
 public:
  std::vector<uint32_t> Place(const ChunkId& chunk, int shard_count,
                              const std::vector<PlacementCandidate>& candidates) const override;
};

}  // namespace quid
