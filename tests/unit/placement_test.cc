#include "storage/placement/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace quid {
namespace {

std::vector<PlacementCandidate> MakeCandidates(int n) {
  std::vector<PlacementCandidate> c(n);
  for (int i = 0; i < n; ++i) {
    c[i].store_index = static_cast<uint32_t>(i);
    c[i].name = "store-" + std::to_string(i);
  }
  return c;
}

std::vector<ChunkId> MakeChunks(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<ChunkId> chunks(n);
  for (auto& id : chunks) {
    for (auto& b : id) b = static_cast<uint8_t>(rng());
  }
  return chunks;
}

std::set<uint32_t> AsSet(const std::vector<uint32_t>& v) {
  return {v.begin(), v.end()};
}

TEST(PlacementTest, DistinctStoresWhenEnoughAreAvailable) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(10);
  for (const ChunkId& chunk : MakeChunks(1000, 1)) {
    auto p = policy.Place(chunk, 6, stores);
    ASSERT_EQ(p.size(), 6u);
    EXPECT_EQ(AsSet(p).size(), 6u);
    for (uint32_t s : p) EXPECT_LT(s, 10u);
  }
  // Exactly as many stores as shards: all of them, once each.
  auto six = MakeCandidates(6);
  auto p = policy.Place(MakeChunks(1, 2)[0], 6, six);
  EXPECT_EQ(AsSet(p), (std::set<uint32_t>{0, 1, 2, 3, 4, 5}));
}

TEST(PlacementTest, DeterministicAndIndependentOfCandidateOrder) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(12);
  auto shuffled = stores;
  std::mt19937_64 rng(3);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (const ChunkId& chunk : MakeChunks(200, 4)) {
    auto p = policy.Place(chunk, 6, stores);
    EXPECT_EQ(policy.Place(chunk, 6, stores), p);
    EXPECT_EQ(policy.Place(chunk, 6, shuffled), p);
  }
}

TEST(PlacementTest, DifferentChunksSpreadOverStores) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(8);
  std::set<std::vector<uint32_t>> distinct;
  for (const ChunkId& chunk : MakeChunks(100, 5)) distinct.insert(policy.Place(chunk, 3, stores));
  EXPECT_GT(distinct.size(), 50u);
}

TEST(PlacementTest, UnavailableStoresAreNeverChosen) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(10);
  stores[2].available = false;
  stores[7].available = false;
  stores[9].weight = 0;  // no share at all
  for (const ChunkId& chunk : MakeChunks(1000, 6)) {
    auto p = policy.Place(chunk, 6, stores);
    ASSERT_EQ(p.size(), 6u);
    EXPECT_EQ(AsSet(p).size(), 6u);
    for (uint32_t s : p) {
      EXPECT_NE(s, 2u);
      EXPECT_NE(s, 7u);
      EXPECT_NE(s, 9u);
    }
  }
}

TEST(PlacementTest, ReusesStoresRoundRobinWhenTooFew) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(5);
  stores[0].available = false;
  stores[4].available = false;
  for (const ChunkId& chunk : MakeChunks(200, 7)) {
    auto p = policy.Place(chunk, 6, stores);
    ASSERT_EQ(p.size(), 6u);
    std::vector<uint32_t> first(p.begin(), p.begin() + 3);
    EXPECT_EQ(AsSet(first), (std::set<uint32_t>{1, 2, 3}));
    for (size_t i = 3; i < p.size(); ++i) EXPECT_EQ(p[i], p[i % 3]);
    // The reuse order is the score order: what the three alone would be given.
    std::vector<PlacementCandidate> three(stores.begin() + 1, stores.begin() + 4);
    EXPECT_EQ(policy.Place(chunk, 3, three), first);
  }
}

TEST(PlacementTest, EmptyWhenNothingAvailable) {
  RendezvousPlacement policy;
  const ChunkId chunk = MakeChunks(1, 8)[0];
  EXPECT_TRUE(policy.Place(chunk, 6, {}).empty());
  auto stores = MakeCandidates(4);
  for (auto& s : stores) s.available = false;
  EXPECT_TRUE(policy.Place(chunk, 6, stores).empty());
  EXPECT_TRUE(policy.Place(chunk, 0, MakeCandidates(4)).empty());
}

