// Host shard storage, two ways side by side in one run, so the choice in
// docs/architecture.md ("Host storage") rests on numbers from this machine:
//   Files:  FolderStore, a file per shard in fan-out folders (temp + fsync + rename + folder
//           fsync per put);
//   BlobDb: RocksDB with integrated BlobDB, the shard bytes as the value, every write with
//           WriteOptions::sync so a put is as durable as FolderStore's.
// Both are single-threaded and read with the page cache warm (it is not dropped: we measure
// the code path, not the disk). RocksDB has no range read of a blob, so BlobDb's ReadRange
// reads the whole value and slices it; that is the point of the ReadRange case.
//
// Every case runs a fixed number of iterations (not MinTime): populating a store costs an
// fsync per shard, and Google Benchmark would repeat that for each trial run. Data lives in
// /var/tmp/quid-host-bench-XXXXXX (a real disk, not tmpfs), removed at exit.
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "storage/stores/folder_store.h"

namespace quid {
namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * kKiB;
constexpr size_t kRangeBytes = 64 * kKiB;  // a chunk segment read
constexpr size_t kRangeShardBytes = 1 * kMiB;
// Shards a read case picks from. Small enough to populate in seconds, large enough that
// the ids are not all in one fan-out folder.
constexpr int kReadSetShards = 128;
// The churn case: put this much, remove half at random, put the removed amount again, so
// the live data ends where it started and anything above it on disk is amplification.
constexpr size_t kChurnBytes = 512 * kMiB;

namespace fs = std::filesystem;

// One temp folder for the process; each case works in a subfolder it removes itself.
class TempRoot {
 public:
  TempRoot() {
    std::string tmpl = "/var/tmp/quid-host-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempRoot() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TempRoot& Root() {
  static TempRoot root;
  return root;
}

// A case's folder, removed when the case ends. Declare it before the backend so the
// backend (which holds files and locks in it) is closed first.
class CaseDir {
 public:
  explicit CaseDir(const std::string& name) {
    static int counter = 0;
    path_ = Root().path() + "/" + name + "-" + std::to_string(counter++);
  }
  ~CaseDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What `du -s` reports: allocated blocks, not file lengths (so preallocation and
// partly-filled blocks count, as they do against a host's disk).
uint64_t DiskBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// Bytes this process has sent to the block layer (all threads, so RocksDB's background
// flushes and compactions count). Journal writes by the kernel are not included.
uint64_t ProcessWriteBytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  return 0;
}

ShardId RandomId(std::mt19937_64& rng) {
  ShardId id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rng());
  return id;
}

// Shards are encrypted, so their bytes are incompressible; random bytes stand in for them.
Bytes RandomPayload(size_t size) {
  Bytes out(size);
  std::mt19937_64 rng(7);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

class Files {
 public:
  static constexpr const char* kName = "files";

  static Result<std::unique_ptr<Files>> Open(const std::string& dir) {
    auto store = FolderStore::Open(dir, 0);
    if (!store.ok()) return store.status();
    auto out = std::unique_ptr<Files>(new Files);
    out->store_ = std::move(store).value();
    return out;
  }

  Status Put(const ShardId& id, ByteSpan data) { return store_->Put(id, data); }
  // FolderStore has no cheaper non-durable put; populating costs what a put costs.
  Status Load(const ShardId& id, ByteSpan data) { return store_->Put(id, data); }
  Result<Bytes> Get(const ShardId& id) { return store_->Get(id); }
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
    return store_->ReadRange(id, offset, out);
  }
  Status Remove(const ShardId& id) { return store_->Remove(id); }
  // Nothing runs in the background: what a put wrote is all it will write.
  Status Settle() { return Status::Ok(); }
  Status FullGc(double* seconds) {
    *seconds = 0;
    return Status::Ok();
  }

 private:
  Files() = default;
  std::shared_ptr<FolderStore> store_;
};

class BlobDb {
 public:
  static constexpr const char* kName = "rocksdb-blob";

  static Result<std::unique_ptr<BlobDb>> Open(const std::string& dir) {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.enable_blob_files = true;
    options.min_blob_size = 4096;
    options.blob_file_size = 256 * kMiB;
    options.enable_blob_garbage_collection = true;
    // Everything else at its default, as a host would start: notably write_buffer_size
    // (64 MiB), so each memtable flush writes its own blob file of about that size, and
    // blob_garbage_collection_age_cutoff (0.25): compaction relocates live blobs out of
    // the oldest quarter of blob files only.
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
    if (!s.ok()) return Status::IoError("rocksdb open: " + s.ToString());
    auto out = std::unique_ptr<BlobDb>(new BlobDb);
    out->db_.reset(raw);
    out->sync_.sync = true;
    return out;
  }

