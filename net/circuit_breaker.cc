#include "net/circuit_breaker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace quid::net {

CircuitBreaker::CircuitBreaker(std::string where, int failures, int64_t cooldown_ms,
                               const Clock* clock)
    : where_(std::move(where)),
      threshold_(std::max(failures, 1)),
      cooldown_ms_(cooldown_ms),
      clock_(clock ? clock : RealClock::Get()) {}

bool CircuitBreaker::Allow(bool* probe) {
  std::lock_guard lock(mu_);
  *probe = false;
  if (!open_) return true;
  if (NowMs() < open_until_ms_ || probing_) return false;
  probing_ = true;
  *probe = true;
  return true;
}

void CircuitBreaker::Record(bool reached_host, bool probe) {
  std::lock_guard lock(mu_);
  if (probe) probing_ = false;
  if (reached_host) {
    failures_ = 0;
    open_ = false;
    return;
  }
  ++failures_;
  if (probe || failures_ >= threshold_) {
    if (!open_) {
      spdlog::warn("host {} is down after {} failures in a row: failing fast for {} ms", where_,
                   failures_, cooldown_ms_);
    }
    open_ = true;
    open_until_ms_ = NowMs() + cooldown_ms_;
  }
}

bool CircuitBreaker::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace quid::net
