// The ShardStore contract (shard_store_contract.cc) for the folder and memory stores, then
// what only the folder store (files on disk) and the fault-injecting wrapper add.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/base/mem_env.h"
#include "storage/stores/folder_store.h"
#include "storage/stores/memory_store.h"
#include "storage/stores/shard_store.h"
#include "tests/support/faulty_store.h"
#include "tests/unit/shard_store_contract.h"

namespace quid {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1024 * 1024;

using contract::Id;
using contract::Pattern;
using contract::ShardStoreContractTest;
using contract::TempDir;

INSTANTIATE_TEST_SUITE_P(
    AllStores, ShardStoreContractTest,
    ::testing::Values(
        contract::ContractStore{"Folder",
                                [](const std::string& dir, uint64_t capacity) {
                                  auto store = FolderStore::Open(dir, capacity);
                                  EXPECT_TRUE(store.ok()) << store.status().ToString();
                                  return store.ok() ? std::shared_ptr<ShardStore>(store.value())
                                                    : nullptr;
                                }},
        contract::ContractStore{"FolderOnMemEnv",
                                [](const std::string& dir, uint64_t capacity) {
                                  // One simulated disk for every store made;
                                  // each gets its own folder on it.
                                  static MemEnv* env = new MemEnv();
                                  auto store = FolderStore::Open(dir, capacity, env);
                                  EXPECT_TRUE(store.ok()) << store.status().ToString();
                                  return store.ok() ? std::shared_ptr<ShardStore>(store.value())
                                                    : nullptr;
                                }},
        contract::ContractStore{"Memory",
                                [](const std::string&, uint64_t capacity) {
                                  return std::shared_ptr<ShardStore>(
                                      std::make_shared<MemoryStore>(capacity));
                                }}),
    contract::ContractStoreName);

// --- FolderStore: what only files on a disk can do ---

class FolderStoreTest : public ::testing::Test {
 protected:
  std::shared_ptr<FolderStore> Open(uint64_t capacity_bytes = 0) {
    auto store = FolderStore::Open(dir_, capacity_bytes);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? store.value() : nullptr;
  }
  std::string ShardFile(const ShardId& id) {
    return dir_ + "/" + id.hex().substr(0, 2) + "/" + id.hex() + ".shard";
  }
  static void FlipByte(const std::string& path, uint64_t offset) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    uint8_t b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
    b ^= 0x10;
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
    ::close(fd);
  }

  TempDir tmp_;
  std::string dir_ = tmp_.path() + "/nested/store";
};

TEST_F(FolderStoreTest, OpenCreatesTheFolderAndShardsLandInFanoutFolders) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::is_directory(dir_));
  ASSERT_TRUE(store->Put(Id(1), Pattern(10, 1)).ok());
  EXPECT_TRUE(fs::is_regular_file(ShardFile(Id(1))));
  EXPECT_EQ(fs::file_size(ShardFile(Id(1))), FolderStore::kHeaderBytes + 10);
  EXPECT_EQ(store->name(), "folder:" + dir_);
}

TEST_F(FolderStoreTest, FlippedPayloadByteOnDiskIsCorrupt) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Bytes data = Pattern(5000, 1);
  ASSERT_TRUE(store->Put(Id(1), data).ok());
  FlipByte(ShardFile(Id(1)), FolderStore::kHeaderBytes + 1234);
  Result<Bytes> got = store->Get(Id(1));
  EXPECT_EQ(got.status().code(), Code::kCorrupt);
  EXPECT_NE(got.status().message().find(Id(1).hex()), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find(dir_), std::string::npos);
  // ReadRange leaves verification to the caller's AEAD: it returns the rotten byte.
  Bytes out(1);
  ASSERT_TRUE(store->ReadRange(Id(1), 1234, out).ok());
  EXPECT_EQ(out[0], data[1234] ^ 0x10);
}

TEST_F(FolderStoreTest, FlippedHeaderByteIsCorrupt) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Id(1), Pattern(100, 1)).ok());
  FlipByte(ShardFile(Id(1)), 10);  // inside the payload length
  EXPECT_EQ(store->Get(Id(1)).status().code(), Code::kCorrupt);
  Bytes out(1);
  EXPECT_EQ(store->ReadRange(Id(1), 0, out).code(), Code::kCorrupt);
}

TEST_F(FolderStoreTest, TruncatedFileIsCorrupt) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Id(1), Pattern(100, 1)).ok());
  ASSERT_TRUE(store->Put(Id(2), Pattern(100, 2)).ok());
  ASSERT_EQ(::truncate(ShardFile(Id(1)).c_str(), FolderStore::kHeaderBytes + 50), 0);
  ASSERT_EQ(::truncate(ShardFile(Id(2)).c_str(), 7), 0);
  EXPECT_EQ(store->Get(Id(1)).status().code(), Code::kCorrupt);
  EXPECT_EQ(store->Get(Id(2)).status().code(), Code::kCorrupt);
  Bytes out(1);
  EXPECT_EQ(store->ReadRange(Id(1), 0, out).code(), Code::kCorrupt);
  EXPECT_EQ(store->ReadRange(Id(2), 0, out).code(), Code::kCorrupt);
}

