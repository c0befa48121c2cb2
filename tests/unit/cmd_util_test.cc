// The command line's building blocks: sizes, home resolution, passphrase sources, the control
// socket protocol, mount records and the mount table.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "cmd/control_socket.h"
#include "cmd/duration_parse.h"
#include "cmd/home.h"
#include "cmd/mount_record.h"
#include "fs/mount_table.h"
#include "cmd/passphrase.h"
#include "cmd/size_parse.h"
#include "cmd/status_json.h"

namespace quid {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A fresh folder under the test's temporary folder, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "quid-cmd-test.XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- sizes ---

TEST(ParseSizeTest, TakesPlainBytesAndZero) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("512B"), 512u);
}

TEST(ParseSizeTest, SuffixesAreBinary) {
  EXPECT_EQ(*ParseSize("1K"), 1024u);
  EXPECT_EQ(*ParseSize("4k"), 4096u);
  EXPECT_EQ(*ParseSize("256M"), 256ull << 20);
  EXPECT_EQ(*ParseSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseSize("3T"), 3ull << 40);
  EXPECT_EQ(*ParseSize("16MiB"), 16ull << 20);
  EXPECT_EQ(*ParseSize("0G"), 0u);
}

TEST(ParseSizeTest, RejectsMalformedText) {
  for (const char* bad : {"", "K", "-1", "1.5G", "12X", "1KB", "1 K", "1Ki", "G1", "0x10"}) {
    Result<uint64_t> size = ParseSize(bad);
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_EQ(size.status().code(), Code::kInvalid) << bad;
  }
}

TEST(ParseSizeTest, RejectsValuesBeyond64Bits) {
  EXPECT_EQ(*ParseSize("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseSize("18446744073709551616").ok());
  EXPECT_FALSE(ParseSize("16777216T").ok());  // 2^24 TiB = 2^64 bytes
  EXPECT_EQ(*ParseSize("16777215T"), 16777215ull << 40);
}

TEST(ParseDurationTest, TakesTheSuffixesDesignSpells) {
  EXPECT_EQ(*ParseDuration("500ms"), 500'000'000);
  EXPECT_EQ(*ParseDuration("30s"), 30'000'000'000);
  EXPECT_EQ(*ParseDuration("2m"), 120'000'000'000);
  EXPECT_EQ(*ParseDuration("1h"), 3'600'000'000'000);
  EXPECT_EQ(*ParseDuration("30d"), 30 * 86'400'000'000'000);
  EXPECT_EQ(*ParseDuration("0s"), 0);
}

TEST(ParseDurationTest, RefusesBareNumbersOtherUnitsAndOverflow) {
  for (const char* bad : {"30", "", "s", "10 s", "1.5s", "-3s", "10sec", "5w", "200000d"}) {
    Result<int64_t> d = ParseDuration(bad);
    EXPECT_FALSE(d.ok()) << bad;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), Code::kInvalid) << bad;
    }
  }
}

TEST(FormatSizeTest, PicksReadableUnits) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1.0 KiB");
  EXPECT_EQ(FormatSize(3ull << 29), "1.5 GiB");
}

// --- home ---

TEST(ResolveHomeTest, FlagBeatsEnvironment) {
  ScopedEnv env("QUID_HOME", "/from/env");
  EXPECT_EQ(*ResolveHome("/from/flag"), "/from/flag");
}

TEST(ResolveHomeTest, EnvironmentBeatsDefault) {
  ScopedEnv env("QUID_HOME", "/from/env");
  ScopedEnv user("HOME", "/home/someone");
  EXPECT_EQ(*ResolveHome(""), "/from/env");
}

TEST(ResolveHomeTest, DefaultsUnderUserHome) {
  ScopedEnv env("QUID_HOME", nullptr);
  ScopedEnv user("HOME", "/home/someone");
  EXPECT_EQ(*ResolveHome(""), "/home/someone/.local/share/quid");
}

TEST(ResolveHomeTest, RelativePathsBecomeAbsolute) {
  ScopedEnv env("QUID_HOME", nullptr);
  const std::string home = *ResolveHome("some/./where/../home/");
  EXPECT_EQ(home, (fs::current_path() / "some/home").string());
}

// --- passphrase ---

