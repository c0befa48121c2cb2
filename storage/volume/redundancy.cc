// Moving shards to where they belong, a bounded amount per pass:
//  - restoring redundancy after stores come back: a chunk written while some stores were
//    unreachable has several shards on one store (ChunkStore places them there rather
//    than refuse the write), and losing that store would then cost more than one shard;
//  - leaving stores whose leases end (draining): every shard there moves before the host
//    may delete it (DESIGN.md: a tenant moves its shards off a lease before it ends).
// Each shard is copied to a reachable store the chunk does not use yet (never a draining
// one), the chunk record is updated, and only then is the old copy removed:
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
#include "storage/volume/quota.h"
#include "storage/volume/store_probe.h"

namespace quid {
namespace {
constexpr size_t kChunksPerPass = 256;
constexpr size_t kMovesPerPass = 32;
}  // namespace

bool Flusher::RestoreRedundancy() {
  const std::vector<std::shared_ptr<ShardStore>> stores = p_.chunks->stores();
  const std::vector<StoreCalls> calls = p_.chunks->store_calls();
  const auto draining = [&](uint32_t s) { return s < calls.size() && calls[s].draining; };
  // Asking every store costs a round trip (and up to a timeout for a silent one): only
  // when some chunk actually has a shard to move.
  std::vector<bool> reachable;
  auto ensure_reachability = [&] {
    if (!reachable.empty()) return;
    for (const auto& usage : ProbeStores(*p_.chunks, *p_.io_pool)) reachable.push_back(usage.ok());
    reachable.resize(stores.size(), false);
  };

  struct Move {
    std::string key;
    uint64_t generation;
    ChunkId id;
    int index;
    uint32_t from;
    uint32_t to;
    uint32_t shard_size;
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
      const bool doubled = used.size() != static_cast<size_t>(chunk.stores_size());
      const bool on_draining = std::any_of(chunk.stores().begin(), chunk.stores().end(), draining);
      if (!doubled && !on_draining) continue;
      ensure_reachability();
      std::vector<uint32_t> free;
      for (uint32_t s = 0; s < stores.size(); ++s)
        if (reachable[s] && !used.count(s) && !draining(s) && !calls[s].distrusted)
          free.push_back(s);
      std::set<uint32_t> seen;
      for (int i = 0; i < chunk.stores_size(); ++i) {
        const uint32_t from = chunk.stores(i);
        // The first shard on a store stays, unless that store's lease is ending.
        if (seen.insert(from).second && !draining(from)) continue;
        if (from >= stores.size() || !reachable[from]) continue;  // needs a rebuild, not a copy
        if (free.empty()) {
          if (draining(from)) ++stuck_this_cycle_;
          continue;
        }
        Move m{it->key().ToString(), chunk.generation(), {}, i, from,
               free.back(),          chunk.shard_size()};
        std::memcpy(m.id.data(), it->key().data(), std::min<size_t>(m.id.size(), it->key().size()));
        free.pop_back();
        moves.push_back(m);
      }
    }
    if (!it->Valid()) {
      redundancy_cursor_.clear();  // wrap around next time
      stuck_shards_.store(stuck_this_cycle_);
      if (stuck_this_cycle_ > 0)
        spdlog::error(
            "{} shards on stores whose leases end have nowhere to go: no other lease has room "
            "(nothing is deleted; get more leases before these end)",
            stuck_this_cycle_);
      stuck_this_cycle_ = 0;
    }
  }

  // Whether the move still stands: the chunk neither dropped nor re-uploaded, its shard
  // still on `from`, and `to` still unused by it. The plan above was made without the
  // mover lock, so the repairer may have moved the shard meanwhile (leaving its good old
  // copy on `from` for the sweep) and even onto `to` itself: copying that stale copy there
  // and then removing the "surplus" one would delete the repairer's committed shard.
  const auto still_stands = [&](const Move& m, const meta::Chunk& chunk) {
    if (chunk.generation() != m.generation || chunk.stores_size() <= m.index ||
        chunk.stores(m.index) != m.from)
      return false;
    return std::find(chunk.stores().begin(), chunk.stores().end(), m.to) == chunk.stores().end();
  };
  size_t moved = 0;
  for (const Move& m : moves) {
    // No other mover changes a record from here to the removal of the surplus copy.
    std::unique_lock<std::mutex> moving;
    if (p_.shard_move_mu != nullptr) moving = std::unique_lock(*p_.shard_move_mu);
    {
      meta::Chunk chunk;
      if (!p_.db->GetProto(Cf::kChunks, m.key, &chunk).ok() || !still_stands(m, chunk)) continue;
    }
    const ShardId shard = p_.chunks->ShardIdFor(m.id, m.generation, m.index);
    Result<Bytes> data = stores[m.from]->Get(shard);
    if (!data.ok()) continue;
    if (!stores[m.to]->Put(shard, *data).ok()) continue;
    bool committed = false;
    {
      auto lock = p_.ns->Lock();
      meta::Chunk chunk;
      // The chunk may have been dropped or re-uploaded meanwhile: then leave it be.
      if (p_.db->GetProto(Cf::kChunks, m.key, &chunk).ok() && still_stands(m, chunk)) {
        chunk.set_stores(m.index, m.to);
        rocksdb::WriteBatch batch;
        p_.db->PutProto(&batch, Cf::kChunks, m.key, chunk);
        committed = p_.db->Write(&batch, /*sync=*/true).ok();
      }
    }
    // Whether it was committed or not, exactly one of the two copies is surplus (a
    // re-upload has a new generation, so its shards have other ids).
    (void)(committed ? stores[m.from] : stores[m.to])->Remove(shard);
    if (committed) {
      ++moved;
      if (p_.quota != nullptr) p_.quota->MoveShard(m.shard_size, m.from, m.to);
    }
  }
  if (moved) spdlog::info("moved {} shards to stores the chunks did not use yet", moved);
  return moved > 0;
}

}  // namespace quid
