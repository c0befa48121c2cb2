// CircuitBreaker: stops sending to a host that keeps failing. Closed: calls pass. After
// `failures` transport failures in a row, or one call that got no answer within its whole
// timeout, it opens: calls fail at once, so a dead host costs nothing per request. Once
// the cooldown has passed, the next call still fails fast but asks its caller to start
// one probe in the background (half-open); the probe's outcome closes the breaker or
// opens it for another cooldown. No caller ever waits on a probe: a user's read must not
// pay a connect timeout to learn that a host is still gone.
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
  // `open_on_timeout` false counts a timed-out call like any other failure.
  CircuitBreaker(std::string where, int failures, int64_t cooldown_ms, const Clock* clock,
                 bool open_on_timeout = true);

  // False: fail fast. `*start_probe` is set (on a false return) when the cooldown has
  // passed and no probe is running: the caller must start one and report its outcome
  // with RecordProbe.
  bool Allow(bool* start_probe);
  // The outcome of an allowed call: `reached_host` when the host answered at all (even
  // with an error of its own), false on a transport failure; `timed_out` when the call
  // spent its whole timeout without an answer, which opens the breaker at once.
  void Record(bool reached_host, bool timed_out = false);
  void RecordProbe(bool reached_host);
  bool open() const;

 private:
  int64_t NowMs() const { return clock_->monotonic_ns() / 1'000'000; }
  void OpenLocked(const char* why);

  const std::string where_;
  const int threshold_;
  const int64_t cooldown_ms_;
  const Clock* clock_;
  const bool open_on_timeout_;
  mutable std::mutex mu_;
  int failures_ = 0;
  bool open_ = false;
  bool probing_ = false;
  int64_t open_until_ms_ = 0;
};

}  // namespace quid::net
