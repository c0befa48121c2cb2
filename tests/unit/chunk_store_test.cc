#include "storage/chunks/chunk_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/base/clock.h"
#include "storage/stores/memory_store.h"
#include "tests/support/faulty_store.h"
#include "tests/support/random_bytes.h"

namespace quid {
namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

// Every store is a MemoryStore behind a FaultyStore, so a test can both lose shards
// (MemoryStore hooks) and make a whole store misbehave or count its calls (FaultyStore).
class ChunkStoreTest : public ::testing::Test {
 protected:
  void Build(int k, int m, size_t store_count, uint64_t capacity_bytes = 0) {
    memory_.clear();
    faulty_.clear();
    std::vector<std::shared_ptr<ShardStore>> stores;
    for (size_t i = 0; i < store_count; ++i) {
      memory_.push_back(std::make_shared<MemoryStore>(capacity_bytes, "mem" + std::to_string(i)));
      faulty_.push_back(std::make_shared<FaultyStore>(memory_.back()));
      stores.push_back(faulty_.back());
    }
    ChunkStoreOptions options;
    options.data_shards = k;
    options.parity_shards = m;
    auto made = ChunkStore::Create(keys_, options, std::move(stores),
                                   std::make_shared<RendezvousPlacement>(), &pool_, &clock_);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    cs_ = std::move(made).value();
  }

  ChunkId IdFor(ByteSpan plain) const { return ComputeChunkId(keys_.chunk_id, plain); }

  StoredChunk PutOk(const Bytes& plain) {
    auto put = cs_->Put(IdFor(plain), plain);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return put.ok() ? put.value() : StoredChunk{};
  }

  Bytes ReadAll(const StoredChunk& chunk, Status* status, bool* degraded = nullptr) {
    Bytes out(chunk.plain_size);
    *status = cs_->Read(chunk, 0, out, degraded);
    return out;
  }

  ShardId IdOf(const StoredChunk& chunk, int i) const {
    return cs_->ShardIdFor(chunk.id, chunk.generation, i);
  }
  MemoryStore& MemoryOf(const StoredChunk& chunk, int i) { return *memory_[chunk.stores[i]]; }
  FaultyStore& FaultyOf(const StoredChunk& chunk, int i) { return *faulty_[chunk.stores[i]]; }
  void DropShard(const StoredChunk& chunk, int i) { MemoryOf(chunk, i).Drop(IdOf(chunk, i)); }

  size_t TotalShards() {
    size_t total = 0;
    for (auto& m : memory_) total += m->shard_count();
    return total;
  }

  VolumeKeys keys_ = VolumeKeys::Derive(SecretKey::Random());
  ThreadPool pool_{4};
  FakeClock clock_;
  std::vector<std::shared_ptr<MemoryStore>> memory_;
  std::vector<std::shared_ptr<FaultyStore>> faulty_;
  std::unique_ptr<ChunkStore> cs_;
};

TEST_F(ChunkStoreTest, RoundTripsEverySize) {
  Build(4, 2, 6);
  uint32_t seed = 1;
  for (size_t size :
       {size_t{0}, size_t{1}, 64 * kKiB - 1, 64 * kKiB, 64 * kKiB + 1, kMiB, 4 * kMiB}) {
    SCOPED_TRACE(size);
    const Bytes plain = RandomBytes(size, seed++);
    const StoredChunk chunk = PutOk(plain);
    EXPECT_EQ(chunk.plain_size, size);
    EXPECT_EQ(chunk.blob_size, EncryptedSize(size));
    EXPECT_EQ(chunk.k, 4);
    EXPECT_EQ(chunk.m, 2);
    ASSERT_EQ(chunk.stores.size(), 6u);
    // Six stores for six shards: each on a different store.
    EXPECT_EQ(std::set<uint32_t>(chunk.stores.begin(), chunk.stores.end()).size(), 6u);
    for (int i = 0; i < 6; ++i) {
      auto info = MemoryOf(chunk, i).Stat(IdOf(chunk, i));
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      EXPECT_EQ(info->size, chunk.shard_size);
    }
    Status status;
    bool degraded = true;
    EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_FALSE(degraded);
  }
  EXPECT_EQ(cs_->stats().chunks_put, 7u);
  EXPECT_EQ(cs_->stats().degraded_reads, 0u);
  EXPECT_EQ(cs_->stats().shard_failures, 0u);
}

TEST_F(ChunkStoreTest, PartialReadsAtSegmentAndShardBoundariesMatchPlaintext) {
  Build(4, 2, 6);
  const size_t size = kMiB + 12345;
  const Bytes plain = RandomBytes(size, 7);
  const StoredChunk chunk = PutOk(plain);

  std::set<size_t> offsets = {0, 1, size - 1};
  for (size_t s = 0; s * kSegmentBytes < size; ++s) {
    for (long delta : {-17L, -1L, 0L, 1L, 17L}) {
      const long off = static_cast<long>(s * kSegmentBytes) + delta;
      if (off >= 0 && static_cast<size_t>(off) < size) offsets.insert(static_cast<size_t>(off));
    }
  }
  // Plaintext offsets whose bytes sit right at a shard boundary in the blob.
  constexpr size_t kStored = kSegmentBytes + kTagBytes;
  for (size_t i = 1; i < 4; ++i) {
    const size_t b = i * chunk.shard_size - kChunkHeaderBytes;
    const size_t plain_at = (b / kStored) * kSegmentBytes + std::min(b % kStored, kSegmentBytes);
    for (long delta : {-1L, 0L, 1L}) offsets.insert(static_cast<size_t>(plain_at + delta));
  }
  for (size_t offset : offsets) {
    for (size_t length :
         {size_t{1}, size_t{100}, 4 * kKiB, kSegmentBytes, kSegmentBytes + 1, 200 * kKiB, size}) {
      length = std::min(length, size - offset);
      SCOPED_TRACE("offset " + std::to_string(offset) + " length " + std::to_string(length));
      Bytes out(length);
      bool degraded = true;
      ASSERT_TRUE(cs_->Read(chunk, offset, out, &degraded).ok());
      EXPECT_FALSE(degraded);
      EXPECT_TRUE(std::equal(out.begin(), out.end(), plain.begin() + offset));
    }
  }
}

TEST_F(ChunkStoreTest, ReadPastTheEndIsInvalidAndEmptyReadIsOk) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(1000, 3);
  const StoredChunk chunk = PutOk(plain);
  Bytes out(10);
  EXPECT_EQ(cs_->Read(chunk, 995, out).code(), Code::kInvalid);
  EXPECT_EQ(cs_->Read(chunk, 5000, MutableByteSpan()).code(), Code::kInvalid);
  EXPECT_TRUE(cs_->Read(chunk, 1000, MutableByteSpan()).ok());
}

