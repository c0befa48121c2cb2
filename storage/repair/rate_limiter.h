// RateLimiter: a token bucket over a Clock. No sleeping inside: Reserve says how long the
// caller must wait before spending, so the simulator can run it in simulated time.
// Not thread-safe; the owner serializes calls.
#pragma once

#include <cstdint>

#include "storage/base/clock.h"

namespace quid {

class RateLimiter {
 public:
  // `bytes_per_s` 0: unlimited. Up to `burst_ns` worth of unused rate is saved up.
  RateLimiter(const Clock* clock, uint64_t bytes_per_s, int64_t burst_ns = 1'000'000'000);
  // Books `bytes` and returns the ns to wait before moving them (0: at once). Bookings
  // queue behind each other, so the long-run rate never exceeds bytes_per_s.
  int64_t Reserve(uint64_t bytes);
  uint64_t bytes_per_s() const { return bytes_per_s_; }

 private:
  const Clock* clock_;
  uint64_t bytes_per_s_;
  int64_t burst_ns_;
  int64_t next_free_ns_ = 0;  // monotonic time the bucket is paid up to
};

}  // namespace quid
