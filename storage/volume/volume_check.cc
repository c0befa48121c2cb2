// `quid check`: the chunk records against what the stores hold.
//   1. list every store's shards (one pass each; stores that do not answer are noted);
//   2. walk the chunk records: each shard must be on the store its record names;
//   3. deep: fetch every shard and verify it against the authentic chunk;
//   4. repair: hand every chunk with a missing or bad shard to the repair engine and wait.
// Whatever is left on a store that no record names is an orphan: counted, never removed
// here (the unreferenced-shard sweep does that, behind the read gate).
#include <algorithm>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"
#include "storage/volume/volume_impl.h"

namespace quid {
namespace {

constexpr size_t kMaxProblemLines = 20;

// One store's listing: ids sorted for lookup, and which of them a record named.
struct Listing {
  bool answered = false;
  std::vector<std::pair<ShardId, int64_t>> shards;  // id, mtime
  std::vector<bool> named;
  bool Find(const ShardId& id) {
    auto it = std::lower_bound(shards.begin(), shards.end(), id,
                               [](const auto& a, const ShardId& b) { return a.first < b; });
    if (it == shards.end() || it->first != id) return false;
    named[static_cast<size_t>(it - shards.begin())] = true;
    return true;
  }
};

}  // namespace

Result<CheckReport> VolumeImpl::Check(const CheckOptions& options,
                                      const std::function<void(const CheckProgress&)>& progress) {
  CheckReport report;
  const auto cancelled = [&] { return options.cancelled && options.cancelled(); };
  const auto note = [&](const std::string& line) {
    if (report.problems.size() < kMaxProblemLines) report.problems.push_back(line);
  };
  const auto tell = [&](const char* phase, uint64_t done, uint64_t total) {
    if (progress) progress({phase, done, total});
  };

  const std::vector<std::shared_ptr<ShardStore>> stores = chunks_->stores();
  std::vector<Listing> listed(stores.size());
  for (size_t s = 0; s < stores.size(); ++s) {
    tell("listing", s, stores.size());
    Status st = stores[s]->List([&](const ShardId& id, const ShardInfo& info) {
      listed[s].shards.emplace_back(id, info.mtime_ns);
      return !cancelled();
    });
    if (cancelled()) return Status::Unavailable("check cancelled: the volume is closing");
    listed[s].answered = st.ok();
    if (!st.ok()) {
      listed[s].shards.clear();
      report.stores_unreachable.push_back(stores[s]->name() + ": " + st.message());
    }
    std::sort(listed[s].shards.begin(), listed[s].shards.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    listed[s].named.assign(listed[s].shards.size(), false);
  }
  uint64_t total = 0;
  {
    auto it = db_->NewIterator(Cf::kChunks);
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++total;
  }

  const std::vector<HostState> states =
      repairer_ ? repairer_->host_states() : std::vector<HostState>();
  std::vector<std::pair<std::string, uint64_t>> to_repair;
  auto it = db_->NewIterator(Cf::kChunks);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (cancelled()) return Status::Unavailable("check cancelled: the volume is closing");
    meta::Chunk record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      note("a chunk record does not parse");
      ++report.chunks_unrecoverable;
      continue;
    }
    const std::string key = it->key().ToString();
    Result<StoredChunk> chunk = FromRecord(ChunkIdOf(key), record);
    ++report.chunks;
    tell(options.deep ? "verifying" : "checking", report.chunks, total);
    if (!chunk.ok()) {
      note(chunk.status().message());
      ++report.chunks_unrecoverable;
      continue;
    }
    const size_t n = chunk->stores.size();
    uint64_t bad = 0, unchecked = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t s = chunk->stores[i];
      if (s >= listed.size() || !listed[s].answered) {
        unchecked |= uint64_t{1} << i;
        continue;
      }
      if (!listed[s].Find(chunks_->ShardIdFor(chunk->id, chunk->generation, static_cast<int>(i))))
        bad |= uint64_t{1} << i;
    }
    report.shards_missing += static_cast<uint64_t>(__builtin_popcountll(bad));
    if (options.deep) {
      Result<uint64_t> wrong = chunks_->CheckChunk(*chunk);
      if (wrong.ok()) {
        report.shards_corrupt += static_cast<uint64_t>(__builtin_popcountll(*wrong & ~bad));
        bad |= *wrong;
      } else {
        note(wrong.status().message());
      }
    }
    report.shards_unchecked += static_cast<uint64_t>(__builtin_popcountll(unchecked & ~bad));
    report.shards_checked += n - static_cast<uint64_t>(__builtin_popcountll(bad | unchecked));
    // Shards on stores away (not lost) may come back; below k without them is unrecoverable.
    uint64_t gone = bad;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t s = chunk->stores[i];
      if ((unchecked >> i & 1) && s < states.size() && states[s] == HostState::kLost)
        gone |= uint64_t{1} << i;
    }
    if (n - static_cast<size_t>(__builtin_popcountll(gone)) < chunk->k) {
      ++report.chunks_unrecoverable;
      note(ToHex(ByteSpan(chunk->id.data(), 8)) + ": only " +
           std::to_string(n - static_cast<size_t>(__builtin_popcountll(gone))) + " of " +
           std::to_string(n) + " shards left, " + std::to_string(chunk->k) + " needed");
    } else if (bad != 0) {
      note("chunk " + ToHex(ByteSpan(chunk->id.data(), 8)) + ": " +
           std::to_string(__builtin_popcountll(bad)) + " shard(s) missing or bad");
      to_repair.emplace_back(key, bad);
    }
  }

  const int64_t now = clock_->now_ns();
  for (const Listing& l : listed) {
    for (size_t j = 0; j < l.shards.size(); ++j) {
      if (l.named[j]) continue;
      ++report.orphan_shards;
      if (now - l.shards[j].second < options_.cleanup_grace_ns) ++report.orphans_recent;
    }
  }

  if (options.repair && repairer_) {
    const uint64_t before = repairer_->progress().chunks_done;
    for (const auto& [key, mask] : to_repair) repairer_->ReportBad(key, mask);
    Status done = repairer_->RepairNow(options.repair_timeout_ns, [&](const RepairProgress& p) {
      tell("repairing", p.chunks_done - std::min(p.chunks_done, before),
           p.chunks_done - std::min(p.chunks_done, before) + p.chunks_left);
    });
    report.chunks_repaired = repairer_->progress().chunks_done - before;
    if (!done.ok()) note("repair: " + done.message());
  }
  return report;
}

}  // namespace quid
