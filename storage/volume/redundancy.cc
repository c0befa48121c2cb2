// Restoring redundancy after stores come back. A chunk written while some stores were
// unreachable has several shards on one store (ChunkStore places them there rather than
// refuse the write); losing that store would then cost more than one shard. Once enough
// stores are reachable again, each extra shard is copied to a store the chunk does not use
// yet, the chunk record is updated, and only then is the extra copy removed:
//   put on the new store (durable) -> commit the record (synced) -> remove the old copy.
// A crash between the steps leaves a spare copy that the unreferenced-shard sweep removes,
// never a record pointing at a missing shard.
//
// Rebuilding shards of a store that is gone for good (from any k others) is the repair
// engine's job, which builds on this.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/flusher.h"
#include "storage/volume/store_probe.h"

namespace quid {
namespace {
constexpr size_t kChunksPerPass = 256;
constexpr size_t kMovesPerPass = 32;
}  // namespace

bool Flusher::RestoreRedundancy() {
  const std::vector<std::shared_ptr<ShardStore>> stores = p_.chunks->stores();
  // Asking every store costs a round trip (and up to a timeout for a silent one): only
  // when some chunk actually doubles up on a store.
  std::vector<bool> reachable;
  auto ensure_reachability = [&] {
    if (!reachable.empty()) return;
    for (const auto& usage : ProbeStores(*p_.chunks, *p_.io_pool)) reachable.push_back(usage.ok());
  };

  struct Move {
    std::string key;
    uint64_t generation;
    ChunkId id;
    int index;
    uint32_t from;
    uint32_t to;
  };
  std::vector<Move> moves;
  size_t scanned = 0;
  {
    auto it = p_.db->NewIterator(Cf::kChunks);
    it->Seek(redundancy_cursor_);
    if (!it->Valid()) it->SeekToFirst();
    for (; it->Valid() && scanned < kChunksPerPass && moves.size() < kMovesPerPass; it->Next()) {
      ++scanned;
      redundancy_cursor_ = it->key().ToString() + '\0';
      meta::Chunk chunk;
      if (!chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      std::set<uint32_t> used(chunk.stores().begin(), chunk.stores().end());
      if (used.size() == static_cast<size_t>(chunk.stores_size())) continue;  // all distinct
      ensure_reachability();
      std::vector<uint32_t> free;
      for (uint32_t s = 0; s < stores.size(); ++s)
        if (reachable[s] && !used.count(s)) free.push_back(s);
      std::set<uint32_t> seen;
      for (int i = 0; i < chunk.stores_size() && !free.empty(); ++i) {
        const uint32_t from = chunk.stores(i);
        if (seen.insert(from).second) continue;  // the first shard on a store stays
        if (from >= stores.size() || !reachable[from]) continue;  // needs a rebuild, not a copy
        Move m{it->key().ToString(), chunk.generation(), {}, i, from, free.back()};
        std::memcpy(m.id.data(), it->key().data(), std::min<size_t>(m.id.size(), it->key().size()));
        free.pop_back();
        moves.push_back(m);
      }
    }
    if (!it->Valid()) redundancy_cursor_.clear();  // wrap around next time
  }

  size_t moved = 0;
  for (const Move& m : moves) {
    const ShardId shard = p_.chunks->ShardIdFor(m.id, m.generation, m.index);
    Result<Bytes> data = stores[m.from]->Get(shard);
    if (!data.ok()) continue;
    if (!stores[m.to]->Put(shard, *data).ok()) continue;
    bool committed = false;
    {
      auto lock = p_.ns->Lock();
      meta::Chunk chunk;
      // The chunk may have been dropped or re-uploaded meanwhile: then leave it be.
      if (p_.db->GetProto(Cf::kChunks, m.key, &chunk).ok() && chunk.generation() == m.generation &&
          chunk.stores(m.index) == m.from) {
        chunk.set_stores(m.index, m.to);
        rocksdb::WriteBatch batch;
        p_.db->PutProto(&batch, Cf::kChunks, m.key, chunk);
        committed = p_.db->Write(&batch, /*sync=*/true).ok();
      }
    }
    // Whether it was committed or not, exactly one of the two copies is surplus.
    (void)(committed ? stores[m.from] : stores[m.to])->Remove(shard);
    if (committed) ++moved;
  }
  if (moved) spdlog::info("restored redundancy: moved {} shards to stores that had none", moved);
  return moved > 0;
}

}  // namespace quid
