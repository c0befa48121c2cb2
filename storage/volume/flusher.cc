// The flusher: turns dirty journal data into stored chunks and commits them, removes the
// shards of unreferenced chunks, and sweeps shards that no metadata references.
//
// A flush round: (1) under mu_, snapshot the dirty files chosen and plan, per file, which
// chunks change; (2) without locks, build each changed chunk (old contents from the
// stores where needed, overlaid with journal bytes), name it, and upload it unless the
// volume already has it; (3) under mu_, commit every file's new extents, chunk refcounts,
// size and flushed seq in one synced batch; only then release the journal bytes.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"
#include "storage/volume/volume_impl.h"

namespace quid {
namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(200);
constexpr int64_t kQuietNs = 1'000'000'000;         // flush a file this long after its last write
constexpr uint64_t kEagerDirtyBytes = 64ull << 20;  // ... or once this much of it is dirty
constexpr uint64_t kRoundBytes = 256ull << 20;      // dirty bytes planned into one round
constexpr size_t kRoundFiles = 512;
constexpr size_t kChunksInFlight = 4;
constexpr int64_t kSweepIntervalNs = 600'000'000'000;   // unreferenced-shard sweep period
constexpr int64_t kRestoreIntervalNs = 10'000'000'000;  // redundancy check period when idle

bool AllZero(const Bytes& b) {
  static const uint8_t kZeros[4096] = {};
  size_t i = 0;
  for (; i + sizeof(kZeros) <= b.size(); i += sizeof(kZeros))
    if (std::memcmp(b.data() + i, kZeros, sizeof(kZeros)) != 0) return false;
  return std::memcmp(b.data() + i, kZeros, b.size() - i) == 0;
}

}  // namespace

void VolumeImpl::WakeFlusher() {
  flusher_cv_.notify_all();
}

std::vector<Ino> VolumeImpl::PickFlushCandidates(bool everything) {
  std::lock_guard lock(mu_);
  const bool pressure = journal_->used_bytes() > journal_->capacity_bytes() / 4;
  const int64_t now = clock_->monotonic_ns();
  std::vector<std::pair<int64_t, Ino>> ready;
  for (const auto& [ino, dirty] : dirty_) {
    if (dirty->flushing() || dirty->clean()) continue;
    if (everything || pressure || now - dirty->last_write_mono_ns() >= kQuietNs ||
        dirty->dirty_bytes() >= kEagerDirtyBytes)
      ready.emplace_back(dirty->last_write_mono_ns(), ino);
  }
  std::sort(ready.begin(), ready.end());
  std::vector<Ino> out;
  uint64_t bytes = 0;
  for (const auto& [t, ino] : ready) {
    if (out.size() >= kRoundFiles || (bytes >= kRoundBytes && !out.empty())) break;
    out.push_back(ino);
    bytes += dirty_[ino]->dirty_bytes();
  }
  return out;
}

void VolumeImpl::FlusherLoop() {
  int64_t next_sweep = clock_->monotonic_ns();
  int64_t next_restore = clock_->monotonic_ns();
  bool more = false;
  for (;;) {
    bool everything = false;
    {
      std::unique_lock lock(flusher_mu_);
      if (!more && !stopping_) flusher_cv_.wait_for(lock, kIdlePoll);
      if (stopping_) break;
      everything = drain_requests_ > 0;
    }
    std::vector<Ino> candidates = PickFlushCandidates(everything);
    more = false;
    if (!candidates.empty()) {
      more = FlushRound(candidates);
      if (!more) {
        // Stores refused: back off rather than spin, but stay responsive to Close().
        std::unique_lock lock(flusher_mu_);
        flusher_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      }
    }
    gc_->ProcessPendingDeletes();
    if (candidates.empty() && clock_->monotonic_ns() >= next_restore) {
      // Idle: spread chunks that were written while stores were away. Keep going while
      // there is work; otherwise look again later.
      const bool moved = RestoreRedundancy();
      next_restore = clock_->monotonic_ns() + (moved ? 0 : kRestoreIntervalNs);
    }
    if (clock_->monotonic_ns() >= next_sweep) {
      Status s = gc_->Sweep();
      if (!s.ok()) spdlog::warn("unreferenced-shard sweep: {}", s.message());
      next_sweep = clock_->monotonic_ns() + kSweepIntervalNs;
    }
    flushed_cv_.notify_all();
  }
  flushed_cv_.notify_all();
}

bool VolumeImpl::FlushRound(const std::vector<Ino>& inodes) {
  std::vector<FileJob> files = PlanRound(inodes);
  if (files.empty()) return false;
  BuildRound(files);
  return CommitRound(files);
}

