// The Env contract, run on the real disk and in memory; then MemEnv's power-loss model:
// exactly what File::Sync and SyncDir made durable survives, nothing more.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "storage/base/env.h"
#include "storage/base/mem_env.h"

namespace quid {
namespace {

std::string Str(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

std::string ReadAll(Env* env, const std::string& path) {
  auto content = env->ReadWholeFile(path);
  return content.ok() ? *content : "<" + content.status().ToString() + ">";
}

Status WriteFile(Env* env, const std::string& path, std::string_view data, bool sync) {
  QUID_ASSIGN_OR_RETURN(auto file, env->Open(path, OpenMode::kCreateTruncate, 0600));
  QUID_RETURN_IF_ERROR(file->WriteAt(0, AsBytes(data)));
  if (sync) QUID_RETURN_IF_ERROR(file->Sync());
  return Status::Ok();
}

// --- the contract, on both implementations ---------------------------------------------

class EnvContractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      env_ = &mem_;
      root_ = "/root";
    } else {
      env_ = Env::Default();
      char tmpl[] = "/tmp/quid-env-test.XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl), nullptr);
      root_ = std::string(tmpl) + "/root";
    }
    ASSERT_TRUE(env_->CreateDirs(root_, 0700).ok());
  }
  void TearDown() override {
    if (!GetParam()) std::filesystem::remove_all(ParentDir(root_));
  }
  MemEnv mem_;
  Env* env_ = nullptr;
  std::string root_;
};

TEST_P(EnvContractTest, WritesAndReadsAtOffsets) {
  auto file = env_->Open(root_ + "/f", OpenMode::kCreateExclusive, 0600);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ByteSpan parts[] = {AsBytes("hello "), AsBytes("world")};
  ASSERT_TRUE((*file)->WriteAt(0, parts).ok());
  ASSERT_TRUE((*file)->WriteAt(20, AsBytes("!")).ok());  // past the end: a zero-filled gap
  EXPECT_EQ(*(*file)->Size(), 21u);
  Bytes out(5);
  ASSERT_TRUE((*file)->ReadExact(6, out).ok());
  EXPECT_EQ(Str(out), "world");
  Bytes gap(3);
  ASSERT_TRUE((*file)->ReadExact(12, gap).ok());
  EXPECT_EQ(gap, Bytes(3, 0));
  Bytes tail(10);
  auto n = (*file)->ReadAt(18, tail);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3u);  // short only at the end of the file
  EXPECT_EQ((*file)->ReadExact(18, tail).code(), Code::kCorrupt);
  ASSERT_TRUE((*file)->Truncate(5).ok());
  EXPECT_EQ(*(*file)->Size(), 5u);
  EXPECT_EQ(ReadAll(env_, root_ + "/f"), "hello");
}

TEST_P(EnvContractTest, OpenModesSayWhatExists) {
  EXPECT_EQ(env_->Open(root_ + "/missing", OpenMode::kRead).status().code(), Code::kNotFound);
  EXPECT_EQ(env_->Open(root_ + "/missing", OpenMode::kReadWrite).status().code(), Code::kNotFound);
  ASSERT_TRUE(WriteFile(env_, root_ + "/f", "abc", true).ok());
  EXPECT_EQ(env_->Open(root_ + "/f", OpenMode::kCreateExclusive).status().code(), Code::kExists);
  ASSERT_TRUE(env_->Open(root_ + "/f", OpenMode::kCreate).ok());
  EXPECT_EQ(ReadAll(env_, root_ + "/f"), "abc");  // kCreate keeps contents
  ASSERT_TRUE(env_->Open(root_ + "/f", OpenMode::kCreateTruncate).ok());
  EXPECT_EQ(ReadAll(env_, root_ + "/f"), "");
  EXPECT_EQ(env_->Open(root_ + "/nodir/f", OpenMode::kCreate).status().code(), Code::kNotFound);
}

TEST_P(EnvContractTest, RenameReplacesAndRemoveReportsMissing) {
  ASSERT_TRUE(WriteFile(env_, root_ + "/a", "new", true).ok());
  ASSERT_TRUE(WriteFile(env_, root_ + "/b", "old", true).ok());
  ASSERT_TRUE(env_->Rename(root_ + "/a", root_ + "/b").ok());
  EXPECT_EQ(ReadAll(env_, root_ + "/b"), "new");
  EXPECT_FALSE(env_->Exists(root_ + "/a"));
  ASSERT_TRUE(env_->Remove(root_ + "/b").ok());
  EXPECT_EQ(env_->Remove(root_ + "/b").code(), Code::kNotFound);
  EXPECT_EQ(env_->Stat(root_ + "/b").status().code(), Code::kNotFound);
}