TEST(PlacementTest, WeightsSkewShareProportionally) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(4);
  for (int i = 0; i < 4; ++i) stores[i].weight = i + 1;  // shares 0.1, 0.2, 0.3, 0.4
  const int kChunks = 20000;
  std::map<uint32_t, int> count;
  for (const ChunkId& chunk : MakeChunks(kChunks, 9)) ++count[policy.Place(chunk, 1, stores)[0]];
  for (int i = 0; i < 4; ++i) {
    const double share = static_cast<double>(count[i]) / kChunks;
    EXPECT_NEAR(share, (i + 1) / 10.0, 0.015) << "store " << i;
  }
}

TEST(PlacementTest, HeavierStoresGetMoreShardsInWideStripes) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(12);
  for (int i = 0; i < 6; ++i) stores[i].weight = 3.0;
  const int kChunks = 20000;
  std::vector<int> count(12, 0);
  for (const ChunkId& chunk : MakeChunks(kChunks, 10)) {
    for (uint32_t s : policy.Place(chunk, 4, stores)) ++count[s];
  }
  int heavy = 0;
  int light = 0;
  for (int i = 0; i < 12; ++i) (i < 6 ? heavy : light) += count[i];
  // Never two shards on one store caps the skew below the 3:1 weight ratio.
  EXPECT_GT(heavy, 2 * light);
  EXPECT_EQ(heavy + light, 4 * kChunks);
}

TEST(PlacementTest, RemovingAStoreMovesOnlyItsShards) {
  RendezvousPlacement policy;
  auto all = MakeCandidates(10);
  auto fewer = all;
  fewer.erase(fewer.begin() + 3);
  int affected = 0;
  for (const ChunkId& chunk : MakeChunks(2000, 11)) {
    auto before = policy.Place(chunk, 6, all);
    auto after = policy.Place(chunk, 6, fewer);
    std::set<uint32_t> kept = AsSet(before);
    if (!kept.contains(3)) {
      EXPECT_EQ(after, before);
      continue;
    }
    ++affected;
    kept.erase(3);
    std::set<uint32_t> now = AsSet(after);
    EXPECT_TRUE(std::includes(now.begin(), now.end(), kept.begin(), kept.end()));
    EXPECT_EQ(now.size(), 6u);
  }
  EXPECT_GT(affected, 0);
}

TEST(PlacementTest, UnavailableStoreIsReplacedInItsOwnShardPosition) {
  RendezvousPlacement policy;
  auto all = MakeCandidates(10);
  auto down = all;
  down[3].available = false;
  for (const ChunkId& chunk : MakeChunks(2000, 12)) {
    auto before = policy.Place(chunk, 6, all);
    auto after = policy.Place(chunk, 6, down);
    ASSERT_EQ(after.size(), 6u);
    for (size_t i = 0; i < 6; ++i) {
      if (before[i] != 3) {
        EXPECT_EQ(after[i], before[i]) << "shard " << i;
      }
    }
    EXPECT_EQ(AsSet(after).size(), 6u);
  }
}

TEST(PlacementTest, AddingAStoreMovesShardsOnlyOntoIt) {
  RendezvousPlacement policy;
  auto all = MakeCandidates(10);
  auto more = all;
  more.push_back({10, "store-10", 1.0, true});
  int moved = 0;
  const int kChunks = 2000;
  for (const ChunkId& chunk : MakeChunks(kChunks, 13)) {
    auto before = AsSet(policy.Place(chunk, 6, all));
    auto after = AsSet(policy.Place(chunk, 6, more));
    if (after.erase(10) != 0) ++moved;
    EXPECT_TRUE(std::includes(before.begin(), before.end(), after.begin(), after.end()));
  }
  // The new store should take about 6/11 of the chunks.
  EXPECT_NEAR(static_cast<double>(moved) / kChunks, 6.0 / 11.0, 0.05);
}

