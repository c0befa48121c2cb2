// Clock: the one seam for reading time, so tests can drive it.
#pragma once

#include <atomic>
#include <cstdint>

namespace quid {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in nanoseconds since the Unix epoch (file times). Thread-safe.
  virtual int64_t now_ns() const = 0;
  // Monotonic time in nanoseconds, for timeouts and intervals. Thread-safe.
  virtual int64_t monotonic_ns() const = 0;
};

// The system clocks (CLOCK_REALTIME, CLOCK_MONOTONIC).
class RealClock : public Clock {
 public:
  int64_t now_ns() const override;
  int64_t monotonic_ns() const override;
  // A process-wide instance.
  static RealClock* Get();
};

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns) {}
  int64_t now_ns() const override { return now_.load(); }
  int64_t monotonic_ns() const override { return now_.load(); }
  void advance_ns(int64_t delta) { now_ += delta; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace quid