// A pipe stands in for stdin when it is not a terminal (CI, cron, a script).
class NotATerminal {
 public:
  NotATerminal() { EXPECT_EQ(::pipe(fds_), 0); }
  ~NotATerminal() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fd() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
};

TEST(PassphraseTest, ComesFromTheEnvironment) {
  ScopedEnv env("QUID_PASSPHRASE", "correct horse");
  NotATerminal stdin_pipe;
  EXPECT_EQ(*GetPassphrase({.terminal_fd = stdin_pipe.fd()}), "correct horse");
}

TEST(PassphraseTest, FileBeatsEnvironmentAndLosesItsNewline) {
  ScopedEnv env("QUID_PASSPHRASE", "from env");
  TempDir dir;
  const std::string file = dir.path() + "/pass";
  std::ofstream(file) << "from file\r\nsecond line\n";
  EXPECT_EQ(*GetPassphrase({.file = file}), "from file");
}

TEST(PassphraseTest, MissingOrEmptyFileIsAnError) {
  TempDir dir;
  EXPECT_FALSE(GetPassphrase({.file = dir.path() + "/absent"}).ok());
  const std::string empty = dir.path() + "/empty";
  std::ofstream(empty) << "\n";
  EXPECT_FALSE(GetPassphrase({.file = empty}).ok());
}

TEST(PassphraseTest, NeverPromptsWithoutATerminal) {
  ScopedEnv env("QUID_PASSPHRASE", nullptr);
  NotATerminal stdin_pipe;
  Result<std::string> passphrase = GetPassphrase({.terminal_fd = stdin_pipe.fd()});
  ASSERT_FALSE(passphrase.ok());
  EXPECT_EQ(passphrase.status().code(), Code::kInvalid);
  EXPECT_NE(passphrase.status().message().find("QUID_PASSPHRASE"), std::string::npos);
}

TEST(PassphraseTest, EmptyEnvironmentValueIsRefused) {
  ScopedEnv env("QUID_PASSPHRASE", "");
  NotATerminal stdin_pipe;
  EXPECT_FALSE(GetPassphrase({.terminal_fd = stdin_pipe.fd()}).ok());
}

// --- status JSON ---

TEST(StatusJsonTest, RoundTripsEveryField) {
  DaemonStatus in;
  in.home = "/h";
  in.mountpoint = "/m";
  in.volume.data_shards = 4;
  in.volume.parity_shards = 2;
  in.volume.files = 7;
  in.volume.chunks = 9;
  in.volume.chunks_healthy = 8;
  in.volume.chunks_degraded = 1;
  in.volume.logical_bytes = 1ull << 40;
  in.volume.pending_bytes = 123;
  in.volume.pending_deletes = 2;
  in.volume.degraded_reads = 3;
  in.volume.swept_shards = 4;
  in.volume.stores.push_back({"/s1", true, 10, 100, 5});
  in.volume.stores.push_back({"/s2", false, 0, 0, 0});

  const std::string json = StatusToJson(in);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  Result<DaemonStatus> out = StatusFromJson(json);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->home, "/h");
  EXPECT_EQ(out->mountpoint, "/m");
  EXPECT_EQ(out->volume.logical_bytes, 1ull << 40);
  EXPECT_EQ(out->volume.pending_bytes, 123u);
  EXPECT_EQ(out->volume.degraded_reads, 3u);
  EXPECT_EQ(out->volume.swept_shards, 4u);
  ASSERT_EQ(out->volume.stores.size(), 2u);
  EXPECT_EQ(out->volume.stores[0].shard_count, 5u);
  EXPECT_FALSE(out->volume.stores[1].reachable);
}

