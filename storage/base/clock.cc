#include "storage/base/clock.h"

#include <ctime>

namespace quid {
namespace {
int64_t read_clock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

int64_t RealClock::now_ns() const {
  return read_clock(CLOCK_REALTIME);
}
int64_t RealClock::monotonic_ns() const {
  return read_clock(CLOCK_MONOTONIC);
}
RealClock* RealClock::Get() {
  static RealClock clock;
  return &clock;
}

}  // namespace quid
