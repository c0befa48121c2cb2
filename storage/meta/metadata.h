// MetaDb: the volume's RocksDB, one column family per kind of record (see meta.proto for
// values and metadata_keys.h for keys). One file system operation is one WriteBatch.
//
// Thread-safe as RocksDB is; callers serialize read-modify-write sequences themselves.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/base/env.h"
#include "storage/base/status.h"

namespace quid {

enum class Cf : int {
  kInodes = 0,
  kDirents,
  kExtents,
  kChunks,
  kDeletes,
  kXattrs,
  kConfig,
  kCount,
};

class MetaDb;

// A consistent, read-only view of the whole database at one instant (a RocksDB snapshot):
// reads through it ignore every later commit. Released when destroyed; the MetaDb must
// outlive it.
class MetaSnapshot {
 public:
  ~MetaSnapshot();
  MetaSnapshot(const MetaSnapshot&) = delete;
  MetaSnapshot& operator=(const MetaSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  friend class MetaDb;
  MetaSnapshot(rocksdb::DB* db, const rocksdb::Snapshot* snapshot) : db_(db), snapshot_(snapshot) {}
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

class MetaDb {
 public:
  // Opens (creating when `create`) the database in folder `path` on `env`. On the real
  // disk RocksDB uses its own POSIX file system; on any other Env (MemEnv in power-loss
  // tests) it goes through EnvFileSystem, so a simulated power loss drops RocksDB's
  // unsynced WAL and MANIFEST bytes exactly as it drops the journal's.
  static Result<std::unique_ptr<MetaDb>> Open(const std::string& path, bool create,
                                              Env* env = nullptr);
  ~MetaDb();
  MetaDb(const MetaDb&) = delete;
  MetaDb& operator=(const MetaDb&) = delete;

  // The database as it is now, for reads that must not see later commits.
  std::unique_ptr<MetaSnapshot> Snapshot() const;

  // kNotFound when absent. With `at`, as of that snapshot.
  Status Get(Cf cf, const std::string& key, std::string* value,
             const MetaSnapshot* at = nullptr) const;
  template <typename Message>
  Status GetProto(Cf cf, const std::string& key, Message* out,
                  const MetaSnapshot* at = nullptr) const {
    std::string value;
    QUID_RETURN_IF_ERROR(Get(cf, key, &value, at));
    if (!out->ParseFromString(value)) return Status::Corrupt("unparsable metadata record");
    return Status::Ok();
  }

  // Applies `batch` atomically; with `sync`, the WAL is fsynced first.
  Status Write(rocksdb::WriteBatch* batch, bool sync);
  // Makes every earlier write durable.
  Status SyncWal();

  std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf, const MetaSnapshot* at = nullptr) const;
  rocksdb::ColumnFamilyHandle* handle(Cf cf) const { return handles_[static_cast<int>(cf)]; }

  // Convenience for building batches.
  template <typename Message>
  void PutProto(rocksdb::WriteBatch* batch, Cf cf, const std::string& key,
                const Message& message) const {
    batch->Put(handle(cf), key, message.SerializeAsString());
  }
  void Delete(rocksdb::WriteBatch* batch, Cf cf, const std::string& key) const {
    batch->Delete(handle(cf), key);
  }

 private:
  MetaDb() = default;
  std::unique_ptr<rocksdb::Env> rocks_env_;  // outlives db_; null on the real disk
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace quid