TEST_P(EnvContractTest, FoldersListAndRefuseRemovalWhileFull) {
  ASSERT_TRUE(env_->CreateDirs(root_ + "/x/y", 0700).ok());
  ASSERT_TRUE(env_->CreateDirs(root_ + "/x/y", 0700).ok());  // idempotent
  EXPECT_EQ(env_->CreateDir(root_ + "/x", 0700).code(), Code::kExists);
  ASSERT_TRUE(WriteFile(env_, root_ + "/x/f", "1", false).ok());
  std::set<std::string> names;
  ASSERT_TRUE(env_->ListDir(root_ + "/x",
                            [&](const std::string& n) {
                              names.insert(n);
                              return true;
                            })
                  .ok());
  EXPECT_EQ(names, (std::set<std::string>{"f", "y"}));
  EXPECT_FALSE(env_->RemoveDir(root_ + "/x").ok());
  ASSERT_TRUE(env_->RemoveDir(root_ + "/x/y").ok());
  auto st = env_->Stat(root_ + "/x");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->is_dir);
  EXPECT_EQ(env_->ListDir(root_ + "/nope", [](const std::string&) { return true; }).code(),
            Code::kNotFound);
}

TEST_P(EnvContractTest, LockFileIsExclusiveUntilReleased) {
  auto first = env_->LockFile(root_ + "/LOCK");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(env_->LockFile(root_ + "/LOCK").status().code(), Code::kBusy);
  first->reset();
  EXPECT_TRUE(env_->LockFile(root_ + "/LOCK").ok());
}

TEST_P(EnvContractTest, StatIdentifiesFilesAndSetMtimeSticks) {
  ASSERT_TRUE(WriteFile(env_, root_ + "/a", "1", true).ok());
  ASSERT_TRUE(WriteFile(env_, root_ + "/b", "22", true).ok());
  auto a = env_->Stat(root_ + "/a");
  auto b = env_->Stat(root_ + "/b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->size, 2u);
  EXPECT_NE(a->inode, b->inode);
  EXPECT_EQ(env_->Stat(root_ + "/./a")->inode, a->inode);
  const int64_t two_hours_ago = a->mtime_ns - 7200'000'000'000;
  ASSERT_TRUE(env_->SetMtime(root_ + "/a", two_hours_ago).ok());
  EXPECT_EQ(env_->Stat(root_ + "/a")->mtime_ns, two_hours_ago);
  auto free_bytes = env_->FreeBytes(root_);
  ASSERT_TRUE(free_bytes.ok());
  EXPECT_GT(*free_bytes, 0u);
}

TEST_P(EnvContractTest, WriteFileAtomicReplacesWhole) {
  ASSERT_TRUE(env_->WriteFileAtomic(root_ + "/k", AsBytes("one"), 0600).ok());
  ASSERT_TRUE(env_->WriteFileAtomic(root_ + "/k", AsBytes("two!"), 0600).ok());
  EXPECT_EQ(ReadAll(env_, root_ + "/k"), "two!");
  EXPECT_FALSE(env_->Exists(root_ + "/k.tmp"));
}

INSTANTIATE_TEST_SUITE_P(PosixAndMemory, EnvContractTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "MemEnv" : "PosixEnv"; });

TEST(ParentDirTest, SplitsLikeDirname) {
  EXPECT_EQ(ParentDir("/a/b/c"), "/a/b");
  EXPECT_EQ(ParentDir("a/b/"), "a");
  EXPECT_EQ(ParentDir("c"), ".");
  EXPECT_EQ(ParentDir("/c"), "/");
}

// --- MemEnv's power-loss model -----------------------------------------------------------

TEST(MemEnvPowerLossTest, UnsyncedBytesAreLostSyncedOnesKept) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d", 0700).ok());
  auto file = env.Open("/d/f", OpenMode::kCreateExclusive, 0600);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  ASSERT_TRUE((*file)->WriteAt(0, AsBytes("durable")).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->WriteAt(7, AsBytes(" and lost")).ok());
  EXPECT_EQ(env.UnsyncedBytes(), 16u);
  env.PowerLoss();
  EXPECT_EQ(ReadAll(&env, "/d/f"), "durable");
  EXPECT_EQ(env.UnsyncedBytes(), 0u);
}

TEST(MemEnvPowerLossTest, NewFileWithoutDirSyncVanishesEvenIfItsDataWasSynced) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d", 0700).ok());
  ASSERT_TRUE(WriteFile(&env, "/d/f", "synced data", true).ok());
  env.PowerLoss();
  EXPECT_FALSE(env.Exists("/d/f"));
}

