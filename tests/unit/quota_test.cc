// The quota's arithmetic: what k+m distinct shards per chunk can place on stores of given
// capacities, and when a write is refused.
#include "storage/volume/quota.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace quid {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(QuotaTest, EqualStoresGiveTheirSum) {
  EXPECT_EQ(Quota::FeasibleRaw(std::vector<uint64_t>(6, 48 * kMiB), 6), 288 * kMiB);
  EXPECT_EQ(Quota::FeasibleRaw(std::vector<uint64_t>(12, 48 * kMiB), 6), 576 * kMiB);
}

TEST(QuotaTest, AStoreBiggerThanTheOthersCanMatchCountsOnlyWhatTheyMatch) {
  // One shard of each chunk per store: 5 stores of 10 MiB and one of 1 GiB hold at most
  // 10 MiB of shards each.
  std::vector<uint64_t> caps(5, 10 * kMiB);
  caps.push_back(1024 * kMiB);
  EXPECT_EQ(Quota::FeasibleRaw(caps, 6), 60 * kMiB);
  // With 7 stores for 6-wide stripes the big one takes a shard of every chunk, and the
  // six small ones share the other five: 6 x 12 MiB of shards.
  caps.push_back(10 * kMiB);
  EXPECT_EQ(Quota::FeasibleRaw(caps, 6), 72 * kMiB);
}

TEST(QuotaTest, FewerStoresThanTheStripeGiveTheirSumAndNoStoresNothing) {
  EXPECT_EQ(Quota::FeasibleRaw({10 * kMiB, 20 * kMiB}, 6), 30 * kMiB);
  EXPECT_EQ(Quota::FeasibleRaw({}, 6), 0u);
}

TEST(QuotaTest, StoresWithoutALimitDoNotWrap) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_GE(Quota::FeasibleRaw(std::vector<uint64_t>(6, max), 6), max - 6);
}

TEST(QuotaTest, AWriteThatWouldPassTheUsableCapacityIsRefused) {
  Quota quota(4, 2);
  // Unknown capacities: nothing is refused.
  EXPECT_TRUE(quota.Admit(0, 1ull << 40).ok());
  quota.SetCapacities(std::vector<std::optional<uint64_t>>(6, 6 * kMiB));  // 36 MiB raw
  ASSERT_EQ(quota.usable_raw(), 36 * kMiB);
  EXPECT_EQ(quota.PlainOf(*quota.usable_raw()), 24 * kMiB);
  EXPECT_TRUE(quota.Admit(0, 24 * kMiB).ok());
  EXPECT_EQ(quota.Admit(0, 24 * kMiB + 1).code(), Code::kNoSpace);
  // 16 MiB stored (1 MiB shards, 6 per chunk, 4 chunks = 24 MiB raw) and 6 MiB pending.
  const std::vector<uint32_t> six = {0, 1, 2, 3, 4, 5};
  for (int i = 0; i < 4; ++i) quota.AddChunk(kMiB, six);
  EXPECT_TRUE(quota.Admit(6 * kMiB, 2 * kMiB).ok());
  Status full = quota.Admit(6 * kMiB, 2 * kMiB + 4096);
  EXPECT_EQ(full.code(), Code::kNoSpace);
  EXPECT_NE(full.message().find("24 MiB"), std::string::npos) << full.message();
  quota.RemoveChunk(kMiB, six);
  EXPECT_TRUE(quota.Admit(6 * kMiB, 6 * kMiB).ok());
  // A store that does not answer keeps its last capacity.
  std::vector<std::optional<uint64_t>> partial(6, 6 * kMiB);
  partial[2].reset();
  quota.SetCapacities(partial);
  EXPECT_EQ(quota.usable_raw(), 36 * kMiB);
}

