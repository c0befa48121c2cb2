// CircuitBreaker: stops sending to a host that keeps failing. Closed: calls pass. After
// `failures` transport failures in a row it opens: calls fail at once for the cooldown,
// so a dead host costs nothing per request. Then one probe passes (half-open); its outcome
// closes the breaker or opens it again for another cooldown.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "storage/base/clock.h"

namespace quid::net {

class CircuitBreaker {
 public:
  // `where` names the host in the log line written when the breaker opens.
  CircuitBreaker(std::string where, int failures, int64_t cooldown_ms, const Clock* clock);

  // False: fail fast. `*probe` is set when this call is the half-open probe, whose
  // outcome must be recorded.
  bool Allow(bool* probe);
  // The outcome of an allowed call: `reached_host` when the host answered at all (even
  // with an error of its own), false on a transport failure.
  void Record(bool reached_host, bool probe);
  bool open() const;

 private:
  int64_t NowMs() const { return clock_->monotonic_ns() / 1'000'000; }

  const std::string where_;
  const int threshold_;
  const int64_t cooldown_ms_;
  const Clock* clock_;
  mutable std::mutex mu_;
  int failures_ = 0;
  bool open_ = false;
  bool probing_ = false;
  int64_t open_until_ms_ = 0;
};

}  // namespace quid::net