  Status Put(const ShardId& id, ByteSpan data) {
    return Check(db_->Put(sync_, Key(id), Slice(data)));
  }
  // Setup only: unsynced writes, made durable by the Settle (flush) that follows.
  Status Load(const ShardId& id, ByteSpan data) {
    return Check(db_->Put(rocksdb::WriteOptions(), Key(id), Slice(data)));
  }
  // Copies out of the PinnableSlice because a ShardStore hands back Bytes.
  Result<Bytes> Get(const ShardId& id) {
    rocksdb::PinnableSlice value;
    Status s = Check(db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), Key(id), &value));
    if (!s.ok()) return s;
    auto* p = reinterpret_cast<const uint8_t*>(value.data());
    return Bytes(p, p + value.size());
  }
  // No range read of a blob exists: fetch the whole value, keep a slice. Checksums off, to
  // match FolderStore::ReadRange, which leaves verification to the caller's AEAD tags.
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
    rocksdb::ReadOptions options;
    options.verify_checksums = false;
    rocksdb::PinnableSlice value;
    QUID_RETURN_IF_ERROR(Check(db_->Get(options, db_->DefaultColumnFamily(), Key(id), &value)));
    if (offset > value.size() || out.size() > value.size() - offset) {
      return Status::Invalid("range past the end of the shard");
    }
    std::memcpy(out.data(), value.data() + offset, out.size());
    return Status::Ok();
  }
  Status Remove(const ShardId& id) { return Check(db_->Delete(sync_, Key(id))); }
  // Flushes the memtable (values reach blob files only at flush) and waits until no flush
  // or compaction is running or pending, so disk usage is what a quiet host would see.
  Status Settle() {
    QUID_RETURN_IF_ERROR(Check(db_->Flush(rocksdb::FlushOptions())));
    for (;;) {
      uint64_t busy = 0;
      for (const std::string* p : {&rocksdb::DB::Properties::kNumRunningFlushes,
                                   &rocksdb::DB::Properties::kNumRunningCompactions,
                                   &rocksdb::DB::Properties::kCompactionPending,
                                   &rocksdb::DB::Properties::kMemTableFlushPending}) {
        uint64_t v = 0;
        if (db_->GetIntProperty(*p, &v)) busy += v;
      }
      if (busy == 0) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // What reclaiming all garbage takes: a full compaction that relocates every live blob.
  Status FullGc(double* seconds) {
    rocksdb::CompactRangeOptions options;
    options.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
    options.blob_garbage_collection_age_cutoff = 1.0;
    // The default skips the last level (no compaction filter), which is where the garbage
    // blobs' references sit once the background compactions are done.
    options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    auto start = std::chrono::steady_clock::now();
    QUID_RETURN_IF_ERROR(Check(db_->CompactRange(options, nullptr, nullptr)));
    QUID_RETURN_IF_ERROR(Settle());
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return Status::Ok();
  }

 private:
  BlobDb() = default;
  static rocksdb::Slice Key(const ShardId& id) {
    return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
  }
  static rocksdb::Slice Slice(ByteSpan data) {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
  }
  static Status Check(const rocksdb::Status& s) {
    if (s.ok()) return Status::Ok();
    if (s.IsNotFound()) return Status::NotFound("rocksdb: not found");
    return Status::IoError("rocksdb: " + s.ToString());
  }

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions sync_;
};

// Opens backend B in a fresh case folder, or skips the case.
template <typename B>
std::unique_ptr<B> OpenOrSkip(benchmark::State& state, const CaseDir& dir) {
  if (Root().path().empty()) {
    state.SkipWithError("cannot create a temp folder under /var/tmp");
    return nullptr;
  }
  auto opened = B::Open(dir.path());
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return nullptr;
  }
  return std::move(opened).value();
}

// Stores `count` new shards of `payload` (setup, untimed) and settles the backend.
template <typename B>
bool Populate(benchmark::State& state, B& backend, ByteSpan payload, int count,
              std::mt19937_64& rng, std::vector<ShardId>* ids) {
  for (int i = 0; i < count; ++i) {
    ids->push_back(RandomId(rng));
    Status s = backend.Load(ids->back(), payload);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return false;
    }
  }
  Status s = backend.Settle();
  if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  return s.ok();
}

