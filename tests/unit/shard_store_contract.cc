// The ShardStore contract's tests (see shard_store_contract.h).
#include "tests/unit/shard_store_contract.h"

#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

namespace quid::contract {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1024 * 1024;

ShardId Id(uint32_t n) {
  ShardId id;
  uint32_t x = n * 2654435761u + 12345;
  for (size_t i = 0; i < id.bytes.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    id.bytes[i] = static_cast<uint8_t>(x);
  }
  return id;
}

Bytes Pattern(size_t size, uint32_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i)
    b[i] = static_cast<uint8_t>((i * 131 + seed * 7 + 3) ^ (i >> 8));
  return b;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "quid-shard-store-XXXXXX").string();
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void ShardStoreContractTest::SetUp() {
  store_ = MakeStore(0);
}

std::shared_ptr<ShardStore> ShardStoreContractTest::MakeStore(uint64_t capacity_bytes) {
  std::string dir = tmp_.path() + "/store" + std::to_string(stores_made_++);
  std::shared_ptr<ShardStore> store = GetParam().make(dir, capacity_bytes);
  EXPECT_NE(store, nullptr);
  return store;
}

std::set<ShardId> ShardStoreContractTest::Listed(ShardStore& store) {
  std::set<ShardId> ids;
  Status s = store.List([&](const ShardId& id, const ShardInfo&) {
    EXPECT_TRUE(ids.insert(id).second) << "listed twice: " << id.hex();
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return ids;
}

TEST_P(ShardStoreContractTest, PutThenGetReturnsTheSameBytes) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{kMiB}}) {
    ShardId id = Id(static_cast<uint32_t>(size));
    Bytes data = Pattern(size, 1);
    ASSERT_TRUE(store_->Put(id, data).ok());
    Result<Bytes> got = store_->Get(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, data) << "size " << size;
  }
}

TEST_P(ShardStoreContractTest, PutOverAnExistingShardReplacesIt) {
  ASSERT_TRUE(store_->Put(Id(1), Pattern(1000, 1)).ok());
  ASSERT_TRUE(store_->Put(Id(1), Pattern(10, 2)).ok());
  Result<Bytes> got = store_->Get(Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, Pattern(10, 2));
  Result<StoreUsage> usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->used_bytes, 10u);
  EXPECT_EQ(usage->shard_count, 1u);
}

