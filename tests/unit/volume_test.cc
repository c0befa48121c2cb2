// The Volume over in-memory stores: namespace semantics, the write-back path, flushing,
// erasure-coded reads after store loss, journal replay, and chunk lifetime.
#include "storage/volume/volume.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "storage/stores/memory_store.h"
#include "storage/stores/store_stamp.h"
#include "tests/support/faulty_store.h"
#include "tests/support/random_bytes.h"

namespace quid {
namespace {

constexpr int64_t kDrainTimeout = 30'000'000'000;

// "f7": built by appending, since GCC 12 at -O2 misreads "f" + std::to_string(n) as an
// overlapping copy (-Wrestrict).
std::string Numbered(const char* prefix, int n) {
  std::string name(prefix);
  name += std::to_string(n);
  return name;
}

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = (std::filesystem::temp_directory_path() /
             ("volume_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove_all(home_);
    for (int i = 0; i < 6; ++i)
      memory_.push_back(std::make_shared<MemoryStore>(0, "mem" + std::to_string(i)));
    VolumeInitOptions init;
    init.home = home_;
    init.passphrase = "correct horse";
    init.kdf = KdfStrength::kFastForTests;
    init.chunk_size = 256 * 1024;  // small chunks: many per file, quick tests
    for (int i = 0; i < 6; ++i)
      init.store_folders.push_back(home_ + "/unused-store" + std::to_string(i));
    ASSERT_TRUE(Volume::Init(init).ok());
    Reopen();
  }
  void TearDown() override {
    if (volume_) (void)volume_->Close();
    volume_.reset();
    std::filesystem::remove_all(home_);
  }

  void Reopen(uint64_t cache = 0) {
    if (volume_) {
      ASSERT_TRUE(volume_->Close().ok());
    }
    volume_.reset();
    VolumeOpenOptions open;
    open.home = home_;
    open.passphrase = "correct horse";
    open.cache_bytes = cache;
    for (auto& m : memory_) open.stores_override.push_back(m);
    auto v = Volume::Open(open);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    volume_ = std::move(v).value();
  }

  Ino CreateFile(const std::string& name, Ino parent = kRootIno) {
    auto attr = volume_->Mknod(parent, name, S_IFREG | 0644, 0, Caller{1000, 1000});
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    return attr.ok() ? attr->ino : 0;
  }
  void WriteAll(Ino ino, uint64_t offset, const Bytes& data) {
    auto n = volume_->Write(ino, offset, data);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(*n, data.size());
  }
  Bytes ReadAll(Ino ino, uint64_t offset, size_t length) {
    Bytes out(length);
    auto n = volume_->Read(ino, offset, out);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    return out;
  }
  void Drain() { ASSERT_TRUE(volume_->Drain(kDrainTimeout, nullptr).ok()); }
  size_t TotalShards() {
    size_t n = 0;
    for (auto& m : memory_) n += m->shard_count();
    return n;
  }

  // Reopens with every memory store behind a FaultyStore (returned, in store order).
  std::vector<std::shared_ptr<FaultyStore>> ReopenWithFaultyStores(
      Clock* clock = nullptr, const std::function<void(VolumeOpenOptions&)>& adjust = {}) {
    if (volume_) {
      EXPECT_TRUE(volume_->Close().ok());
    }
    volume_.reset();
    std::vector<std::shared_ptr<FaultyStore>> faulty;
    VolumeOpenOptions open;
    open.home = home_;
    open.passphrase = "correct horse";
    open.cache_bytes = 0;
    open.clock = clock;
    if (adjust) adjust(open);
    for (auto& m : memory_) {
      faulty.push_back(std::make_shared<FaultyStore>(m));
      open.stores_override.push_back(faulty.back());
    }
    auto v = Volume::Open(open);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (v.ok()) volume_ = std::move(v).value();
    return faulty;
  }

  // Opens the volume only to read what its open warned of.
  std::vector<std::string> OpenWarningsOf(const VolumeOpenOptions& open) {
    auto v = Volume::Open(open);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (!v.ok()) return {"open failed"};
    std::vector<std::string> warnings = (*v)->OpenWarnings();
    EXPECT_TRUE((*v)->Close().ok());
    return warnings;
  }

  std::string home_;
  std::vector<std::shared_ptr<MemoryStore>> memory_;
  // For tests that drive time; declared before volume_, so it outlives the volume's
  // threads (a clock local to a test body would die while TearDown still closes it).
  FakeClock fake_clock_;
  std::unique_ptr<Volume> volume_;
};

TEST_F(VolumeTest, ReadsSeeTheirOwnWritesBeforeAndAfterFlush) {
  Ino ino = CreateFile("a");
  Bytes data = RandomBytes(1'000'000, 1);
  WriteAll(ino, 0, data);
  EXPECT_EQ(ReadAll(ino, 0, data.size()), data);  // from the journal
  Drain();
  EXPECT_GT(TotalShards(), 0u);
  EXPECT_EQ(ReadAll(ino, 0, data.size()), data);  // from the stores
  EXPECT_EQ(volume_->GetAttr(ino)->size, data.size());
  EXPECT_EQ(volume_->GetStatus().pending_bytes, 0u);
}

// The flusher leaves a file that is being written alone while the journal has room (the
// writer gets the cores and the disk), but not for ever: a file written without pause
// reaches the stores once its oldest unstored write is 30 s old, and any file once the
// journal is half full.
TEST_F(VolumeTest, AFileBeingWrittenWaitsForItsExpiryOrForAHalfFullJournal) {
  constexpr uint64_t kJournal = 16ull << 20;
  ReopenWithFaultyStores(&fake_clock_,
                         [](VolumeOpenOptions& open) { open.journal_bytes = kJournal; });
  const auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(700)); };
  const Ino a = CreateFile("a");
  // 6 MiB, over a quarter of the journal, a write every half second: never quiet.
  for (int i = 0; i < 24; ++i) {
    WriteAll(a, static_cast<uint64_t>(i) << 18, RandomBytes(256 << 10, 100 + i));
    fake_clock_.advance_ns(500'000'000);
  }
  settle();
  EXPECT_EQ(volume_->GetStatus().chunks, 0u) << "flushed while written, with the journal 3/8 full";
  EXPECT_GE(volume_->GetStatus().pending_bytes, 6u << 20);
  // Still written every half second, until the first write is 30 s old.
  for (int i = 0; i < 40; ++i) {
    WriteAll(a, 6u << 20, RandomBytes(100, 200 + i));
    fake_clock_.advance_ns(500'000'000);
  }
  bool stored = false;
  for (int i = 0; i < 50 && !stored; ++i) {
    stored = volume_->GetStatus().chunks > 0;
    if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(stored) << "a file written without pause for 32 s is still only in the journal";

  // A second file, written in one burst past half the journal: flushed while still "recent".
  const Ino b = CreateFile("b");
  const uint64_t chunks_before = volume_->GetStatus().chunks;
  for (int i = 0; i < 36; ++i)
    WriteAll(b, static_cast<uint64_t>(i) << 18, RandomBytes(256 << 10, 300 + i));
  bool flushed = false;
  for (int i = 0; i < 50 && !flushed; ++i) {
    flushed = volume_->GetStatus().chunks > chunks_before;
    if (!flushed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(flushed) << "9 MiB of a 16 MiB journal, and nothing flushed";
  Drain();
}

TEST_F(VolumeTest, SmallFilesLiveInlineWithoutShards) {
  Ino ino = CreateFile("small");
  Bytes data = RandomBytes(4000, 2);
  WriteAll(ino, 0, data);
  Drain();
  EXPECT_EQ(TotalShards(), 0u);
  Reopen();
  EXPECT_EQ(ReadAll(ino, 0, 10000), data);
}

TEST_F(VolumeTest, FilesSurviveTheLossOfAnyTwoStores) {
  Ino ino = CreateFile("big");
  Bytes data = RandomBytes(3'000'000, 3);
  WriteAll(ino, 0, data);
  Drain();
  for (int a = 0; a < 6; ++a) {
    for (int b = a + 1; b < 6; ++b) {
      auto stash_a = memory_[a]->ids();
      // Simulate loss by dropping every shard of the two stores, then restore.
      std::vector<std::pair<ShardId, Bytes>> saved;
      for (int s : {a, b})
        for (const auto& id : memory_[s]->ids()) {
          saved.emplace_back(id, *memory_[s]->Get(id));
          memory_[s]->Drop(id);
        }
      ASSERT_EQ(ReadAll(ino, 0, data.size()), data) << "lost stores " << a << "," << b;
      for (auto& [id, bytes] : saved) {
        // Put each shard back where it came from.
        bool in_a = std::find(stash_a.begin(), stash_a.end(), id) != stash_a.end();
        ASSERT_TRUE(memory_[in_a ? a : b]->Put(id, bytes).ok());
      }
    }
  }
}

TEST_F(VolumeTest, ThreeLostStoresGiveErrorsNeverWrongBytes) {
  Ino ino = CreateFile("big");
  Bytes data = RandomBytes(2'000'000, 4);
  WriteAll(ino, 0, data);
  Drain();
  for (int s : {0, 1, 2})
    for (const auto& id : memory_[s]->ids()) memory_[s]->Drop(id);
  Bytes out(data.size());
  auto n = volume_->Read(ino, 0, out);
  EXPECT_FALSE(n.ok());
  EXPECT_EQ(n.status().to_errno(), EIO);
}

TEST_F(VolumeTest, CorruptShardsAreServedFromParity) {
  Ino ino = CreateFile("f");
  Bytes data = RandomBytes(1'500'000, 5);
  WriteAll(ino, 0, data);
  Drain();
  for (const auto& id : memory_[0]->ids()) memory_[0]->CorruptByte(id, 100);
  for (const auto& id : memory_[3]->ids()) memory_[3]->CorruptByte(id, 7);
  EXPECT_EQ(ReadAll(ino, 0, data.size()), data);
  EXPECT_GT(volume_->GetStatus().degraded_reads, 0u);
}

TEST_F(VolumeTest, UnsyncedJournalIsReplayedAfterReopen) {
  Ino ino = CreateFile("f");
  Bytes data = RandomBytes(700'000, 6);
  WriteAll(ino, 0, data);
  ASSERT_TRUE(volume_->Fsync(ino, false).ok());
  Reopen();  // Close does not drain; the journal carries the data over
  EXPECT_EQ(volume_->GetAttr(ino)->size, data.size());
  EXPECT_EQ(ReadAll(ino, 0, data.size()), data);
  Drain();
  Reopen();
  EXPECT_EQ(ReadAll(ino, 0, data.size()), data);
}

TEST_F(VolumeTest, OverwritesAndTruncatesComposeLikeALocalDisk) {
  Ino ino = CreateFile("f");
  Bytes expect = RandomBytes(600'000, 7);
  WriteAll(ino, 0, expect);
  Drain();
  Bytes patch = RandomBytes(300'000, 8);
  WriteAll(ino, 200'000, patch);
  std::copy(patch.begin(), patch.end(), expect.begin() + 200'000);
  SetAttrRequest cut;
  cut.size = 350'000;
  ASSERT_TRUE(volume_->SetAttr(ino, cut).ok());
  expect.resize(350'000);
  SetAttrRequest grow;
  grow.size = 900'000;
  ASSERT_TRUE(volume_->SetAttr(ino, grow).ok());
  expect.resize(900'000, 0);
  EXPECT_EQ(ReadAll(ino, 0, 1'000'000), expect);
  Drain();
  EXPECT_EQ(ReadAll(ino, 0, 1'000'000), expect);
  Reopen();
  EXPECT_EQ(ReadAll(ino, 0, 1'000'000), expect);
}

TEST_F(VolumeTest, SparseFilesStoreNoHoles) {
  Ino ino = CreateFile("sparse");
  Bytes tail = RandomBytes(1000, 9);
  WriteAll(ino, 50'000'000, tail);
  Drain();
  auto attr = volume_->GetAttr(ino);
  EXPECT_EQ(attr->size, 50'001'000u);
  EXPECT_LT(attr->blocks * 512, 1'000'000u);
  Bytes zeros(4096, 0);
  EXPECT_EQ(ReadAll(ino, 10'000'000, 4096), zeros);
  EXPECT_EQ(ReadAll(ino, 50'000'000, 1000), tail);
}

TEST_F(VolumeTest, IdenticalContentIsStoredOnce) {
  Bytes data = RandomBytes(512 * 1024, 10);
  Ino a = CreateFile("a");
  WriteAll(a, 0, data);
  Drain();
  const size_t shards = TotalShards();
  Ino b = CreateFile("b");
  WriteAll(b, 0, data);
  Drain();
  EXPECT_EQ(TotalShards(), shards);
  EXPECT_EQ(ReadAll(b, 0, data.size()), data);
}

TEST_F(VolumeTest, UnlinkingTheLastReferenceDeletesShards) {
  Bytes data = RandomBytes(800'000, 11);
  Ino a = CreateFile("a");
  WriteAll(a, 0, data);
  Drain();
  ASSERT_TRUE(volume_->Link(a, kRootIno, "a2").ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "a").ok());
  volume_->Forget(a, 100);
  Drain();
  EXPECT_GT(TotalShards(), 0u);  // a2 still holds it
  EXPECT_EQ(volume_->GetAttr(a)->nlink, 1u);
  ASSERT_TRUE(volume_->Unlink(kRootIno, "a2").ok());
  volume_->Forget(a, 100);
  for (int i = 0; i < 50 && TotalShards() > 0; ++i) {
    Drain();
    usleep(100'000);
  }
  EXPECT_EQ(TotalShards(), 0u);
  EXPECT_EQ(volume_->GetAttr(a).status().code(), Code::kNotFound);
}

TEST_F(VolumeTest, OpenUnlinkedFileStaysReadableUntilReleased) {
  Ino a = CreateFile("a");
  Bytes data = RandomBytes(1000, 12);
  WriteAll(a, 0, data);
  ASSERT_TRUE(volume_->Open(a, O_RDONLY).ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "a").ok());
  volume_->Forget(a, 100);
  EXPECT_EQ(ReadAll(a, 0, 1000), data);
  volume_->Release(a);
  EXPECT_FALSE(volume_->GetAttr(a).ok());
}

TEST_F(VolumeTest, OrphansLeftByACrashAreRemovedAtMount) {
  Ino a = CreateFile("a");
  WriteAll(a, 0, RandomBytes(600'000, 13));
  Drain();
  ASSERT_TRUE(volume_->Open(a, O_RDONLY).ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "a").ok());
  ASSERT_TRUE(volume_->SyncAll().ok());
  Reopen();  // the handle dies with the old process
  EXPECT_FALSE(volume_->GetAttr(a).ok());
}

TEST_F(VolumeTest, RenameReplacesExchangesAndRefuses) {
  Ino a = CreateFile("a");
  Ino b = CreateFile("b");
  EXPECT_EQ(volume_->Rename(kRootIno, "a", kRootIno, "b", RenameFlags::kNoReplace).code(),
            Code::kExists);
  ASSERT_TRUE(volume_->Rename(kRootIno, "a", kRootIno, "b", RenameFlags::kExchange).ok());
  EXPECT_EQ(volume_->Lookup(kRootIno, "a")->ino, b);
  EXPECT_EQ(volume_->Lookup(kRootIno, "b")->ino, a);
  ASSERT_TRUE(volume_->Rename(kRootIno, "a", kRootIno, "b", RenameFlags::kNone).ok());
  EXPECT_EQ(volume_->Lookup(kRootIno, "b")->ino, b);
  EXPECT_FALSE(volume_->Lookup(kRootIno, "a").ok());

  auto d1 = volume_->Mkdir(kRootIno, "d1", 0755, Caller{});
  auto d2 = volume_->Mkdir(kRootIno, "d2", 0755, Caller{});
  ASSERT_TRUE(d1.ok() && d2.ok());
  CreateFile("inner", d2->ino);
  EXPECT_EQ(volume_->Rename(kRootIno, "d1", kRootIno, "d2", RenameFlags::kNone).code(),
            Code::kNotEmpty);
  EXPECT_EQ(volume_->GetAttr(kRootIno)->nlink, 4u);
  ASSERT_TRUE(volume_->Rename(kRootIno, "d1", d2->ino, "moved", RenameFlags::kNone).ok());
  EXPECT_EQ(volume_->GetAttr(kRootIno)->nlink, 3u);
  EXPECT_EQ(volume_->GetAttr(d2->ino)->nlink, 3u);
}

TEST_F(VolumeTest, ReadDirResumesFromCookiesWithoutLossOrDuplicates) {
  auto dir = volume_->Mkdir(kRootIno, "d", 0755, Caller{});
  ASSERT_TRUE(dir.ok());
  std::set<std::string> names;
  for (int i = 0; i < 2000; ++i) {
    std::string name = "entry-" + std::to_string(i);
    names.insert(name);
    CreateFile(name, dir->ino);
  }
  std::set<std::string> seen;
  uint64_t cookie = 0;
  for (int calls = 0; calls < 1000; ++calls) {
    int taken = 0;
    uint64_t next_cookie = cookie;
    ASSERT_TRUE(volume_
                    ->ReadDir(dir->ino, cookie, false,
                              [&](const DirEntryInfo& e, uint64_t next) {
                                if (taken == 37) return false;  // a small buffer
                                EXPECT_TRUE(seen.insert(e.name).second) << e.name;
                                next_cookie = next;
                                ++taken;
                                return true;
                              })
                    .ok());
    if (taken == 0) break;
    cookie = next_cookie;
  }
  EXPECT_EQ(seen, names);
}

TEST_F(VolumeTest, XattrsFollowCreateAndReplaceRules) {
  Ino a = CreateFile("a");
  Bytes v = {1, 2, 3};
  ASSERT_TRUE(volume_->SetXattr(a, "user.k", v, XattrMode::kCreateOnly).ok());
  EXPECT_EQ(volume_->SetXattr(a, "user.k", v, XattrMode::kCreateOnly).code(), Code::kExists);
  EXPECT_EQ(volume_->SetXattr(a, "user.x", v, XattrMode::kReplaceOnly).code(), Code::kNoData);
  EXPECT_EQ(*volume_->GetXattr(a, "user.k"), v);
  EXPECT_EQ(volume_->ListXattr(a)->size(), 1u);
  ASSERT_TRUE(volume_->RemoveXattr(a, "user.k").ok());
  EXPECT_EQ(volume_->GetXattr(a, "user.k").status().code(), Code::kNoData);
}

TEST_F(VolumeTest, PosixAclXattrsAreRefusedNotSilentlyStored) {
  Ino a = CreateFile("a");
  Bytes acl = {2, 0, 0, 0};
  EXPECT_EQ(volume_->SetXattr(a, "system.posix_acl_access", acl, XattrMode::kAny).to_errno(),
            EOPNOTSUPP);
  EXPECT_EQ(volume_->ListXattr(a)->size(), 0u);
}

TEST_F(VolumeTest, ExplicitMtimeWinsOverEarlierWrites) {
  Ino a = CreateFile("a");
  WriteAll(a, 0, RandomBytes(300'000, 14));
  SetAttrRequest t;
  t.mtime_ns = 1'000'000'000;
  ASSERT_TRUE(volume_->SetAttr(a, t).ok());
  EXPECT_EQ(volume_->GetAttr(a)->mtime_ns, 1'000'000'000);
  Drain();
  EXPECT_EQ(volume_->GetAttr(a)->mtime_ns, 1'000'000'000);
}

TEST_F(VolumeTest, WrongPassphraseIsAClearErrorAndChangesNothing) {
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  VolumeOpenOptions open;
  open.home = home_;
  open.passphrase = "wrong";
  for (auto& m : memory_) open.stores_override.push_back(m);
  auto v = Volume::Open(open);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Code::kBadKey);
  Reopen();
  EXPECT_TRUE(volume_->GetAttr(kRootIno).ok());
}

TEST_F(VolumeTest, CacheServesRepeatedReadsWithoutTheStores) {
  Reopen(64 << 20);
  Ino a = CreateFile("a");
  Bytes data = RandomBytes(600'000, 15);
  WriteAll(a, 0, data);
  Drain();
  EXPECT_EQ(ReadAll(a, 0, data.size()), data);
  for (auto& m : memory_)
    for (const auto& id : m->ids()) m->Drop(id);
  EXPECT_EQ(ReadAll(a, 0, data.size()), data);
}

TEST_F(VolumeTest, SequentialReadsPrefetchTheNextChunks) {
  Reopen(64 << 20);
  Ino a = CreateFile("a");
  Bytes data = RandomBytes(4 * 256 * 1024, 16);  // four chunks
  WriteAll(a, 0, data);
  Drain();
  Reopen(64 << 20);  // empty cache
  // Stream the first chunk in small reads, as the kernel does.
  for (uint64_t off = 0; off < 256 * 1024; off += 64 * 1024) {
    ASSERT_EQ(ReadAll(a, off, 64 * 1024), Bytes(data.begin() + static_cast<long>(off),
                                                data.begin() + static_cast<long>(off) + 64 * 1024));
  }
  // Give the background fetch of the next two chunks time; then the stores go blank and
  // those chunks must still read, from the cache.
  usleep(1'500'000);
  for (auto& m : memory_)
    for (const auto& id : m->ids()) m->Drop(id);
  Bytes out(2 * 256 * 1024);
  auto n = volume_->Read(a, 256 * 1024, out);
  ASSERT_TRUE(n.ok()) << "chunks after a sequential read were not prefetched: "
                      << n.status().ToString();
  EXPECT_EQ(out, Bytes(data.begin() + 256 * 1024, data.begin() + 768 * 1024));
}

// A random 4 KiB read that misses the cache asks one data shard for its segment, not all
// k for the whole chunk; a read from the start of the file fetches whole chunks into the
// cache, and later reads of them, anywhere, ask the stores nothing.
TEST_F(VolumeTest, ARandomReadFetchesOnlyItsSegmentAndAStreamFetchesWholeChunks) {
  Ino a = CreateFile("a");
  Bytes data = RandomBytes(4 * 256 * 1024, 21);  // four chunks of four data shards
  WriteAll(a, 0, data);
  Drain();
  std::vector<std::shared_ptr<FaultyStore>> faulty =
      ReopenWithFaultyStores(nullptr, [](VolumeOpenOptions& open) {
        open.cache_bytes = 64 << 20;
        open.repair_enabled = false;  // no audits: every read below is the test's
      });
  const auto reads = [&] {
    uint64_t n = 0;
    for (const auto& f : faulty) n += f->reads();
    return n;
  };
  const auto slice = [&](uint64_t at, uint64_t n) {
    return Bytes(data.begin() + static_cast<long>(at), data.begin() + static_cast<long>(at + n));
  };

  // A segment (64 KiB and its tag) spans at most two of the chunk's four data shards.
  const uint64_t random_at = 2 * 256 * 1024 + 100 * 1024;  // inside the third chunk
  EXPECT_EQ(ReadAll(a, random_at, 4096), slice(random_at, 4096));
  const uint64_t first = reads();
  EXPECT_GE(first, 1u);
  EXPECT_LE(first, 2u) << "a cold 4 KiB read fetched more than its one segment";
  EXPECT_EQ(ReadAll(a, random_at + 64 * 1024, 4096), slice(random_at + 64 * 1024, 4096));
  EXPECT_LE(reads() - first, 2u) << "the random read filled the cache with its whole chunk";

  EXPECT_EQ(ReadAll(a, 0, 64 * 1024), slice(0, 64 * 1024));
  EXPECT_GE(reads() - first, 4u) << "a read from the start did not fetch its whole chunk";
  const uint64_t after_stream = reads();
  EXPECT_EQ(ReadAll(a, 200 * 1024, 4096), slice(200 * 1024, 4096));
  EXPECT_EQ(reads(), after_stream) << "a chunk fetched whole was not served from the cache";
}

// Chunks written while two stores were down double up on the others; once the stores are
// back, their extra shards move, so losing any two stores again loses nothing.
TEST_F(VolumeTest, RedundancyIsRestoredWhenStoresReturn) {
  std::vector<std::shared_ptr<FaultyStore>> faulty = ReopenWithFaultyStores(&fake_clock_);
  ASSERT_TRUE(volume_);

  faulty[0]->SetDown(true);
  faulty[1]->SetDown(true);
  Ino a = CreateFile("a");
  Bytes data = RandomBytes(1'000'000, 17);
  WriteAll(a, 0, data);
  Drain();
  EXPECT_GT(volume_->GetStatus().chunks_degraded, 0u);
  EXPECT_EQ(memory_[0]->shard_count() + memory_[1]->shard_count(), 0u);

  faulty[0]->SetDown(false);
  faulty[1]->SetDown(false);
  fake_clock_.advance_ns(60'000'000'000);  // past the idle check's period and any back-off
  VolumeStatus status;
  for (int i = 0; i < 100; ++i) {
    status = volume_->GetStatus();
    if (status.chunks_degraded == 0) break;
    usleep(100'000);
  }
  ASSERT_EQ(status.chunks_degraded, 0u);
  EXPECT_GT(memory_[0]->shard_count(), 0u);
  EXPECT_GT(memory_[1]->shard_count(), 0u);
  // Now two other stores die: every chunk still has four distinct shards.
  faulty[2]->SetDown(true);
  faulty[3]->SetDown(true);
  EXPECT_EQ(ReadAll(a, 0, data.size()), data);
}

// A record in the middle of the journal that fails its checksum is damage, not a torn
// tail: the mount says which records are lost, and the synced writes after it survive.
TEST_F(VolumeTest, JournalDamageIsReportedAndLaterSyncedWritesSurvive) {
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  // The fake clock: no quiet period ever passes, so the writes stay in the journal.
  VolumeOpenOptions open;
  open.home = home_;
  open.passphrase = "correct horse";
  open.cache_bytes = 0;
  open.clock = &fake_clock_;
  for (auto& m : memory_) open.stores_override.push_back(m);
  auto opened = Volume::Open(open);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  volume_ = std::move(opened).value();

  Ino a = CreateFile("a");
  const Bytes w1 = RandomBytes(1000, 31), w2 = RandomBytes(1000, 32), w3 = RandomBytes(1000, 33);
  WriteAll(a, 0, w1);
  WriteAll(a, 1000, w2);
  ASSERT_TRUE(volume_->SyncAll().ok());
  WriteAll(a, 2000, w3);
  ASSERT_TRUE(volume_->SyncAll().ok());
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  EXPECT_TRUE(OpenWarningsOf(open).empty());

  // Rot one payload byte of the second record (records are 48-byte headers + payload).
  std::string segment;
  for (const auto& entry : std::filesystem::directory_iterator(home_ + "/journal"))
    if (std::filesystem::file_size(entry.path()) > 0) segment = entry.path();
  ASSERT_FALSE(segment.empty());
  {
    int fd = ::open(segment.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const off_t at = 48 + 1000 + 48 + 10;
    uint8_t byte = 0;
    ASSERT_EQ(::pread(fd, &byte, 1, at), 1);
    byte ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &byte, 1, at), 1);
    ::close(fd);
  }
  opened = Volume::Open(open);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  volume_ = std::move(opened).value();
  const std::vector<std::string> warnings = volume_->OpenWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("which had been synced"), std::string::npos) << warnings[0];
  EXPECT_EQ(volume_->GetStatus().journal_damage, warnings);
  // The first and third writes are there; the second is lost (a hole), not the rest.
  Bytes want = w1;
  want.resize(2000, 0);
  want.insert(want.end(), w3.begin(), w3.end());
  EXPECT_EQ(ReadAll(a, 0, 3000), want);
}

// A read holds one version of a file while a flush commit replaces every chunk it is
// reading and the old chunks come up for deletion: it returns the old bytes, whole, and
// the old shards are removed only after it ends.
TEST_F(VolumeTest, ReadSeesOneVersionAcrossAFlushCommitAndDeferredDeletes) {
  // No read cache: every read goes to the stores.
  std::vector<std::shared_ptr<FaultyStore>> faulty = ReopenWithFaultyStores();
  ASSERT_TRUE(volume_);

  Ino a = CreateFile("a");
  const Bytes v1 = RandomBytes(700'000, 21);  // three chunks of 256 KiB
  const Bytes v2 = RandomBytes(700'000, 22);
  WriteAll(a, 0, v1);
  Drain();
  const size_t v1_shards = TotalShards();
  ASSERT_GT(v1_shards, 0u);

  // The read starts, takes its version, and waits inside the stores.
  for (auto& f : faulty) f->CloseReadGate();
  Bytes got;
  std::thread reader([&] { got = ReadAll(a, 0, v1.size()); });
  auto waiting = [&] {
    int n = 0;
    for (auto& f : faulty) n += f->readers_waiting();
    return n;
  };
  for (int i = 0; i < 500 && waiting() == 0; ++i) usleep(10'000);
  ASSERT_GT(waiting(), 0) << "the read never reached the stores";

  // Meanwhile the whole file is rewritten and flushed: every chunk of v1 loses its last
  // reference and goes on the to-delete list.
  WriteAll(a, 0, v2);
  Drain();
  for (int i = 0; i < 10; ++i) {  // many flusher passes: none may delete v1's shards yet
    ASSERT_TRUE(volume_->Drain(kDrainTimeout, nullptr).ok());
    usleep(50'000);
  }
  EXPECT_GT(volume_->GetStatus().pending_deletes, 0u);
  EXPECT_GT(TotalShards(), v1_shards);  // v1's and v2's shards side by side

  for (auto& f : faulty) f->OpenReadGate();
  reader.join();
  EXPECT_EQ(got, v1);  // one version, whole: not v2's bytes, not zeros, not EIO
  EXPECT_EQ(ReadAll(a, 0, v2.size()), v2);

  // With the read gone, v1's shards are removed.
  for (int i = 0; i < 100 && volume_->GetStatus().pending_deletes > 0; ++i) {
    Drain();
    usleep(50'000);
  }
  EXPECT_EQ(volume_->GetStatus().pending_deletes, 0u);
  EXPECT_EQ(TotalShards(), v1_shards);  // v2 has as many shards as v1 had
}

// Offline use: with every store away, the journal fills. Only writers wait for it, for the
// journal wait at most, then get ENOSPC (and later writers at once); lookups, stats,
// listings and reads of other files answer throughout; nothing acknowledged is lost, and
// it is all stored once the stores are back.
TEST_F(VolumeTest, WithTheStoresAwayAFullJournalMakesOnlyWritersWaitAndLosesNothing) {
  constexpr uint64_t kJournal = 8 << 20;
  constexpr int64_t kWaitNs = 1'000'000'000;
  std::vector<std::shared_ptr<FaultyStore>> faulty =
      ReopenWithFaultyStores(nullptr, [&](VolumeOpenOptions& open) {
        open.journal_bytes = kJournal;
        open.journal_wait_ns = kWaitNs;
      });
  ASSERT_TRUE(volume_);
  Ino small = CreateFile("small");
  const Bytes small_data = RandomBytes(300'000, 31);
  WriteAll(small, 0, small_data);
  Drain();
  for (auto& f : faulty) f->SetDown(true);

  // The writer: 1 MiB writes until the journal refuses one.
  Ino big = CreateFile("big");
  const Bytes block = RandomBytes(1 << 20, 32);
  std::atomic<bool> writer_done{false};
  uint64_t acknowledged = 0;
  Status refusal;
  auto writer_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration writer_took{};
  std::thread writer([&] {
    for (uint64_t off = 0; off < 3 * kJournal; off += block.size()) {
      Result<size_t> n = volume_->Write(big, off, block);
      if (!n.ok()) {
        refusal = n.status();
        break;
      }
      acknowledged = off + *n;
    }
    writer_took = std::chrono::steady_clock::now() - writer_start;
    writer_done = true;
  });

  // Meanwhile, everything but writing answers at once.
  int64_t slowest_ms = 0;
  int probes = 0;
  while (!writer_done) {
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(volume_->GetAttr(small).ok());
    EXPECT_EQ(volume_->Lookup(kRootIno, "absent").status().code(), Code::kNotFound);
    ASSERT_TRUE(volume_->Lookup(kRootIno, "small").ok());
    volume_->Forget(small, 1);
    int entries = 0;
    ASSERT_TRUE(volume_
                    ->ReadDir(kRootIno, 0, false,
                              [&](const DirEntryInfo&, uint64_t) {
                                ++entries;
                                return true;
                              })
                    .ok());
    EXPECT_EQ(entries, 2);
    // Its chunks are on the stores that are down (and the cache is off), so the read
    // fails; what matters is that it answers at once rather than queueing behind writes.
    Bytes head(4096);
    EXPECT_FALSE(volume_->Read(small, 0, head).ok());
    slowest_ms =
        std::max<int64_t>(slowest_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count());
    ++probes;
    usleep(50'000);
  }
  writer.join();
  EXPECT_GT(probes, 5);
  EXPECT_LT(slowest_ms, 500) << "a lookup, stat, listing or read waited for the journal";
  EXPECT_EQ(refusal.code(), Code::kNoSpace) << refusal.ToString();
  EXPECT_GE(acknowledged, kJournal / 2);
  EXPECT_LT(acknowledged, 2 * kJournal);
  EXPECT_LT(writer_took, std::chrono::nanoseconds(kWaitNs) + std::chrono::seconds(5));
  VolumeStatus status = volume_->GetStatus();
  EXPECT_TRUE(status.journal_full);
  EXPECT_EQ(status.journal_capacity_bytes, kJournal);

  // Now that the journal is out of space, another writer is refused at once.
  Ino other = CreateFile("other");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(volume_->Write(other, 0, block).status().code(), Code::kNoSpace);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));

  // The stores return: everything acknowledged is stored and reads back, and writes work.
  for (auto& f : faulty) f->SetDown(false);
  Drain();
  EXPECT_EQ(volume_->GetStatus().pending_bytes, 0u);
  EXPECT_FALSE(volume_->GetStatus().journal_full);
  for (uint64_t off = 0; off < acknowledged; off += block.size())
    ASSERT_EQ(ReadAll(big, off, block.size()), block) << "at " << off;
  EXPECT_EQ(ReadAll(small, 0, small_data.size()), small_data);
  WriteAll(other, 0, block);
  Drain();
  EXPECT_EQ(ReadAll(other, 0, block.size()), block);
}

// Finding 3 of issue 12: with one store down, pending deletes used to rescan their first 256
// rows every 200 ms, re-sending removes to the healthy stores thousands of times a second,
// while later rows never got a turn. Now each healthy shard is removed once, every row has
// its turn, and the rows wait (backing off) only for the store that is away.
TEST_F(VolumeTest, DeletesWithAStoreDownAskEachHealthyStoreOnceAndBackOff) {
  std::vector<std::shared_ptr<FaultyStore>> faulty = ReopenWithFaultyStores(&fake_clock_);
  ASSERT_TRUE(volume_);
  constexpr int kFiles = 300;  // more rows than one step takes
  std::vector<std::string> names;
  for (int i = 0; i < kFiles; ++i) {
    names.push_back(Numbered("f", i));
    Ino ino = CreateFile(names.back());
    WriteAll(ino, 0, RandomBytes(20'000, static_cast<uint32_t>(100 + i)));  // one chunk each
    volume_->Forget(ino, 1);
  }
  Drain();
  const size_t shards = TotalShards();
  ASSERT_EQ(shards, static_cast<size_t>(kFiles) * 6);

  faulty[5]->SetDown(true);
  uint64_t removes_before = 0;
  for (int i = 0; i < 5; ++i) removes_before += faulty[i]->removes();
  for (const std::string& name : names) ASSERT_TRUE(volume_->Unlink(kRootIno, name).ok());
  // Let the flusher run many passes (200 ms apart) in real time; the fake clock stands
  // still, so a backed-off collector stays backed off.
  for (int i = 0; i < 60 && TotalShards() > memory_[5]->shard_count(); ++i) usleep(50'000);
  usleep(1'500'000);
  uint64_t removes = 0;
  for (int i = 0; i < 5; ++i) removes += faulty[i]->removes();
  removes -= removes_before;
  EXPECT_EQ(TotalShards(), memory_[5]->shard_count())
      << "rows past the first step never got a turn";
  EXPECT_EQ(memory_[5]->shard_count(), static_cast<size_t>(kFiles));
  EXPECT_LE(removes, static_cast<uint64_t>(kFiles) * 5 + 16)
      << "healthy stores were asked to remove the same shards again and again";
  EXPECT_EQ(volume_->GetStatus().pending_deletes, static_cast<uint64_t>(kFiles));

  // The store returns: once the back-off has passed, its shards go too.
  faulty[5]->SetDown(false);
  for (int i = 0; i < 200 && volume_->GetStatus().pending_deletes > 0; ++i) {
    fake_clock_.advance_ns(10'000'000'000);  // time passes: back-offs run out
    (void)volume_->Drain(kDrainTimeout, nullptr);
    usleep(20'000);
  }
  EXPECT_EQ(volume_->GetStatus().pending_deletes, 0u);
  EXPECT_EQ(TotalShards(), 0u);
}

// One piece that cannot be flushed (its chunk's old bytes are unreadable for now) must not
// pin the journal: segments go strictly in order, so without copying that piece forward
// the journal would fill behind it and refuse every writer, although the stores take all
// other data.
TEST_F(VolumeTest, APieceThatCannotBeFlushedDoesNotPinTheJournal) {
  constexpr uint64_t kJournal = 8 << 20;  // segments of 1 MiB
  std::vector<std::shared_ptr<FaultyStore>> faulty =
      ReopenWithFaultyStores(nullptr, [&](VolumeOpenOptions& open) {
        open.journal_bytes = kJournal;
        open.journal_wait_ns = 20'000'000'000;
      });
  ASSERT_TRUE(volume_);
  Ino stuck = CreateFile("stuck");
  Bytes expected = RandomBytes(256 * 1024, 41);  // one whole chunk
  WriteAll(stuck, 0, expected);
  Drain();
  // From now on every chunk read fails to authenticate, so a partial overwrite of the
  // chunk cannot be built: that file stays dirty.
  for (auto& f : faulty) f->SetCorruptReads(true);
  const Bytes patch = RandomBytes(4096, 42);
  WriteAll(stuck, 1000, patch);
  std::copy(patch.begin(), patch.end(), expected.begin() + 1000);

  // Three journals' worth of other files, written whole (nothing to read back to build).
  for (int i = 0; i < 24; ++i) {
    Ino ino = CreateFile("other" + std::to_string(i));
    const Bytes data = RandomBytes(1 << 20, static_cast<uint32_t>(50 + i));
    Result<size_t> n = volume_->Write(ino, 0, data);
    ASSERT_TRUE(n.ok()) << "write " << i << ": " << n.status().ToString();
    volume_->Forget(ino, 1);
  }

  for (auto& f : faulty) f->SetCorruptReads(false);
  Drain();
  EXPECT_EQ(ReadAll(stuck, 0, expected.size()), expected);
  for (int i = 0; i < 24; i += 7) {
    auto attr = volume_->Lookup(kRootIno, "other" + std::to_string(i));
    ASSERT_TRUE(attr.ok());
    EXPECT_EQ(ReadAll(attr->ino, 0, 1 << 20), RandomBytes(1 << 20, static_cast<uint32_t>(50 + i)));
  }
  // And the copy replays: reopened, the volume still has the patch.
  Reopen();
  EXPECT_EQ(ReadAll(stuck, 0, expected.size()), expected);
}

// Stores belong to one volume. A store stamped by another volume counts as down: the
// sweep never lists it, however old its shards, the mount and the status say why, and
// the volume works on the others.
TEST_F(VolumeTest, SweepNeverTouchesAStoreStampedByAnotherVolume) {
  ASSERT_TRUE(volume_->Close().ok());
  volume_.reset();
  auto theirs = std::make_shared<MemoryStore>(0, "mem-theirs");
  ASSERT_TRUE(theirs->ClaimStamp(StoreStamp::ForVolume("another volume's id")).ok());
  ShardId foreign;
  foreign.bytes.fill(0xab);
  ASSERT_TRUE(theirs->Put(foreign, RandomBytes(1000, 5)).ok());
  memory_[0] = theirs;

  VolumeOpenOptions open;
  open.home = home_;
  open.passphrase = "correct horse";
  open.cache_bytes = 0;
  open.cleanup_grace_ns = 0;  // every unreferenced shard is old enough to sweep
  for (auto& m : memory_) open.stores_override.push_back(m);
  auto v = Volume::Open(open);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  volume_ = std::move(v).value();
  const std::vector<std::string> warnings = volume_->OpenWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("mem-theirs belongs to another volume"), std::string::npos)
      << warnings[0];

  // The sweep at mount runs with no grace: let it finish before writing, since without a
  // grace a sweep racing a flush may take its fresh shards for strays (the grace is what
  // protects uploads in flight; here only the foreign store is on trial).
  VolumeStatus status;
  for (int i = 0; i < 100; ++i) {
    status = volume_->GetStatus();
    if (status.cleanup_passes >= 1) break;
    usleep(50'000);
  }
  ASSERT_GE(status.cleanup_passes, 1u);
  Ino a = CreateFile("a");
  const Bytes data = RandomBytes(600'000, 6);
  WriteAll(a, 0, data);
  Drain();
  status = volume_->GetStatus();
  EXPECT_EQ(theirs->ids(), std::vector<ShardId>{foreign});
  EXPECT_FALSE(status.stores[0].reachable);
  EXPECT_NE(status.stores[0].problem.find("belongs to another volume"), std::string::npos)
      << status.stores[0].problem;
  EXPECT_TRUE(status.journal_damage.empty());
  EXPECT_EQ(ReadAll(a, 0, data.size()), data);
}

// A wiped store (no stamp, no shards) is this volume's: stamped at mount and used again.
TEST_F(VolumeTest, AWipedStoreIsStampedAgainAndUsed) {
  Ino a = CreateFile("a");
  const Bytes data = RandomBytes(600'000, 7);
  WriteAll(a, 0, data);
  Drain();
  const std::optional<StoreStamp> ours = *memory_[2]->ReadStamp();
  ASSERT_TRUE(ours.has_value());
  memory_[1] = std::make_shared<MemoryStore>(0, "mem1-wiped");
  Reopen();
  EXPECT_TRUE(volume_->OpenWarnings().empty());
  EXPECT_EQ(*memory_[1]->ReadStamp(), ours);
  EXPECT_EQ(ReadAll(a, 0, data.size()), data);
  Ino b = CreateFile("b");
  WriteAll(b, 0, RandomBytes(600'000, 8));  // other bytes: no dedup with a
  Drain();
  EXPECT_GT(memory_[1]->shard_count(), 0u);
}

VolumeInitOptions InitOptionsFor(const std::string& home) {
  VolumeInitOptions init;
  init.home = home;
  init.passphrase = "correct horse";
  init.kdf = KdfStrength::kFastForTests;
  init.chunk_size = 256 * 1024;
  return init;
}

// The fixture's Init stamped its unused-store folders for its volume: a second volume on
// them is refused, and the new folder beside them is left without a stamp.
TEST_F(VolumeTest, InitRefusesStoresOfAnotherVolumeAndStampsNothing) {
  VolumeInitOptions b = InitOptionsFor(home_ + "/b");
  b.store_folders.push_back(home_ + "/fresh");
  for (int i = 0; i < 6; ++i)
    b.store_folders.push_back(home_ + "/unused-store" + std::to_string(i));
  Status refused = Volume::Init(b);
  EXPECT_EQ(refused.code(), Code::kPermission) << refused.ToString();
  EXPECT_NE(refused.message().find("folder:" + home_ + "/unused-store0 belongs to another volume"),
            std::string::npos)
      << refused.message();
  EXPECT_FALSE(std::filesystem::exists(home_ + "/b/meta"));
  EXPECT_FALSE(std::filesystem::exists(StampFilePath(home_ + "/fresh")));
}

TEST_F(VolumeTest, InitRefusesTheSameFolderTwice) {
  std::filesystem::create_directories(home_ + "/s1");
  std::filesystem::create_directory_symlink(home_ + "/s1", home_ + "/s1-again");
  VolumeInitOptions c = InitOptionsFor(home_ + "/c");
  c.data_shards = 1;
  c.parity_shards = 1;
  c.store_folders = {home_ + "/s1", home_ + "/s1-again"};
  Status refused = Volume::Init(c);
  EXPECT_EQ(refused.code(), Code::kInvalid) << refused.ToString();
  EXPECT_NE(refused.message().find("are the same folder"), std::string::npos) << refused.message();
  EXPECT_FALSE(std::filesystem::exists(home_ + "/c/meta"));
}

// Hosts are told apart by their pinned keys; the ones a volume takes are stamped at init.
TEST_F(VolumeTest, InitRefusesTheSameHostTwiceAndStampsTheHostsItTakes) {
  std::map<std::string, std::shared_ptr<MemoryStore>> hosts;
  auto factory = [&](const StoreSpec& spec) -> Result<std::shared_ptr<ShardStore>> {
    auto& store = hosts[spec.location];
    if (!store) store = std::make_shared<MemoryStore>(0, "host:" + spec.location);
    return std::shared_ptr<ShardStore>(store);
  };
  VolumeInitOptions d = InitOptionsFor(home_ + "/d");
  d.data_shards = 1;
  d.parity_shards = 1;
  d.store_factory = factory;
  d.hosts = {StoreSpec{"host", "127.0.0.1:7001", Bytes(32, 1)},
             StoreSpec{"host", "localhost:7001", Bytes(32, 1)}};
  Status refused = Volume::Init(d);
  EXPECT_EQ(refused.code(), Code::kInvalid) << refused.ToString();
  EXPECT_NE(refused.message().find("127.0.0.1:7001 and localhost:7001 are the same host"),
            std::string::npos)
      << refused.message();
  EXPECT_TRUE(hosts.empty());

  d.hosts[1] = StoreSpec{"host", "127.0.0.1:7002", Bytes(32, 2)};
  ASSERT_TRUE(Volume::Init(d).ok());
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_TRUE(hosts["127.0.0.1:7001"]->ReadStamp()->has_value());
  EXPECT_EQ(*hosts["127.0.0.1:7001"]->ReadStamp(), *hosts["127.0.0.1:7002"]->ReadStamp());
}

// A big file is destroyed in bounded batches on the flusher thread, so an unlink never holds
// the namespace lock for all of a file's extents; a mount after a crash finishes the job.
TEST_F(VolumeTest, ABigUnlinkedFileIsDestroyedInBoundedBatches) {
  const auto small_batches = [](VolumeOpenOptions& open) { open.destroy_batch_extents = 8; };
  ReopenWithFaultyStores(nullptr, small_batches);
  ASSERT_TRUE(volume_);
  Ino big = CreateFile("big");
  WriteAll(big, 0, RandomBytes(40 * 256 * 1024, 61));  // 40 chunks
  volume_->Forget(big, 1);
  Ino keep = CreateFile("keep");
  const Bytes kept = RandomBytes(300'000, 62);
  WriteAll(keep, 0, kept);
  Drain();
  const uint64_t files = volume_->GetStatus().files;
  const size_t keep_shards = 2 * 6;
  ASSERT_EQ(TotalShards(), 40u * 6 + keep_shards);

  ASSERT_TRUE(volume_->Unlink(kRootIno, "big").ok());
  // The first batch went at once; the inode and most of its extents are still there.
  EXPECT_EQ(volume_->GetStatus().files, files) << "the whole file was destroyed in one batch";
  EXPECT_EQ(volume_->Lookup(kRootIno, "big").status().code(), Code::kNotFound);
  for (int i = 0; i < 200 && (volume_->GetStatus().files == files || TotalShards() > keep_shards);
       ++i)
    usleep(20'000);
  EXPECT_EQ(volume_->GetStatus().files, files - 1);
  EXPECT_EQ(TotalShards(), keep_shards);

  // Cut short by a close right after the unlink, the next mount finishes it.
  Ino big2 = CreateFile("big2");
  WriteAll(big2, 0, RandomBytes(40 * 256 * 1024, 63));
  volume_->Forget(big2, 1);
  Drain();
  ASSERT_TRUE(volume_->Unlink(kRootIno, "big2").ok());
  ReopenWithFaultyStores(nullptr, small_batches);
  ASSERT_TRUE(volume_);
  for (int i = 0; i < 200 && TotalShards() > keep_shards; ++i) usleep(20'000);
  EXPECT_EQ(TotalShards(), keep_shards);
  EXPECT_EQ(volume_->GetStatus().files, files - 1);
  EXPECT_EQ(ReadAll(keep, 0, kept.size()), kept);
}

// Quota is ENOSPC: on stores of 1 MiB each (4+2 over six: 4 MiB of file space), writing
// on fails with kNoSpace near that capacity, at write time, and every file written before
// reads back whole, also after a reopen.
TEST_F(VolumeTest, WritesPastTheStoresCapacityFailWithNoSpaceAndEarlierFilesStay) {
  for (int i = 0; i < 6; ++i)
    memory_[static_cast<size_t>(i)] =
        std::make_shared<MemoryStore>(1 << 20, "small" + std::to_string(i));
  Reopen();
  constexpr size_t kFile = 128 * 1024;
  std::vector<Ino> files;
  uint64_t written = 0;
  Status refused;
  for (int n = 0; n < 100 && refused.ok(); ++n) {
    const Ino ino = CreateFile(Numbered("f", n));
    Result<size_t> w = volume_->Write(ino, 0, RandomBytes(kFile, static_cast<uint32_t>(n)));
    if (!w.ok()) {
      refused = w.status();
      break;
    }
    files.push_back(ino);
    written += *w;
    if (n % 4 == 3) Drain();
  }
  ASSERT_EQ(refused.code(), Code::kNoSpace) << written << " bytes written, no refusal";
  EXPECT_NE(refused.message().find("the volume is full"), std::string::npos);
  EXPECT_GE(written, 2u << 20);  // at least half the usable 4 MiB
  EXPECT_LE(written, (4u << 20) + kFile);
  Drain();
  Reopen();
  for (size_t i = 0; i < files.size(); ++i)
    ASSERT_EQ(ReadAll(files[i], 0, kFile), RandomBytes(kFile, static_cast<uint32_t>(i))) << i;
  // Freeing space lets writes in again.
  ASSERT_TRUE(volume_->Unlink(kRootIno, "f0").ok());
  ASSERT_TRUE(volume_->Unlink(kRootIno, "f1").ok());
  bool admitted = false;
  for (int tries = 0; tries < 100 && !admitted; ++tries) {
    admitted = volume_->Write(files[2], kFile, RandomBytes(4096, 7)).ok();
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(admitted);
}

}  // namespace
}  // namespace quid
