#include "storage/volume/garbage_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"

namespace quid {
namespace {
constexpr size_t kDeletesPerStep = 256;
constexpr size_t kStrayBatch = 1024;
constexpr int64_t kMinBackoffNs = 1'000'000'000;
constexpr int64_t kMaxBackoffNs = 60'000'000'000;
// A returned store that cannot be listed is tried this often (again at once, then 1 s
// doubling to 60 s apart: about three minutes) before the periodic sweep is left to it.
constexpr int kReturnedSweepTries = 10;
}  // namespace

GarbageCollector::GarbageCollector(MetaDb* db, ChunkStore* chunks, ReadGate* gate, Clock* clock,
                                   int64_t grace_ns)
    : db_(db), chunks_(chunks), gate_(gate), clock_(clock), grace_ns_(grace_ns) {}

void GarbageCollector::ProcessPendingDeletes() {
  if (doomed_.empty()) {
    // Backing off, unless new rows came in (their shards may be on stores that answer).
    if (clock_->monotonic_ns() < next_attempt_ns_ && !fresh_rows_.exchange(false)) return;
    // A bounded step from where the last one stopped, so rows held up by a store that is
    // away do not keep the ones behind them waiting.
    auto it = db_->NewIterator(Cf::kDeletes);
    it->Seek(cursor_);
    if (!it->Valid() && !cursor_.empty()) {
      cursor_.clear();  // wrap around
      it->SeekToFirst();
    }
    for (; it->Valid() && doomed_.size() < kDeletesPerStep; it->Next()) {
      meta::PendingDelete pd;
      if (!pd.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
      Doomed d;
      d.key = it->key().ToString();
      d.chunk.id = ChunkIdOf(std::string(it->key().data(), kChunkIdBytes));
      d.chunk.generation = pd.chunk().generation();
      d.chunk.k = static_cast<uint8_t>(pd.chunk().k());
      d.chunk.m = static_cast<uint8_t>(pd.chunk().m());
      d.chunk.stores.assign(pd.chunk().stores().begin(), pd.chunk().stores().end());
      d.record = std::move(pd);
      doomed_.push_back(std::move(d));
    }
    cursor_ = it->Valid() ? it->key().ToString() : std::string();
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
  uint64_t finished = 0;
  bool progress = false;
  for (Doomed& d : doomed_) {
    const uint64_t before = d.record.removed_mask();
    uint64_t removed = before;
    const bool done = chunks_->RemoveShards(d.chunk, &removed).ok();
    if (done) {
      batch.Delete(db_->handle(Cf::kDeletes), d.key);
      ++finished;
    } else if (removed != before) {
      // Remember what is gone, so only the stores still holding shards are asked again.
      d.record.set_removed_mask(removed);
      db_->PutProto(&batch, Cf::kDeletes, d.key, d.record);
    }
    progress = progress || done || removed != before;
  }
  doomed_.clear();
  if (batch.Count() > 0 && db_->Write(&batch, false).ok() && finished > 0) {
    uint64_t cur = pending_.load();
    pending_ = cur > finished ? cur - finished : 0;
  }
  // Nothing moved (the stores these shards are on are away): wait before asking again,
  // longer each time, instead of re-sending the same removes every pass.
  if (progress) {
    backoff_ns_ = 0;
  } else {
    backoff_ns_ = std::clamp<int64_t>(backoff_ns_ * 2, kMinBackoffNs, kMaxBackoffNs);
    next_attempt_ns_ = clock_->monotonic_ns() + backoff_ns_;
  }
}

GarbageCollector::~GarbageCollector() {
  {
    std::lock_guard lock(start_mu_);
    stop_sweep_ = true;
  }
  wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

void GarbageCollector::SweepInBackground() {
  // The flusher and the repairer both start sweeps: one start at a time, since a sweep
  // that ends at once could otherwise let a second caller join sweeper_ while the first
  // still assigns it.
  std::lock_guard lock(start_mu_);
  if (sweep_running_.exchange(true)) return;  // one at a time
  if (sweeper_.joinable()) sweeper_.join();   // the last one has finished
  sweeper_ = std::thread([this] {
    Status s = SweepStores(/*returned_only=*/false);
    if (!s.ok()) spdlog::warn("unreferenced-shard sweep: {}", s.message());
    // Stores that returned while it ran (after they were listed, perhaps), or whose
    // listing failed (a store just back may not answer a listing yet): only those, again,
    // backing off, until each is listed or has failed kReturnedSweepTries times.
    int64_t backoff_ns = 0;
    for (;;) {
      {
        std::unique_lock again(start_mu_);
        if (backoff_ns > 0)
          wake_.wait_for(again, std::chrono::nanoseconds(backoff_ns),
                         [this] { return stop_sweep_.load() || returned_news_; });
        if (stale_before_.empty() || stop_sweep_) {
          sweep_running_ = false;
          return;
        }
        returned_news_ = false;
      }
      s = SweepStores(/*returned_only=*/true);
      if (!s.ok()) spdlog::warn("returned-store sweep: {}", s.message());
      backoff_ns = std::clamp<int64_t>(backoff_ns * 2, kMinBackoffNs, kMaxBackoffNs);
    }
  });
}

void GarbageCollector::SweepReturnedStore(uint32_t store, int64_t stale_before_ns) {
  {
    std::lock_guard lock(start_mu_);
    Returned& r = stale_before_[store];
    r.cutoff_ns = std::max(r.cutoff_ns, stale_before_ns);
    r.tries_left = kReturnedSweepTries;
    returned_news_ = true;
  }
  wake_.notify_all();
  SweepInBackground();
}

Status GarbageCollector::Sweep() {
  return SweepStores(/*returned_only=*/false);
}

Status GarbageCollector::SweepStores(bool returned_only) {
  // Every shard the metadata knows, per store (committed or awaiting deletion): a copy of
  // a known shard on a store that should not hold it is stray too. Sorted ids, 16 bytes
  // a shard, rather than a hash set of strings (about 120): a volume of tens of millions
  // of shards sweeps in a few hundred MiB at most. The iterators read one implicit
  // snapshot each; anything committed after it is younger than the grace period.
  const std::vector<std::shared_ptr<ShardStore>> stores = chunks_->stores();
  const size_t store_count = stores.size();
  // Taken before the metadata is read, so a store that returns during this pass is swept
  // by the next one. A store back from the lost holds nothing newer than when it left
  // that is stale.
  std::map<uint32_t, Returned> returned;
  {
    std::lock_guard lock(start_mu_);
    returned.swap(stale_before_);
  }
  const auto wanted = [&](size_t s) {
    return s < store_count && (!returned_only || returned.count(static_cast<uint32_t>(s)));
  };
  std::vector<std::vector<ShardId>> known(store_count);
  auto add = [&](const ChunkId& id, const meta::Chunk& c) {
    for (int i = 0; i < c.stores_size(); ++i) {
      if (!wanted(c.stores(i))) continue;
      known[c.stores(i)].push_back(chunks_->ShardIdFor(id, c.generation(), i));
    }
  };
  {
    auto it = db_->NewIterator(Cf::kChunks);
    for (it->SeekToFirst(); it->Valid() && !stop_sweep_; it->Next()) {
      meta::Chunk c;
      if (!c.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return Status::Corrupt("unparsable chunk record");
      add(ChunkIdOf(it->key().ToString()), c);
    }
    auto dit = db_->NewIterator(Cf::kDeletes);
    for (dit->SeekToFirst(); dit->Valid() && !stop_sweep_; dit->Next()) {
      meta::PendingDelete pd;
      if (!pd.ParseFromArray(dit->value().data(), static_cast<int>(dit->value().size())))
        return Status::Corrupt("unparsable pending delete");
      add(ChunkIdOf(dit->key().ToString()), pd.chunk());
    }
  }
  for (auto& ids : known) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    ids.shrink_to_fit();
  }
  // Uploads in flight right now are younger than the grace period.
  const int64_t default_cutoff = clock_->now_ns() - grace_ns_;
  uint64_t removed = 0;
  std::map<uint32_t, Returned> unlisted;  // returned stores whose listing failed
  for (size_t s = 0; s < store_count && !stop_sweep_; ++s) {
    if (!wanted(s)) continue;
    const auto& store = stores[s];
    const auto back = returned.find(static_cast<uint32_t>(s));
    const int64_t cutoff =
        back == returned.end() ? default_cutoff : std::max(default_cutoff, back->second.cutoff_ns);
    const uint64_t removed_before = removed;
    // Removed in batches as the listing goes, so strays never pile up in memory either.
    std::vector<ShardId> stray;
    const auto remove_stray = [&] {
      for (const ShardId& id : stray)
        if (store->Remove(id).ok()) ++removed;
      stray.clear();
    };
    Status listed = store->List([&](const ShardId& id, const ShardInfo& info) {
      if (info.mtime_ns < cutoff && !std::binary_search(known[s].begin(), known[s].end(), id))
        stray.push_back(id);
      if (stray.size() >= kStrayBatch) remove_stray();
      return !stop_sweep_.load();
    });
    // An unreachable store is swept next time: a returned one by the next returned-store
    // pass while it has tries left (then by the periodic sweep, at the usual grace).
    if (listed.ok()) {
      remove_stray();
      if (back != returned.end())
        spdlog::info("store {} swept after its return: {} stale shards removed", s,
                     removed - removed_before);
    } else if (back != returned.end()) {
      if (back->second.tries_left > 1) {
        Returned again = back->second;
        again.tries_left--;
        unlisted.emplace(back->first, again);
      } else {
        spdlog::warn(
            "store {} back from the lost but not listable: {}; its stale shards wait "
            "for the periodic sweep",
            s, listed.message());
      }
    }
    std::vector<ShardId>().swap(known[s]);
  }
  if (!unlisted.empty()) {
    std::lock_guard lock(start_mu_);
    for (const auto& [store, r] : unlisted) {
      // A newer return of the same store (while this pass ran) keeps its own cutoff and tries.
      stale_before_.emplace(store, r);
    }
  }
  if (stop_sweep_) return Status::Ok();  // closing: not a completed pass
  if (removed) spdlog::info("removed {} shards no metadata references", removed);
  last_sweep_removed_ = removed;
  if (!returned_only) sweeps_++;
  return Status::Ok();
}

}  // namespace quid