// (1) Under mu_: snapshot each file's dirty pieces (holding journal references on them)
// and list the chunk-sized ranges that change, with the extents they replace.
std::vector<FileJob> VolumeImpl::PlanRound(const std::vector<Ino>& inodes) {
  const uint64_t inline_max = config_.inline_max();
  std::vector<FileJob> files;
  {
    std::lock_guard lock(mu_);
    for (Ino ino : inodes) {
      auto it = dirty_.find(ino);
      if (it == dirty_.end() || it->second->flushing()) continue;
      FileJob job;
      job.ino = ino;
      if (!LoadInode(ino, &job.inode).ok()) continue;
      job.snap = it->second->BeginFlush();
      for (const auto& [off, piece] : job.snap.pieces) journal_->AddRef(piece.segment, 1);
      const uint64_t size = job.snap.size;
      const uint64_t limit = std::min(job.snap.base_limit, job.inode.size());
      job.make_inline = size <= inline_max;

      std::set<uint64_t> starts;
      if (job.make_inline) {
        if (size > 0) starts.insert(0);
      } else {
        for (const auto& [off, piece] : job.snap.pieces) {
          for (uint64_t c = chunker_->ChunkStart(off); c < off + piece.length && c < size;
               c += chunker_->ChunkLength(c, size))
            starts.insert(c);
        }
        if (job.inode.is_inline() && !job.inode.inline_data().empty()) starts.insert(0);
        if (limit < job.inode.size() && limit < size) starts.insert(chunker_->ChunkStart(limit));
      }
      // Existing extents: those of rewritten chunks, and all at or past the new end or
      // the truncation point, which are dropped or trimmed.
      const uint64_t cut = job.make_inline ? 0 : std::min(limit, size);
      auto eit = db_->NewIterator(Cf::kExtents);
      const std::string prefix = ExtentPrefix(ino);
      std::map<uint64_t, meta::Extent> existing;
      for (uint64_t c : starts) {
        std::string value;
        if (db_->Get(Cf::kExtents, ExtentKey(ino, c), &value).ok())
          existing[c].ParseFromString(value);
      }
      for (eit->Seek(ExtentKey(ino, chunker_->ChunkStart(cut)));
           eit->Valid() && eit->key().starts_with(prefix); eit->Next()) {
        uint64_t start = ExtentOffsetFromKey({eit->key().data(), eit->key().size()});
        meta::Extent e;
        e.ParseFromArray(eit->value().data(), static_cast<int>(eit->value().size()));
        if (start + e.length() <= cut) continue;
        if (start < size && !job.make_inline) starts.insert(start);
        existing[start] = e;
      }
      for (auto& [start, extent] : existing) {
        if (!starts.count(start) || job.make_inline) job.dropped.emplace_back(start, extent);
      }
      for (uint64_t c : starts) {
        ChunkJob chunk;
        chunk.start = c;
        chunk.length = chunker_->ChunkLength(c, size);
        auto e = existing.find(c);
        if (e != existing.end() && !job.make_inline) {
          chunk.had_extent = true;
          chunk.old_extent = e->second;
        }
        job.chunks.push_back(std::move(chunk));
      }
      files.push_back(std::move(job));
    }
  }
  return files;
}

// (2) Without locks, on the CPU pool: one chunk's new plaintext (the old chunk from the
// stores only where the pieces do not cover it, overlaid with journal bytes), named,
// deduplicated or uploaded. An all-zero chunk becomes a hole.
Status VolumeImpl::BuildChunk(FileJob& file, ChunkJob& chunk) {
  Bytes content(chunk.length);
  const uint64_t limit = std::min(file.snap.base_limit, file.inode.size());
  const uint64_t base_end = std::min<uint64_t>(chunk.start + chunk.length, limit);
  // Committed bytes of this chunk still valid, unless the pieces cover them all.
  uint64_t covered = 0;
  auto pit = file.snap.pieces.upper_bound(chunk.start);
  if (pit != file.snap.pieces.begin()) --pit;
  std::vector<std::pair<uint64_t, DirtyPiece>> overlay;
  for (; pit != file.snap.pieces.end() && pit->first < chunk.start + chunk.length; ++pit) {
    uint64_t from = std::max(pit->first, chunk.start);
    uint64_t to = std::min(pit->first + pit->second.length, chunk.start + chunk.length);
    if (from >= to) continue;
    DirtyPiece p = pit->second;
    p.data_offset += from - pit->first;
    p.length = to - from;
    overlay.emplace_back(from, p);
    covered += to - from;
  }
  if (base_end > chunk.start && covered < chunk.length) {
    const uint64_t n = base_end - chunk.start;
    if (file.inode.is_inline()) {
      const std::string& data = file.inode.inline_data();
      const uint64_t stop =
          std::min<uint64_t>(n, data.size() > chunk.start ? data.size() - chunk.start : 0);
      if (stop) std::memcpy(content.data(), data.data() + chunk.start, stop);
    } else {
      std::string value;
      if (db_->Get(Cf::kExtents, ExtentKey(file.ino, chunk.start), &value).ok()) {
        meta::Extent e;
        e.ParseFromString(value);
        const uint64_t m = std::min<uint64_t>(n, e.length());
        QUID_ASSIGN_OR_RETURN(StoredChunk old, reader_->LoadChunk(ChunkIdOf(e.chunk_id())));
        QUID_RETURN_IF_ERROR(reader_->ReadChunk(old, 0, MutableByteSpan(content).first(m)));
      }
    }
  }
  for (const auto& [at, piece] : overlay) {
    QUID_RETURN_IF_ERROR(
        journal_->ReadData(piece.segment, piece.data_offset,
                           MutableByteSpan(content).subspan(at - chunk.start, piece.length)));
  }
  if (file.make_inline) {
    chunk.inline_content = std::move(content);
    return Status::Ok();
  }
  if (AllZero(content)) {
    chunk.hole = true;
    return Status::Ok();
  }
  chunk.id = ComputeChunkId(keys_.chunk_id, content);
  std::string existing;
  if (db_->Get(Cf::kChunks, ChunkKey(chunk.id), &existing).ok()) return Status::Ok();  // dedup
  QUID_ASSIGN_OR_RETURN(chunk.stored, chunks_->Put(chunk.id, content));
  chunk.uploaded = true;
  return Status::Ok();
}

