// RepairScheduler in simulated time: a tiny executor (hosts that answer or not, chunk
// placements in a map, a FakeClock) carries its actions out, the way the placement
// simulator does, and the tests check what the volume would have done: no traffic for a
// brief absence, rebuilds only after the grace and fewest-intact first, the rate limit,
// what a check reported going first, the audit budget, distrust per audit pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "storage/base/clock.h"
#include "storage/repair/repair_scheduler.h"

namespace quid {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr uint32_t kShardSize = 1 << 20;

struct SimVolume {
  explicit SimVolume(RepairPolicy policy, int hosts = 8, uint64_t seed = 1)
      : up(static_cast<size_t>(hosts), true),
        records(static_cast<size_t>(hosts)),
        sched(&clock, policy, kSecond, seed) {}

  // `count` chunks of k+m shards on consecutive hosts (round robin from a different start).
  void AddChunks(int count, int k, int m) {
    for (int c = 0; c < count; ++c) {
      std::vector<uint32_t> stores;
      for (int i = 0; i < k + m; ++i)
        stores.push_back(static_cast<uint32_t>((c + i) % static_cast<int>(up.size())));
      chunks[std::to_string(1000 + c)] = {k, m, stores};  // keys are opaque here
    }
  }

  void Step() {
    const RepairAction a = sched.Next();
    actions.push_back(a.kind);
    switch (a.kind) {
      case RepairAction::Kind::kProbe:
        for (uint32_t h = 0; h < up.size(); ++h) sched.HostAnswered(h, up[h]);
        sched.ProbeRoundDone();
        for (uint32_t h : sched.JudgeHosts(records)) distrusted_order.push_back(h);
        break;
      case RepairAction::Kind::kWalk:
        sched.WalkBegin();
        for (const auto& [key, c] : chunks) sched.WalkOffer(key, c.stores, c.k, c.m, kShardSize);
        sched.WalkEnd();
        break;
      case RepairAction::Kind::kRepair:
      case RepairAction::Kind::kCheck:
        Rebuild(a);
        break;
      case RepairAction::Kind::kAudit:
        if (chunks.empty()) {
          sched.AuditSkipped(/*no_chunks=*/true);
        } else {
          sched.AuditDone(0, 4096 * 6, 4096, 6, up.size());
          ++audits;
        }
        break;
      case RepairAction::Kind::kWait:
        ASSERT_GT(a.until_ns, clock.monotonic_ns());
        clock.advance_ns(a.until_ns - clock.monotonic_ns());
        break;
    }
    sched.ActionDone();
  }

  void Rebuild(const RepairAction& a) {
    Chunk& c = chunks.at(a.key);
    const ChunkHealth health = sched.Assess(c.stores, c.k, c.m, a.known_bad);
    if (a.kind == RepairAction::Kind::kRepair) repaired.push_back({a.key, health.intact_shards});
    const uint64_t traffic =
        uint64_t{kShardSize} * static_cast<uint64_t>(c.k + health.replace_count);
    clock.advance_ns(sched.AdmitTraffic(traffic));
    const std::vector<uint32_t> avoid = sched.RepairAvoid(records);
    for (size_t i = 0; i < c.stores.size(); ++i) {
      if ((health.replace_mask & (uint64_t{1} << i)) == 0) continue;
      for (uint32_t h = 0; h < up.size(); ++h) {
        const bool taken = std::find(c.stores.begin(), c.stores.end(), h) != c.stores.end();
        const bool avoided = std::find(avoid.begin(), avoid.end(), h) != avoid.end();
        if (!taken && !avoided && up[h]) {
          c.stores[i] = h;
          break;
        }
      }
    }
    bytes_moved += traffic;
    sched.RepairDone({.decoded = true, .committed = true, .bytes_moved = traffic});
  }

  void RunFor(int64_t ns) {
    const int64_t end = clock.monotonic_ns() + ns;
    while (clock.monotonic_ns() < end) Step();
  }