// Every per-shard case runs at both shard sizes (a 64 KiB shard, and a 1 MiB one: a 4 MiB
// chunk at k = 4), a fixed number of times (filling a store costs an fsync per shard, so
// Google Benchmark's trial runs would repeat that), timed by the wall clock (fsync waits).
template <int kIterations, benchmark::TimeUnit kUnit>
void ShardSizes(benchmark::internal::Benchmark* b) {
  b->Arg(64 * kKiB)->Arg(1 * kMiB)->Iterations(kIterations)->Unit(kUnit)->UseRealTime();
}

// state.range(0): shard bytes. One iteration: one durable put of a new shard.
template <typename B>
void BM_Put(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  CaseDir dir(std::string("put-") + B::kName);
  auto backend = OpenOrSkip<B>(state, dir);
  if (!backend) return;
  Bytes payload = RandomPayload(size);
  std::mt19937_64 rng(1);
  uint64_t written_before = ProcessWriteBytes();
  int64_t done = 0;
  for (auto _ : state) {
    Status s = backend->Put(RandomId(rng), payload);
    // The last iteration also settles, so it is timed: BlobDB writes each value twice, to
    // the WAL at put and to a blob file at flush, and leaving the flush out would hide half
    // of what a put costs. (The loop stops the timer as soon as it exits.)
    if (s.ok() && ++done == state.max_iterations) s = backend->Settle();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  const uint64_t put_bytes = static_cast<uint64_t>(state.iterations()) * size;
  state.SetBytesProcessed(static_cast<int64_t>(put_bytes));
  state.counters["write_amp"] =
      static_cast<double>(ProcessWriteBytes() - written_before) / static_cast<double>(put_bytes);
  state.counters["disk_MiB"] = static_cast<double>(DiskBytes(dir.path())) / kMiB;
  state.SetLabel(B::kName);
}
BENCHMARK_TEMPLATE(BM_Put, Files)->Apply(ShardSizes<256, benchmark::kMillisecond>);
BENCHMARK_TEMPLATE(BM_Put, BlobDb)->Apply(ShardSizes<256, benchmark::kMillisecond>);

// state.range(0): shard bytes. One iteration: Get of a whole shard picked at random.
template <typename B>
void BM_Get(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  CaseDir dir(std::string("get-") + B::kName);
  auto backend = OpenOrSkip<B>(state, dir);
  if (!backend) return;
  Bytes payload = RandomPayload(size);
  std::mt19937_64 rng(2);
  std::vector<ShardId> ids;
  if (!Populate(state, *backend, payload, kReadSetShards, rng, &ids)) return;
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  for (auto _ : state) {
    auto got = backend->Get(ids[pick(rng)]);
    if (!got.ok() || got->size() != size) {
      state.SkipWithError(got.ok() ? "wrong size" : got.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(got->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  state.SetLabel(std::string(B::kName) + ", warm page cache");
}
BENCHMARK_TEMPLATE(BM_Get, Files)->Apply(ShardSizes<2000, benchmark::kMicrosecond>);
BENCHMARK_TEMPLATE(BM_Get, BlobDb)->Apply(ShardSizes<2000, benchmark::kMicrosecond>);

// One iteration: 64 KiB (a chunk segment) at a random offset of a random 1 MiB shard.
// Bytes processed are the 64 KiB asked for, so the rate is what a segment read delivers.
template <typename B>
void BM_ReadRange(benchmark::State& state) {
  CaseDir dir(std::string("range-") + B::kName);
  auto backend = OpenOrSkip<B>(state, dir);
  if (!backend) return;
  Bytes payload = RandomPayload(kRangeShardBytes);
  std::mt19937_64 rng(3);
  std::vector<ShardId> ids;
  if (!Populate(state, *backend, payload, kReadSetShards, rng, &ids)) return;
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  std::uniform_int_distribution<uint64_t> offset(0, kRangeShardBytes - kRangeBytes);
  Bytes out(kRangeBytes);
  for (auto _ : state) {
    uint64_t at = offset(rng);
    Status s = backend->ReadRange(ids[pick(rng)], at, out);
    if (!s.ok() || std::memcmp(out.data(), payload.data() + at, kRangeBytes) != 0) {
      state.SkipWithError(s.ok() ? "wrong bytes" : s.ToString().c_str());
      return;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRangeBytes));
  std::string label = std::string(B::kName) + ", 64 KiB of 1 MiB, warm page cache";
  if constexpr (std::is_same_v<B, BlobDb>) label += "; no blob range read: whole 1 MiB read";
  state.SetLabel(label);
}
BENCHMARK_TEMPLATE(BM_ReadRange, Files)
    ->Iterations(5000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ReadRange, BlobDb)
    ->Iterations(5000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// state.range(0): shard bytes. One iteration: durable removal of one stored shard.
template <typename B>
void BM_Remove(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  CaseDir dir(std::string("remove-") + B::kName);
  auto backend = OpenOrSkip<B>(state, dir);
  if (!backend) return;
  Bytes payload = RandomPayload(size);
  std::mt19937_64 rng(4);
  std::vector<ShardId> ids;
  if (!Populate(state, *backend, payload, static_cast<int>(state.max_iterations), rng, &ids)) {
    return;
  }
  size_t next = 0;
  for (auto _ : state) {
    Status s = backend->Remove(ids[next++]);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  state.SetLabel(B::kName);
}
BENCHMARK_TEMPLATE(BM_Remove, Files)->Apply(ShardSizes<256, benchmark::kMillisecond>);
BENCHMARK_TEMPLATE(BM_Remove, BlobDb)->Apply(ShardSizes<256, benchmark::kMillisecond>);

// One iteration: durably put 512 MiB of 1 MiB shards, remove half of them at random, put
// that half's worth of new shards. Live data ends at 512 MiB; disk_MiB (after the backend
// settles) over live_MiB is the space amplification a host would carry. For BlobDb,
// disk_MiB_after_gc and gc_s are what a forced full compaction takes to get it back.
// 1 MiB shards only: at 64 KiB the same bytes are 12288 fsynced puts, over a minute each.
template <typename B>
void BM_Churn(benchmark::State& state) {
  const size_t size = 1 * kMiB;
  const int count = static_cast<int>(kChurnBytes / size);
  CaseDir dir(std::string("churn-") + B::kName);
  auto backend = OpenOrSkip<B>(state, dir);
  if (!backend) return;
  Bytes payload = RandomPayload(size);
  std::mt19937_64 rng(5);
  uint64_t written_before = ProcessWriteBytes();
  uint64_t put_bytes = 0;
  for (auto _ : state) {
    std::vector<ShardId> ids;
    auto put = [&](int n) {
      for (int i = 0; i < n; ++i) {
        ids.push_back(RandomId(rng));
        QUID_RETURN_IF_ERROR(backend->Put(ids.back(), payload));
        put_bytes += size;
      }
      return Status::Ok();
    };
    Status s = put(count);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (int i = 0; s.ok() && i < count / 2; ++i) s = backend->Remove(ids[i]);
    if (s.ok()) s = put(count / 2);
    if (s.ok()) s = backend->Settle();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  const double disk_mib = static_cast<double>(DiskBytes(dir.path())) / kMiB;
  const double live_mib = static_cast<double>(kChurnBytes) / kMiB;
  state.SetBytesProcessed(static_cast<int64_t>(put_bytes));
  state.counters["write_amp"] =
      static_cast<double>(ProcessWriteBytes() - written_before) / static_cast<double>(put_bytes);
  state.counters["live_MiB"] = live_mib;
  state.counters["disk_MiB"] = disk_mib;
  state.counters["space_amp"] = disk_mib / live_mib;
  double gc_seconds = 0;
  Status s = backend->FullGc(&gc_seconds);
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  state.counters["disk_MiB_after_gc"] = static_cast<double>(DiskBytes(dir.path())) / kMiB;
  state.counters["gc_s"] = gc_seconds;
  state.SetLabel(std::string(B::kName) + ", 1 MiB shards: put 512 MiB, remove half, put 256 MiB");
}
BENCHMARK_TEMPLATE(BM_Churn, Files)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Churn, BlobDb)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Printed in the run's header, so a pasted table carries its caveats.
const bool kContext = [] {
  benchmark::AddCustomContext("data_dir", Root().path());
  benchmark::AddCustomContext("page_cache", "not dropped: Get/ReadRange read warm pages");
  benchmark::AddCustomContext("rocksdb_range_read",
                              "none for blobs: BlobDb ReadRange = whole-value Get, then slice");
  benchmark::AddCustomContext("durability",
                              "files: fsync+rename+dir fsync; rocksdb: WriteOptions.sync=true");
  return true;
}();

}  // namespace
}  // namespace quid