// Builds every chunk of the round, a bounded number at a time. A file with a failed chunk
// is not committed (its dirty data stays in the journal for the next round).
void VolumeImpl::BuildRound(std::vector<FileJob>& files) {
  std::vector<std::pair<FileJob*, ChunkJob*>> work;
  for (auto& file : files)
    for (auto& chunk : file.chunks) work.emplace_back(&file, &chunk);
  for (size_t i = 0; i < work.size(); i += kChunksInFlight) {
    const size_t end = std::min(work.size(), i + kChunksInFlight);
    // One slot per job, so a result always lands on the job that produced it.
    std::vector<std::optional<std::future<Status>>> building(end - i);
    for (size_t j = i; j < end; ++j) {
      auto [file, chunk] = work[j];
      if (!file->ok) continue;  // an earlier chunk of this file failed: no point
      building[j - i] =
          cpu_pool_->Submit([this, file, chunk] { return BuildChunk(*file, *chunk); });
    }
    for (size_t j = i; j < end; ++j) {
      if (!building[j - i]) continue;
      auto [file, chunk] = work[j];
      Status s = building[j - i]->get();
      if (!s.ok()) {
        if (file->ok) spdlog::warn("flush of inode {} failed: {}", file->ino, s.message());
        chunk->status = s;
        file->ok = false;
      }
    }
  }
}