TEST_F(ChunkStoreTest, HealthyReadsUseOnlyRangesOfDataShards) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(4 * kMiB, 11);
  const StoredChunk chunk = PutOk(plain);

  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  ASSERT_TRUE(status.ok());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(FaultyOf(chunk, i).gets(), 0u) << "shard " << i;
    EXPECT_EQ(FaultyOf(chunk, i).reads(), i < 4 ? 1u : 0u) << "shard " << i;
  }

  // A small read touches one data shard once.
  Bytes small(100);
  const size_t offset = 3 * kMiB + kMiB / 2;  // well inside data shard 3
  ASSERT_TRUE(cs_->Read(chunk, offset, small).ok());
  EXPECT_TRUE(std::equal(small.begin(), small.end(), plain.begin() + offset));
  uint64_t reads = 0;
  for (auto& f : faulty_) reads += f->reads();
  EXPECT_EQ(reads, 5u);
}

TEST_F(ChunkStoreTest, ReadsSurviveLossOfAnyTwoShards) {
  Build(4, 2, 6);
  uint32_t seed = 100;
  for (int a = 0; a < 6; ++a) {
    for (int b = a + 1; b < 6; ++b) {
      SCOPED_TRACE("lost " + std::to_string(a) + "," + std::to_string(b));
      const Bytes plain = RandomBytes(kMiB + 333, seed++);
      const StoredChunk chunk = PutOk(plain);
      DropShard(chunk, a);
      DropShard(chunk, b);
      Status status;
      bool degraded = false;
      EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
      EXPECT_TRUE(status.ok()) << status.ToString();
      // Losing only parity shards needs no parity for the read.
      EXPECT_EQ(degraded, a < 4);
      // Partial reads inside a lost data shard too.
      Bytes part(70000);
      const size_t offset = static_cast<size_t>(a) * chunk.shard_size / 2;
      ASSERT_TRUE(cs_->Read(chunk, offset, part, &degraded).ok());
      EXPECT_TRUE(std::equal(part.begin(), part.end(), plain.begin() + offset));
    }
  }
  EXPECT_GT(cs_->stats().degraded_reads, 0u);
}

TEST_F(ChunkStoreTest, ReadsSurviveTwoStoresDown) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(2 * kMiB, 5);
  const StoredChunk chunk = PutOk(plain);
  FaultyOf(chunk, 0).SetDown(true);
  FaultyOf(chunk, 3).SetDown(true);
  Status status;
  bool degraded = false;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(degraded);
}

TEST_F(ChunkStoreTest, LossOfThreeShardsIsAnErrorNeverWrongBytes) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB, 9);
  const StoredChunk chunk = PutOk(plain);
  DropShard(chunk, 0);
  DropShard(chunk, 2);
  DropShard(chunk, 5);
  Bytes out(plain.size(), 0xAB);
  const Status status = cs_->Read(chunk, 0, out);
  EXPECT_EQ(status.code(), Code::kCorrupt) << status.ToString();
  EXPECT_NE(status.message().find(ChunkIdHex(chunk.id).substr(0, 16)), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("only 3 of 6"), std::string::npos) << status.message();
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(ChunkStoreTest, ThreeStoresDownIsUnavailable) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(300 * kKiB, 10);
  const StoredChunk chunk = PutOk(plain);
  for (int i : {1, 3, 4}) FaultyOf(chunk, i).SetDown(true);
  Bytes out(plain.size());
  EXPECT_EQ(cs_->Read(chunk, 0, out).code(), Code::kUnavailable);
  // Back up: readable again, even while the back-off still lists them as down.
  for (int i : {1, 3, 4}) FaultyOf(chunk, i).SetDown(false);
  ASSERT_TRUE(cs_->Read(chunk, 0, out).ok());
  EXPECT_EQ(out, plain);
}

