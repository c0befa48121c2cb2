// EnvFileSystem: RocksDB run on a MemEnv. First the file system calls themselves (status
// kinds RocksDB branches on, Sync and directory Fsync as the only way to durability), then a
// real rocksdb::DB through power losses: every write acknowledged with sync=true survives,
// and the database opens again whatever instant the power went out.
#include "storage/meta/env_file_system.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "storage/base/env.h"
#include "storage/base/mem_env.h"

namespace quid {
namespace {

const rocksdb::IOOptions kIo;

std::string ReadAll(rocksdb::FileSystem* fs, const std::string& path) {
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  rocksdb::IOStatus s = fs->NewSequentialFile(path, rocksdb::FileOptions(), &file, nullptr);
  if (!s.ok()) return "<" + s.ToString() + ">";
  std::string out;
  char scratch[3];  // small, so reads span several calls
  for (;;) {
    rocksdb::Slice got;
    s = file->Read(sizeof(scratch), kIo, &got, scratch, nullptr);
    if (!s.ok()) return "<" + s.ToString() + ">";
    if (got.empty()) break;
    out.append(got.data(), got.size());
  }
  return out;
}

// --- the file system calls ---------------------------------------------------------------

TEST(EnvFileSystemTest, FileExistsOnMissingFileIsNotFound) {
  MemEnv mem_env;
  auto fs = NewEnvFileSystem(&mem_env);
  rocksdb::IOStatus s = fs->FileExists("/nope", kIo, nullptr);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  // In a missing folder too, and for the other calls RocksDB probes with.
  EXPECT_TRUE(fs->FileExists("/no/such/file", kIo, nullptr).IsNotFound());
  uint64_t size = 0;
  EXPECT_TRUE(fs->GetFileSize("/nope", kIo, &size, nullptr).IsPathNotFound());
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  EXPECT_TRUE(
      fs->NewSequentialFile("/nope", rocksdb::FileOptions(), &file, nullptr).IsPathNotFound());
  EXPECT_EQ(file, nullptr);
  EXPECT_TRUE(fs->DeleteFile("/nope", kIo, nullptr).IsPathNotFound());

  ASSERT_TRUE(mem_env.WriteFileAtomic("/here", AsBytes("x"), 0600).ok());
  EXPECT_TRUE(fs->FileExists("/here", kIo, nullptr).ok());
  // A failing disk is not a missing file: RocksDB must not create a new database over it.
  mem_env.SetHook([](EnvOp op, const std::string& path) {
    return op == EnvOp::kStat ? Status::IoError("injected: stat " + path) : Status::Ok();
  });
  s = fs->FileExists("/here", kIo, nullptr);
  mem_env.SetHook(nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(s.IsNotFound()) << s.ToString();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
}

TEST(EnvFileSystemTest, OnlySyncedBytesAndEntriesSurvivePowerLoss) {
  MemEnv mem_env;
  auto fs = NewEnvFileSystem(&mem_env);
  ASSERT_TRUE(fs->CreateDirIfMissing("/d", kIo, nullptr).ok());
  ASSERT_TRUE(fs->CreateDirIfMissing("/d", kIo, nullptr).ok());  // present: still fine

  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(fs->NewWritableFile("/d/a", rocksdb::FileOptions(), &file, nullptr).ok());
  ASSERT_TRUE(file->Append("hello", kIo, nullptr).ok());
  ASSERT_TRUE(file->Sync(kIo, nullptr).ok());
  ASSERT_TRUE(file->Append(" world", kIo, nullptr).ok());
  ASSERT_TRUE(file->Flush(kIo, nullptr).ok());
  EXPECT_EQ(file->GetFileSize(kIo, nullptr), 11u);
  EXPECT_EQ(ReadAll(fs.get(), "/d/a"), "hello world");

  std::unique_ptr<rocksdb::FSDirectory> dir;
  ASSERT_TRUE(fs->NewDirectory("/d", kIo, &dir, nullptr).ok());
  ASSERT_TRUE(dir->Fsync(kIo, nullptr).ok());

  // Synced data, but its entry is made after the folder's last Fsync.
  std::unique_ptr<rocksdb::FSWritableFile> late;
  ASSERT_TRUE(fs->NewWritableFile("/d/late", rocksdb::FileOptions(), &late, nullptr).ok());
  ASSERT_TRUE(late->Append("x", kIo, nullptr).ok());
  ASSERT_TRUE(late->Fsync(kIo, nullptr).ok());

  mem_env.PowerLoss();
  // The folder RocksDB made is there although RocksDB never syncs its parent.
  bool is_dir = false;
  ASSERT_TRUE(fs->IsDirectory("/d", kIo, &is_dir, nullptr).ok());
  EXPECT_TRUE(is_dir);
  EXPECT_EQ(ReadAll(fs.get(), "/d/a"), "hello");
  EXPECT_TRUE(fs->FileExists("/d/late", kIo, nullptr).IsNotFound());
  std::vector<std::string> children;
  ASSERT_TRUE(fs->GetChildren("/d", kIo, &children, nullptr).ok());
  EXPECT_EQ(children, std::vector<std::string>{"a"});
}

TEST(EnvFileSystemTest, ReadsWritesAndRenames) {
  MemEnv mem_env;
  auto fs = NewEnvFileSystem(&mem_env);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(fs->NewWritableFile("/f", rocksdb::FileOptions(), &file, nullptr).ok());
  ASSERT_TRUE(file->Append("0123456789", kIo, nullptr).ok());
  ASSERT_TRUE(file->Close(kIo, nullptr).ok());
  file.reset();

  // Reopen appends after the existing bytes.
  ASSERT_TRUE(fs->ReopenWritableFile("/f", rocksdb::FileOptions(), &file, nullptr).ok());
  EXPECT_EQ(file->GetFileSize(kIo, nullptr), 10u);
  ASSERT_TRUE(file->Append("ab", kIo, nullptr).ok());
  file.reset();

  std::unique_ptr<rocksdb::FSRandomAccessFile> random;
  ASSERT_TRUE(fs->NewRandomAccessFile("/f", rocksdb::FileOptions(), &random, nullptr).ok());
  char scratch[16] = {};
  rocksdb::Slice got;
  ASSERT_TRUE(random->Read(8, 10, kIo, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "89ab");  // short only at end of file
  EXPECT_EQ(got.data(), scratch);
  ASSERT_TRUE(random->Read(20, 4, kIo, &got, scratch, nullptr).ok());
  EXPECT_TRUE(got.empty());

  std::unique_ptr<rocksdb::FSSequentialFile> seq;
  ASSERT_TRUE(fs->NewSequentialFile("/f", rocksdb::FileOptions(), &seq, nullptr).ok());
  ASSERT_TRUE(seq->Skip(3).ok());
  ASSERT_TRUE(seq->Read(4, kIo, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "3456");
  ASSERT_TRUE(seq->Read(4, kIo, &got, scratch, nullptr).ok());
  EXPECT_EQ(got.ToString(), "789a");

  uint64_t size = 0;
  ASSERT_TRUE(fs->GetFileSize("/f", kIo, &size, nullptr).ok());
  EXPECT_EQ(size, 12u);
  ASSERT_TRUE(fs->Truncate("/f", 4, kIo, nullptr).ok());
  EXPECT_EQ(ReadAll(fs.get(), "/f"), "0123");

  // Reuse renames the old file and writes over it from the start.
  ASSERT_TRUE(fs->ReuseWritableFile("/g", "/f", rocksdb::FileOptions(), &file, nullptr).ok());
  ASSERT_TRUE(file->Append("zz", kIo, nullptr).ok());
  file.reset();
  EXPECT_TRUE(fs->FileExists("/f", kIo, nullptr).IsNotFound());
  EXPECT_EQ(ReadAll(fs.get(), "/g"), "zz23");

  ASSERT_TRUE(fs->RenameFile("/g", "/h", kIo, nullptr).ok());
  std::vector<rocksdb::FileAttributes> attrs;
  ASSERT_TRUE(fs->GetChildrenFileAttributes("/", kIo, &attrs, nullptr).ok());
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].name, "h");
  EXPECT_EQ(attrs[0].size_bytes, 4u);
  ASSERT_TRUE(fs->DeleteFile("/h", kIo, nullptr).ok());
  EXPECT_TRUE(fs->FileExists("/h", kIo, nullptr).IsNotFound());
}

TEST(EnvFileSystemTest, LockIsExclusiveUntilUnlocked) {
  MemEnv mem_env;
  auto fs = NewEnvFileSystem(&mem_env);
  rocksdb::FileLock* first = nullptr;
  ASSERT_TRUE(fs->LockFile("/LOCK", kIo, &first, nullptr).ok());
  ASSERT_NE(first, nullptr);
  rocksdb::FileLock* second = nullptr;
  rocksdb::IOStatus s = fs->LockFile("/LOCK", kIo, &second, nullptr);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("lock"), std::string::npos) << s.ToString();
  EXPECT_EQ(second, nullptr);
  ASSERT_TRUE(fs->UnlockFile(first, kIo, nullptr).ok());
  ASSERT_TRUE(fs->LockFile("/LOCK", kIo, &second, nullptr).ok());
  ASSERT_TRUE(fs->UnlockFile(second, kIo, nullptr).ok());
}

// --- a real database -------------------------------------------------------------------

constexpr char kDbPath[] = "/db";

class EnvFileSystemDbTest : public ::testing::Test {
 protected:
  void SetUp() override { rocks_env_ = NewRocksEnv(&mem_env_); }