TEST(StatusJsonTest, RoundTripsRepairAndAuditFields) {
  DaemonStatus in;
  in.volume.chunks_lost = 3;
  in.volume.scheme_availability = 0.9876;
  in.volume.placement_shortfall = 2;
  in.volume.repair.chunks_left = 11;
  in.volume.repair.bytes_left = 1ull << 33;
  in.volume.repair.chunks_done = 5;
  in.volume.repair.eta_s = 42;
  in.volume.repair.bad_shards = 6;
  in.volume.repair.audited_chunks = 700;
  in.volume.repair.audit_cycles = 2;
  VolumeStatus::Store lost;
  lost.name = "h:1";
  lost.state = HostState::kLost;
  lost.distrusted = true;
  lost.audits_failed = 9;
  lost.uptime = 0.5;
  in.volume.stores.push_back(lost);
  Result<DaemonStatus> out = StatusFromJson(StatusToJson(in));
  ASSERT_TRUE(out.ok()) << out.status().message();
  const VolumeStatus& v = out->volume;
  EXPECT_EQ(v.chunks_lost, 3u);
  EXPECT_DOUBLE_EQ(v.scheme_availability, 0.9876);
  EXPECT_EQ(v.placement_shortfall, 2);
  EXPECT_EQ(v.repair.chunks_left, 11u);
  EXPECT_EQ(v.repair.bytes_left, 1ull << 33);
  EXPECT_EQ(v.repair.chunks_done, 5u);
  EXPECT_EQ(v.repair.eta_s, 42);
  EXPECT_EQ(v.repair.bad_shards, 6u);
  EXPECT_EQ(v.repair.audited_chunks, 700u);
  EXPECT_EQ(v.repair.audit_cycles, 2u);
  ASSERT_EQ(v.stores.size(), 1u);
  EXPECT_EQ(v.stores[0].state, HostState::kLost);
  EXPECT_TRUE(v.stores[0].distrusted);
  EXPECT_EQ(v.stores[0].audits_failed, 9u);
  EXPECT_DOUBLE_EQ(v.stores[0].uptime, 0.5);
}

TEST(StatusJsonTest, CheckReportRoundTripsAndRejectsGarbage) {
  CheckReport in;
  in.chunks = 10;
  in.shards_checked = 58;
  in.shards_missing = 1;
  in.shards_corrupt = 1;
  in.orphan_shards = 4;
  in.orphans_recent = 3;
  in.chunks_unrecoverable = 1;
  in.chunks_repaired = 2;
  in.stores_unreachable = {"h:1: down"};
  in.problems = {"chunk ab: 1 shard(s) missing or bad"};
  Result<CheckReport> out = CheckReportFromJson(CheckReportToJson(in));
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->shards_checked, 58u);
  EXPECT_EQ(out->orphans_recent, 3u);
  EXPECT_EQ(out->chunks_unrecoverable, 1u);
  EXPECT_EQ(out->stores_unreachable, in.stores_unreachable);
  EXPECT_EQ(out->problems, in.problems);
  EXPECT_EQ(CheckReportFromJson("{}").status().code(), Code::kCorrupt);
  EXPECT_EQ(CheckReportFromJson("nope").status().code(), Code::kCorrupt);
}

TEST(StatusJsonTest, MalformedInputIsAnErrorNotAnException) {
  EXPECT_EQ(StatusFromJson("not json").status().code(), Code::kCorrupt);
  EXPECT_EQ(StatusFromJson("{\"home\": 5}").status().code(), Code::kCorrupt);
  EXPECT_EQ(StatusFromJson("[]").status().code(), Code::kCorrupt);
}

// --- control socket ---

class ControlSocketTest : public ::testing::Test {
 protected:
  ControlHandlers Handlers() {
    ControlHandlers handlers;
    handlers.status_json = [] { return std::string("{\"x\":1}"); };
    handlers.drain = [this](const std::function<void(uint64_t)>& progress) {
      progress(300);
      progress(100);
      return drain_left_.load();
    };
    handlers.unmount = [this](bool force) { unmounts_.push_back(force); };
    return handlers;
  }

  TempDir dir_;
  std::string path_ = ControlSocketPath(dir_.path());
  std::atomic<uint64_t> drain_left_{0};
  std::vector<bool> unmounts_;
};