TEST_F(ChunkStoreTest, CorruptDataShardIsServedFromParity) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB, 12);
  const StoredChunk chunk = PutOk(plain);
  MemoryOf(chunk, 1).CorruptByte(IdOf(chunk, 1), 1000);
  Status status;
  bool degraded = false;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(degraded);
  EXPECT_GT(cs_->stats().shard_failures, 0u);

  // A small read of the segment holding the rotted byte.
  const size_t offset = chunk.shard_size - kChunkHeaderBytes + 900;
  Bytes part(500);
  ASSERT_TRUE(cs_->Read(chunk, offset, part, &degraded).ok());
  EXPECT_TRUE(degraded);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), plain.begin() + offset));
}

TEST_F(ChunkStoreTest, LyingDataStoreIsOutvoted) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB + 5, 13);
  const StoredChunk chunk = PutOk(plain);
  FaultyOf(chunk, 2).SetCorruptReads(true);
  Status status;
  bool degraded = false;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(degraded);
}

TEST_F(ChunkStoreTest, LyingParityStoreWithALostDataShardIsOutvoted) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB, 14);
  const StoredChunk chunk = PutOk(plain);
  DropShard(chunk, 0);
  FaultyOf(chunk, 4).SetCorruptReads(true);
  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST_F(ChunkStoreTest, TwoLyingStoresAreOutvotedWhenKHonestRemain) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB, 15);
  const StoredChunk chunk = PutOk(plain);
  FaultyOf(chunk, 0).SetCorruptReads(true);
  FaultyOf(chunk, 3).SetCorruptReads(true);
  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();

  // A third liar leaves no honest k: an error, never wrong bytes.
  FaultyOf(chunk, 5).SetCorruptReads(true);
  Bytes out(plain.size());
  EXPECT_EQ(cs_->Read(chunk, 0, out).code(), Code::kCorrupt);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
}

TEST_F(ChunkStoreTest, StoreDownAtPutTimeStillStoresEveryShard) {
  Build(4, 2, 6);
  faulty_[2]->SetDown(true);
  const Bytes plain = RandomBytes(kMiB, 16);
  const StoredChunk chunk = PutOk(plain);
  ASSERT_EQ(chunk.stores.size(), 6u);
  EXPECT_EQ(std::count(chunk.stores.begin(), chunk.stores.end(), 2u), 0);
  // Five stores, six shards: one store holds two (degraded placement).
  EXPECT_EQ(std::set<uint32_t>(chunk.stores.begin(), chunk.stores.end()).size(), 5u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(MemoryOf(chunk, i).Stat(IdOf(chunk, i)).ok()) << "shard " << i;
  }
  EXPECT_EQ(memory_[2]->shard_count(), 0u);
  EXPECT_EQ(TotalShards(), 6u);

  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  EXPECT_TRUE(status.ok());

  // While backed off, the down store is not even tried.
  const uint64_t puts_before = faulty_[2]->puts();
  for (uint32_t seed = 0; seed < 5; ++seed) PutOk(RandomBytes(10 * kKiB, 200 + seed));
  EXPECT_EQ(faulty_[2]->puts(), puts_before);

  // Back, and the back-off over: placement uses it again.
  faulty_[2]->SetDown(false);
  clock_.advance_ns(3'000'000'000);
  bool used = false;
  for (uint32_t seed = 0; seed < 10 && !used; ++seed) {
    const StoredChunk c = PutOk(RandomBytes(10 * kKiB, 300 + seed));
    used = std::count(c.stores.begin(), c.stores.end(), 2u) == 1;
    EXPECT_EQ(std::set<uint32_t>(c.stores.begin(), c.stores.end()).size(), 6u);
  }
  EXPECT_TRUE(used);
}

TEST_F(ChunkStoreTest, FailedShardPutMovesToAStoreTheChunkDoesNotUse) {
  Build(4, 2, 8);
  const Bytes plain = RandomBytes(200 * kKiB, 17);
  const ChunkId id = IdFor(plain);
  // Make two of the stores placement picks for this chunk fail their next put.
  std::vector<PlacementCandidate> candidates(8);
  for (uint32_t s = 0; s < 8; ++s) {
    candidates[s].store_index = s;
    candidates[s].name = faulty_[s]->name();
  }
  const std::vector<uint32_t> planned = RendezvousPlacement().Place(id, 6, candidates);
  ASSERT_EQ(planned.size(), 6u);
  faulty_[planned[1]]->FailNextPuts(1);
  faulty_[planned[4]]->FailNextPuts(1);

  auto put = cs_->Put(id, plain);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  const StoredChunk& chunk = put.value();
  // Every shard still on its own store: the failed ones went to the two spare stores.
  EXPECT_EQ(std::set<uint32_t>(chunk.stores.begin(), chunk.stores.end()).size(), 6u);
  EXPECT_EQ(std::count(chunk.stores.begin(), chunk.stores.end(), planned[1]), 0);
  EXPECT_EQ(std::count(chunk.stores.begin(), chunk.stores.end(), planned[4]), 0);
  EXPECT_EQ(TotalShards(), 6u);
  EXPECT_EQ(cs_->stats().shard_failures, 2u);
  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  EXPECT_TRUE(status.ok());
}

TEST_F(ChunkStoreTest, AllStoresRefusingFailsAndLeavesNothing) {
  Build(4, 2, 6);
  for (auto& f : faulty_) f->SetRefuseWrites(true);
  const Bytes plain = RandomBytes(kMiB, 18);
  auto put = cs_->Put(IdFor(plain), plain);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kNoSpace) << put.status().ToString();
  EXPECT_EQ(TotalShards(), 0u);

  for (auto& f : faulty_) {
    f->SetRefuseWrites(false);
    f->SetDown(true);
  }
  put = cs_->Put(IdFor(plain), plain);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnavailable) << put.status().ToString();
  EXPECT_EQ(TotalShards(), 0u);
}

