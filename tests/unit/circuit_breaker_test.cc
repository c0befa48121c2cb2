#include "net/circuit_breaker.h"

#include <gtest/gtest.h>

namespace quid::net {
namespace {

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndFailsFast) {
  FakeClock clock;
  CircuitBreaker breaker("h:1", 3, 2000, &clock);
  bool probe = false;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.Allow(&probe));
    breaker.Record(false);
  }
  EXPECT_FALSE(breaker.open());
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false);
  EXPECT_TRUE(breaker.open());
  EXPECT_FALSE(breaker.Allow(&probe));
  EXPECT_FALSE(probe) << "no probe before the cooldown";
}

TEST(CircuitBreakerTest, AnAnswerResetsTheCount) {
  FakeClock clock;
  CircuitBreaker breaker("h:1", 2, 2000, &clock);
  bool probe = false;
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false);
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(true);  // the host answered (even an error of its own counts)
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false);
  EXPECT_FALSE(breaker.open());
}

TEST(CircuitBreakerTest, OneCallThatWaitedItsWholeTimeoutOpensIt) {
  FakeClock clock;
  CircuitBreaker breaker("h:1", 3, 2000, &clock);
  bool probe = false;
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false, /*timed_out=*/true);
  EXPECT_TRUE(breaker.open());

  // Unless told to count timeouts like other failures.
  CircuitBreaker counting("h:2", 3, 2000, &clock, /*open_on_timeout=*/false);
  ASSERT_TRUE(counting.Allow(&probe));
  counting.Record(false, true);
  EXPECT_FALSE(counting.open());
}

TEST(CircuitBreakerTest, AfterTheCooldownOneBackgroundProbeDecidesAndCallersNeverWait) {
  FakeClock clock;
  CircuitBreaker breaker("h:1", 1, 2000, &clock);
  bool probe = false;
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false);
  ASSERT_TRUE(breaker.open());
  clock.advance_ns(1'999'000'000);
  EXPECT_FALSE(breaker.Allow(&probe));
  EXPECT_FALSE(probe);
  clock.advance_ns(2'000'000);
  // The call itself still fails fast; it only starts the probe.
  EXPECT_FALSE(breaker.Allow(&probe));
  EXPECT_TRUE(probe);
  bool second = false;
  EXPECT_FALSE(breaker.Allow(&second));
  EXPECT_FALSE(second) << "only one probe at a time";
  breaker.RecordProbe(false);  // the probe failed: open for another cooldown
  EXPECT_FALSE(breaker.Allow(&probe));
  EXPECT_FALSE(probe);
  clock.advance_ns(2'001'000'000);
  EXPECT_FALSE(breaker.Allow(&probe));
  ASSERT_TRUE(probe);
  breaker.RecordProbe(true);
  EXPECT_FALSE(breaker.open());
  EXPECT_TRUE(breaker.Allow(&probe));
  EXPECT_FALSE(probe);
}

}  // namespace
}  // namespace quid::net
