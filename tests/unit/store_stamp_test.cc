// Stores belong to one volume: the stamp file (store_stamp.h), claims on every kind of
// store, the policy of stamped_store.h (an unstamped store becomes ours, ours is used,
// another volume's is never touched), and one store named twice (distinct_stores.h).
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "storage/base/mem_env.h"
#include "storage/stores/distinct_stores.h"
#include "storage/stores/folder_store.h"
#include "storage/stores/memory_store.h"
#include "storage/stores/stamped_store.h"
#include "storage/stores/store_stamp.h"
#include "tests/support/faulty_store.h"
#include "tests/unit/shard_store_contract.h"

namespace quid {
namespace {

namespace fs = std::filesystem;
using contract::Id;
using contract::Pattern;

const StoreStamp kMine = StoreStamp::ForVolume("volume id of mine");
const StoreStamp kTheirs = StoreStamp::ForVolume("volume id of another");

std::shared_ptr<FolderStore> OpenFolder(const std::string& dir, Env* env) {
  auto store = FolderStore::Open(dir, 0, env);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? store.value() : nullptr;
}

std::optional<StoreStamp> StampOf(ShardStore& store) {
  auto held = store.ReadStamp();
  EXPECT_TRUE(held.ok()) << held.status().ToString();
  return held.ok() ? *held : std::nullopt;
}

TEST(StoreStampTest, StampsOfTwoVolumesDifferAndAreNotTheId) {
  EXPECT_NE(kMine, kTheirs);
  EXPECT_EQ(StoreStamp::ForVolume("volume id of mine"), kMine);
  const std::string id(16, '\x5a');
  EXPECT_NE(StoreStamp::ForVolume(id).hex(),
            ToHex(ByteSpan(reinterpret_cast<const uint8_t*>(id.data()), 16)));
  EXPECT_EQ(StoreStamp::FromBytes("short").status().code(), Code::kInvalid);
}

TEST(StoreStampTest, UnstampedFolderIsStampedAndKeepsTheFirstStamp) {
  MemEnv env;
  auto store = OpenFolder("/disk/s", &env);
  ASSERT_TRUE(store);
  EXPECT_EQ(StampOf(*store), std::nullopt);
  EXPECT_TRUE(ClaimForVolume(*store, kMine).ok());
  EXPECT_EQ(StampOf(*store), kMine);
  EXPECT_TRUE(ClaimForVolume(*store, kMine).ok());  // the same volume again: fine
  // A claim never replaces a stamp.
  Result<StoreStamp> other = store->ClaimStamp(kTheirs);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, kMine);
  Status refused = ClaimForVolume(*store, kTheirs);
  EXPECT_EQ(refused.code(), Code::kPermission);
  EXPECT_NE(refused.message().find("folder:/disk/s belongs to another volume"), std::string::npos)
      << refused.message();
  EXPECT_EQ(StampOf(*store), kMine);
  // The stamp is not a shard.
  EXPECT_EQ(store->Usage()->shard_count, 0u);
}

// The stamp is written like a shard: after a power cut at any sync point of the claim, the
// store carries no stamp or the whole stamp, and an acknowledged claim is never lost.
TEST(StoreStampTest, StampingSurvivesPowerLossAtEverySyncPoint) {
  int syncs_in_a_claim = 0;
  {
    MemEnv env;
    auto store = OpenFolder("/disk/s", &env);
    ASSERT_TRUE(store);
    env.SetHook([&](EnvOp op, const std::string&) {
      if (op == EnvOp::kSync || op == EnvOp::kSyncDir) ++syncs_in_a_claim;
      return Status::Ok();
    });
    ASSERT_TRUE(ClaimForVolume(*store, kMine).ok());
    env.SetHook(nullptr);
  }
  ASSERT_GE(syncs_in_a_claim, 2);  // the file, then its folder
  for (int cut = 1; cut <= syncs_in_a_claim + 1; ++cut) {
    SCOPED_TRACE("power cut at sync " + std::to_string(cut));
    MemEnv env;
    bool acknowledged = false;
    {
      auto store = OpenFolder("/disk/s", &env);
      ASSERT_TRUE(store);
      int syncs = 0;
      env.SetHook([&](EnvOp op, const std::string&) {
        if (op != EnvOp::kSync && op != EnvOp::kSyncDir) return Status::Ok();
        if (++syncs == cut) {
          env.Crash();
          return Status::IoError("power lost");
        }
        return Status::Ok();
      });
      acknowledged = ClaimForVolume(*store, kMine).ok();
      env.SetHook(nullptr);
    }
    env.Restart();
    auto store = OpenFolder("/disk/s", &env);
    ASSERT_TRUE(store);
    Result<std::optional<StoreStamp>> held = store->ReadStamp();
    ASSERT_TRUE(held.ok()) << "a torn stamp: " << held.status().ToString();
    if (acknowledged) {
      EXPECT_EQ(*held, kMine);
    }
    if (held->has_value()) {
      EXPECT_EQ(**held, kMine);
    }
    // Whatever the cut left, the volume can claim the store now.
    EXPECT_TRUE(ClaimForVolume(*store, kMine).ok());
    env.PowerLoss();
    store = OpenFolder("/disk/s", &env);
    ASSERT_TRUE(store);
    EXPECT_EQ(StampOf(*store), kMine);
  }
}

TEST(StoreStampTest, UnreadableStampIsNeitherOursNorReplaced) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/disk/s", 0700).ok());
  const std::string junk = "not a stamp at all, 28 bytes";
  ASSERT_TRUE(env.WriteFileAtomic(
                     StampFilePath("/disk/s"),
                     ByteSpan(reinterpret_cast<const uint8_t*>(junk.data()), junk.size()), 0600)
                  .ok());
  auto store = OpenFolder("/disk/s", &env);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->ReadStamp().status().code(), Code::kCorrupt);
  EXPECT_EQ(ClaimForVolume(*store, kMine).code(), Code::kCorrupt);
  EXPECT_EQ(*env.ReadWholeFile(StampFilePath("/disk/s")), junk);
  StampedStore stamped(store, kMine);
  EXPECT_EQ(stamped.List([](const ShardId&, const ShardInfo&) { return true; }).code(),
            Code::kUnavailable);
  EXPECT_TRUE(stamped.foreign());
}

