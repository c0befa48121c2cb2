#include "storage/repair/rate_limiter.h"

#include <algorithm>

namespace quid {

RateLimiter::RateLimiter(const Clock* clock, uint64_t bytes_per_s, int64_t burst_ns)
    : clock_(clock), bytes_per_s_(bytes_per_s), burst_ns_(std::max<int64_t>(burst_ns, 0)) {}

int64_t RateLimiter::Reserve(uint64_t bytes) {
  if (bytes_per_s_ == 0) return 0;
  const int64_t now = clock_->monotonic_ns();
  // GCRA: the bucket is paid up to next_free_ns_; time unused in the past does not bank
  // beyond the burst (a pause does not save up an hour of traffic).
  next_free_ns_ = std::max(next_free_ns_, now);
  next_free_ns_ += static_cast<int64_t>(static_cast<long double>(bytes) * 1e9L /
                                        static_cast<long double>(bytes_per_s_));
  return std::max<int64_t>(0, next_free_ns_ - now - burst_ns_);
}

}  // namespace quid
