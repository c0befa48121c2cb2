// What the repair engine has done and has left, as `quid status` shows it. Plain data.
#pragma once

#include <cstdint>

namespace quid {

// For `quid status` (VolumeStatus::repair).
struct RepairProgress {
  uint64_t chunks_left = 0;  // queued or being rebuilt
  uint64_t bytes_left = 0;   // their repair traffic (shards to read and write)
  uint64_t chunks_done = 0;  // rebuilt since mount
  uint64_t bytes_done = 0;
  uint64_t chunks_failed = 0;    // rebuilds that could not decode (retried at the next walk)
  uint64_t shards_unplaced = 0;  // shards that found no store to go to, at the last try
  uint64_t bad_shards = 0;       // shards found missing, rotted or lying on a live store
  int64_t eta_s = -1;            // at the measured (or limited) rate; -1: nothing to do
  uint64_t rate_limit_bytes_per_s = 0;
  int64_t host_grace_s = 0;
  // Audits since mount: chunks sampled, shards found bad by them, sampled bytes fetched.
  uint64_t audited_chunks = 0;
  uint64_t audit_failures = 0;
  uint64_t audit_bytes = 0;
  uint64_t audit_budget_bytes_per_host_hour = 0;
  uint64_t audit_cycles = 0;  // complete passes over every chunk
};

}  // namespace quid
