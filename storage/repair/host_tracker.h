// HostTracker: which hosts are up, away, or lost, from what the caller observed (a call
// answered, a probe missed) and a Clock. No I/O and no threads: the mount daemon feeds it
// probe results, the simulator feeds it simulated sessions, and both get the same verdicts.
// Not thread-safe; the owner serializes calls.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/base/clock.h"

namespace quid {

enum class HostState {
  kUp,    // answered at its last probe
  kAway,  // missed since away_since, within the grace period: its shards still count
  kLost,  // away past the grace period: its shards are rebuilt elsewhere
};

const char* HostStateName(HostState state);

class HostTracker {
 public:
  // `clock` must outlive the tracker. Hosts are numbered from 0 (store indices) and start
  // up: a host is away from the first time it is missed.
  HostTracker(const Clock* clock, int64_t grace_ns);

  // The host answered: up again, whatever it was.
  void Seen(uint32_t host);
  // The host did not answer: away from now on, unless already away (or lost).
  void Missed(uint32_t host);
  HostState State(uint32_t host) const;
  // Monotonic ns since which the host has been away (0 while up).
  int64_t AwaySince(uint32_t host) const;
  // The host has been away since `since_ns` (monotonic; before the tracker existed, say):
  // what a remount restores, so a host's grace period does not start again.
  void MarkAwaySince(uint32_t host, int64_t since_ns);
  // Bumped whenever some host's state changes (including away turning lost as time
  // passes, noticed at the next call of this): a caller that judged chunks under an older
  // value judges them again.
  uint64_t Generation();
  int64_t grace_ns() const { return grace_ns_; }

 private:
  void Grow(uint32_t host);
  const Clock* clock_;
  int64_t grace_ns_;
  std::vector<int64_t> away_since_;  // per host; 0: up
  std::vector<bool> counted_lost_;   // whose turning lost Generation has already counted
  uint64_t generation_ = 0;
};

}  // namespace quid