TEST_F(FolderStoreTest, LeftoverTempFilesAreRemovedAtOpen) {
  std::string temp;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(Id(1), Pattern(100, 1)).ok());
    // What a crash between creating and renaming the temp file leaves behind.
    temp = ShardFile(Id(2)) + ".tmp.4242.7";
    fs::create_directories(fs::path(temp).parent_path());
    std::ofstream(temp) << "half an upload";
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(fs::exists(ShardFile(Id(1))));
  EXPECT_EQ(store->Get(Id(2)).status().code(), Code::kNotFound);
  Result<StoreUsage> usage = store->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->shard_count, 1u);
  EXPECT_EQ(usage->used_bytes, 100u);
}

TEST_F(FolderStoreTest, ReopenSeesTheSameShardsAndUsage) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (uint32_t i = 0; i < 30; ++i) ASSERT_TRUE(store->Put(Id(i), Pattern(i * 10, i)).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Result<StoreUsage> usage = store->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->shard_count, 30u);
  EXPECT_EQ(usage->used_bytes, uint64_t{10 * (29 * 30 / 2)});
  for (uint32_t i = 0; i < 30; ++i) {
    Result<Bytes> got = store->Get(Id(i));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, Pattern(i * 10, i));
  }
}

TEST_F(FolderStoreTest, GarbageInTheFolderIsIgnored) {
  ShardId id = Id(1);
  std::string hex = id.hex();
  std::string fanout = hex.substr(0, 2);
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(id, Pattern(100, 1)).ok());
  }
  std::string upper = hex;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](char c) { return static_cast<char>(std::toupper(c)); });
  ShardId elsewhere = Id(2);
  for (uint32_t n = 3; elsewhere.hex().substr(0, 2) == fanout; ++n) elsewhere = Id(n);
  std::string in_fanout = dir_ + "/" + fanout + "/";
  std::ofstream(dir_ + "/README") << "x";
  fs::create_directories(dir_ + "/zz/sub");
  std::ofstream(dir_ + "/zz/" + hex + ".shard") << "x";
  std::ofstream(in_fanout + "notes.txt") << "x";
  std::ofstream(in_fanout + upper + ".shard") << "x";              // not lower-case
  std::ofstream(in_fanout + elsewhere.hex() + ".shard") << "x";    // wrong fan-out
  std::ofstream(in_fanout + hex.substr(0, 31) + ".shard") << "x";  // too short
  std::ofstream(in_fanout + hex + ".shard.bak") << "x";            // wrong suffix
  std::string dir_named_like_a_shard = hex.substr(0, 31) + (hex.back() == '0' ? "1" : "0");
  fs::create_directories(in_fanout + dir_named_like_a_shard + ".shard");
  // A fan-out name that is a file, not a folder.
  std::string file_fanout = fanout == "fe" ? "fd" : "fe";
  if (!fs::exists(dir_ + "/" + file_fanout)) std::ofstream(dir_ + "/" + file_fanout) << "x";

  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<ShardId> listed;
  ASSERT_TRUE(store
                  ->List([&](const ShardId& s, const ShardInfo&) {
                    listed.push_back(s);
                    return true;
                  })
                  .ok());
  EXPECT_EQ(listed, std::vector<ShardId>{id});
  Result<StoreUsage> usage = store->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->shard_count, 1u);
  EXPECT_EQ(usage->used_bytes, 100u);
}

TEST_F(FolderStoreTest, SecondOpenOfTheSameFolderIsBusy) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto second = FolderStore::Open(dir_, 0);
  EXPECT_EQ(second.status().code(), Code::kBusy);
}

TEST_F(FolderStoreTest, CapacityZeroMeansTheFilesystemsFreeSpace) {
  auto store = Open(0);
  ASSERT_NE(store, nullptr);
  Result<StoreUsage> usage = store->Usage();
  ASSERT_TRUE(usage.ok());
  // Others write to the same filesystem meanwhile: compare loosely.
  uint64_t available = fs::space(dir_).available;
  uint64_t slack = 256 * kMiB;
  EXPECT_GT(usage->capacity_bytes + slack, available);
  EXPECT_LT(usage->capacity_bytes, available + slack);
}

// --- FaultyStore: one switch per fault ---

class FaultyStoreTest : public ::testing::Test {
 protected:
  std::shared_ptr<MemoryStore> inner_ = std::make_shared<MemoryStore>();
  FaultyStore store_{inner_};
};