// (3) Under mu_: one synced batch for every file of the round (extents, chunk records and
// refcounts, size, flushed seq); only then are the journal bytes released.
bool VolumeImpl::CommitRound(std::vector<FileJob>& files) {
  bool any_committed = false;
  {
    std::lock_guard lock(mu_);
    rocksdb::WriteBatch batch;
    std::map<ChunkId, meta::Chunk> refs;
    std::vector<StoredChunk> unused_uploads;
    std::vector<Ino> committed;
    for (auto& file : files) {
      meta::Inode inode;
      auto dirty_it = dirty_.find(file.ino);
      const bool alive = LoadInode(file.ino, &inode).ok() && dirty_it != dirty_.end();
      bool ok = file.ok && alive;
      // A reused chunk must still exist at commit (an unlink may have dropped it).
      for (auto& chunk : file.chunks) {
        if (!ok || chunk.hole || chunk.uploaded || file.make_inline) continue;
        std::string v;
        if (!refs.count(chunk.id) && !db_->Get(Cf::kChunks, ChunkKey(chunk.id), &v).ok())
          ok = false;
      }
      if (!ok) {
        for (auto& chunk : file.chunks)
          if (chunk.uploaded) unused_uploads.push_back(chunk.stored);
        if (alive) dirty_it->second->FinishFlush(false, journal_.get());
        continue;
      }
      uint64_t stored = inode.is_inline() ? 0 : inode.stored_bytes();
      auto unref = [&](const meta::Extent& e) {
        stored -= std::min<uint64_t>(stored, e.length());
        return AdjustChunkRef(&batch, ChunkIdOf(e.chunk_id()), -1, &refs);
      };
      Status s = Status::Ok();
      for (auto& [start, extent] : file.dropped) {
        if (s.ok()) s = unref(extent);
        db_->Delete(&batch, Cf::kExtents, ExtentKey(file.ino, start));
      }
      for (auto& chunk : file.chunks) {
        if (!s.ok()) break;
        if (chunk.had_extent) s = unref(chunk.old_extent);
        if (!s.ok()) break;
        if (file.make_inline) continue;
        if (chunk.hole) {
          db_->Delete(&batch, Cf::kExtents, ExtentKey(file.ino, chunk.start));
          continue;
        }
        if (chunk.uploaded) {
          std::string v;
          if (refs.count(chunk.id) || db_->Get(Cf::kChunks, ChunkKey(chunk.id), &v).ok()) {
            unused_uploads.push_back(chunk.stored);  // the same content landed twice
          } else {
            refs.emplace(chunk.id, ToRecord(chunk.stored));
          }
        }
        s = AdjustChunkRef(&batch, chunk.id, +1, &refs);
        meta::Extent extent;
        extent.set_chunk_id(ChunkKey(chunk.id));
        extent.set_length(static_cast<uint32_t>(chunk.length));
        db_->PutProto(&batch, Cf::kExtents, ExtentKey(file.ino, chunk.start), extent);
        stored += chunk.length;
      }
      if (!s.ok()) {
        // Metadata disagrees with itself; leave this file dirty and say so loudly.
        spdlog::error("flush commit of inode {}: {}", file.ino, s.message());
        batch.Clear();
        refs.clear();
        for (auto& f : files)
          if (dirty_.count(f.ino) && dirty_[f.ino]->flushing())
            dirty_[f.ino]->FinishFlush(false, journal_.get());
        committed.clear();
        unused_uploads.clear();
        break;
      }
      if (file.make_inline) {
        inode.set_is_inline(true);
        const Bytes& content = file.chunks.empty() ? Bytes() : file.chunks[0].inline_content;
        inode.set_inline_data(std::string(content.begin(), content.end()));
        stored = 0;
      } else {
        inode.set_is_inline(false);
        inode.clear_inline_data();
      }
      inode.set_size(file.snap.size);
      inode.set_stored_bytes(stored);
      inode.set_flushed_seq(file.snap.seq);
      const int64_t mtime = dirty_it->second->mtime_ns();
      if (mtime != 0) {
        inode.set_mtime_ns(std::max(inode.mtime_ns(), mtime));
        inode.set_ctime_ns(std::max(inode.ctime_ns(), mtime));
      }
      PutInode(&batch, file.ino, inode);
      committed.push_back(file.ino);
    }
    for (const StoredChunk& chunk : unused_uploads) {
      meta::PendingDelete pd;
      *pd.mutable_chunk() = ToRecord(chunk);
      db_->PutProto(&batch, Cf::kDeletes, DeleteKey(chunk.id, chunk.generation), pd);
      gc_->NotePendingDeletes(1);
    }
    FinishChunkRefs(&batch, &refs);
    meta::Counters counters;
    counters.set_next_ino(next_ino_);
    counters.set_journal_seq(journal_->last_seq());
    db_->PutProto(&batch, Cf::kConfig, std::string(kCountersKey), counters);
    // Synced: the journal bytes these extents replace are released right after.
    Status written = db_->Write(&batch, /*sync=*/true);
    if (!written.ok()) {
      spdlog::error("flush commit failed: {}", written.message());
      committed.clear();
    }
    for (auto& file : files) {
      auto it = dirty_.find(file.ino);
      if (it == dirty_.end()) continue;
      const bool done = std::find(committed.begin(), committed.end(), file.ino) != committed.end();
      if (it->second->flushing()) it->second->FinishFlush(done, journal_.get());
      if (it->second->clean()) dirty_.erase(it);
      any_committed = any_committed || done;
    }
    for (auto& file : files)
      for (const auto& [off, piece] : file.snap.pieces) journal_->Release(piece.segment, 1);
  }
  return any_committed;
}

Status VolumeImpl::RemoveOrphans() {
  std::vector<Ino> orphans;
  auto it = db_->NewIterator(Cf::kConfig);
  for (it->Seek(std::string(kOrphanPrefix));
       it->Valid() && it->key().starts_with(std::string(kOrphanPrefix)); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    orphans.push_back(InodeFromKey(key.substr(kOrphanPrefix.size())));
  }
  for (Ino ino : orphans) {
    meta::Inode inode;
    if (LoadInode(ino, &inode).ok() && inode.nlink() > 0) {
      rocksdb::WriteBatch batch;
      db_->Delete(&batch, Cf::kConfig, OrphanKey(ino));
      QUID_RETURN_IF_ERROR(db_->Write(&batch, false));
      continue;
    }
    QUID_RETURN_IF_ERROR(DestroyInodeLocked(ino));
  }
  return Status::Ok();
}

}  // namespace quid