  struct Chunk {
    int k = 0, m = 0;
    std::vector<uint32_t> stores;
  };
  FakeClock clock;
  std::vector<bool> up;
  std::vector<ServiceRecord> records;
  RepairScheduler sched;
  std::map<std::string, Chunk> chunks;
  std::vector<RepairAction::Kind> actions;
  std::vector<std::pair<std::string, int>> repaired;  // (key, intact shards then)
  std::vector<uint32_t> distrusted_order;
  uint64_t bytes_moved = 0;
  int audits = 0;
};

RepairPolicy Policy(int64_t grace_s, uint64_t rate = 0) {
  RepairPolicy p;
  p.host_grace_ns = grace_s * kSecond;
  p.rate_bytes_per_s = rate;
  return p;
}

TEST(RepairSchedulerTest, AHostAwayForLessThanTheGraceCostsNoRepairBytes) {
  SimVolume v(Policy(60));
  v.AddChunks(200, 4, 2);
  v.RunFor(10 * kSecond);
  for (int round = 0; round < 5; ++round) {  // away 59 s of every 70, five times over
    v.up[3] = false;
    v.RunFor(59 * kSecond);
    EXPECT_EQ(v.sched.State(3), HostState::kAway);
    v.up[3] = true;
    v.RunFor(11 * kSecond);
    EXPECT_EQ(v.sched.State(3), HostState::kUp);
  }
  EXPECT_EQ(v.bytes_moved, 0u);
  EXPECT_TRUE(v.repaired.empty());
  EXPECT_EQ(v.sched.progress().chunks_left, 0u);
}

TEST(RepairSchedulerTest, ALostHostIsRebuiltOnlyAfterTheGraceOntoDistinctHosts) {
  SimVolume v(Policy(30), 9);
  v.AddChunks(90, 4, 2);
  v.RunFor(2 * kSecond);
  v.up[2] = false;
  v.RunFor(29 * kSecond);
  EXPECT_TRUE(v.repaired.empty()) << "rebuilt within the grace";
  v.RunFor(5 * kSecond);
  EXPECT_EQ(v.sched.State(2), HostState::kLost);
  EXPECT_EQ(v.repaired.size(), 60u);  // 6 of every 9 chunks had a shard there
  v.up[5] = false;
  v.RunFor(40 * kSecond);
  for (const auto& [key, c] : v.chunks) {
    std::vector<uint32_t> sorted = c.stores;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << key;
    for (uint32_t s : c.stores) {
      EXPECT_NE(s, 2u) << key;
      EXPECT_NE(s, 5u) << key;
    }
  }
  const RepairProgress p = v.sched.progress();
  EXPECT_EQ(p.chunks_left, 0u);
  EXPECT_EQ(p.chunks_done, v.repaired.size());
  EXPECT_EQ(p.bytes_done, v.bytes_moved);
  EXPECT_EQ(p.eta_s, -1);
}

TEST(RepairSchedulerTest, AHostBackAfterItWasLostIsReportedOnceAwayOnesNever) {
  SimVolume v(Policy(10), 4);
  v.RunFor(2 * kSecond);
  v.up[1] = v.up[2] = false;
  v.RunFor(5 * kSecond);
  v.up[2] = true;  // back within the grace: its shards still count, nothing is stale
  v.RunFor(8 * kSecond);
  EXPECT_EQ(v.sched.State(1), HostState::kLost);
  EXPECT_TRUE(v.sched.TakeReturnedHosts().empty());
  v.up[1] = true;
  v.RunFor(2 * kSecond);
  const std::vector<RepairScheduler::Returned> returned = v.sched.TakeReturnedHosts();
  ASSERT_EQ(returned.size(), 1u);
  EXPECT_EQ(returned[0].host, 1u);
  EXPECT_GE(returned[0].away_for_ns, 12 * kSecond);  // from its first missed probe
  EXPECT_LE(returned[0].away_for_ns, 15 * kSecond);
  EXPECT_TRUE(v.sched.TakeReturnedHosts().empty());
}

TEST(RepairSchedulerTest, RestoredVerdictsKeepTheGraceRunningAndTheLiarDistrusted) {
  SimVolume first(Policy(60), 4);
  first.RunFor(2 * kSecond);
  first.up[1] = false;
  first.records[3].audits_failed = 10;
  first.RunFor(50 * kSecond);
  const std::vector<HostVerdict> kept = first.sched.Verdicts();
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_GE(kept[1].away_for_ns, 49 * kSecond);
  EXPECT_TRUE(kept[3].distrusted);
  EXPECT_EQ(kept[0], HostVerdict{});

  SimVolume second(Policy(60), 4);
  second.up[1] = false;
  const uint64_t before = second.sched.VerdictGeneration();
  second.sched.RestoreVerdicts(kept);
  EXPECT_NE(second.sched.VerdictGeneration(), before);
  EXPECT_TRUE(second.sched.IsDistrusted(3));
  second.RunFor(9 * kSecond);
  EXPECT_EQ(second.sched.State(1), HostState::kAway);
  second.RunFor(2 * kSecond);  // 60 s away in all: lost, not 60 s after the restart
  EXPECT_EQ(second.sched.State(1), HostState::kLost);
}

TEST(RepairSchedulerTest, TheQueueTakesTheChunkClosestToLossFirst) {
  SimVolume v(Policy(5), 10);
  v.chunks["a-one-lost"] = {4, 2, {0, 1, 2, 3, 4, 9}};
  v.chunks["b-two-lost"] = {4, 2, {0, 1, 2, 3, 8, 9}};
  v.chunks["c-healthy"] = {4, 2, {0, 1, 2, 3, 4, 5}};
  v.RunFor(2 * kSecond);
  v.up[8] = v.up[9] = false;
  v.RunFor(10 * kSecond);
  ASSERT_EQ(v.repaired.size(), 2u);
  EXPECT_EQ(v.repaired[0].first, "b-two-lost");
  EXPECT_EQ(v.repaired[0].second, 4);
  EXPECT_EQ(v.repaired[1].first, "a-one-lost");
  EXPECT_EQ(v.repaired[1].second, 5);
}

TEST(RepairSchedulerTest, TheRateLimitPacesRebuilds) {
  const uint64_t rate = 10'000'000;  // 10 MB/s; each rebuild moves 5 MiB
  SimVolume v(Policy(5, rate), 8);
  v.AddChunks(40, 4, 2);
  v.RunFor(2 * kSecond);
  v.up[0] = false;
  const int64_t lost_at = v.clock.monotonic_ns() + 5 * kSecond;
  while (v.sched.progress().chunks_done < 20) v.Step();  // of the 30 on host 0
  const double took_s = static_cast<double>(v.clock.monotonic_ns() - lost_at) / 1e9;
  const double at_rate_s = static_cast<double>(v.bytes_moved) / static_cast<double>(rate);
  EXPECT_GE(took_s, at_rate_s - 1.5);  // a second's burst may go at once
  EXPECT_LE(took_s, at_rate_s + 2.5);  // and it is not slower than it must be
  const RepairProgress p = v.sched.progress();
  EXPECT_GT(p.bytes_left, 0u);
  EXPECT_GT(p.eta_s, 0);
}

TEST(RepairSchedulerTest, WhatACheckFoundBadGoesBeforeTheQueueAndHintsAfter) {
  SimVolume v(Policy(5), 10);
  v.chunks["queued"] = {4, 2, {0, 1, 2, 3, 8, 9}};
  v.chunks["reported"] = {4, 2, {0, 1, 2, 3, 4, 5}};
  v.chunks["suspect"] = {4, 2, {0, 1, 2, 3, 4, 6}};
  v.RunFor(2 * kSecond);
  v.up[9] = false;
  v.RunFor(kSecond);
  ASSERT_EQ(v.sched.State(9), HostState::kAway);
  // The grace runs out while the executor is busy elsewhere, and a check and a read report
  // in meanwhile: all of it is waiting at the next step.
  v.clock.advance_ns(6 * kSecond);
  v.sched.ChunkSuspect("suspect");
  v.sched.ChunkReportedBad("reported", 1u << 2);
  v.actions.clear();
  const uint64_t walks = v.sched.walks();
  while (!v.sched.IdleSince(walks)) v.Step();
  const std::vector<RepairAction::Kind> expected = {
      RepairAction::Kind::kProbe,   // host 9 turns lost
      RepairAction::Kind::kWalk,    // which queues "queued"
      RepairAction::Kind::kRepair,  // "reported" first: someone waits on it
      RepairAction::Kind::kRepair,  // then the queue
      RepairAction::Kind::kCheck};  // then the hint
  EXPECT_EQ(v.actions, expected);
  ASSERT_EQ(v.repaired.size(), 2u);
  EXPECT_EQ(v.repaired[0].first, "reported");
  EXPECT_EQ(v.repaired[1].first, "queued");
  EXPECT_NE(v.chunks["reported"].stores[2], 2u);
  EXPECT_NE(v.chunks["queued"].stores[5], 9u);
}

TEST(RepairSchedulerTest, AuditsSpendTheBudgetAndNoMore) {
  RepairPolicy p = Policy(3600);
  p.audit_bytes_per_host_hour = 64ull << 20;
  SimVolume v(p, 8);
  v.AddChunks(100, 4, 2);
  v.RunFor(3600 * kSecond);
  // Each audit costs 6 x 4 KiB; 8 hosts x 64 MiB per hour pay for 21845 of them.
  const double expected = 8.0 * (64 << 20) / (6.0 * 4096);
  EXPECT_GE(v.audits, static_cast<int>(expected * 0.98));
  EXPECT_LE(v.audits, static_cast<int>(expected * 1.01) + 1);
}

TEST(RepairSchedulerTest, AuditsOffMeansNone) {
  RepairPolicy p = Policy(3600);
  p.audit_bytes_per_host_hour = 0;
  SimVolume v(p, 8);
  v.AddChunks(10, 4, 2);
  v.RunFor(600 * kSecond);
  EXPECT_EQ(v.audits, 0);
}

TEST(RepairSchedulerTest, AHostFailingAuditsIsDistrustedAndItsShardsMoveOff) {
  SimVolume v(Policy(3600), 9);
  v.AddChunks(60, 4, 2);
  v.RunFor(2 * kSecond);
  // Host 4 fails half of 40 audits in this pass: distrusted at the next probe round.
  v.records[4].audits_ok = 20;
  v.records[4].audits_failed = 20;
  v.records[1].audits_ok = 40;
  v.RunFor(2 * kSecond);
  ASSERT_EQ(v.distrusted_order, std::vector<uint32_t>{4});
  EXPECT_TRUE(v.sched.IsDistrusted(4));
  EXPECT_EQ(v.sched.JudgedState(4), HostState::kLost);
  EXPECT_EQ(v.sched.State(4), HostState::kUp);  // it answers; it is just not believed
  v.RunFor(10 * kSecond);
  for (const auto& [key, c] : v.chunks)
    for (uint32_t s : c.stores) EXPECT_NE(s, 4u) << key;
  // A few failures early in a pass are luck, not a verdict.
  v.records[6].audits_ok = 2;
  v.records[6].audits_failed = 3;
  v.RunFor(2 * kSecond);
  EXPECT_FALSE(v.sched.IsDistrusted(6));
}

TEST(RepairSchedulerTest, TheSameEventsGiveTheSameActions) {
  const auto run = [] {
    SimVolume v(Policy(20, 50'000'000), 9, /*seed=*/7);
    v.AddChunks(50, 4, 2);
    v.RunFor(3 * kSecond);
    v.up[1] = v.up[7] = false;
    v.RunFor(40 * kSecond);
    std::vector<uint64_t> offsets;
    for (int i = 0; i < 4; ++i) offsets.push_back(v.sched.NextAuditOffset());
    return std::make_tuple(v.actions, v.repaired, offsets, v.bytes_moved);
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace quid