TEST_P(ShardStoreContractTest, ReadRangeReturnsExactlyTheBytesAsked) {
  Bytes data = Pattern(100'000, 3);
  ASSERT_TRUE(store_->Put(Id(1), data).ok());
  struct Range {
    uint64_t offset, length;
  };
  for (Range r : {Range{0, 1}, Range{0, 100'000}, Range{65'536, 4096}, Range{99'999, 1},
                  Range{100'000, 0}, Range{123, 0}}) {
    Bytes out(r.length, 0xee);
    Status s = store_->ReadRange(Id(1), r.offset, out);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + r.offset))
        << r.offset << "+" << r.length;
  }
}

TEST_P(ShardStoreContractTest, ReadRangePastTheEndIsInvalid) {
  ASSERT_TRUE(store_->Put(Id(1), Pattern(100, 3)).ok());
  Bytes out(10);
  EXPECT_EQ(store_->ReadRange(Id(1), 91, out).code(), Code::kInvalid);
  EXPECT_EQ(store_->ReadRange(Id(1), 101, MutableByteSpan()).code(), Code::kInvalid);
  // An offset that would overflow offset + length.
  EXPECT_EQ(store_->ReadRange(Id(1), UINT64_MAX - 5, out).code(), Code::kInvalid);
  EXPECT_EQ(store_->ReadRange(Id(2), 0, out).code(), Code::kNotFound);
}

TEST_P(ShardStoreContractTest, RemoveIsIdempotent) {
  ASSERT_TRUE(store_->Put(Id(1), Pattern(10, 1)).ok());
  EXPECT_TRUE(store_->Remove(Id(1)).ok());
  EXPECT_TRUE(store_->Remove(Id(1)).ok());
  EXPECT_TRUE(store_->Remove(Id(2)).ok());
  EXPECT_EQ(store_->Get(Id(1)).status().code(), Code::kNotFound);
  Result<StoreUsage> usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->used_bytes, 0u);
  EXPECT_EQ(usage->shard_count, 0u);
}

TEST_P(ShardStoreContractTest, MissingShardIsNotFound) {
  EXPECT_EQ(store_->Get(Id(7)).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Stat(Id(7)).status().code(), Code::kNotFound);
}

TEST_P(ShardStoreContractTest, StatReportsSizeAndTime) {
  auto before = std::chrono::system_clock::now().time_since_epoch();
  ASSERT_TRUE(store_->Put(Id(1), Pattern(777, 1)).ok());
  Result<ShardInfo> info = store_->Stat(Id(1));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 777u);
  // Filesystem timestamps may trail the system clock by a tick.
  int64_t before_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(before).count();
  EXPECT_GT(info->mtime_ns, before_ns - 1'000'000'000);
}

TEST_P(ShardStoreContractTest, ListSeesExactlyThePutIds) {
  std::set<ShardId> expected;
  for (uint32_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(store_->Put(Id(i), Pattern(i, i)).ok());
    expected.insert(Id(i));
  }
  ASSERT_TRUE(store_->Remove(Id(10)).ok());
  expected.erase(Id(10));
  EXPECT_EQ(Listed(*store_), expected);

  Status s = store_->List([&](const ShardId& id, const ShardInfo& info) {
    uint32_t n = 0;
    while (Id(n) != id) ++n;
    EXPECT_EQ(info.size, n);
    return true;
  });
  EXPECT_TRUE(s.ok());
}

TEST_P(ShardStoreContractTest, ListStopsWhenTheCallbackSaysSo) {
  for (uint32_t i = 0; i < 20; ++i) ASSERT_TRUE(store_->Put(Id(i), Pattern(1, i)).ok());
  int calls = 0;
  EXPECT_TRUE(store_->List([&](const ShardId&, const ShardInfo&) { return ++calls < 3; }).ok());
  EXPECT_EQ(calls, 3);
}

TEST_P(ShardStoreContractTest, UsageCountsBytesAndShards) {
  ASSERT_TRUE(store_->Put(Id(1), Pattern(100, 1)).ok());
  ASSERT_TRUE(store_->Put(Id(2), Pattern(250, 1)).ok());
  ASSERT_TRUE(store_->Put(Id(3), Pattern(0, 1)).ok());
  Result<StoreUsage> usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->used_bytes, 350u);
  EXPECT_EQ(usage->shard_count, 3u);
  EXPECT_GE(usage->capacity_bytes, usage->used_bytes);
  ASSERT_TRUE(store_->Remove(Id(2)).ok());
  usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->used_bytes, 100u);
  EXPECT_EQ(usage->shard_count, 2u);
}

TEST_P(ShardStoreContractTest, PutBeyondCapacityIsNoSpaceAndStoresNothing) {
  std::shared_ptr<ShardStore> store = MakeStore(1000);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Id(1), Pattern(600, 1)).ok());
  Status s = store->Put(Id(2), Pattern(600, 2));
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_NE(s.message().find("400"), std::string::npos) << "says what is free: " << s.message();
  EXPECT_EQ(store->Get(Id(2)).status().code(), Code::kNotFound);
  EXPECT_EQ(Listed(*store), std::set<ShardId>{Id(1)});
  Result<StoreUsage> usage = store->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->used_bytes, 600u);
  EXPECT_EQ(usage->capacity_bytes, 1000u);
  EXPECT_EQ(usage->shard_count, 1u);

  // Replacing a shard counts only the difference; removing frees the room.
  EXPECT_TRUE(store->Put(Id(1), Pattern(1000, 3)).ok());
  EXPECT_EQ(store->Put(Id(2), Pattern(1, 2)).code(), Code::kNoSpace);
  ASSERT_TRUE(store->Remove(Id(1)).ok());
  EXPECT_TRUE(store->Put(Id(2), Pattern(600, 2)).ok());
}

TEST_P(ShardStoreContractTest, ConcurrentPutsAndGetsFromEightThreads) {
  constexpr int kThreads = 8;
  constexpr int kShardsPerThread = 16;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kShardsPerThread; ++i) {
        uint32_t n = static_cast<uint32_t>(t * 1000 + i);
        Bytes data = Pattern(4096 + n % 512, n);
        if (!store_->Put(Id(n), data).ok()) ++failures;
        // Everyone also overwrites and reads one shared shard.
        if (!store_->Put(Id(999'999), Pattern(2048, 5)).ok()) ++failures;
        Result<Bytes> got = store_->Get(Id(n));
        if (!got.ok() || *got != data) ++failures;
        Result<Bytes> shared = store_->Get(Id(999'999));
        if (!shared.ok() || *shared != Pattern(2048, 5)) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Result<StoreUsage> usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->shard_count, uint64_t{kThreads * kShardsPerThread + 1});
  EXPECT_EQ(Listed(*store_).size(), size_t{kThreads * kShardsPerThread + 1});
}

}  // namespace quid::contract
