// kill -9 at random moments: a child process writes through the Volume (journal, flusher,
// folder stores, RocksDB) and reports each file it has fsynced; the parent kills it at a
// random time, reopens the volume and checks every promise:
//   - every fsynced file is there, byte for byte;
//   - every file in the namespace reads without error (no dangling extents);
//   - after draining and the cleanup pass, the stores hold exactly the shards of the
//     chunks metadata references (nothing leaked, nothing missing).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "storage/volume/volume.h"

namespace quid {
namespace {

constexpr int kRounds = 12;
constexpr char kPassphrase[] = "crash test";

std::string Digest(ByteSpan data) {
  uint8_t out[16];
  crypto_generichash(out, sizeof(out), data.data(), data.size(), nullptr, 0);
  return ToHex({out, sizeof(out)});
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() / ("crash_test_" + std::to_string(::getpid())))
                .string();
    std::filesystem::remove_all(root_);
    VolumeInitOptions init;
    init.home = root_ + "/home";
    init.passphrase = kPassphrase;
    init.kdf = KdfStrength::kFastForTests;
    init.chunk_size = 256 * 1024;
    for (int i = 0; i < 6; ++i) init.store_folders.push_back(root_ + "/store" + std::to_string(i));
    ASSERT_TRUE(Volume::Init(init).ok());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  VolumeOpenOptions OpenOptions(int64_t grace_ns) const {
    VolumeOpenOptions open;
    open.home = root_ + "/home";
    open.passphrase = kPassphrase;
    open.cache_bytes = 0;
    open.cleanup_grace_ns = grace_ns;
    return open;
  }

  // The child: writes files forever, reporting "name digest" once a file is fsynced.
  [[noreturn]] void Writer(int round, int report_fd) {
    auto opened = Volume::Open(OpenOptions(600'000'000'000));
    if (!opened.ok()) _exit(2);
    Volume& v = **opened;
    std::mt19937 rng(static_cast<uint32_t>(round * 7919 + ::getpid()));
    for (int i = 0;; ++i) {
      char name_buf[32];  // snprintf: GCC 12's -Wrestrict misfires on chained string +
      std::snprintf(name_buf, sizeof(name_buf), "r%d_%d", round, i);
      const std::string name = name_buf;
      auto attr = v.Mknod(kRootIno, name, S_IFREG | 0644, 0, Caller{});
      if (!attr.ok()) _exit(3);
      const size_t size = std::uniform_int_distribution<size_t>(0, 1'200'000)(rng);
      Bytes data(size);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      // Write in uneven pieces, sometimes overwriting, like real programs do.
      size_t at = 0;
      while (at < size) {
        size_t n = std::min(size - at, std::uniform_int_distribution<size_t>(1, 300'000)(rng));
        if (!v.Write(attr->ino, at, ByteSpan(data).subspan(at, n)).ok()) _exit(4);
        at += n;
      }
      if (size > 10 && rng() % 3 == 0) {
        // Shrink and regrow: the journal's truncate record must replay in order.
        SetAttrRequest cut;
        cut.size = size / 2;
        if (!v.SetAttr(attr->ino, cut).ok()) _exit(5);
        std::fill(data.begin() + static_cast<long>(size / 2), data.end(), 0);
        SetAttrRequest grow;
        grow.size = size;
        if (!v.SetAttr(attr->ino, grow).ok()) _exit(5);
      }
      if (rng() % 4 == 0) {
        (void)v.Unlink(kRootIno, name);  // scratch files come and go unreported
        continue;
      }
      if (!v.Fsync(attr->ino, false).ok()) _exit(6);
      std::string line = name + " " + Digest(data) + "\n";
      if (::write(report_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        _exit(7);
    }
  }

  std::string root_;
};

TEST_F(CrashTest, KillNineAtRandomMomentsLosesNothingFsynced) {
  std::mt19937 rng(12345);
  std::map<std::string, std::string> durable;  // name -> digest
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      Writer(round, fds[1]);
    }
    ::close(fds[1]);
    ::usleep(std::uniform_int_distribution<useconds_t>(100'000, 1'500'000)(rng));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early with " << WEXITSTATUS(status);
    std::string reported;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) reported.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    std::istringstream lines(reported);
    std::string name, digest;
    while (lines >> name >> digest) durable[name] = digest;

    // Reopen after the crash: replay, then check every fsynced file and every entry.
    auto opened = Volume::Open(OpenOptions(0));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    Volume& v = **opened;
    for (const auto& [file, want] : durable) {
      auto attr = v.Lookup(kRootIno, file);
      ASSERT_TRUE(attr.ok()) << "round " << round << ": fsynced " << file << " is gone";
      Bytes data(attr->size);
      auto got = v.Read(attr->ino, 0, data);
      ASSERT_TRUE(got.ok()) << file << ": " << got.status().ToString();
      ASSERT_EQ(Digest(data), want) << "round " << round << ": " << file << " differs";
    }
    std::vector<std::pair<std::string, Attr>> all;
    uint64_t cookie = 0;
    for (;;) {
      size_t before = all.size();
      ASSERT_TRUE(v.ReadDir(kRootIno, cookie, false, [&](const DirEntryInfo& e, uint64_t next) {
                     all.emplace_back(e.name, e.attr);
                     cookie = next;
                     return true;
                   }).ok());
      if (all.size() == before) break;
    }
    for (const auto& [file, attr] : all) {
      Bytes data(attr.size);
      auto got = v.Read(attr.ino, 0, data);
      ASSERT_TRUE(got.ok()) << "round " << round << ": " << file
                            << " unreadable: " << got.status().ToString();
    }
    ASSERT_TRUE(v.Close().ok());
  }

  // Finally: drain everything; the stores must hold exactly the referenced shards.
  auto opened = Volume::Open(OpenOptions(0));
  ASSERT_TRUE(opened.ok());
  Volume& v = **opened;
  ASSERT_TRUE(v.Drain(60'000'000'000, nullptr).ok());
  VolumeStatus status;
  for (int i = 0; i < 100; ++i) {
    status = v.GetStatus();
    if (status.pending_deletes == 0) break;
    ::usleep(100'000);
  }
  ASSERT_TRUE(v.Close().ok());
  // A fresh mount runs the cleanup pass (grace 0) before anything else is written.
  opened = Volume::Open(OpenOptions(0));
  ASSERT_TRUE(opened.ok());
  for (int i = 0; i < 100; ++i) {
    status = (*opened)->GetStatus();
    uint64_t shards = 0;
    for (const auto& s : status.stores) shards += s.shard_count;
    if (shards == status.chunks * 6 && status.pending_deletes == 0) break;
    ::usleep(100'000);
  }
  uint64_t shards = 0;
  for (const auto& s : status.stores) shards += s.shard_count;
  EXPECT_EQ(shards, status.chunks * 6) << "stores hold shards no chunk references";
  EXPECT_EQ(status.chunks, status.chunks_healthy);
  EXPECT_GT(durable.size(), 0u);
  ASSERT_TRUE((*opened)->Close().ok());
}

}  // namespace
}  // namespace quid
