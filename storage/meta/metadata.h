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

class MetaDb {
 public:
  // Opens (creating when `create`) the database in folder `path`.
  static Result<std::unique_ptr<MetaDb>> Open(const std::string& path, bool create);
  ~MetaDb();
  MetaDb(const MetaDb&) = delete;
  MetaDb& operator=(const MetaDb&) = delete;

  // kNotFound when absent.
  Status Get(Cf cf, const std::string& key, std::string* value) const;
  template <typename Message>
  Status GetProto(Cf cf, const std::string& key, Message* out) const {
    std::string value;
    QUID_RETURN_IF_ERROR(Get(cf, key, &value));
    if (!out->ParseFromString(value)) return Status::Corrupt("unparsable metadata record");
    return Status::Ok();
  }

  // Applies `batch` atomically; with `sync`, the WAL is fsynced first.
  Status Write(rocksdb::WriteBatch* batch, bool sync);
  // Makes every earlier write durable.
  Status SyncWal();

  std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf) const;
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
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace quid