TEST(PlacementTest, OneStoreJoiningOrLeavingMovesAboutOneNthOfTheShards) {
  // Shards counted as moved: those of a chunk whose store set changed, per store gained.
  RendezvousPlacement policy;
  const int kChunks = 4000;
  for (int n : {8, 20}) {
    auto before = MakeCandidates(n);
    auto joined = MakeCandidates(n + 1);
    size_t moved_join = 0, moved_leave = 0;
    auto left = before;
    left.erase(left.begin());
    for (const ChunkId& chunk : MakeChunks(kChunks, 40 + n)) {
      const auto was = AsSet(policy.Place(chunk, 6, before));
      for (uint32_t s : policy.Place(chunk, 6, joined)) moved_join += was.contains(s) ? 0 : 1;
      for (uint32_t s : policy.Place(chunk, 6, left)) moved_leave += was.contains(s) ? 0 : 1;
    }
    const double shards = 6.0 * kChunks;
    EXPECT_NEAR(moved_join / shards, 1.0 / (n + 1), 0.25 / (n + 1)) << n << " stores";
    EXPECT_NEAR(moved_leave / shards, 1.0 / n, 0.25 / n) << n << " stores";
  }
}

std::vector<PlacementCandidate> InSites(int n, int sites) {
  auto c = MakeCandidates(n);
  for (int i = 0; i < n; ++i) c[i].domains = {"site=" + std::to_string(i % sites)};
  return c;
}

std::map<std::string, int> PerDomain(const std::vector<uint32_t>& placed,
                                     const std::vector<PlacementCandidate>& c) {
  std::map<std::string, int> count;
  for (uint32_t s : placed)
    for (const auto& d : c[s].domains) ++count[d];
  return count;
}

TEST(PlacementTest, NoDomainHoldsMoreThanTheLimitWhereHostsAllow) {
  RendezvousPlacement policy(2);       // m = 2
  const auto stores = InSites(12, 3);  // 4 hosts per site: 3 sites x 2 = 6 shards fit
  RendezvousPlacement unlimited;
  int unlimited_over = 0;
  for (const ChunkId& chunk : MakeChunks(500, 21)) {
    auto p = policy.Place(chunk, 6, stores);
    ASSERT_EQ(AsSet(p).size(), 6u);
    for (const auto& [site, n] : PerDomain(p, stores)) EXPECT_LE(n, 2) << site;
    for (const auto& [site, n] : PerDomain(unlimited.Place(chunk, 6, stores), stores))
      unlimited_over += n > 2;
  }
  EXPECT_GT(unlimited_over, 0);  // the rule does something: plain ranking breaks it
}

TEST(PlacementTest, DomainLimitGivesWayBeforeDistinctStores) {
  RendezvousPlacement policy(2);
  const auto stores = InSites(8, 2);  // two sites of 4: 6 shards cannot keep 2 per site
  for (const ChunkId& chunk : MakeChunks(200, 22)) {
    auto p = policy.Place(chunk, 6, stores);
    EXPECT_EQ(AsSet(p).size(), 6u);  // still six distinct stores
    for (const auto& [site, n] : PerDomain(p, stores)) EXPECT_LE(n, 4) << site;
  }
}

TEST(PlacementTest, PlaceMoreAvoidsKeptStoresAndCountsTheirDomains) {
  RendezvousPlacement policy(2);
  const auto stores = InSites(12, 3);
  for (const ChunkId& chunk : MakeChunks(300, 23)) {
    auto full = policy.Place(chunk, 6, stores);
    std::vector<uint32_t> kept(full.begin(), full.begin() + 4);  // two shards lost
    auto more = policy.PlaceMore(chunk, 2, kept, stores);
    ASSERT_EQ(more.size(), 2u);
    std::vector<uint32_t> all = kept;
    all.insert(all.end(), more.begin(), more.end());
    EXPECT_EQ(AsSet(all).size(), 6u);
    for (const auto& [site, n] : PerDomain(all, stores)) EXPECT_LE(n, 2) << site;
    EXPECT_EQ(policy.PlaceMore(chunk, 2, kept, stores), more);  // deterministic
  }
}

TEST(PlacementTest, PlaceMoreNeverDoublesUp) {
  RendezvousPlacement policy;
  auto stores = MakeCandidates(6);
  stores[5].available = false;
  const ChunkId chunk = MakeChunks(1, 24)[0];
  auto more = policy.PlaceMore(chunk, 3, {0, 1, 2, 3}, stores);
  EXPECT_EQ(more, std::vector<uint32_t>{4});  // the only store neither kept nor down
  EXPECT_TRUE(policy.PlaceMore(chunk, 2, {0, 1, 2, 3, 4}, stores).empty());
}

}  // namespace
}  // namespace quid