  rocksdb::Status Open(std::unique_ptr<rocksdb::DB>* db) {
    rocksdb::Options options;
    options.env = rocks_env_.get();
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, kDbPath, &raw);
    db->reset(raw);
    return s;
  }

  static rocksdb::Status Put(rocksdb::DB* db, const std::string& key, bool sync) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return db->Put(wo, key, "value-of-" + key);
  }

  // "value-of-key", "<NotFound>" or "<the error>".
  static std::string Get(rocksdb::DB* db, const std::string& key) {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) return "<NotFound>";
    if (!s.ok()) return "<" + s.ToString() + ">";
    return value;
  }

  MemEnv mem_env_;
  std::unique_ptr<rocksdb::Env> rocks_env_;  // declared after mem_env_: dies first
};

TEST_F(EnvFileSystemDbTest, CleanCloseAndReopenKeepsEverything) {
  std::unique_ptr<rocksdb::DB> db;
  ASSERT_TRUE(Open(&db).ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Put(db.get(), "k" + std::to_string(i), i % 2).ok());
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());  // a table file, read back below
  ASSERT_TRUE(Put(db.get(), "after-flush", false).ok());
  ASSERT_TRUE(db->Close().ok());
  db.reset();

  // Everything went to the MemEnv, nothing to the real disk.
  EXPECT_TRUE(mem_env_.Exists("/db/CURRENT"));
  EXPECT_FALSE(std::filesystem::exists(kDbPath));

  ASSERT_TRUE(Open(&db).ok());
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    EXPECT_EQ(Get(db.get(), key), "value-of-" + key);
  }
  EXPECT_EQ(Get(db.get(), "after-flush"), "value-of-after-flush");
  EXPECT_EQ(Get(db.get(), "never-written"), "<NotFound>");
}