TEST(StoreStampTest, MemoryAndFaultyStoresKeepAStampToo) {
  auto memory = std::make_shared<MemoryStore>();
  EXPECT_EQ(StampOf(*memory), std::nullopt);
  FaultyStore faulty(memory);
  faulty.SetDown(true);
  EXPECT_EQ(faulty.ClaimStamp(kMine).status().code(), Code::kUnavailable);
  EXPECT_EQ(StampOf(*memory), std::nullopt);
  faulty.SetDown(false);
  EXPECT_TRUE(ClaimForVolume(faulty, kMine).ok());
  EXPECT_EQ(StampOf(*memory), kMine);
  EXPECT_EQ(ClaimForVolume(*memory, kTheirs).code(), Code::kPermission);
}

TEST(StampedStoreTest, StampsAStoreWithoutAStampOnFirstUse) {
  auto memory = std::make_shared<MemoryStore>();
  StampedStore stamped(memory, kMine);
  ASSERT_TRUE(stamped.Put(Id(1), Pattern(100, 1)).ok());
  EXPECT_EQ(StampOf(*memory), kMine);
  EXPECT_FALSE(stamped.foreign());
  EXPECT_EQ(*stamped.Get(Id(1)), Pattern(100, 1));
}

TEST(StampedStoreTest, AnotherVolumesStoreAnswersNothingAndLosesNothing) {
  auto memory = std::make_shared<MemoryStore>(0, "mem-theirs");
  ASSERT_TRUE(ClaimForVolume(*memory, kTheirs).ok());
  ASSERT_TRUE(memory->Put(Id(7), Pattern(100, 7)).ok());
  StampedStore stamped(memory, kMine);

  Status verified = stamped.Verify();
  EXPECT_EQ(verified.code(), Code::kUnavailable);
  EXPECT_NE(verified.message().find("mem-theirs belongs to another volume"), std::string::npos)
      << verified.message();
  EXPECT_TRUE(stamped.foreign());
  bool listed_any = false;
  EXPECT_EQ(
      stamped.List([&](const ShardId&, const ShardInfo&) { return listed_any = true; }).code(),
      Code::kUnavailable);
  EXPECT_FALSE(listed_any);
  EXPECT_EQ(stamped.Remove(Id(7)).code(), Code::kUnavailable);
  EXPECT_EQ(stamped.Put(Id(8), Pattern(10, 8)).code(), Code::kUnavailable);
  EXPECT_EQ(stamped.Get(Id(7)).status().code(), Code::kUnavailable);
  EXPECT_EQ(stamped.Usage().status().code(), Code::kUnavailable);
  EXPECT_EQ(memory->ids(), std::vector<ShardId>{Id(7)});
  EXPECT_EQ(StampOf(*memory), kTheirs);
}

