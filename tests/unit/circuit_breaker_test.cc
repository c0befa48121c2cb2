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
    breaker.Record(false, probe);
  }
  EXPECT_FALSE(breaker.open());
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false, probe);
  EXPECT_TRUE(breaker.open());
  EXPECT_FALSE(breaker.Allow(&probe));
}

TEST(CircuitBreakerTest, AnAnswerResetsTheCount) {
  FakeClock clock;
  CircuitBreaker breaker("h:1", 2, 2000, &clock);
  bool probe = false;
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false, probe);
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(true, probe);  // the host answered (even an error of its own counts)
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false, probe);
  EXPECT_FALSE(breaker.open());
}

TEST(CircuitBreakerTest, AfterTheCooldownOneProbeDecides) {
  FakeClock clock;
  CircuitBreaker breaker("h:1", 1, 2000, &clock);
  bool probe = false;
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(false, probe);
  ASSERT_TRUE(breaker.open());
  clock.advance_ns(1'999'000'000);
  EXPECT_FALSE(breaker.Allow(&probe));
  clock.advance_ns(2'000'000);
  ASSERT_TRUE(breaker.Allow(&probe));
  EXPECT_TRUE(probe);
  bool second = false;
  EXPECT_FALSE(breaker.Allow(&second)) << "only one probe at a time";
  breaker.Record(false, probe);  // the probe failed: open for another cooldown
  EXPECT_FALSE(breaker.Allow(&probe));
  clock.advance_ns(2'001'000'000);
  ASSERT_TRUE(breaker.Allow(&probe));
  breaker.Record(true, probe);
  EXPECT_FALSE(breaker.open());
  EXPECT_TRUE(breaker.Allow(&probe));
  EXPECT_FALSE(probe);
}

}  // namespace
}  // namespace quid::net