TEST_F(EnvFileSystemDbTest, SecondOpenOfTheSamePathFails) {
  std::unique_ptr<rocksdb::DB> db;
  ASSERT_TRUE(Open(&db).ok());
  std::unique_ptr<rocksdb::DB> second;
  rocksdb::Status s = Open(&second);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("lock"), std::string::npos) << s.ToString();
  EXPECT_EQ(second, nullptr);
  // Closing the first releases the lock.
  db.reset();
  ASSERT_TRUE(Open(&second).ok());
}

TEST_F(EnvFileSystemDbTest, PowerLossKeepsEverySyncedKey) {
  std::unique_ptr<rocksdb::DB> db;
  ASSERT_TRUE(Open(&db).ok());
  std::vector<std::string> synced;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "k" + std::to_string(i);
    const bool sync = i % 3 == 0;
    ASSERT_TRUE(Put(db.get(), key, sync).ok());
    if (sync) synced.push_back(key);
  }
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  for (int i = 0; i < 50; ++i) {
    const std::string key = "m" + std::to_string(i);
    ASSERT_TRUE(Put(db.get(), key, true).ok());
    synced.push_back(key);
  }
  // Written after the last synced write: in the WAL file, but not durable.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Put(db.get(), "tail" + std::to_string(i), false).ok());
  EXPECT_GT(mem_env_.UnsyncedBytes(), 0u);

  mem_env_.Crash();
  db.reset();  // closing on a dead disk fails inside RocksDB, quietly
  mem_env_.Restart();

  ASSERT_TRUE(Open(&db).ok());
  for (const std::string& key : synced) EXPECT_EQ(Get(db.get(), key), "value-of-" + key);
  // The power loss really happened underneath RocksDB (no byte reached a real disk).
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Get(db.get(), "tail" + std::to_string(i)), "<NotFound>");
}