TEST(MemEnvPowerLossTest, RenameAndRemoveNeedDirSync) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/d", 0700).ok());
  ASSERT_TRUE(WriteFile(&env, "/d/a", "A", true).ok());
  ASSERT_TRUE(WriteFile(&env, "/d/gone", "G", true).ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  ASSERT_TRUE(env.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(env.Remove("/d/gone").ok());
  env.PowerLoss();
  EXPECT_EQ(ReadAll(&env, "/d/a"), "A");  // the rename was never made durable
  EXPECT_FALSE(env.Exists("/d/b"));
  EXPECT_EQ(ReadAll(&env, "/d/gone"), "G");  // nor the removal

  ASSERT_TRUE(env.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  env.PowerLoss();
  EXPECT_EQ(ReadAll(&env, "/d/b"), "A");
  EXPECT_FALSE(env.Exists("/d/a"));
}

TEST(MemEnvPowerLossTest, CreateDirsMakesTheNewFoldersDurable) {
  MemEnv env;
  ASSERT_TRUE(env.CreateDirs("/a/b/c", 0700).ok());
  env.PowerLoss();
  auto st = env.Stat("/a/b/c");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->is_dir);
}

TEST(MemEnvPowerLossTest, AfterTheCutNothingBecomesDurableAndOldFilesDie) {
  MemEnv env;
  auto file = env.Open("/f", OpenMode::kCreate, 0600);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  ASSERT_TRUE((*file)->WriteAt(0, AsBytes("before")).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  env.Crash();
  EXPECT_TRUE(env.crashed());
  // The running code notices nothing...
  EXPECT_TRUE((*file)->WriteAt(0, AsBytes("after!")).ok());
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_TRUE(WriteFile(&env, "/g", "new", true).ok());
  EXPECT_TRUE(env.SyncDir("/").ok());
  // ...but none of it was durable.
  env.Restart();
  EXPECT_FALSE(env.crashed());
  EXPECT_EQ(ReadAll(&env, "/f"), "before");
  EXPECT_FALSE(env.Exists("/g"));
  EXPECT_EQ((*file)->WriteAt(0, AsBytes("x")).code(), Code::kIoError);  // from before the loss
  EXPECT_TRUE(env.Open("/f", OpenMode::kReadWrite).ok());
}

TEST(MemEnvPowerLossTest, HookFailsAChosenCallAndChangesNothing) {
  MemEnv env;
  env.SetHook([](EnvOp op, const std::string& path) {
    if (op == EnvOp::kSync && path == "/bad") return Status::IoError("injected: sync " + path);
    return Status::Ok();
  });
  ASSERT_TRUE(WriteFile(&env, "/good", "g", true).ok());
  EXPECT_EQ(WriteFile(&env, "/bad", "b", true).code(), Code::kIoError);
  ASSERT_TRUE(env.SyncDir("/").ok());
  env.PowerLoss();
  EXPECT_EQ(ReadAll(&env, "/good"), "g");
  EXPECT_EQ(ReadAll(&env, "/bad"), "");  // its entry survived, its bytes never synced
}

TEST(MemEnvPowerLossTest, HookCanCrashAtTheNthSync) {
  MemEnv env;
  int syncs = 0;
  env.SetHook([&](EnvOp op, const std::string&) {
    if (op == EnvOp::kSync && ++syncs == 2) env.Crash();  // this sync never happens
    return Status::Ok();
  });
  ASSERT_TRUE(WriteFile(&env, "/one", "1", true).ok());
  ASSERT_TRUE(env.SyncDir("/").ok());
  EXPECT_TRUE(WriteFile(&env, "/two", "2", true).ok());
  EXPECT_TRUE(env.SyncDir("/").ok());
  env.SetHook(nullptr);
  env.Restart();
  EXPECT_EQ(ReadAll(&env, "/one"), "1");
  EXPECT_FALSE(env.Exists("/two"));
}

TEST(MemEnvPowerLossTest, CapacityGivesNoSpace) {
  MemEnv env(nullptr, /*capacity_bytes=*/10);
  auto file = env.Open("/f", OpenMode::kCreate, 0600);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->WriteAt(0, AsBytes("0123456789")).ok());
  EXPECT_EQ((*file)->WriteAt(10, AsBytes("x")).code(), Code::kNoSpace);
  EXPECT_EQ(*env.FreeBytes("/"), 0u);
}

}  // namespace
}  // namespace quid