// Hosts take whole shards: a store with less room than one shard holds no more, so that room
// is not counted (the exchange test once had every host 1 MiB short of the last shard, and
// 8 MiB acknowledged that no host would take).
TEST(QuotaTest, RoomBelowOneShardOnAStoreIsNotCounted) {
  Quota quota(4, 2, kMiB);
  quota.SetCapacities(std::vector<std::optional<uint64_t>>(6, 6 * kMiB));
  ASSERT_EQ(quota.usable_raw(), 30 * kMiB);
  EXPECT_TRUE(quota.Admit(0, 20 * kMiB).ok());
  EXPECT_EQ(quota.Admit(0, 20 * kMiB + 1).code(), Code::kNoSpace);
  quota.SetCapacities(std::vector<std::optional<uint64_t>>(6, kMiB / 2));
  EXPECT_EQ(quota.usable_raw(), 0u);
}

// Stores fill unevenly (placement is by hash): when some are fuller than others, what fits
// is what the rooms left can take, k+m distinct shards per chunk, not the total's share.
TEST(QuotaTest, WhatIsNotStoredYetMustFitWhereThereIsRoom) {
  Quota quota(4, 2, kMiB);
  quota.SetCapacities(std::vector<std::optional<uint64_t>>(7, 10 * kMiB));  // 70 raw, 63 usable
  // Stores 0 and 1 fill (9 MiB each, plus one shard's reserve: no room); stores 2..6 have
  // 9 MiB of room each. A chunk needs six distinct stores with room: nothing fits.
  const std::vector<uint32_t> fill = {0, 1};
  for (int i = 0; i < 9; ++i) quota.AddChunk(kMiB, fill);
  // The total (18 MiB raw used of 63) would admit 30 MiB of file data; the rooms admit none.
  Status refused = quota.Admit(0, 4 * kMiB);
  EXPECT_EQ(refused.code(), Code::kNoSpace) << refused.ToString();
  // 2 MiB of room on stores 0 and 1: columns of 4 MiB fit (2 + 2 + 5 x 4 >= 6 x 4), so 24
  // MiB of shards, 16 MiB of file data, and not a byte more.
  quota.RemoveChunk(kMiB, fill);
  quota.RemoveChunk(kMiB, fill);
  EXPECT_TRUE(quota.Admit(0, 16 * kMiB).ok());
  EXPECT_EQ(quota.Admit(0, 16 * kMiB + 4096).code(), Code::kNoSpace);
  EXPECT_EQ(quota.Admit(12 * kMiB, 4 * kMiB + 4096).code(), Code::kNoSpace)
      << "what waits in the journal needs the same room";
}

// The ledger's "held by peer" comes from this count, so it must follow every change.
TEST(QuotaTest, PlacedBytesFollowChunksAndMoves) {
  Quota quota(2, 1, 0, 4096);
  quota.AddChunk(kMiB, std::vector<uint32_t>{0, 1, 2});
  quota.AddChunk(100, std::vector<uint32_t>{0, 3, 3});  // doubled up on store 3
  EXPECT_EQ(quota.PlacedPerStore(), (std::vector<uint64_t>{kMiB + 4096, kMiB, kMiB, 8192}));
  quota.MoveShard(100, 3, 4);
  EXPECT_EQ(quota.PlacedPerStore(), (std::vector<uint64_t>{kMiB + 4096, kMiB, kMiB, 4096, 4096}));
  quota.RemoveChunk(kMiB, std::vector<uint32_t>{0, 1, 2});
  EXPECT_EQ(quota.PlacedPerStore(), (std::vector<uint64_t>{4096, 0, 0, 4096, 4096}));
  EXPECT_EQ(quota.chunk_raw(), 3u * 4096);
}

TEST(QuotaTest, TinyShardsCountTheHostsMinimumCharge) {
  Quota quota(4, 2, 0, 4096);
  quota.AddChunk(100, std::vector<uint32_t>{0, 1, 2, 3, 4, 5});
  EXPECT_EQ(quota.chunk_raw(), 6u * 4096);
}

}  // namespace
}  // namespace quid