// Power goes out at each durability point in turn (every Sync, SyncDir and Rename) of
// creating a database, writing to it and flushing it. Each time the database must open
// again, with every write RocksDB acknowledged.
TEST(EnvFileSystemPowerLossTest, OpensAfterPowerLossAtEverySyncPoint) {
  int completed_runs = 0;
  for (int crash_at = 1; crash_at < 500 && completed_runs == 0; ++crash_at) {
    SCOPED_TRACE("crash at durability point " + std::to_string(crash_at));
    MemEnv mem_env;
    auto rocks_env = NewRocksEnv(&mem_env);
    std::atomic<int> points{0};
    mem_env.SetHook([&](EnvOp op, const std::string&) {
      if (op == EnvOp::kSync || op == EnvOp::kSyncDir || op == EnvOp::kRename) {
        if (++points == crash_at) mem_env.Crash();
      }
      return Status::Ok();
    });

    rocksdb::Options options;
    options.env = rocks_env.get();
    options.create_if_missing = true;
    rocksdb::WriteOptions sync_write;
    sync_write.sync = true;
    std::vector<std::string> acknowledged;
    {
      rocksdb::DB* raw = nullptr;
      rocksdb::Status s = rocksdb::DB::Open(options, kDbPath, &raw);
      std::unique_ptr<rocksdb::DB> db(raw);
      for (int i = 0; s.ok() && i < 6; ++i) {
        // Built with += rather than "k" + to_string(i): GCC 12 at -O2 sees a false
        // -Wrestrict overlap in that operator+.
        std::string key(1, 'k');
        key += std::to_string(i);
        std::string value(1, 'v');
        value += key;
        s = db->Put(sync_write, key, value);
        // Acknowledged after the cut means nothing: that process died with the power.
        if (s.ok() && !mem_env.crashed()) acknowledged.push_back(key);
        if (s.ok() && i == 2) s = db->Flush(rocksdb::FlushOptions());
      }
      if (s.ok() && !mem_env.crashed()) ++completed_runs;  // the crash point lies beyond
    }
    mem_env.SetHook(nullptr);
    mem_env.Restart();

    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, kDbPath, &raw);
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (const std::string& key : acknowledged) {
      std::string value;
      s = db->Get(rocksdb::ReadOptions(), key, &value);
      EXPECT_TRUE(s.ok()) << key << ": " << s.ToString();
      EXPECT_EQ(value, "v" + key);
    }
  }
  EXPECT_EQ(completed_runs, 1) << "the last crash point was never passed";
}

}  // namespace
}  // namespace quid
