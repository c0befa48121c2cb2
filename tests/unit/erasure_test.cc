#include "storage/erasure/erasure.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace quid {
namespace {

// k data shards of random bytes plus m encoded parity shards.
struct Stripe {
  std::vector<std::vector<uint8_t>> shards;

  std::vector<uint8_t*> Pointers() {
    std::vector<uint8_t*> p;
    for (auto& s : shards) p.push_back(s.data());
    return p;
  }
};

Stripe MakeStripe(const ErasureCoder& coder, size_t shard_size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Stripe stripe;
  stripe.shards.resize(coder.total_shards());
  for (int i = 0; i < coder.total_shards(); ++i) {
    stripe.shards[i].resize(shard_size);
    if (i < coder.data_shards()) {
      for (auto& b : stripe.shards[i]) b = static_cast<uint8_t>(rng());
    }
  }
  std::vector<const uint8_t*> data;
  std::vector<uint8_t*> parity;
  for (int i = 0; i < coder.data_shards(); ++i) data.push_back(stripe.shards[i].data());
  for (int i = coder.data_shards(); i < coder.total_shards(); ++i) {
    parity.push_back(stripe.shards[i].data());
  }
  coder.Encode(data, parity, shard_size);
  return stripe;
}

// Drops the shards in `lost` (overwriting them with garbage so stale bytes cannot pass),
// reconstructs, and expects every shard back byte for byte.
void ExpectRebuilds(const ErasureCoder& coder, const Stripe& original, const std::vector<int>& lost,
                    size_t shard_size) {
  Stripe damaged = original;
  std::vector<bool> present(coder.total_shards(), true);
  for (int i : lost) {
    present[i] = false;
    std::fill(damaged.shards[i].begin(), damaged.shards[i].end(), uint8_t{0xA5});
  }
  auto pointers = damaged.Pointers();
  Status s = coder.Reconstruct(pointers, present, shard_size);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < coder.total_shards(); ++i) {
    ASSERT_EQ(damaged.shards[i], original.shards[i])
        << "shard " << i << " differs, k=" << coder.data_shards() << " m=" << coder.parity_shards()
        << " lost " << lost.size();
  }
}

// Calls `fn` with every subset of {0..n-1} of size 1..max_size.
template <typename Fn>
void ForEachLossPattern(int n, int max_size, Fn fn) {
  for (uint64_t mask = 1; mask < (uint64_t{1} << n); ++mask) {
    if (std::popcount(mask) > max_size) continue;
    std::vector<int> lost;
    for (int i = 0; i < n; ++i) {
      if (mask & (uint64_t{1} << i)) lost.push_back(i);
    }
    fn(lost);
  }
}

std::unique_ptr<ErasureCoder> MustCreate(int k, int m) {
  auto coder = ErasureCoder::Create(k, m);
  EXPECT_TRUE(coder.ok()) << coder.status().ToString();
  return std::move(coder).value();
}

TEST(ErasureTest, RebuildsEveryLossPatternOfUpToMShards) {
  const std::vector<std::pair<int, int>> schemes = {{1, 1}, {2, 1}, {3, 2}, {4, 2}, {6, 3}};
  for (auto [k, m] : schemes) {
    auto coder = MustCreate(k, m);
    const size_t shard_size = 1024;
    Stripe stripe = MakeStripe(*coder, shard_size, 1000 + k * 10 + m);
    int patterns = 0;
    ForEachLossPattern(k + m, m, [&](const std::vector<int>& lost) {
      ExpectRebuilds(*coder, stripe, lost, shard_size);
      ++patterns;
    });
    EXPECT_GT(patterns, 0);
  }
}

TEST(ErasureTest, RebuildsRandomLossPatternsInWideSchemes) {
  const std::vector<std::pair<int, int>> schemes = {{16, 16}, {32, 16}, {10, 4}};
  std::mt19937_64 rng(42);
  for (auto [k, m] : schemes) {
    auto coder = MustCreate(k, m);
    const size_t shard_size = 4096;
    Stripe stripe = MakeStripe(*coder, shard_size, 7 + k);
    std::vector<int> order(k + m);
    for (int i = 0; i < k + m; ++i) order[i] = i;
    for (int trial = 0; trial < 60; ++trial) {
      std::shuffle(order.begin(), order.end(), rng);
      // Every third trial loses exactly m, the hardest case.
      const int count = trial % 3 == 0 ? m : 1 + static_cast<int>(rng() % m);
      std::vector<int> lost(order.begin(), order.begin() + count);
      ExpectRebuilds(*coder, stripe, lost, shard_size);
    }
  }
}

TEST(ErasureTest, RebuildsAllDataShardsFromParityAlone) {
  auto coder = MustCreate(16, 16);
  Stripe stripe = MakeStripe(*coder, 512, 3);
  std::vector<int> lost;
  for (int i = 0; i < 16; ++i) lost.push_back(i);
  ExpectRebuilds(*coder, stripe, lost, 512);
}