TEST_F(ControlSocketTest, AnswersStatus) {
  auto server = ControlServer::Start(path_, Handlers());
  ASSERT_TRUE(server.ok()) << server.status().message();
  EXPECT_EQ((fs::status(path_).permissions() & fs::perms::all),
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(*ControlRequest(path_, "status", 5000), "{\"x\":1}");
}

TEST_F(ControlSocketTest, DrainReportsProgressThenTheOutcome) {
  auto server = ControlServer::Start(path_, Handlers());
  ASSERT_TRUE(server.ok());
  for (uint64_t left : {uint64_t{0}, uint64_t{42}}) {
    drain_left_ = left;
    auto connection = ControlConnection::Connect(path_);
    ASSERT_TRUE(connection.ok());
    ASSERT_TRUE(connection->Send("drain").ok());
    EXPECT_EQ(*connection->ReadLine(5000), "pending 300");
    EXPECT_EQ(*connection->ReadLine(5000), "pending 100");
    EXPECT_EQ(*connection->ReadLine(5000), left == 0 ? "done" : "left 42");
  }
}

TEST_F(ControlSocketTest, UnmountRequestsReachTheHandler) {
  auto server = ControlServer::Start(path_, Handlers());
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(*ControlRequest(path_, "unmount", 5000), "ok");
  EXPECT_EQ(*ControlRequest(path_, "unmount force", 5000), "ok");
  EXPECT_EQ(ControlRequest(path_, "bogus", 5000)->rfind("error", 0), 0u);
  (*server)->Stop();
  EXPECT_EQ(unmounts_, (std::vector<bool>{false, true}));
}

TEST_F(ControlSocketTest, SecondServerOnTheSameHomeIsRefused) {
  auto first = ControlServer::Start(path_, Handlers());
  ASSERT_TRUE(first.ok());
  auto second = ControlServer::Start(path_, Handlers());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kBusy);
}

TEST_F(ControlSocketTest, StaleSocketIsReplacedAndRemovedOnStop) {
  {
    auto crashed = ControlServer::Start(path_, Handlers());
    ASSERT_TRUE(crashed.ok());
    (*crashed)->Stop();  // stops listening but leaves the file, as a killed daemon would
    EXPECT_TRUE(fs::exists(path_));
    EXPECT_EQ(ControlConnection::Connect(path_).status().code(), Code::kUnavailable);
    auto next = ControlServer::Start(path_, Handlers());
    ASSERT_TRUE(next.ok()) << next.status().message();
    EXPECT_EQ(*ControlRequest(path_, "status", 5000), "{\"x\":1}");
  }
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(ControlSocketTest, NobodyListeningIsUnavailable) {
  EXPECT_EQ(ControlRequest(path_, "status", 1000).status().code(), Code::kUnavailable);
}

TEST_F(ControlSocketTest, SilentClientTimesOut) {
  auto server = ControlServer::Start(path_, Handlers());
  ASSERT_TRUE(server.ok());
  auto connection = ControlConnection::Connect(path_);
  ASSERT_TRUE(connection.ok());
  EXPECT_EQ(connection->ReadLine(100).status().code(), Code::kUnavailable);
}

// --- mount records and the mount table ---

TEST(MountRecordTest, MapsAMountPointToItsHome) {
  TempDir dir;
  ScopedEnv runtime("QUID_RUNTIME_DIR", dir.path().c_str());
  EXPECT_EQ(ReadMountRecord("/mnt/a").status().code(), Code::kNotFound);
  ASSERT_TRUE(WriteMountRecord("/mnt/a", "/home/one").ok());
  ASSERT_TRUE(WriteMountRecord("/mnt/b", "/home/two").ok());
  EXPECT_EQ(*ReadMountRecord("/mnt/a"), "/home/one");
  EXPECT_EQ(*ReadMountRecord("/mnt/b"), "/home/two");
}

TEST(MountRecordTest, RemovalSparesANewerMountOfAnotherHome) {
  TempDir dir;
  ScopedEnv runtime("QUID_RUNTIME_DIR", dir.path().c_str());
  ASSERT_TRUE(WriteMountRecord("/mnt/a", "/home/new").ok());
  RemoveMountRecord("/mnt/a", "/home/old");
  EXPECT_EQ(*ReadMountRecord("/mnt/a"), "/home/new");
  RemoveMountRecord("/mnt/a", "/home/new");
  EXPECT_FALSE(ReadMountRecord("/mnt/a").ok());
}

TEST(MountTableTest, KnowsTheRootAndAPlainFolder) {
  EXPECT_TRUE(*IsMountPoint("/"));
  TempDir dir;
  EXPECT_FALSE(*IsMountPoint(dir.path()));
}

TEST(MountTableTest, UnescapesOctalSequences) {
  EXPECT_EQ(UnescapeMountPath("/mnt/my\\040disk"), "/mnt/my disk");
  EXPECT_EQ(UnescapeMountPath("/a\\134b"), "/a\\b");
  EXPECT_EQ(UnescapeMountPath("/trailing\\04"), "/trailing\\04");
}

}  // namespace
}  // namespace quid
