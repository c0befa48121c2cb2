// The repair engine's I/O-free parts: host states over a clock, chunk health, the queue
// order, the rate limit and the scheme's availability.
#include <gtest/gtest.h>

#include <vector>

#include "storage/repair/availability.h"
#include "storage/repair/chunk_health.h"
#include "storage/repair/host_tracker.h"
#include "storage/repair/rate_limiter.h"
#include "storage/repair/repair_policy.h"
#include "storage/repair/repair_queue.h"
#include "storage/repair/service_score.h"

namespace quid {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(HostTrackerTest, AwayFromTheFirstMissLostOnlyAfterTheGrace) {
  FakeClock clock;
  HostTracker hosts(&clock, 10 * kSecond);
  EXPECT_EQ(hosts.State(3), HostState::kUp);  // never seen: up until missed
  const uint64_t g0 = hosts.Generation();
  hosts.Missed(3);
  EXPECT_EQ(hosts.State(3), HostState::kAway);
  EXPECT_GT(hosts.Generation(), g0);
  clock.advance_ns(5 * kSecond);
  hosts.Missed(3);  // still away since the first miss
  clock.advance_ns(5 * kSecond - 1);
  EXPECT_EQ(hosts.State(3), HostState::kAway);
  const uint64_t g1 = hosts.Generation();
  clock.advance_ns(1);
  EXPECT_EQ(hosts.State(3), HostState::kLost);
  const uint64_t g2 = hosts.Generation();
  EXPECT_GT(g2, g1);                  // turning lost is a change
  EXPECT_EQ(hosts.Generation(), g2);  // counted once
  hosts.Seen(3);
  EXPECT_EQ(hosts.State(3), HostState::kUp);
  EXPECT_GT(hosts.Generation(), g2);
}

TEST(HostTrackerTest, ABriefAbsenceNeverTurnsLost) {
  FakeClock clock;
  HostTracker hosts(&clock, 10 * kSecond);
  for (int i = 0; i < 100; ++i) {  // away 9 s of every 10, for 1000 s
    hosts.Missed(0);
    clock.advance_ns(9 * kSecond);
    EXPECT_NE(hosts.State(0), HostState::kLost);
    hosts.Seen(0);
    clock.advance_ns(kSecond);
  }
}

HostState Up(uint32_t) {
  return HostState::kUp;
}

TEST(ChunkHealthTest, WordsAsDesignDefinesThem) {
  const std::vector<uint32_t> six = {0, 1, 2, 3, 4, 5};
  const int threshold = RepairPolicy{}.Threshold(4, 2);
  EXPECT_EQ(threshold, 5);
  ChunkHealth h = AssessChunk(six, 4, 0, threshold, Up);
  EXPECT_EQ(h.health, ChunkHealthClass::kHealthy);
  EXPECT_EQ(h.healthy_shards, 6);
  EXPECT_FALSE(h.needs_repair);

  // One host away: degraded at once, but its shard still counts, so no repair.
  auto one_away = [](uint32_t s) { return s == 2 ? HostState::kAway : HostState::kUp; };
  h = AssessChunk(six, 4, 0, threshold, one_away);
  EXPECT_EQ(h.health, ChunkHealthClass::kDegraded);
  EXPECT_EQ(h.healthy_shards, 5);
  EXPECT_EQ(h.intact_shards, 6);
  EXPECT_FALSE(h.needs_repair);

  // The same host lost: repair, replacing exactly its shard.
  auto one_lost = [](uint32_t s) { return s == 2 ? HostState::kLost : HostState::kUp; };
  h = AssessChunk(six, 4, 0, threshold, one_lost);
  EXPECT_TRUE(h.needs_repair);
  EXPECT_EQ(h.replace_mask, uint64_t{1} << 2);

  // Three lost: below k shards exist, nothing to rebuild from.
  auto three_lost = [](uint32_t s) { return s < 3 ? HostState::kLost : HostState::kUp; };
  h = AssessChunk(six, 4, 0, threshold, three_lost);
  EXPECT_EQ(h.health, ChunkHealthClass::kLost);
  EXPECT_FALSE(h.needs_repair);
}

TEST(ChunkHealthTest, BadAndDoubledShardsAreReplaced) {
  const int threshold = RepairPolicy{}.Threshold(4, 2);
  // Shard 5 shares host 4 with shard 4; shard 0 is known corrupt.
  const std::vector<uint32_t> stores = {0, 1, 2, 3, 4, 4};
  ChunkHealth h = AssessChunk(stores, 4, 1, threshold, Up);
  EXPECT_EQ(h.health, ChunkHealthClass::kDegraded);
  EXPECT_EQ(h.intact_shards, 4);
  EXPECT_EQ(h.existing_shards, 5);
  EXPECT_TRUE(h.needs_repair);
  EXPECT_EQ(h.replace_mask, uint64_t{1} | (uint64_t{1} << 5));
  EXPECT_EQ(h.replace_count, 2);
}

TEST(ChunkHealthTest, ThresholdSettingIsHonoured) {
  RepairPolicy eager;
  eager.threshold_extra = 2;  // k + 2: at the first lost shard of a 4+2 chunk
  const std::vector<uint32_t> stores = {0, 1, 2, 3, 4, 5};
  auto one_lost = [](uint32_t s) { return s == 0 ? HostState::kLost : HostState::kUp; };
  EXPECT_TRUE(AssessChunk(stores, 4, 0, eager.Threshold(4, 2), one_lost).needs_repair);
  RepairPolicy lazy;
  lazy.threshold_extra = 0;  // only at the loss line
  EXPECT_FALSE(AssessChunk(stores, 4, 0, lazy.Threshold(4, 2), one_lost).needs_repair);
}

TEST(RepairQueueTest, FewestIntactFirstEachChunkOnce) {
  RepairQueue q;
  q.Offer({"a", 5, 10});
  q.Offer({"b", 4, 20});
  q.Offer({"c", 5, 30});
  q.Offer({"a", 5, 11});  // again, same count: keeps its turn, once
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.bytes(), 61u);
  q.Offer({"c", 4, 30});  // got worse: moves up, behind b
  EXPECT_EQ(q.Pop()->key, "b");
  EXPECT_EQ(q.Pop()->key, "c");
  auto a = q.Pop();
  EXPECT_EQ(a->key, "a");
  EXPECT_EQ(a->bytes, 11u);
  EXPECT_FALSE(q.Pop().has_value());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(RateLimiterTest, LongRunRateNeverExceedsTheLimit) {
  FakeClock clock;
  RateLimiter limiter(&clock, 50'000'000, kSecond);
  int64_t waited = 0;
  uint64_t moved = 0;
  for (int i = 0; i < 1000; ++i) {  // 1000 x 1 MB as fast as allowed
    const int64_t wait = limiter.Reserve(1'000'000);
    clock.advance_ns(wait);
    waited += wait;
    moved += 1'000'000;
  }
  // 1 GB at 50 MB/s is 20 s, less the one second of burst.
  EXPECT_NEAR(static_cast<double>(waited) / kSecond, 19.0, 0.05);
  EXPECT_EQ(moved, 1'000'000'000u);
  clock.advance_ns(3600 * kSecond);  // an idle hour banks one second only
  EXPECT_EQ(limiter.Reserve(50'000'000), 0);
  EXPECT_GT(limiter.Reserve(50'000'000), 0);
  RateLimiter unlimited(&clock, 0);
  EXPECT_EQ(unlimited.Reserve(uint64_t{1} << 40), 0);
}

TEST(AvailabilityTest, MatchesDesignFigures) {
  // DESIGN.md: at 70-90 % uptime 4+2 serves 74-98 %, 16+16 99.5-100 %.
  EXPECT_NEAR(BinomialAvailability(4, 2, 0.7), 0.744, 0.001);
  EXPECT_NEAR(BinomialAvailability(4, 2, 0.9), 0.984, 0.001);
  EXPECT_NEAR(BinomialAvailability(16, 16, 0.7), 0.995, 0.0005);  // 99.48 %
  EXPECT_GT(BinomialAvailability(16, 16, 0.9), 0.99999);
  EXPECT_DOUBLE_EQ(BinomialAvailability(4, 2, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(BinomialAvailability(4, 2, 0.0), 0.0);
  // k = 1, m = 1 at p: 1 - (1-p)^2.
  EXPECT_NEAR(BinomialAvailability(1, 1, 0.6), 1 - 0.16, 1e-12);
  const std::vector<double> uptimes = {0.9, 0.9, 0.9};
  EXPECT_DOUBLE_EQ(SchemeAvailability(4, 2, uptimes), BinomialAvailability(4, 2, 0.9));
}

TEST(ServiceScoreTest, NewHostsStartHighAuditFailuresSinkAndDistrustNeedsARate) {
  EXPECT_DOUBLE_EQ(ServiceScore({}), 1.0);
  EXPECT_GT(ServiceScore({.calls_ok = 0, .calls_failed = 1}), 0.9);  // one early timeout
  const double liar = ServiceScore({.calls_ok = 100, .audits_ok = 10, .audits_failed = 10});
  EXPECT_LT(liar, 0.6);
  EXPECT_GE(ServiceScore({.calls_failed = 1'000'000}), 0.01);        // never 0: weights stay > 0
  EXPECT_FALSE(Distrusted({.audits_ok = 0, .audits_failed = 2}));    // too few to judge
  EXPECT_TRUE(Distrusted({.audits_ok = 20, .audits_failed = 3}));    // 13 %
  EXPECT_FALSE(Distrusted({.audits_ok = 300, .audits_failed = 3}));  // 1 %: rot, not a liar
}

TEST(PlacementWeightTest, FreeRoomTimesServiceWithASliverWhenFull) {
  const ServiceRecord good;
  EXPECT_DOUBLE_EQ(PlacementWeight(4ull << 30, 1ull << 30, good), 3.0);
  EXPECT_GT(PlacementWeight(1ull << 30, 2ull << 30, good), 0.0);
  ServiceRecord poor;
  poor.audits_ok = 2;
  poor.audits_failed = 8;
  EXPECT_LT(PlacementWeight(4ull << 30, 1ull << 30, poor), 3.0 * 0.5);
}

}  // namespace
}  // namespace quid
