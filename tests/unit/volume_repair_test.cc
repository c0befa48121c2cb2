// The repair engine inside a mounted volume: eight in-memory stores behind FaultyStores, a
// 4+2 volume, real time with a short host grace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/stores/memory_store.h"
#include "storage/volume/volume.h"
#include "tests/support/faulty_store.h"
#include "tests/support/random_bytes.h"

namespace quid {
namespace {

constexpr int kStores = 8;
constexpr int64_t kDrainTimeout = 30'000'000'000;

class VolumeRepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = (std::filesystem::temp_directory_path() /
             ("volume_repair_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove_all(home_);
    VolumeInitOptions init;
    init.home = home_;
    init.passphrase = "correct horse";
    init.kdf = KdfStrength::kFastForTests;
    init.chunk_size = 256 * 1024;
    for (int i = 0; i < kStores; ++i)
      init.store_folders.push_back(home_ + "/unused-store" + std::to_string(i));
    ASSERT_TRUE(Volume::Init(init).ok());
    for (int i = 0; i < kStores; ++i) {
      memory_.push_back(std::make_shared<MemoryStore>(0, "mem" + std::to_string(i)));
      faulty_.push_back(std::make_shared<FaultyStore>(memory_.back()));
    }
  }
  void TearDown() override {
    for (auto& f : faulty_) f->SetDown(false);
    if (volume_) (void)volume_->Close();
    volume_.reset();
    std::filesystem::remove_all(home_);
  }

  void Open(int64_t grace_ns, uint64_t audit_budget = 0,
            int64_t cleanup_grace_ns = 600'000'000'000) {
    VolumeOpenOptions open;
    open.cleanup_grace_ns = cleanup_grace_ns;
    open.home = home_;
    open.passphrase = "correct horse";
    open.cache_bytes = 0;
    open.repair.host_grace_ns = grace_ns;
    open.repair.rate_bytes_per_s = 0;
    open.repair.audit_bytes_per_host_hour = audit_budget;
    for (auto& f : faulty_) open.stores_override.push_back(f);
    auto v = Volume::Open(open);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    volume_ = std::move(v).value();
  }

  // A file of `bytes` random bytes, stored on the stores.
  void WriteFile(const std::string& name, const Bytes& data) {
    auto attr = volume_->Mknod(kRootIno, name, S_IFREG | 0644, 0, Caller{0, 0});
    ASSERT_TRUE(attr.ok());
    ino_ = attr->ino;
    auto n = volume_->Write(ino_, 0, data);
    ASSERT_TRUE(n.ok());
    ASSERT_TRUE(volume_->Drain(kDrainTimeout, nullptr).ok());
  }
  Bytes ReadBack(size_t size) {
    Bytes out(size);
    auto n = volume_->Read(ino_, 0, out);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return out;
  }

  // Polls status until `done` holds or `seconds` pass.
  bool WaitFor(int seconds, const std::function<bool(const VolumeStatus&)>& done) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (done(volume_->GetStatus())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  static bool FullyHealthy(const VolumeStatus& s) {
    return s.chunks > 0 && s.chunks_healthy == s.chunks && s.repair.chunks_left == 0;
  }
  // Opens with a 1 s grace, writes `data` as file "f", then takes store `store` away (its
  // disk intact) until its chunks are rebuilt elsewhere; `held` is what it held then.
  void LoseAStoreWithItsDisk(size_t store, const Bytes& data, size_t* held) {
    Open(1'000'000'000);
    WriteFile("f", data);
    ASSERT_TRUE(WaitFor(5, FullyHealthy));
    *held = memory_[store]->shard_count();
    ASSERT_GT(*held, 0u);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // past the clock-skew allowance
    faulty_[store]->SetDown(true);
    ASSERT_TRUE(WaitFor(
        30, [](const VolumeStatus& s) { return FullyHealthy(s) && s.repair.chunks_done > 0; }));
  }

  size_t TotalShards() {
    size_t n = 0;
    for (auto& m : memory_) n += m->shard_count();
    return n;
  }

  std::string home_;
  std::vector<std::shared_ptr<MemoryStore>> memory_;
  std::vector<std::shared_ptr<FaultyStore>> faulty_;
  std::unique_ptr<Volume> volume_;
  Ino ino_ = 0;
};

TEST_F(VolumeRepairTest, LostStoresAreRebuiltOntoTheOthersThenTwoMoreLossesLoseNothing) {
  Open(1'000'000'000);
  const Bytes data = RandomBytes(3 * 1024 * 1024 + 5, 71);
  WriteFile("f", data);
  ASSERT_TRUE(WaitFor(5, FullyHealthy));
  for (int s : {1, 6}) {
    faulty_[s]->SetDown(true);
    for (const ShardId& id : memory_[s]->ids()) memory_[s]->Drop(id);  // its disk went too
  }
  EXPECT_TRUE(WaitFor(5, [](const VolumeStatus& s) { return s.chunks_degraded > 0; }));
  ASSERT_TRUE(WaitFor(30, FullyHealthy)) << volume_->GetStatus().chunks_degraded;
  const VolumeStatus after = volume_->GetStatus();
  EXPECT_EQ(after.chunks_lost, 0u);
  EXPECT_GT(after.repair.chunks_done, 0u);
  EXPECT_EQ(after.stores[1].state, HostState::kLost);
  // Every chunk now has six shards on the six stores left, so two more can go.
  for (int s : {0, 3}) faulty_[s]->SetDown(true);
  EXPECT_EQ(ReadBack(data.size()), data);
}

TEST_F(VolumeRepairTest, AHostAwayForLessThanTheGraceCostsNoRepairTraffic) {
  Open(30'000'000'000);
  const Bytes data = RandomBytes(2 * 1024 * 1024, 72);
  WriteFile("f", data);
  const size_t shards = TotalShards();
  faulty_[2]->SetDown(true);
  EXPECT_TRUE(WaitFor(5, [](const VolumeStatus& s) { return s.chunks_degraded > 0; }));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(volume_->GetStatus().stores[2].state, HostState::kAway);
  faulty_[2]->SetDown(false);
  ASSERT_TRUE(WaitFor(5, FullyHealthy));
  const VolumeStatus s = volume_->GetStatus();
  EXPECT_EQ(s.repair.bytes_done, 0u);
  EXPECT_EQ(s.repair.chunks_done, 0u);
  EXPECT_EQ(TotalShards(), shards);  // not one shard written
  EXPECT_EQ(ReadBack(data.size()), data);
}

// Reads touch data shards only: the files below have 16 chunks, so the store under test holds
// a data shard of one of them but with probability 2^-16 at most.
TEST_F(VolumeRepairTest, AStoreBackAfterItWasLostHasItsStaleShardsSweptAndRoomFreed) {
  // The sweep's usual grace (ten minutes) would keep these young shards: what removes them
  // is that they are older than the store's departure.
  const Bytes data = RandomBytes(2 * 1024 * 1024 + 9, 73);
  size_t held = 0;
  ASSERT_NO_FATAL_FAILURE(LoseAStoreWithItsDisk(3, data, &held));
  EXPECT_EQ(memory_[3]->shard_count(), held);  // nothing could reach it
  faulty_[3]->SetDown(false);
  // Its copies were rebuilt elsewhere: every one it still holds is stale, and goes.
  EXPECT_TRUE(WaitFor(10, [&](const VolumeStatus&) { return memory_[3]->shard_count() == 0; }))
      << memory_[3]->shard_count() << " of " << held << " stale shards left";
  EXPECT_TRUE(FullyHealthy(volume_->GetStatus()));
  EXPECT_EQ(ReadBack(data.size()), data);
}

TEST_F(VolumeRepairTest, AReturnedStoreThatCannotBeListedAtFirstIsSweptOnceItCan) {
  // A host can answer a probe before it answers a listing (a connection still being set
  // up, a listing that times out): the sweep of its stale shards must not be spent on it.
  const Bytes data = RandomBytes(2 * 1024 * 1024 + 9, 75);
  size_t held = 0;
  ASSERT_NO_FATAL_FAILURE(LoseAStoreWithItsDisk(2, data, &held));
  const uint64_t lists_before = faulty_[2]->lists();
  faulty_[2]->FailNextLists(2);
  faulty_[2]->SetDown(false);
  EXPECT_TRUE(WaitFor(15, [&](const VolumeStatus&) { return memory_[2]->shard_count() == 0; }))
      << memory_[2]->shard_count() << " of " << held << " stale shards left";
  EXPECT_GE(faulty_[2]->lists() - lists_before, 3u);  // two refused, then the one that swept
  EXPECT_EQ(ReadBack(data.size()), data);
}

TEST_F(VolumeRepairTest, AShardLostOnALiveStoreIsFoundByAReadAndReplaced) {
  Open(3'600'000'000'000);
  const Bytes data = RandomBytes(4 * 1024 * 1024, 73);
  WriteFile("f", data);
  const size_t shards = TotalShards();
  // Lose one shard of every chunk silently on store 4 (the store still answers).
  for (const ShardId& id : memory_[4]->ids()) memory_[4]->Drop(id);
  const size_t dropped = shards - TotalShards();
  ASSERT_GT(dropped, 0u);
  EXPECT_EQ(ReadBack(data.size()), data);  // degraded reads, right bytes
  // A read touches data shards only: the lost data shards are found (parity ones are the
  // audits' to find, and these are off here). A store that lost every shard it was asked
  // for is no longer trusted, so the rest of its shards move too.
  ASSERT_TRUE(WaitFor(20, [&](const VolumeStatus& s) {
    return s.repair.bad_shards > 0 && FullyHealthy(s);
  })) << volume_->GetStatus().repair.bad_shards;
  EXPECT_LE(volume_->GetStatus().repair.bad_shards, dropped);
  const uint64_t degraded = volume_->GetStatus().degraded_reads;
  EXPECT_EQ(ReadBack(data.size()), data);
  EXPECT_EQ(volume_->GetStatus().degraded_reads, degraded);  // healthy again
}

TEST_F(VolumeRepairTest, AStoreAnsweringWithWrongBytesIsCaughtByAReadAndLeft) {
  Open(3'600'000'000'000);
  const Bytes data = RandomBytes(4 * 1024 * 1024, 74);
  WriteFile("f", data);
  faulty_[5]->SetCorruptReads(true);
  EXPECT_EQ(ReadBack(data.size()), data);  // never a wrong byte
  ASSERT_TRUE(WaitFor(20, [](const VolumeStatus& s) {
    return s.repair.bad_shards > 0 && s.repair.chunks_left == 0;
  }));
  // Once rebuilt, no chunk needs the lying store for a healthy read.
  const size_t on_liar = memory_[5]->shard_count();
  const uint64_t degraded = volume_->GetStatus().degraded_reads;
  EXPECT_EQ(ReadBack(data.size()), data);
  EXPECT_EQ(volume_->GetStatus().degraded_reads, degraded) << on_liar << " shards on the liar";
}

constexpr uint64_t kBigBudget = 4ull << 30;  // per host per hour: a full pass in moments

TEST_F(VolumeRepairTest, AuditsCatchAStoreThatSilentlyDeletesAndItsDataMovesOff) {
  Open(3'600'000'000'000, kBigBudget);
  const Bytes data = RandomBytes(6 * 1024 * 1024, 75);  // 24 chunks: ~18 shards a store
  WriteFile("f", data);
  const size_t held = memory_[3]->shard_count();
  // Distrust takes at least 3 failed audits: a store that held fewer is repaired around,
  // not judged (chunk ids, and so placement, differ from run to run).
  ASSERT_GE(held, 5u);
  for (const ShardId& id : memory_[3]->ids()) memory_[3]->Drop(id);  // no read ever asks
  ASSERT_TRUE(WaitFor(30,
                      [](const VolumeStatus& s) {
                        return s.stores[3].distrusted && FullyHealthy(s) &&
                               s.repair.audit_cycles >= 2;
                      }))
      << volume_->GetStatus().repair.audit_failures << " audit failures";
  const VolumeStatus s = volume_->GetStatus();
  EXPECT_GE(s.repair.audit_failures, 3u);
  EXPECT_GE(s.stores[3].audits_failed, 3u);
  EXPECT_EQ(memory_[3]->shard_count(), 0u);  // nothing new placed on it
  EXPECT_EQ(s.degraded_reads, 0u);           // found by audits alone
  EXPECT_EQ(ReadBack(data.size()), data);
  EXPECT_EQ(volume_->GetStatus().degraded_reads, 0u);
}

TEST_F(VolumeRepairTest, AuditsCatchALiarWithoutAnyRead) {
  Open(3'600'000'000'000, kBigBudget);
  const Bytes data = RandomBytes(6 * 1024 * 1024, 76);  // 24 chunks: ~18 shards a store
  WriteFile("f", data);
  faulty_[6]->SetCorruptReads(true);
  ASSERT_TRUE(WaitFor(30, [](const VolumeStatus& s) {
    return s.stores[6].distrusted && FullyHealthy(s) && s.repair.audit_cycles >= 2;
  }));
  EXPECT_EQ(volume_->GetStatus().degraded_reads, 0u);
  EXPECT_EQ(ReadBack(data.size()), data);
  EXPECT_EQ(volume_->GetStatus().degraded_reads, 0u);  // no chunk needs the liar any more
}

TEST_F(VolumeRepairTest, ARemountKeepsAHostsAbsenceAndDistrust) {
  Open(6'000'000'000, kBigBudget);
  const Bytes data = RandomBytes(6 * 1024 * 1024, 77);  // 24 chunks: ~18 shards a store
  WriteFile("f", data);
  faulty_[6]->SetCorruptReads(true);
  ASSERT_TRUE(WaitFor(30, [](const VolumeStatus& s) { return s.stores[6].distrusted; }));
  faulty_[2]->SetDown(true);
  ASSERT_TRUE(
      WaitFor(5, [](const VolumeStatus& s) { return s.stores[2].state == HostState::kAway; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();

  // Five seconds of a six-second grace had run: a fresh grace would wait six more.
  const auto reopened = std::chrono::steady_clock::now();
  Open(6'000'000'000, kBigBudget);
  EXPECT_TRUE(volume_->GetStatus().stores[6].distrusted);  // before any audit of this mount
  ASSERT_TRUE(WaitFor(20, [](const VolumeStatus& s) {
    return s.stores[2].state == HostState::kLost && FullyHealthy(s) && s.repair.chunks_done > 0;
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - reopened, std::chrono::milliseconds(4500));
  EXPECT_EQ(ReadBack(data.size()), data);
}

TEST_F(VolumeRepairTest, AuditTrafficStaysWithinItsBudget) {
  const uint64_t budget = 16ull << 20;  // per host per hour
  Open(3'600'000'000'000, budget);
  WriteFile("f", RandomBytes(4 * 1024 * 1024, 77));
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t b0 = volume_->GetStatus().repair.audit_bytes;
  std::this_thread::sleep_for(std::chrono::seconds(4));
  const uint64_t spent = volume_->GetStatus().repair.audit_bytes - b0;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double allowed = static_cast<double>(budget) * kStores * seconds / 3600;
  EXPECT_GT(spent, 0u);
  // One audit (6 samples of 4 KiB) may run ahead of the budget, no more.
  EXPECT_LE(static_cast<double>(spent), allowed + 6 * 4096) << seconds << " s";
}

TEST_F(VolumeRepairTest, CheckFindsMissingCorruptAndOrphanShardsAndRepairsThem) {
  Open(3'600'000'000'000);  // audits off: the check alone finds what is wrong
  const Bytes data = RandomBytes(2 * 1024 * 1024, 78);
  WriteFile("f", data);
  CheckReport clean = *volume_->Check({}, nullptr);
  EXPECT_GT(clean.chunks, 0u);
  EXPECT_EQ(clean.shards_checked, clean.chunks * 6);
  EXPECT_EQ(clean.shards_missing + clean.shards_corrupt + clean.orphan_shards, 0u);

  const std::vector<ShardId> on2 = memory_[2]->ids();
  ASSERT_GE(on2.size(), 2u);
  memory_[2]->Drop(on2[0]);
  ASSERT_TRUE(memory_[7]->Put(ShardId{}, Bytes(100, 1)).ok());  // an orphan
  faulty_[5]->SetCorruptReads(true);
  const size_t on5 = memory_[5]->shard_count();
  CheckReport shallow = *volume_->Check({}, nullptr);
  EXPECT_EQ(shallow.shards_missing, 1u);
  EXPECT_EQ(shallow.shards_corrupt, 0u);  // a liar is only caught by fetching
  EXPECT_EQ(shallow.orphan_shards, 1u);
  EXPECT_EQ(shallow.orphans_recent, 1u);

  CheckOptions deep;
  deep.deep = true;
  std::vector<std::string> phases;
  CheckReport found = *volume_->Check(deep, [&](const CheckProgress& p) {
    if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
  });
  EXPECT_EQ(found.shards_missing, 1u);
  EXPECT_EQ(found.shards_corrupt, on5);
  EXPECT_EQ(found.chunks_unrecoverable, 0u);
  EXPECT_EQ(phases, (std::vector<std::string>{"listing", "verifying"}));

  CheckOptions repair = deep;
  repair.repair = true;
  CheckReport repaired = *volume_->Check(repair, nullptr);
  EXPECT_GT(repaired.chunks_repaired, 0u);
  CheckReport after = *volume_->Check(deep, nullptr);
  EXPECT_EQ(after.shards_missing + after.shards_corrupt, 0u)
      << after.shards_missing << " missing; " << (after.problems.empty() ? "" : after.problems[0]);
  EXPECT_EQ(ReadBack(data.size()), data);
}

TEST_F(VolumeRepairTest, CheckCallsUnrecoverableWhatHasFewerThanKShards) {
  Open(3'600'000'000'000);
  WriteFile("f", RandomBytes(300 * 1024, 79));
  for (int s : {0, 1, 2, 3, 4}) {
    for (const ShardId& id : memory_[s]->ids()) memory_[s]->Drop(id);
  }
  CheckReport r = *volume_->Check({}, nullptr);
  // 6 shards a chunk on 6 of 8 stores: at least 3 on the 5 that lost everything.
  EXPECT_GT(r.chunks, 0u);
  EXPECT_EQ(r.chunks_unrecoverable, r.chunks);
  EXPECT_FALSE(r.problems.empty());
}

}  // namespace
}  // namespace quid