TEST_F(ChunkStoreTest, FailedPutRemovesTheShardsItStored) {
  const size_t size = kMiB;
  auto coder = ErasureCoder::Create(4, 2);
  ASSERT_TRUE(coder.ok());
  const size_t shard_size = (*coder)->ShardSize(EncryptedSize(size));
  // Every store has room for exactly one shard; all but one refuse outright. The one that
  // takes a shard is then asked for the rest, runs out, and the upload fails.
  Build(4, 2, 6, shard_size);
  for (size_t i = 1; i < 6; ++i) faulty_[i]->SetRefuseWrites(true);
  const Bytes plain = RandomBytes(size, 19);
  auto put = cs_->Put(IdFor(plain), plain);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kNoSpace) << put.status().ToString();
  EXPECT_GT(faulty_[0]->puts(), 1u);
  EXPECT_EQ(TotalShards(), 0u);
}

TEST_F(ChunkStoreTest, FewerStoresThanShardsStillStoresEveryShard) {
  Build(4, 2, 3);
  const Bytes plain = RandomBytes(kMiB, 20);
  const StoredChunk chunk = PutOk(plain);
  EXPECT_EQ(std::set<uint32_t>(chunk.stores.begin(), chunk.stores.end()).size(), 3u);
  EXPECT_EQ(TotalShards(), 6u);
  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  EXPECT_TRUE(status.ok());
}

// A volume on leases grows while mounted: a store added later is offered from the next Put,
// indices already recorded keep naming the same stores, and old chunks stay readable.
TEST_F(ChunkStoreTest, AddedStoreTakesShardsFromTheNextPutOn) {
  Build(4, 2, 3);
  const Bytes early = RandomBytes(kMiB, 70);
  const StoredChunk before = PutOk(early);
  EXPECT_EQ(std::set<uint32_t>(before.stores.begin(), before.stores.end()).size(), 3u);
  for (int i = 3; i < 6; ++i) {
    memory_.push_back(std::make_shared<MemoryStore>(0, "mem" + std::to_string(i)));
    faulty_.push_back(std::make_shared<FaultyStore>(memory_.back()));
    auto added = cs_->AddStore(faulty_.back());
    ASSERT_TRUE(added.ok()) << added.status().ToString();
    EXPECT_EQ(*added, static_cast<uint32_t>(i));
  }
  EXPECT_EQ(cs_->store_count(), 6u);
  const Bytes late = RandomBytes(kMiB, 71);
  const StoredChunk after = PutOk(late);
  EXPECT_EQ(std::set<uint32_t>(after.stores.begin(), after.stores.end()).size(), 6u);
  Status status;
  EXPECT_EQ(ReadAll(before, &status), early);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ReadAll(after, &status), late);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(cs_->AddStore(nullptr).status().code(), Code::kInvalid);
}

// A host at a new address: the same index, a new way to reach it, fresh health.
TEST_F(ChunkStoreTest, ReplacedStoreServesTheSameIndexWithFreshHealth) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB, 72);
  const StoredChunk chunk = PutOk(plain);
  const uint32_t moved = chunk.stores[0];
  // The old way to reach it is down and backed off; the new one reaches the same shards.
  faulty_[moved]->SetDown(true);
  Status status;
  EXPECT_EQ(ReadAll(chunk, &status), plain);
  auto reached_again = std::make_shared<FaultyStore>(memory_[moved]);
  ASSERT_TRUE(cs_->ReplaceStore(moved, reached_again).ok());
  bool degraded = true;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(degraded) << "the new store was passed over as if still down";
  EXPECT_GT(reached_again->gets() + reached_again->reads(), 0u);
  EXPECT_EQ(cs_->ReplaceStore(6, reached_again).code(), Code::kInvalid);
  EXPECT_EQ(cs_->store_count(), 6u);
}

