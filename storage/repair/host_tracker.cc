#include "storage/repair/host_tracker.h"

namespace quid {

const char* HostStateName(HostState state) {
  switch (state) {
    case HostState::kUp:
      return "up";
    case HostState::kAway:
      return "away";
    case HostState::kLost:
      return "lost";
  }
  return "?";
}

HostTracker::HostTracker(const Clock* clock, int64_t grace_ns)
    : clock_(clock), grace_ns_(grace_ns < 0 ? 0 : grace_ns) {}

void HostTracker::Grow(uint32_t host) {
  if (host >= away_since_.size()) {
    away_since_.resize(host + 1, 0);
    counted_lost_.resize(host + 1, false);
  }
}

void HostTracker::Seen(uint32_t host) {
  Grow(host);
  if (away_since_[host] == 0) return;
  away_since_[host] = 0;
  counted_lost_[host] = false;
  ++generation_;
}

void HostTracker::Missed(uint32_t host) {
  Grow(host);
  if (away_since_[host] != 0) return;
  // Monotonic time can be 0 on a fake clock; away_since 0 means "up", so never store it.
  const int64_t now = clock_->monotonic_ns();
  away_since_[host] = now != 0 ? now : 1;
  ++generation_;
}

void HostTracker::MarkAwaySince(uint32_t host, int64_t since_ns) {
  Grow(host);
  away_since_[host] = since_ns != 0 ? since_ns : 1;
  counted_lost_[host] = false;
  ++generation_;
}

HostState HostTracker::State(uint32_t host) const {
  if (host >= away_since_.size() || away_since_[host] == 0) return HostState::kUp;
  return clock_->monotonic_ns() - away_since_[host] >= grace_ns_ ? HostState::kLost
                                                                 : HostState::kAway;
}

int64_t HostTracker::AwaySince(uint32_t host) const {
  return host < away_since_.size() ? away_since_[host] : 0;
}

uint64_t HostTracker::Generation() {
  for (uint32_t h = 0; h < away_since_.size(); ++h) {
    if (!counted_lost_[h] && State(h) == HostState::kLost) {
      counted_lost_[h] = true;
      ++generation_;
    }
  }
  return generation_;
}

}  // namespace quid
