#include "storage/meta/metadata.h"

#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include "storage/meta/env_file_system.h"

namespace quid {
namespace {

const char* const kCfNames[] = {"inodes",  "dirents", "extents", "chunks",
                                "deletes", "xattrs",  "config"};
static_assert(sizeof(kCfNames) / sizeof(kCfNames[0]) == static_cast<size_t>(Cf::kCount));

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(what + ": not found");
  if (s.IsCorruption()) return Status::Corrupt(what + ": " + s.ToString());
  if (s.IsNoSpace()) return Status::NoSpace(what + ": " + s.ToString());
  return Status::IoError(what + ": " + s.ToString());
}

}  // namespace

Result<std::unique_ptr<MetaDb>> MetaDb::Open(const std::string& path, bool create, Env* env) {
  std::unique_ptr<MetaDb> db(new MetaDb());
  rocksdb::Options options;
  if (env && env != Env::Default()) {
    db->rocks_env_ = NewRocksEnv(env);
    options.env = db->rocks_env_.get();
  }
  options.create_if_missing = create;
  options.create_missing_column_families = create;
  options.error_if_exists = false;
  options.IncreaseParallelism(2);
  // Bounded memory: small write buffers; the metadata set is small next to the data.
  options.write_buffer_size = 16 << 20;
  options.max_write_buffer_number = 2;
  options.keep_log_file_num = 2;
  options.max_manifest_file_size = 8 << 20;
  options.info_log_level = rocksdb::WARN_LEVEL;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(32 << 20);
  rocksdb::ColumnFamilyOptions cf_options(options);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (const char* name : kCfNames) descriptors.emplace_back(name, cf_options);

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::DBOptions(options), path, descriptors, &handles, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status(Code::kBusy, "metadata at " + path + " is in use by another process " +
                                     "(is the volume already mounted?)");
    }
    return FromRocks(s, "open metadata at " + path);
  }
  db->db_.reset(raw);
  // handles[0] is the default family, unused; keep ours in Cf order.
  db->handles_.assign(handles.begin() + 1, handles.end());
  db->db_->DestroyColumnFamilyHandle(handles[0]);
  return db;
}

MetaDb::~MetaDb() {
  if (!db_) return;
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close().PermitUncheckedError();
}

MetaSnapshot::~MetaSnapshot() {
  db_->ReleaseSnapshot(snapshot_);
}

std::unique_ptr<MetaSnapshot> MetaDb::Snapshot() const {
  return std::unique_ptr<MetaSnapshot>(new MetaSnapshot(db_.get(), db_->GetSnapshot()));
}

Status MetaDb::Get(Cf cf, const std::string& key, std::string* value,
                   const MetaSnapshot* at) const {
  rocksdb::ReadOptions options;
  if (at) options.snapshot = at->get();
  return FromRocks(db_->Get(options, handle(cf), key, value), "metadata get");
}

Status MetaDb::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, batch), "metadata write");
}

Status MetaDb::SyncWal() {
  return FromRocks(db_->SyncWAL(), "metadata sync");
}

std::unique_ptr<rocksdb::Iterator> MetaDb::NewIterator(Cf cf, const MetaSnapshot* at) const {
  rocksdb::ReadOptions options;
  if (at) options.snapshot = at->get();
  return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(options, handle(cf)));
}

}  // namespace quid
