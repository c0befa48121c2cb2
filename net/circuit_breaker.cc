#include "net/circuit_breaker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace quid::net {

CircuitBreaker::CircuitBreaker(std::string where, int failures, int64_t cooldown_ms,
                               const Clock* clock, bool open_on_timeout)
    : where_(std::move(where)),
      threshold_(std::max(failures, 1)),
      cooldown_ms_(cooldown_ms),
      clock_(clock ? clock : RealClock::Get()),
      open_on_timeout_(open_on_timeout) {}

bool CircuitBreaker::Allow(bool* start_probe) {
  std::lock_guard lock(mu_);
  *start_probe = false;
  if (!open_) return true;
  if (NowMs() >= open_until_ms_ && !probing_) {
    probing_ = true;
    *start_probe = true;
  }
  return false;
}

void CircuitBreaker::Record(bool reached_host, bool timed_out) {
  std::lock_guard lock(mu_);
  if (reached_host) {
    failures_ = 0;
    open_ = false;
    return;
  }
  ++failures_;
  if (timed_out && open_on_timeout_) {
    OpenLocked("no answer within the request timeout");
  } else if (failures_ >= threshold_) {
    OpenLocked("failures in a row");
  }
}

void CircuitBreaker::RecordProbe(bool reached_host) {
  std::lock_guard lock(mu_);
  probing_ = false;
  if (reached_host) {
    if (open_) spdlog::info("host {} answers again", where_);
    failures_ = 0;
    open_ = false;
    return;
  }
  ++failures_;
  OpenLocked("probe failed");
}

void CircuitBreaker::OpenLocked(const char* why) {
  if (!open_) {
    spdlog::warn("host {} is down ({}, {} failure(s)): failing fast, probing every {} ms", where_,
                 why, failures_, cooldown_ms_);
  }
  open_ = true;
  open_until_ms_ = NowMs() + cooldown_ms_;
}

bool CircuitBreaker::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace quid::net
