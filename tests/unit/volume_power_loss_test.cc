// The volume under power loss. Everything it keeps on disk (RocksDB, the journal, six
// folder stores) lives on one MemEnv; a workload of writes, fsyncs, flush rounds, renames
// over files, unlinks and truncates runs once to count its sync points, then once per
// sync point with the power cut right there (every byte not yet synced is gone). After
// each cut the volume is reopened and must show:
//   - every file and byte that an fsync (or a drain) covered, for paths nothing touched
//     since, exactly;
//   - every file that exists reads back whole, with no degraded read: no extent points at
//     a chunk whose shards are gone;
//   - once the cleanup pass has run and pending deletes are done, exactly k+m shards per
//     chunk on the stores: nothing leaked.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/base/mem_env.h"
#include "storage/stores/folder_store.h"
#include "storage/volume/volume.h"
#include "tests/support/random_bytes.h"

namespace quid {
namespace {

constexpr int kStores = 6;
constexpr const char* kHome = "/home";
constexpr const char* kPassphrase = "power loss";

std::string StorePath(int i) {
  return "/stores/s" + std::to_string(i);
}

// What the test believes the namespace holds: path -> contents (one directory).
using Model = std::map<std::string, Bytes>;

// The workload's view of the volume: operations by name, the model kept alongside.
class Workload {
 public:
  Workload(Volume* volume, MemEnv* env) : volume_(volume), env_(env) {}

  // Each step returns false when it could not finish, or when the power is already out
  // (the workload's process is dead then: it issues nothing more).
  bool Create(const std::string& name) {
    if (env_->crashed()) return false;
    auto attr = volume_->Mknod(kRootIno, name, S_IFREG | 0644, 0, Caller{0, 0});
    if (!Check(attr.status())) return false;
    current_[name] = {};
    touched_.insert(name);
    return true;
  }
  bool Write(const std::string& name, uint64_t offset, const Bytes& data) {
    if (env_->crashed()) return false;
    auto ino = Ino(name);
    if (!ino) return false;
    auto n = volume_->Write(*ino, offset, data);
    if (!Check(n.status())) return false;
    Bytes& content = current_[name];
    if (content.size() < offset + data.size()) content.resize(offset + data.size());
    std::copy(data.begin(), data.end(), content.begin() + static_cast<ptrdiff_t>(offset));
    touched_.insert(name);
    return true;
  }
  bool Truncate(const std::string& name, uint64_t size) {
    if (env_->crashed()) return false;
    auto ino = Ino(name);
    if (!ino) return false;
    SetAttrRequest request;
    request.size = size;
    if (!Check(volume_->SetAttr(*ino, request).status())) return false;
    current_[name].resize(size);
    touched_.insert(name);
    return true;
  }
  bool Rename(const std::string& from, const std::string& to) {
    if (env_->crashed()) return false;
    if (!Check(volume_->Rename(kRootIno, from, kRootIno, to, RenameFlags::kNone))) return false;
    current_[to] = current_[from];
    current_.erase(from);
    touched_.insert(from);
    touched_.insert(to);
    return true;
  }
  bool Unlink(const std::string& name) {
    if (env_->crashed()) return false;
    auto ino = Ino(name);
    if (!ino) return false;
    if (!Check(volume_->Unlink(kRootIno, name))) return false;
    volume_->Forget(*ino, 1'000'000);  // the kernel forgets it, so it is destroyed now
    current_.erase(name);
    touched_.insert(name);
    return true;
  }
  // fsync: everything so far is durable once it returns OK.
  bool Sync() {
    if (env_->crashed()) return false;
    if (!Check(volume_->SyncAll())) return false;
    Checkpoint();
    return true;
  }
  // Drain: a flush round (chunks stored, extents committed, pending deletes next).
  bool Flush() {
    for (int i = 0; i < 200; ++i) {
      if (env_->crashed()) return false;
      Status s = volume_->Drain(300'000'000, nullptr);
      if (s.ok()) {
        Checkpoint();
        return true;
      }
    }
    ADD_FAILURE() << "drain never finished without a power loss";
    return false;
  }

  const Model& durable() const { return durable_; }
  const std::set<std::string>& touched_since_durable() const { return touched_; }

