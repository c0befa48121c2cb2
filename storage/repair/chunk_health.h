// What one chunk's shards are worth, given where they are and what the hosts are doing.
// Pure functions: the mount daemon, `quid check` and the simulator share them, so the
// words "healthy", "degraded", "lost" mean the same thing everywhere (DESIGN.md):
//   healthy   every one of its k+m shards on a distinct reachable host;
//   degraded  otherwise, from the first missed probe;
//   lost      fewer than k shards exist anywhere (hosts declared lost hold none).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "storage/repair/host_tracker.h"

namespace quid {

enum class ChunkHealthClass { kHealthy, kDegraded, kLost };

struct ChunkHealth {
  ChunkHealthClass health = ChunkHealthClass::kHealthy;
  int healthy_shards = 0;   // on distinct up hosts, not known bad
  int intact_shards = 0;    // on distinct hosts not lost (away ones count), not known bad
  int existing_shards = 0;  // shards not on lost hosts and not known bad (a host may hold two)
  // The chunk is at or below the repair threshold and can be rebuilt (k shards exist).
  bool needs_repair = false;
  // Shards a repair replaces: on lost hosts, known bad, or a second shard on one host.
  uint64_t replace_mask = 0;
  int replace_count = 0;
};

// `stores[i]` is the host of shard i (k + m entries, at most 64); `bad_mask` bit i: shard
// i is known missing or corrupt on its host (an audit, a scrub, a failed read said so).
// `threshold` is RepairPolicy::Threshold(k, m).
ChunkHealth AssessChunk(std::span<const uint32_t> stores, int k, uint64_t bad_mask, int threshold,
                        const std::function<HostState(uint32_t)>& state);

}  // namespace quid
