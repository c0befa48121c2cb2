#include "storage/volume/garbage_collector.h"

#include <spdlog/spdlog.h>

#include <unordered_set>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"

namespace quid {
namespace {
constexpr size_t kDeletesPerStep = 256;
}  // namespace

GarbageCollector::GarbageCollector(MetaDb* db, ChunkStore* chunks, ReadGate* gate, Clock* clock,
                                   int64_t grace_ns)
    : db_(db), chunks_(chunks), gate_(gate), clock_(clock), grace_ns_(grace_ns) {}

void GarbageCollector::ProcessPendingDeletes() {
  if (doomed_.empty()) {
    auto it = db_->NewIterator(Cf::kDeletes);
    for (it->SeekToFirst(); it->Valid() && doomed_.size() < kDeletesPerStep; it->Next()) {
      meta::PendingDelete pd;
      if (!pd.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      StoredChunk chunk;
      chunk.id = ChunkIdOf(std::string(it->key().data(), kChunkIdBytes));
      chunk.generation = pd.chunk().generation();
      chunk.k = static_cast<uint8_t>(pd.chunk().k());
      chunk.m = static_cast<uint8_t>(pd.chunk().m());
      chunk.stores.assign(pd.chunk().stores().begin(), pd.chunk().stores().end());
      doomed_.emplace_back(it->key().ToString(), chunk);
    }
    if (doomed_.empty()) {
      pending_ = 0;
      return;
    }
    // Collected first, gate closed second: a read that enters after this cannot see them.
    doomed_gate_ = gate_->Close();
  }
  if (!gate_->Drained(doomed_gate_)) return;  // a read may still need these chunks
  // The batch that dropped each chunk's last reference may not be synced yet (namespace
  // operations commit without sync). Once a shard is gone, a power loss must not bring
  // that reference back: make every earlier commit durable first.
  Status synced = db_->SyncWal();
  if (!synced.ok()) {
    spdlog::warn("pending deletes wait: {}", synced.message());
    return;
  }
  rocksdb::WriteBatch batch;
  for (const auto& [key, chunk] : doomed_) {
    if (chunks_->Remove(chunk).ok()) batch.Delete(db_->handle(Cf::kDeletes), key);
  }
  doomed_.clear();
  if (batch.Count() > 0 && db_->Write(&batch, false).ok()) {
    uint64_t n = static_cast<uint64_t>(batch.Count());
    uint64_t cur = pending_.load();
    pending_ = cur > n ? cur - n : 0;
  }
}

Status GarbageCollector::Sweep() {
  // Every shard the metadata knows, per store (committed or awaiting deletion): a copy
  // of a known shard on a store that should not hold it is stray too.
  const size_t store_count = chunks_->stores().size();
  std::vector<std::unordered_set<std::string>> known(store_count);
  auto add = [&](const ChunkId& id, const meta::Chunk& c) {
    for (int i = 0; i < c.stores_size(); ++i) {
      if (c.stores(i) >= store_count) continue;
      known[c.stores(i)].insert(chunks_->ShardIdFor(id, c.generation(), i).hex());
    }
  };
  {
    auto it = db_->NewIterator(Cf::kChunks);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      meta::Chunk c;
      if (!c.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return Status::Corrupt("unparsable chunk record");
      add(ChunkIdOf(it->key().ToString()), c);
    }
    auto dit = db_->NewIterator(Cf::kDeletes);
    for (dit->SeekToFirst(); dit->Valid(); dit->Next()) {
      meta::PendingDelete pd;
      if (!pd.ParseFromArray(dit->value().data(), static_cast<int>(dit->value().size())))
        return Status::Corrupt("unparsable pending delete");
      add(ChunkIdOf(dit->key().ToString()), pd.chunk());
    }
  }
  // Uploads in flight right now are younger than the grace period.
  const int64_t cutoff = clock_->now_ns() - grace_ns_;
  uint64_t removed = 0;
  for (size_t s = 0; s < store_count; ++s) {
    const auto& store = chunks_->stores()[s];
    std::vector<ShardId> stray;
    Status listed = store->List([&](const ShardId& id, const ShardInfo& info) {
      if (info.mtime_ns < cutoff && !known[s].count(id.hex())) stray.push_back(id);
      return true;
    });
    if (!listed.ok()) continue;  // an unreachable store is swept next time
    for (const ShardId& id : stray)
      if (store->Remove(id).ok()) ++removed;
  }
  if (removed) spdlog::info("removed {} shards no metadata references", removed);
  last_sweep_removed_ = removed;
  sweeps_++;
  return Status::Ok();
}

}  // namespace quid