TEST(ErasureTest, MoreThanMLostIsCorrupt) {
  auto coder = MustCreate(4, 2);
  Stripe stripe = MakeStripe(*coder, 256, 5);
  auto pointers = stripe.Pointers();
  std::vector<bool> present = {false, true, false, true, true, false};
  Status s = coder->Reconstruct(pointers, present, 256);
  EXPECT_EQ(s.code(), Code::kCorrupt);
}

TEST(ErasureTest, WrongShardCountIsInvalid) {
  auto coder = MustCreate(4, 2);
  Stripe stripe = MakeStripe(*coder, 64, 5);
  auto pointers = stripe.Pointers();
  std::vector<bool> present(5, true);
  EXPECT_EQ(coder->Reconstruct(pointers, present, 64).code(), Code::kInvalid);
  pointers.pop_back();
  present.push_back(true);
  EXPECT_EQ(coder->Reconstruct(pointers, present, 64).code(), Code::kInvalid);
}

TEST(ErasureTest, NothingMissingIsANoOp) {
  auto coder = MustCreate(4, 2);
  Stripe stripe = MakeStripe(*coder, 128, 9);
  Stripe copy = stripe;
  auto pointers = copy.Pointers();
  ASSERT_TRUE(coder->Reconstruct(pointers, std::vector<bool>(6, true), 128).ok());
  EXPECT_EQ(copy.shards, stripe.shards);
}

TEST(ErasureTest, NoParitySchemeEncodesAndCannotRebuild) {
  auto coder = MustCreate(3, 0);
  EXPECT_EQ(coder->total_shards(), 3);
  Stripe stripe = MakeStripe(*coder, 128, 11);  // Encode with an empty parity span
  Stripe copy = stripe;
  auto pointers = copy.Pointers();
  ASSERT_TRUE(coder->Reconstruct(pointers, std::vector<bool>(3, true), 128).ok());
  EXPECT_EQ(copy.shards, stripe.shards);
  EXPECT_EQ(coder->Reconstruct(pointers, {true, false, true}, 128).code(), Code::kCorrupt);
}

TEST(ErasureTest, RejectsSchemesOutOfRange) {
  EXPECT_EQ(ErasureCoder::Create(0, 2).status().code(), Code::kInvalid);
  EXPECT_EQ(ErasureCoder::Create(-1, 2).status().code(), Code::kInvalid);
  EXPECT_EQ(ErasureCoder::Create(kMaxDataShards + 1, 2).status().code(), Code::kInvalid);
  EXPECT_EQ(ErasureCoder::Create(4, -1).status().code(), Code::kInvalid);
  EXPECT_EQ(ErasureCoder::Create(4, kMaxParityShards + 1).status().code(), Code::kInvalid);
  EXPECT_TRUE(ErasureCoder::Create(kMaxDataShards, kMaxParityShards).ok());
  EXPECT_TRUE(ErasureCoder::Create(1, 0).ok());
}

TEST(ErasureTest, ShardSizeRoundsUpToAlignment) {
  auto coder = MustCreate(4, 2);
  EXPECT_EQ(coder->ShardSize(0), 0u);
  EXPECT_EQ(coder->ShardSize(1), kShardAlignment);
  EXPECT_EQ(coder->ShardSize(4 * kShardAlignment), kShardAlignment);
  EXPECT_EQ(coder->ShardSize(4 * kShardAlignment + 1), 2 * kShardAlignment);
  EXPECT_EQ(coder->ShardSize(4 << 20), size_t{1} << 20);
  auto one = MustCreate(1, 1);
  EXPECT_EQ(one->ShardSize(100), 128u);
}

TEST(ErasureTest, UnalignedShardSizesRebuild) {
  auto coder = MustCreate(4, 2);
  for (size_t shard_size : {size_t{1}, size_t{13}, size_t{31}, size_t{100}, size_t{1000}}) {
    Stripe stripe = MakeStripe(*coder, shard_size, shard_size);
    ForEachLossPattern(6, 2, [&](const std::vector<int>& lost) {
      ExpectRebuilds(*coder, stripe, lost, shard_size);
    });
  }
}

TEST(ErasureTest, ConcurrentReconstructsShareTheCoder) {
  // More patterns than the decode cache holds, from several threads, so lookups, inserts
  // and evictions race.
  auto coder = MustCreate(6, 3);
  Stripe stripe = MakeStripe(*coder, 256, 21);
  std::vector<std::vector<int>> patterns;
  ForEachLossPattern(9, 3, [&](const std::vector<int>& lost) { patterns.push_back(lost); });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = t; i < patterns.size(); i += 2) {
          ExpectRebuilds(*coder, stripe, patterns[i], 256);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace quid
