// A volume on the node's leases follows them while mounted: the host of a new lease joins
// without a remount and takes shards from then on; a host that moved is reached at its new
// address under the same store index; a node daemon that does not answer changes nothing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "storage/stores/memory_store.h"
#include "storage/volume/volume.h"
#include "tests/support/random_bytes.h"

namespace quid {
namespace {

constexpr int64_t kDrainTimeout = 30'000'000'000;

// Hosts are MemoryStores found by key, whatever address they are asked at; the test plays
// the node daemon by editing the lease list.
class VolumeLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = (std::filesystem::temp_directory_path() /
             ("volume_leases_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove_all(home_);
    for (uint8_t h = 1; h <= 3; ++h) AddLease(h, "127.0.0.1:" + std::to_string(7000 + h));
    VolumeInitOptions init;
    init.home = home_;
    init.passphrase = "correct horse";
    init.kdf = KdfStrength::kFastForTests;
    init.chunk_size = 256 * 1024;
    init.data_shards = 2;
    init.parity_shards = 2;
    init.on_leases = true;
    init.hosts = Leases();
    init.store_factory = Factory();
    ASSERT_TRUE(Volume::Init(init).ok());
    Open();
  }
  void TearDown() override {
    if (volume_) (void)volume_->Close();
    volume_.reset();
    std::filesystem::remove_all(home_);
  }

  void AddLease(uint8_t host, const std::string& address) {
    std::lock_guard lock(mu_);
    leases_[host] = address;
    if (!hosts_[host])
      hosts_[host] = std::make_shared<MemoryStore>(0, "host" + std::to_string(host));
  }
  std::vector<StoreSpec> Leases() {
    std::lock_guard lock(mu_);
    std::vector<StoreSpec> specs;
    for (const auto& [host, address] : leases_) specs.push_back({"host", address, Bytes(32, host)});
    return specs;
  }
  StoreFactory Factory() {
    return [this](const StoreSpec& spec) -> Result<std::shared_ptr<ShardStore>> {
      std::lock_guard lock(mu_);
      asked_at_.push_back(spec.location);
      return std::shared_ptr<ShardStore>(hosts_.at(spec.public_key.at(0)));
    };
  }
  void Open() {
    VolumeOpenOptions open;
    open.home = home_;
    open.passphrase = "correct horse";
    open.cache_bytes = 0;
    open.store_factory = Factory();
    open.lease_hosts =
        [this](const std::vector<PlacedOnHost>& placed) -> Result<std::vector<LeaseHost>> {
      {
        std::lock_guard lock(mu_);
        last_placed_ = placed;
      }
      if (node_away_) return Status::Unavailable("node.sock: connection refused");
      std::vector<LeaseHost> out;
      for (StoreSpec& spec : Leases()) {
        std::lock_guard lock(mu_);
        const bool draining = draining_.count(spec.public_key.at(0)) != 0;
        out.push_back({std::move(spec), draining});
      }
      return out;
    };
    open.lease_refresh_ns = 20'000'000;  // 20 ms
    auto v = Volume::Open(open);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    volume_ = std::move(v).value();
  }
  // Waits (bounded) until the volume lists `count` stores.
  bool WaitForStores(size_t count) {
    for (int i = 0; i < 500; ++i) {
      if (volume_->GetStatus().stores.size() == count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  Ino WriteFile(const std::string& name, const Bytes& data) {
    auto attr = volume_->Mknod(kRootIno, name, S_IFREG | 0644, 0, Caller{1000, 1000});
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    if (!attr.ok()) return 0;
    auto n = volume_->Write(attr->ino, 0, data);
    EXPECT_TRUE(n.ok() && *n == data.size());
    EXPECT_TRUE(volume_->Drain(kDrainTimeout, nullptr).ok());
    return attr->ino;
  }
  Bytes ReadFile(Ino ino, size_t length) {
    Bytes out(length);
    auto n = volume_->Read(ino, 0, out);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    return out;
  }

  std::string home_;
  std::mutex mu_;
  std::map<uint8_t, std::string> leases_;                  // guarded by mu_
  std::map<uint8_t, std::shared_ptr<MemoryStore>> hosts_;  // guarded by mu_
  std::vector<std::string> asked_at_;                      // guarded by mu_
  std::vector<PlacedOnHost> last_placed_;                  // guarded by mu_
  std::set<uint8_t> draining_;                             // guarded by mu_
  std::atomic<bool> node_away_{false};
  std::unique_ptr<Volume> volume_;
};

TEST_F(VolumeLeasesTest, ANewLeaseJoinsTheMountedVolumeAndTakesShards) {
  const Bytes early = RandomBytes(600'000, 1);
  const Ino a = WriteFile("early", early);
  ASSERT_EQ(volume_->GetStatus().stores.size(), 3u);

  AddLease(4, "127.0.0.1:7004");
  ASSERT_TRUE(WaitForStores(4)) << "the new lease never joined the mounted volume";
  const Bytes late = RandomBytes(600'000, 2);
  const Ino b = WriteFile("late", late);
  // Four shards a chunk on four hosts: the new one holds one of every chunk written since.
  EXPECT_GT(hosts_[4]->shard_count(), 0u);
  EXPECT_EQ(ReadFile(a, early.size()), early);
  EXPECT_EQ(ReadFile(b, late.size()), late);

  // The configuration kept it: a remount with the node daemon away still has four stores.
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  node_away_ = true;
  Open();
  EXPECT_EQ(volume_->GetStatus().stores.size(), 4u);
  EXPECT_EQ(ReadFile(b, late.size()), late);
}

TEST_F(VolumeLeasesTest, AMovedHostIsReachedAtItsNewAddressUnderTheSameIndex) {
  const Bytes data = RandomBytes(600'000, 3);
  const Ino a = WriteFile("f", data);
  AddLease(2, "127.0.0.1:7102");
  bool asked_new = false;
  for (int i = 0; i < 500 && !asked_new; ++i) {
    {
      std::lock_guard lock(mu_);
      asked_new =
          std::find(asked_at_.begin(), asked_at_.end(), "127.0.0.1:7102") != asked_at_.end();
    }
    if (!asked_new) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(asked_new) << "the volume never opened the host at its new address";
  EXPECT_EQ(volume_->GetStatus().stores.size(), 3u) << "a moved host must not become a new store";
  EXPECT_EQ(ReadFile(a, data.size()), data);
  // And the new address is what the next mount uses.
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  {
    std::lock_guard lock(mu_);
    asked_at_.clear();
  }
  node_away_ = true;
  Open();
  std::lock_guard lock(mu_);
  EXPECT_NE(std::find(asked_at_.begin(), asked_at_.end(), "127.0.0.1:7102"), asked_at_.end());
  EXPECT_EQ(std::find(asked_at_.begin(), asked_at_.end(), "127.0.0.1:7002"), asked_at_.end());
}

TEST_F(VolumeLeasesTest, ANodeDaemonAwayChangesNothing) {
  const Bytes data = RandomBytes(300'000, 4);
  const Ino a = WriteFile("f", data);
  node_away_ = true;
  AddLease(4, "127.0.0.1:7004");  // would join, but nobody says so
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(volume_->GetStatus().stores.size(), 3u);
  EXPECT_EQ(ReadFile(a, data.size()), data);
  node_away_ = false;
  EXPECT_TRUE(WaitForStores(4));
}

// A lease that ends: its host takes no new shards, every shard on it moves to another host
// the chunk does not use, and the file reads back the same throughout; the volume's own
// count of what each host holds (sent to the node daemon's ledger) follows.
TEST_F(VolumeLeasesTest, ShardsMoveOffAHostWhoseLeaseEnds) {
  AddLease(4, "127.0.0.1:7004");  // 2+2 over 4 hosts, and a spare to move to
  ASSERT_TRUE(WaitForStores(4));
  AddLease(5, "127.0.0.1:7005");
  ASSERT_TRUE(WaitForStores(5));
  const Bytes data = RandomBytes(2'000'000, 5);
  const Ino a = WriteFile("f", data);
  uint8_t busiest = 1;
  for (uint8_t h = 1; h <= 5; ++h)
    if (hosts_[h]->shard_count() > hosts_[busiest]->shard_count()) busiest = h;
  ASSERT_GT(hosts_[busiest]->shard_count(), 0u);
  {
    std::lock_guard lock(mu_);
    draining_.insert(busiest);
  }
  bool moved = false;
  for (int i = 0; i < 1500 && !moved; ++i) {
    moved = hosts_[busiest]->shard_count() == 0;
    if (!moved) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(moved) << hosts_[busiest]->shard_count() << " shards stayed on the ending lease";
  EXPECT_EQ(ReadFile(a, data.size()), data);
  const VolumeStatus status = volume_->GetStatus();
  EXPECT_EQ(status.chunks_degraded, 0u) << "every chunk still on four distinct hosts";
  EXPECT_TRUE(status.stores[busiest - 1].draining);
  // New files never go there.
  WriteFile("g", RandomBytes(600'000, 6));
  EXPECT_EQ(hosts_[busiest]->shard_count(), 0u);
  // The placed count reaches the node daemon: nothing left on the drained host.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::lock_guard lock(mu_);
  ASSERT_FALSE(last_placed_.empty());
  for (const PlacedOnHost& p : last_placed_)
    if (p.public_key.at(0) == busiest) {
      EXPECT_EQ(p.bytes, 0u);
    }
}

// With nowhere to go, nothing is deleted and the status says so.
TEST_F(VolumeLeasesTest, WithNoRoomElsewhereShardsStayAndStatusSaysSo) {
  AddLease(4, "127.0.0.1:7004");  // exactly k+m hosts: no spare
  ASSERT_TRUE(WaitForStores(4));
  const Bytes data = RandomBytes(600'000, 7);
  const Ino a = WriteFile("f", data);
  const size_t held = hosts_[2]->shard_count();
  ASSERT_GT(held, 0u);
  {
    std::lock_guard lock(mu_);
    draining_.insert(2);
  }
  bool said = false;
  for (int i = 0; i < 1500 && !said; ++i) {
    said = volume_->GetStatus().stuck_shards > 0;
    if (!said) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(said) << "the status never said the shards have nowhere to go";
  EXPECT_EQ(hosts_[2]->shard_count(), held);
  EXPECT_EQ(ReadFile(a, data.size()), data);
}

}  // namespace
}  // namespace quid
