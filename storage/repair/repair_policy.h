// The repair engine's settings, per volume. Plain data: the mount daemon fills it from its
// flags, the simulator from a scenario.
#pragma once

#include <cstdint>

namespace quid {

struct RepairPolicy {
  // A host is lost (its shards rebuilt elsewhere) only after it has been away this long;
  // shorter absences cost no repair traffic at all (`quid mount --host-grace`).
  int64_t host_grace_ns = 3'600'000'000'000;
  // A chunk is rebuilt once it has at most k + threshold_extra intact shards; negative:
  // ceil(m/2), above the loss line so a second failure during repair still loses nothing.
  int threshold_extra = -1;
  // Repair traffic (shard bytes read plus written) per second (`--repair-rate`, MB/s).
  uint64_t rate_bytes_per_s = 50'000'000;

  // Audits: sampled bytes fetched per host per hour, at most (`quid mount --audit-budget`),
  // and the bytes sampled from each shard of an audited chunk.
  uint64_t audit_bytes_per_host_hour = 64ull << 20;
  uint32_t audit_sample_bytes = 4096;

  int Threshold(int k, int m) const {
    return k + (threshold_extra >= 0 ? threshold_extra : (m + 1) / 2);
  }
};

}  // namespace quid