TEST_F(ChunkStoreTest, RemoveIsIdempotentAndRemovesEveryShard) {
  Build(4, 2, 6);
  const StoredChunk a = PutOk(RandomBytes(kMiB, 21));
  const Bytes plain_b = RandomBytes(kMiB, 22);
  const StoredChunk b = PutOk(plain_b);
  EXPECT_EQ(TotalShards(), 12u);
  ASSERT_TRUE(cs_->Remove(a).ok());
  EXPECT_EQ(TotalShards(), 6u);
  ASSERT_TRUE(cs_->Remove(a).ok());
  EXPECT_EQ(TotalShards(), 6u);
  Status status;
  EXPECT_EQ(ReadAll(b, &status), plain_b);
  EXPECT_TRUE(status.ok());

  // An unreachable store: the others are removed anyway, the caller hears kUnavailable
  // and retries later.
  FaultyOf(b, 1).SetDown(true);
  EXPECT_EQ(cs_->Remove(b).code(), Code::kUnavailable);
  EXPECT_EQ(TotalShards(), 1u);
  FaultyOf(b, 1).SetDown(false);
  // Until its back-off has passed, a store that just failed is not asked again.
  const uint64_t removes = FaultyOf(b, 1).removes();
  EXPECT_EQ(cs_->Remove(b).code(), Code::kUnavailable);
  EXPECT_EQ(FaultyOf(b, 1).removes(), removes);
  clock_.advance_ns(3'000'000'000);
  ASSERT_TRUE(cs_->Remove(b).ok());
  EXPECT_EQ(TotalShards(), 0u);
}

TEST_F(ChunkStoreTest, RemoveShardsResumesWhereItStopped) {
  Build(4, 2, 6);
  const StoredChunk c = PutOk(RandomBytes(kMiB, 24));
  FaultyOf(c, 2).SetDown(true);
  uint64_t removed = 0;
  EXPECT_EQ(cs_->RemoveShards(c, &removed).code(), Code::kUnavailable);
  EXPECT_EQ(removed, 0b111011u) << "every shard but the one on the store that is down";
  FaultyOf(c, 2).SetDown(false);
  clock_.advance_ns(3'000'000'000);
  uint64_t healthy_removes = 0;
  for (int i : {0, 1, 3, 4, 5}) healthy_removes += FaultyOf(c, i).removes();
  ASSERT_TRUE(cs_->RemoveShards(c, &removed).ok());
  EXPECT_EQ(removed, 0b111111u);
  uint64_t after = 0;
  for (int i : {0, 1, 3, 4, 5}) after += FaultyOf(c, i).removes();
  EXPECT_EQ(after, healthy_removes) << "shards already removed were asked for again";
  EXPECT_EQ(TotalShards(), 0u);
}

TEST_F(ChunkStoreTest, ReuploadGetsFreshShardIds) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(100 * kKiB, 23);
  const StoredChunk first = PutOk(plain);
  const StoredChunk second = PutOk(plain);
  EXPECT_NE(first.generation, second.generation);
  EXPECT_EQ(TotalShards(), 12u);
  // Removing one upload leaves the other readable.
  ASSERT_TRUE(cs_->Remove(first).ok());
  Status status;
  EXPECT_EQ(ReadAll(second, &status), plain);
  EXPECT_TRUE(status.ok());
}

TEST_F(ChunkStoreTest, WideStripeSurvivesSixteenLosses) {
  Build(16, 16, 32);
  const Bytes plain = RandomBytes(4 * kMiB - 7, 24);
  const StoredChunk chunk = PutOk(plain);
  EXPECT_EQ(std::set<uint32_t>(chunk.stores.begin(), chunk.stores.end()).size(), 32u);
  // Every data shard but one, and every other parity shard.
  std::vector<int> lost;
  for (int i = 0; i < 15; ++i) lost.push_back(i);
  lost.push_back(20);
  for (int i : lost) DropShard(chunk, i);
  Status status;
  bool degraded = false;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(degraded);

  DropShard(chunk, 31);
  Bytes out(plain.size());
  EXPECT_EQ(cs_->Read(chunk, 0, out).code(), Code::kCorrupt);
}

// The widest scheme quid init takes (48 shards): the data path, audits, repair and the
// rebuilt chunk all work at that width.
TEST_F(ChunkStoreTest, ThirtyTwoPlusSixteenReadsAuditsAndRepairsAtFullWidth) {
  Build(32, 16, 64);
  const Bytes plain = RandomBytes(8 * kMiB - 3, 25);
  const StoredChunk chunk = PutOk(plain);
  EXPECT_EQ(std::set<uint32_t>(chunk.stores.begin(), chunk.stores.end()).size(), 48u);
  const ShardAudit audit = cs_->AuditChunk(chunk, 777, 4096);
  EXPECT_EQ(audit.ok_mask, (uint64_t{1} << 48) - 1);
  EXPECT_FALSE(audit.inconsistent);

  // Sixteen shards gone: eight hosts down, eight shards lost on hosts that answer.
  uint64_t lost = 0;
  for (int i = 0; i < 16; ++i) {
    const int shard = i * 3;  // data and parity shards both
    if (i % 2 == 0) {
      FaultyOf(chunk, shard).SetDown(true);
    } else {
      DropShard(chunk, shard);
    }
    lost |= uint64_t{1} << shard;
  }
  Status status;
  bool degraded = false;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(degraded);

  auto repaired = cs_->RepairShards(chunk, lost);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_EQ(repaired->rebuilt_mask, lost);
  EXPECT_EQ(repaired->unplaced, 0);
  EXPECT_EQ(repaired->bytes_read, 32u * chunk.shard_size);
  EXPECT_EQ(repaired->bytes_written, 16u * chunk.shard_size);
  EXPECT_EQ(std::set<uint32_t>(repaired->stores.begin(), repaired->stores.end()).size(), 48u);
  StoredChunk after = chunk;
  after.stores = repaired->stores;
  degraded = true;
  EXPECT_EQ(ReadAll(after, &status, &degraded), plain);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(degraded);  // every data shard where the new record says
}

TEST_F(ChunkStoreTest, ShardIdsDependOnGenerationIndexAndKey) {
  Build(4, 2, 6);
  const ChunkId id = IdFor(AsBytes("some chunk"));
  const ShardId base = cs_->ShardIdFor(id, 1, 0);
  EXPECT_EQ(base, cs_->ShardIdFor(id, 1, 0));
  EXPECT_NE(base, cs_->ShardIdFor(id, 2, 0));
  EXPECT_NE(base, cs_->ShardIdFor(id, 1, 1));
  ChunkId other = id;
  other[31] ^= 1;
  EXPECT_NE(base, cs_->ShardIdFor(other, 1, 0));

  auto other_volume =
      ChunkStore::Create(VolumeKeys::Derive(SecretKey::Random()), ChunkStoreOptions{},
                         cs_->stores(), std::make_shared<RendezvousPlacement>(), &pool_);
  ASSERT_TRUE(other_volume.ok());
  EXPECT_NE(base, (*other_volume)->ShardIdFor(id, 1, 0));
}

TEST_F(ChunkStoreTest, CreateRejectsBadSchemes) {
  std::vector<std::shared_ptr<ShardStore>> stores = {std::make_shared<MemoryStore>()};
  auto placement = std::make_shared<RendezvousPlacement>();
  for (auto [k, m] :
       {std::pair{0, 2}, std::pair{33, 1}, std::pair{4, 17}, std::pair{-1, 1}, std::pair{4, -1}}) {
    ChunkStoreOptions options;
    options.data_shards = k;
    options.parity_shards = m;
    auto made = ChunkStore::Create(keys_, options, stores, placement, &pool_);
    EXPECT_EQ(made.status().code(), Code::kInvalid) << k << "," << m;
  }
  EXPECT_EQ(ChunkStore::Create(keys_, {}, {}, placement, &pool_).status().code(), Code::kInvalid);
  EXPECT_EQ(ChunkStore::Create(keys_, {}, stores, nullptr, &pool_).status().code(), Code::kInvalid);
  EXPECT_EQ(ChunkStore::Create(keys_, {}, stores, placement, nullptr).status().code(),
            Code::kInvalid);
}

TEST_F(ChunkStoreTest, DownStoreIsReadLastUntilItsBackoffEnds) {
  Build(4, 2, 6);
  const Bytes plain = RandomBytes(kMiB, 25);
  const StoredChunk chunk = PutOk(plain);
  FaultyStore& down = FaultyOf(chunk, 1);
  down.SetDown(true);
  Status status;
  bool degraded = false;
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(degraded);

  // Known down: the next read goes straight to the other five and never calls it.
  const uint64_t calls = down.gets() + down.reads();
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(down.gets() + down.reads(), calls);

  // Back and the back-off over: the healthy path again.
  down.SetDown(false);
  clock_.advance_ns(3'000'000'000);
  EXPECT_EQ(ReadAll(chunk, &status, &degraded), plain);
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(degraded);
}

TEST_F(ChunkStoreTest, ReadsChunksWrittenUnderAnotherScheme) {
  Build(2, 1, 6);
  const Bytes plain = RandomBytes(kMiB, 26);
  const StoredChunk chunk = PutOk(plain);
  // The same stores, now a (4, 2) volume: old (2, 1) chunks still decode.
  auto wider = ChunkStore::Create(keys_, ChunkStoreOptions{}, cs_->stores(),
                                  std::make_shared<RendezvousPlacement>(), &pool_, &clock_);
  ASSERT_TRUE(wider.ok());
  DropShard(chunk, 0);
  Bytes out(plain.size());
  bool degraded = false;
  ASSERT_TRUE((*wider)->Read(chunk, 0, out, &degraded).ok());
  EXPECT_EQ(out, plain);
  EXPECT_TRUE(degraded);
}

TEST_F(ChunkStoreTest, ConcurrentPutsAndReads) {
  Build(4, 2, 6);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t j = 0; j < 5; ++j) {
        const Bytes plain = RandomBytes(300 * kKiB + t * 1000 + j, t * 100 + j);
        auto put = cs_->Put(IdFor(plain), plain);
        if (!put.ok()) {
          ++failures;
          continue;
        }
        Bytes out(plain.size());
        if (!cs_->Read(*put, 0, out).ok() || out != plain) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(cs_->stats().chunks_put, 20u);
}

struct Scheme {
  int k;
  int m;
  size_t stores;
};

class ChunkStoreSchemeTest : public ChunkStoreTest, public ::testing::WithParamInterface<Scheme> {};

TEST_P(ChunkStoreSchemeTest, RoundTripsAndSurvivesLossOfMShards) {
  const Scheme scheme = GetParam();
  Build(scheme.k, scheme.m, scheme.stores);
  uint32_t seed = 500;
  for (size_t size : {size_t{0}, size_t{1}, 64 * kKiB + 1, 3 * kMiB + 17}) {
    SCOPED_TRACE(size);
    const Bytes plain = RandomBytes(size, seed++);
    const StoredChunk chunk = PutOk(plain);
    ASSERT_EQ(chunk.stores.size(), static_cast<size_t>(scheme.k + scheme.m));
    // Lose the first m data shards (or all data shards, when m >= k).
    for (int i = 0; i < scheme.m; ++i) DropShard(chunk, i);
    Status status;
    EXPECT_EQ(ReadAll(chunk, &status), plain);
    EXPECT_TRUE(status.ok()) << status.ToString();
    ASSERT_TRUE(cs_->Remove(chunk).ok());
  }
  EXPECT_EQ(TotalShards(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Schemes, ChunkStoreSchemeTest,
                         ::testing::Values(Scheme{1, 0, 1}, Scheme{1, 2, 3}, Scheme{2, 1, 3},
                                           Scheme{3, 3, 6}, Scheme{6, 3, 9}, Scheme{10, 4, 14},
                                           Scheme{4, 2, 4}));

// --- RepairShards ---

TEST_F(ChunkStoreTest, RepairRebuildsLostShardsByteForByteOnNewStores) {
  Build(4, 2, 9);
  const Bytes plain = RandomBytes(3 * kMiB + 777, 61);
  const StoredChunk chunk = PutOk(plain);
  const Bytes original1 = *MemoryOf(chunk, 1).Get(IdOf(chunk, 1));
  const Bytes original5 = *MemoryOf(chunk, 5).Get(IdOf(chunk, 5));
  FaultyOf(chunk, 1).SetDown(true);  // its host is gone
  DropShard(chunk, 5);               // its disk lost the shard
  const uint64_t mask = (uint64_t{1} << 1) | (uint64_t{1} << 5);
  auto repaired = cs_->RepairShards(chunk, mask);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_EQ(repaired->rebuilt_mask, mask);
  EXPECT_EQ(repaired->unplaced, 0);
  EXPECT_EQ(repaired->bad_mask, 0u);
  EXPECT_EQ(repaired->bytes_read, 4u * chunk.shard_size);  // any k, not all
  EXPECT_EQ(repaired->bytes_written, 2u * chunk.shard_size);
  const std::set<uint32_t> now(repaired->stores.begin(), repaired->stores.end());
  EXPECT_EQ(now.size(), 6u);
  EXPECT_FALSE(now.contains(chunk.stores[1]));
  for (int i : {0, 2, 3, 4}) EXPECT_EQ(repaired->stores[i], chunk.stores[i]);
  StoredChunk after = chunk;
  after.stores = repaired->stores;
  EXPECT_EQ(*memory_[after.stores[1]]->Get(IdOf(after, 1)), original1);
  EXPECT_EQ(*memory_[after.stores[5]]->Get(IdOf(after, 5)), original5);
  // The repaired record reads on the healthy path, exactly.
  FaultyOf(chunk, 0).SetDown(true);  // and still with one more store gone
  Status st;
  bool degraded = false;
  EXPECT_EQ(ReadAll(after, &st, &degraded), plain);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(ChunkStoreTest, RepairCatchesAStoreAnsweringWithWrongBytes) {
  Build(4, 2, 8);
  const Bytes plain = RandomBytes(2 * kMiB, 62);
  const StoredChunk chunk = PutOk(plain);
  FaultyOf(chunk, 2).SetCorruptReads(true);  // passes its own checksum, yet lies
  auto repaired = cs_->RepairShards(chunk, 0);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_EQ(repaired->bad_mask, uint64_t{1} << 2);
  EXPECT_EQ(repaired->rebuilt_mask, uint64_t{1} << 2);
  EXPECT_NE(repaired->stores[2], chunk.stores[2]);
  StoredChunk after = chunk;
  after.stores = repaired->stores;
  Status st;
  EXPECT_EQ(ReadAll(after, &st), plain);
  EXPECT_TRUE(st.ok());
}

TEST_F(ChunkStoreTest, RepairFindsAShardItsStoreLost) {
  Build(4, 2, 8);
  const Bytes plain = RandomBytes(kMiB, 65);
  const StoredChunk chunk = PutOk(plain);
  DropShard(chunk, 0);  // a data shard: the first fetched
  auto repaired = cs_->RepairShards(chunk, 0);
  ASSERT_TRUE(repaired.ok());
  EXPECT_EQ(repaired->bad_mask, 1u);
  EXPECT_EQ(repaired->rebuilt_mask, 1u);
  StoredChunk after = chunk;
  after.stores = repaired->stores;
  Status st;
  bool degraded = true;
  EXPECT_EQ(ReadAll(after, &st, &degraded), plain);
  EXPECT_FALSE(degraded);
}

TEST_F(ChunkStoreTest, RepairLeavesShardsWithNowhereToGoAndNeverDoublesUp) {
  Build(4, 2, 6);
  const StoredChunk chunk = PutOk(RandomBytes(kMiB, 63));
  FaultyOf(chunk, 3).SetDown(true);
  auto repaired = cs_->RepairShards(chunk, uint64_t{1} << 3);
  ASSERT_TRUE(repaired.ok());
  EXPECT_EQ(repaired->unplaced, 1);  // the only other store is the one that is down
  EXPECT_EQ(repaired->rebuilt_mask, 0u);
  EXPECT_EQ(repaired->stores, chunk.stores);
}

TEST_F(ChunkStoreTest, RepairFailsCleanlyBelowKShards) {
  Build(4, 2, 8);
  const StoredChunk chunk = PutOk(RandomBytes(kMiB, 64));
  for (int i : {0, 1, 2}) DropShard(chunk, i);
  const size_t before = TotalShards();
  auto repaired = cs_->RepairShards(chunk, 0b111);
  EXPECT_FALSE(repaired.ok());
  EXPECT_EQ(TotalShards(), before);  // nothing written
}

// --- AuditChunk ---

TEST_F(ChunkStoreTest, AuditPassesAnIntactChunkAtEveryOffset) {
  Build(4, 2, 8);
  const StoredChunk chunk = PutOk(RandomBytes(3 * kMiB, 81));
  for (uint64_t offset : {uint64_t{0}, uint64_t{12345}, uint64_t{1} << 40}) {
    const ShardAudit a = cs_->AuditChunk(chunk, offset, 4096);
    EXPECT_EQ(a.ok_mask, 0b111111u);
    EXPECT_EQ(a.bad_mask, 0u);
    EXPECT_FALSE(a.inconsistent);
    EXPECT_EQ(a.bytes, 6u * 4096);
  }
  // A sample larger than the shard is the whole shard.
  EXPECT_EQ(cs_->AuditChunk(chunk, 0, 64 * kMiB).bytes, 6u * chunk.shard_size);
}

TEST_F(ChunkStoreTest, AuditCatchesAMissingShardAndALiarAndTellsThemApart) {
  Build(4, 2, 8);
  const StoredChunk chunk = PutOk(RandomBytes(2 * kMiB, 82));
  DropShard(chunk, 4);  // lost (or never stored)
  ShardAudit a = cs_->AuditChunk(chunk, 999, 4096);
  EXPECT_EQ(a.bad_mask, uint64_t{1} << 4);
  EXPECT_EQ(a.ok_mask, 0b101111u);

  const StoredChunk other = PutOk(RandomBytes(2 * kMiB, 83));
  FaultyOf(other, 1).SetCorruptReads(true);         // answers, but with wrong bytes
  a = cs_->AuditChunk(other, 0, chunk.shard_size);  // the whole shard: the flipped bit is in it
  EXPECT_EQ(a.bad_mask, uint64_t{1} << 1);
  EXPECT_FALSE(a.inconsistent);
  EXPECT_GE(cs_->store_calls()[other.stores[1]].audits_failed, 1u);

  // A down store says nothing about its shard.
  FaultyOf(other, 1).SetCorruptReads(false);
  FaultyOf(other, 3).SetDown(true);
  a = cs_->AuditChunk(other, 0, 4096);
  EXPECT_EQ(a.unreachable_mask, uint64_t{1} << 3);
  EXPECT_EQ(a.bad_mask, 0u);
}

TEST_F(ChunkStoreTest, AuditWithOneParityFlagsALiarForAFullCheck) {
  Build(4, 1, 6);
  const StoredChunk chunk = PutOk(RandomBytes(kMiB, 84));
  FaultyOf(chunk, 2).SetCorruptReads(true);
  const ShardAudit a = cs_->AuditChunk(chunk, 0, chunk.shard_size);
  EXPECT_TRUE(a.inconsistent);  // 5 samples: a wrong one shows, but not which
  auto full = cs_->RepairShards(chunk, 0, {}, /*check_all=*/true);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->bad_mask, uint64_t{1} << 2);
}

}  // namespace
}  // namespace quid