// A store wiped and taken by another volume while this one runs is not swept: List claims
// again every time.
TEST(StampedStoreTest, ListClaimsAgainEveryTime) {
  auto memory = std::make_shared<MemoryStore>();
  StampedStore stamped(memory, kMine);
  ASSERT_TRUE(stamped.Verify().ok());
  memory->ClearStamp();
  ASSERT_TRUE(ClaimForVolume(*memory, kTheirs).ok());
  ASSERT_TRUE(memory->Put(Id(3), Pattern(10, 3)).ok());
  EXPECT_EQ(stamped.List([](const ShardId&, const ShardInfo&) { return true; }).code(),
            Code::kUnavailable);
  EXPECT_TRUE(stamped.foreign());
}

// A store that cannot be asked now (a host away at mount) is asked again at its next call.
TEST(StampedStoreTest, AStoreAwayIsClaimedWhenItReturns) {
  auto memory = std::make_shared<MemoryStore>();
  auto faulty = std::make_shared<FaultyStore>(memory);
  faulty->SetDown(true);
  StampedStore stamped(faulty, kMine);
  EXPECT_EQ(stamped.Verify().code(), Code::kUnavailable);
  EXPECT_FALSE(stamped.foreign());
  faulty->SetDown(false);
  EXPECT_TRUE(stamped.Put(Id(1), Pattern(10, 1)).ok());
  EXPECT_EQ(StampOf(*memory), kMine);
}

TEST(StampedStoreTest, InitTakesOnlyFreeStores) {
  MemoryStore empty, mine, theirs, legacy(0, "mem-legacy");
  EXPECT_TRUE(CheckStoreIsFree(empty, kMine).ok());
  ASSERT_TRUE(ClaimForVolume(mine, kMine).ok());
  EXPECT_TRUE(CheckStoreIsFree(mine, kMine).ok());
  ASSERT_TRUE(ClaimForVolume(theirs, kTheirs).ok());
  EXPECT_EQ(CheckStoreIsFree(theirs, kMine).code(), Code::kPermission);
  // Shards and no stamp: a volume's from before stores were stamped.
  ASSERT_TRUE(legacy.Put(Id(1), Pattern(10, 1)).ok());
  Status refused = CheckStoreIsFree(legacy, kMine);
  EXPECT_EQ(refused.code(), Code::kPermission);
  EXPECT_NE(refused.message().find("mem-legacy holds 1 shards"), std::string::npos)
      << refused.message();
  EXPECT_EQ(StampOf(legacy), std::nullopt);  // the check changes nothing
}

class DistinctStoresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "quid-distinct-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(DistinctStoresTest, SameFolderUnderASecondPathIsRefused) {
  fs::create_directories(dir_ + "/a");
  fs::create_directories(dir_ + "/b");
  fs::create_directory_symlink(dir_ + "/a", dir_ + "/link-to-a");
  Env* env = Env::Default();
  EXPECT_TRUE(CheckDistinctFolders(env, {dir_ + "/a", dir_ + "/b"}).ok());
  Status refused = CheckDistinctFolders(env, {dir_ + "/a", dir_ + "/b", dir_ + "/link-to-a"});
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_NE(refused.message().find("are the same folder"), std::string::npos) << refused.message();
  EXPECT_EQ(CheckDistinctFolders(env, {dir_ + "/a", dir_ + "/b/../a"}).code(), Code::kInvalid);
}

TEST(DistinctHostsTest, SameKeyUnderTwoAddressesIsRefused) {
  const Bytes key1(32, 1), key2(32, 2);
  EXPECT_TRUE(CheckDistinctHosts({{"127.0.0.1:7001", key1}, {"127.0.0.1:7002", key2}}).ok());
  Status refused = CheckDistinctHosts(
      {{"127.0.0.1:7001", key1}, {"127.0.0.1:7002", key2}, {"localhost:7001", key1}});
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_NE(refused.message().find("127.0.0.1:7001 and localhost:7001 are the same host"),
            std::string::npos)
      << refused.message();
}

}  // namespace
}  // namespace quid