TEST_F(FaultyStoreTest, ForwardsWhenNoFaultIsSet) {
  ASSERT_TRUE(store_.Put(Id(1), Pattern(10, 1)).ok());
  EXPECT_EQ(inner_->shard_count(), 1u);
  Result<Bytes> got = store_.Get(Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, Pattern(10, 1));
  EXPECT_EQ(store_.name(), inner_->name());
  EXPECT_EQ(store_.puts(), 1u);
  EXPECT_EQ(store_.gets(), 1u);
}

TEST_F(FaultyStoreTest, DownStoreIsUnavailableForEveryCall) {
  ASSERT_TRUE(store_.Put(Id(1), Pattern(10, 1)).ok());
  store_.SetDown(true);
  Bytes out(1);
  EXPECT_EQ(store_.Put(Id(2), Pattern(10, 1)).code(), Code::kUnavailable);
  EXPECT_EQ(store_.Get(Id(1)).status().code(), Code::kUnavailable);
  EXPECT_EQ(store_.ReadRange(Id(1), 0, out).code(), Code::kUnavailable);
  EXPECT_EQ(store_.Remove(Id(1)).code(), Code::kUnavailable);
  EXPECT_EQ(store_.Stat(Id(1)).status().code(), Code::kUnavailable);
  EXPECT_EQ(store_.List([](const ShardId&, const ShardInfo&) { return true; }).code(),
            Code::kUnavailable);
  EXPECT_EQ(store_.Usage().status().code(), Code::kUnavailable);
  EXPECT_EQ(inner_->shard_count(), 1u);
  store_.SetDown(false);
  EXPECT_TRUE(store_.Get(Id(1)).ok());
}

TEST_F(FaultyStoreTest, RefusedWritesAreNoSpace) {
  store_.SetRefuseWrites(true);
  EXPECT_EQ(store_.Put(Id(1), Pattern(10, 1)).code(), Code::kNoSpace);
  EXPECT_EQ(inner_->shard_count(), 0u);
  store_.SetRefuseWrites(false);
  EXPECT_TRUE(store_.Put(Id(1), Pattern(10, 1)).ok());
}

TEST_F(FaultyStoreTest, FailNextPutsFailsExactlyThatMany) {
  store_.FailNextPuts(2);
  EXPECT_EQ(store_.Put(Id(1), Pattern(10, 1)).code(), Code::kIoError);
  EXPECT_EQ(store_.Put(Id(1), Pattern(10, 1)).code(), Code::kIoError);
  EXPECT_TRUE(store_.Put(Id(1), Pattern(10, 1)).ok());
  EXPECT_EQ(inner_->shard_count(), 1u);
  EXPECT_EQ(store_.puts(), 3u);
}

TEST_F(FaultyStoreTest, CorruptReadsFlipOneBitThatOnlyTheCallerCanCatch) {
  Bytes data = Pattern(1000, 1);
  ASSERT_TRUE(store_.Put(Id(1), data).ok());
  store_.SetCorruptReads(true);
  Result<Bytes> got = store_.Get(Id(1));
  ASSERT_TRUE(got.ok());  // the lie passed the inner store's checksum
  ASSERT_EQ(got->size(), data.size());
  int differing_bits = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    differing_bits += __builtin_popcount((*got)[i] ^ data[i]);
  }
  EXPECT_EQ(differing_bits, 1);

  Bytes out(100);
  ASSERT_TRUE(store_.ReadRange(Id(1), 200, out).ok());
  EXPECT_FALSE(std::equal(out.begin(), out.end(), data.begin() + 200));
  EXPECT_EQ(store_.reads(), 1u);
  // The shard at rest is intact.
  EXPECT_EQ(*inner_->Get(Id(1)), data);
}

TEST_F(FaultyStoreTest, DelaySlowsEveryCall) {
  store_.SetDelay(std::chrono::milliseconds(30));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(store_.Get(Id(1)).status().code(), Code::kNotFound);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
}

// --- MemoryStore test hooks ---

TEST(MemoryStoreTest, CorruptByteMakesGetReportCorrupt) {
  MemoryStore store;
  ASSERT_TRUE(store.Put(Id(1), Pattern(100, 1)).ok());
  store.CorruptByte(Id(1), 50);
  EXPECT_EQ(store.Get(Id(1)).status().code(), Code::kCorrupt);
}

TEST(MemoryStoreTest, DropLosesTheShard) {
  MemoryStore store;
  ASSERT_TRUE(store.Put(Id(1), Pattern(100, 1)).ok());
  ASSERT_TRUE(store.Put(Id(2), Pattern(100, 1)).ok());
  store.Drop(Id(1));
  EXPECT_EQ(store.Get(Id(1)).status().code(), Code::kNotFound);
  EXPECT_EQ(store.shard_count(), 1u);
  EXPECT_EQ(store.ids(), std::vector<ShardId>{Id(2)});
  EXPECT_EQ(store.Usage()->used_bytes, 100u);
}

}  // namespace
}  // namespace quid