 private:
  std::optional<uint64_t> Ino(const std::string& name) {
    auto attr = volume_->Lookup(kRootIno, name);
    if (!Check(attr.status())) return std::nullopt;
    volume_->Forget(attr->ino, 1);
    return attr->ino;
  }
  // OK, or a failure the power loss explains; anything else fails the test.
  bool Check(const Status& s) {
    if (s.ok()) return true;
    if (!env_->crashed()) ADD_FAILURE() << "unexpected error: " << s.ToString();
    return false;
  }
  // A sync that returned after the cut made nothing durable: no checkpoint then.
  void Checkpoint() {
    if (env_->crashed()) return;
    durable_ = current_;
    touched_.clear();
  }

  Volume* volume_;
  MemEnv* env_;
  Model current_;
  Model durable_;
  std::set<std::string> touched_;
};

// Sequences that touch every ordering the volume has: data fsynced in the journal only,
// flushed into chunks, replaced by a rename over it (its chunks dropped), unlinked,
// truncated, rewritten in place, inline files becoming chunked and back.
void RunWorkload(Workload& w) {
  const Bytes a1 = RandomBytes(600'000, 1);  // three chunks of 256 KiB
  const Bytes b1 = RandomBytes(2'000, 2);    // inline
  const Bytes c1 = RandomBytes(300'000, 3);
  const Bytes c2 = RandomBytes(100'000, 4);
  const Bytes d1 = RandomBytes(500'000, 5);
  const Bytes e1 = RandomBytes(3'000, 6);
  // clang-format off
  (void)(w.Create("a") && w.Write("a", 0, a1) && w.Create("b") && w.Write("b", 0, b1) &&
  w.Create("c") && w.Write("c", 0, c1) && w.Sync() &&
  w.Flush() &&
  w.Rename("c", "a") &&             // a's three chunks lose their last reference
  w.Unlink("b") &&
  w.Write("a", 300'000, c2) &&      // appends to what was c
  w.Truncate("a", 350'000) &&
  w.Flush() &&
  w.Create("d") && w.Write("d", 0, d1) && w.Sync() &&
  w.Write("d", 100'000, c2) &&      // rewritten in place, never synced before the flush
  w.Flush() &&
  w.Unlink("a") &&                  // its chunks go; nothing syncs the unlink itself
  w.Create("e") && w.Write("e", 0, e1) &&
  w.Truncate("d", 4'000) &&         // chunked back to inline
  w.Flush());
  // clang-format on
}

class VolumePowerLossTest : public ::testing::Test {
 protected:
  // A fresh simulated disk holding a new, empty volume over six folder stores.
  void MakeVolume(MemEnv* env) {
    VolumeInitOptions init;
    init.home = kHome;
    init.passphrase = kPassphrase;
    init.kdf = KdfStrength::kFastForTests;
    init.chunk_size = 256 * 1024;
    init.env = env;
    for (int i = 0; i < kStores; ++i) init.store_folders.push_back(StorePath(i));
    Status s = Volume::Init(init);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::unique_ptr<Volume> Open(MemEnv* env, int64_t cleanup_grace_ns) {
    VolumeOpenOptions open;
    open.home = kHome;
    open.passphrase = kPassphrase;
    open.cache_bytes = 0;  // every read goes to the stores: a missing shard shows
    open.env = env;
    open.cleanup_grace_ns = cleanup_grace_ns;
    auto v = Volume::Open(open);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(v).value() : nullptr;
  }

  // Runs the workload with the power cut at sync point `crash_at` (0: never); returns
  // how many sync points the run passed and what it had made durable.
  int RunWithPowerCutAt(MemEnv* env, int crash_at, Model* durable, std::set<std::string>* touched) {
    auto volume = Open(env, /*cleanup_grace_ns=*/600'000'000'000);
    if (!volume) return 0;
    std::atomic<int> syncs{0};
    env->SetHook([&](EnvOp op, const std::string&) {
      if (op != EnvOp::kSync && op != EnvOp::kSyncDir) return Status::Ok();
      // The cut lands just before this sync: it, and everything after, is not durable.
      // The running volume is not told (a machine without power tells no one).
      if (++syncs == crash_at) env->Crash();
      return Status::Ok();
    });
    Workload w(volume.get(), env);
    RunWorkload(w);
    (void)volume->Close();  // with the power out this fails; it must not hang
    volume.reset();
    env->SetHook(nullptr);
    *durable = w.durable();
    *touched = w.touched_since_durable();
    return syncs.load();
  }

  // Reopens after the cut and checks the three promises in the header.
  void VerifyAfterPowerLoss(MemEnv* env, const Model& durable,
                            const std::set<std::string>& touched) {
    env->Restart();
    auto volume = Open(env, /*cleanup_grace_ns=*/0);  // nothing uploads behind the sweep
    ASSERT_TRUE(volume);
    ASSERT_TRUE(volume->Drain(30'000'000'000, nullptr).ok());  // replayed journal data

    // Fsynced files that nothing touched since are there, byte for byte.
    for (const auto& [name, content] : durable) {
      if (touched.count(name)) continue;
      auto attr = volume->Lookup(kRootIno, name);
      ASSERT_TRUE(attr.ok()) << name << " was fsynced and is gone: " << attr.status().ToString();
      Bytes got(content.size() + 1);
      auto n = volume->Read(attr->ino, 0, got);
      ASSERT_TRUE(n.ok()) << name << ": " << n.status().ToString();
      got.resize(*n);
      EXPECT_TRUE(got == content) << name << " lost fsynced bytes (" << got.size() << " of "
                                  << content.size() << ")";
    }
    // Whatever exists reads whole, from intact shards.
    std::vector<std::pair<std::string, Attr>> entries;
    ASSERT_TRUE(volume
                    ->ReadDir(kRootIno, 0, false,
                              [&](const DirEntryInfo& e, uint64_t) {
                                entries.emplace_back(e.name, e.attr);
                                return true;
                              })
                    .ok());
    for (const auto& [name, attr] : entries) {
      Bytes got(attr.size);
      auto n = volume->Read(attr.ino, 0, got);
      EXPECT_TRUE(n.ok()) << name << " does not read back: " << n.status().ToString();
    }
    VolumeStatus status = volume->GetStatus();
    EXPECT_EQ(status.degraded_reads, 0u) << "an extent points at a chunk with missing shards";

    // Nothing leaked: after the cleanup pass and the pending deletes, k+m shards a chunk.
    for (int i = 0; i < 400; ++i) {
      status = volume->GetStatus();
      if (status.pending_deletes == 0 && status.cleanup_passes > 0) break;
      ASSERT_TRUE(volume->Drain(30'000'000'000, nullptr).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_EQ(status.pending_deletes, 0u);
    ASSERT_GT(status.cleanup_passes, 0u);
    ASSERT_TRUE(volume->Close().ok());
    volume.reset();
    uint64_t shards = 0;
    for (int i = 0; i < kStores; ++i) {
      auto store = FolderStore::Open(StorePath(i), 0, env);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      shards += (*store)->Usage()->shard_count;
    }
    EXPECT_EQ(shards, status.chunks * kStores) << "shards leaked or lost";
  }
};

TEST_F(VolumePowerLossTest, EverySyncPointKeepsFsyncedDataAndLeaksNothing) {
  int total = 0;
  {
    MemEnv env;
    MakeVolume(&env);
    Model durable;
    std::set<std::string> touched;
    total = RunWithPowerCutAt(&env, 0, &durable, &touched);
    // The workload ends with a drain: all of it was durable, nothing touched after.
    EXPECT_TRUE(touched.empty());
    ASSERT_EQ(durable.size(), 2u);  // d and e
    env.PowerLoss();
    VerifyAfterPowerLoss(&env, durable, touched);
  }
  ASSERT_GT(total, 50) << "the workload should pass many sync points";
  // Background work (RocksDB, the flusher's idle passes) adds a few sync points from run
  // to run; a margin makes the cut land on the last ones too.
  for (int crash_at = 1; crash_at <= total + 10; ++crash_at) {
    SCOPED_TRACE("power cut at sync point " + std::to_string(crash_at) + " of " +
                 std::to_string(total));
    MemEnv env;
    MakeVolume(&env);
    Model durable;
    std::set<std::string> touched;
    RunWithPowerCutAt(&env, crash_at, &durable, &touched);
    if (!env.crashed()) env.Crash();  // finished before this point: cut at the end
    VerifyAfterPowerLoss(&env, durable, touched);
    if (HasFatalFailure()) return;
  }
}

// A failed fdatasync of the journal is final: every fsync after it fails too, even once
// the disk would let the same file sync again, until the writes it may have lost are
// stored on the stores (and their segment is gone). No caller is told "durable" wrongly.
TEST_F(VolumePowerLossTest, FailedJournalSyncIsEioUntilTheDataIsStored) {
  MemEnv env;
  MakeVolume(&env);
  auto volume = Open(&env, 600'000'000'000);
  ASSERT_TRUE(volume);
  auto attr = volume->Mknod(kRootIno, "f", S_IFREG | 0644, 0, Caller{0, 0});
  ASSERT_TRUE(attr.ok());
  const Bytes data = RandomBytes(300'000, 9);
  ASSERT_TRUE(volume->Write(attr->ino, 0, data).ok());
  std::atomic<bool> failing{true};
  env.SetHook([&](EnvOp op, const std::string& path) {
    if (failing && op == EnvOp::kSync && path.find("/journal/") != std::string::npos)
      return Status::IoError("injected: fdatasync " + path + ": Input/output error");
    return Status::Ok();
  });
  Status first = volume->Fsync(attr->ino, false);
  EXPECT_EQ(first.code(), Code::kIoError) << first.ToString();
  EXPECT_EQ(first.to_errno(), EIO);
  failing = false;  // the disk would now sync that file again, and report success
  EXPECT_EQ(volume->Fsync(attr->ino, false).code(), Code::kIoError);
  // New writes are not hostage to the old failure once the old records are stored.
  const Status drained = volume->Drain(30'000'000'000, nullptr);
  EXPECT_TRUE(drained.ok()) << drained.ToString();
  EXPECT_TRUE(volume->Fsync(attr->ino, false).ok());
  Bytes got(data.size());
  auto n = volume->Read(attr->ino, 0, got);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(got, data);
  env.SetHook(nullptr);
  ASSERT_TRUE(volume->Close().ok());
}

// The flusher makes its commit durable (RocksDB's WAL sync) without holding the namespace
// lock: a slow disk slows the flush, not every lookup and stat in the mount.
TEST_F(VolumePowerLossTest, FlushCommitSyncsOutsideTheNamespaceLock) {
  MemEnv env;
  MakeVolume(&env);
  auto volume = Open(&env, 600'000'000'000);
  ASSERT_TRUE(volume);
  auto other = volume->Mknod(kRootIno, "other", S_IFREG | 0644, 0, Caller{0, 0});
  auto attr = volume->Mknod(kRootIno, "f", S_IFREG | 0644, 0, Caller{0, 0});
  ASSERT_TRUE(other.ok() && attr.ok());
  std::atomic<bool> slow{true};
  std::atomic<int> syncing{0};
  std::atomic<int> slow_syncs{0};
  env.SetHook([&](EnvOp op, const std::string& path) {
    if (slow && op == EnvOp::kSync && path.starts_with(std::string(kHome) + "/meta/") &&
        path.ends_with(".log")) {
      ++syncing;
      ++slow_syncs;
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      --syncing;
    }
    return Status::Ok();
  });
  ASSERT_TRUE(volume->Write(attr->ino, 0, RandomBytes(600'000, 5)).ok());
  std::atomic<bool> drained{false};
  std::thread drain([&] {
    EXPECT_TRUE(volume->Drain(30'000'000'000, nullptr).ok());
    drained = true;
  });
  int64_t slowest_us = 0;
  int during_sync = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!drained && std::chrono::steady_clock::now() < until) {
    const bool in_sync = syncing.load() > 0;
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(volume->GetAttr(other->ino).ok());
    EXPECT_EQ(volume->Lookup(kRootIno, "absent").status().code(), Code::kNotFound);
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
    if (in_sync) {
      ++during_sync;
      slowest_us = std::max(slowest_us, us);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  slow = false;
  drain.join();
  EXPECT_GT(during_sync, 10) << "no stat ran while the WAL was syncing";
  EXPECT_LT(slowest_us, 200'000) << "a stat waited for the flusher's WAL sync";
  env.SetHook(nullptr);
  ASSERT_TRUE(volume->Close().ok());
}

}  // namespace
}  // namespace quid
