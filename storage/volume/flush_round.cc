// A flush round: (1) under the namespace lock, snapshot the dirty files chosen and plan,
// per file, which chunks change; (2) without locks, build each changed chunk (old
// contents from the stores where needed, overlaid with journal bytes), name it, and
// upload it unless the volume already has it; (3) under the namespace lock, commit every
// file's new extents, chunk refcounts, size and flushed seq in one synced batch; only
// then release the journal bytes.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <optional>
#include <set>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"
#include "storage/volume/flusher.h"
#include "storage/volume/quota.h"

namespace quid {
namespace {

constexpr size_t kChunksInFlight = 4;

bool AllZero(const Bytes& b) {
  static const uint8_t kZeros[4096] = {};
  size_t i = 0;
  for (; i + sizeof(kZeros) <= b.size(); i += sizeof(kZeros))
    if (std::memcmp(b.data() + i, kZeros, sizeof(kZeros)) != 0) return false;
  return std::memcmp(b.data() + i, kZeros, b.size() - i) == 0;
}

}  // namespace

bool Flusher::FlushRound(const std::vector<Ino>& inodes) {
  std::vector<FileJob> files = PlanRound(inodes);
  if (files.empty()) return false;
  BuildRound(files);
  return CommitRound(files);
}

// (1) Under mu_: snapshot each file's dirty pieces (holding journal references on them)
// and list the chunk-sized ranges that change, with the extents they replace.
std::vector<FileJob> Flusher::PlanRound(const std::vector<Ino>& inodes) {
  const uint64_t inline_max = p_.inline_max;
  std::vector<FileJob> files;
  {
    auto lock = p_.ns->Lock();
    for (Ino ino : inodes) {
      auto it = p_.ns->dirty().find(ino);
      if (it == p_.ns->dirty().end() || it->second->flushing()) continue;
      FileJob job;
      job.ino = ino;
      if (!p_.ns->LoadInode(ino, &job.inode).ok()) continue;
      job.snap = it->second->BeginFlush();
      for (const auto& [off, piece] : job.snap.pieces) p_.journal->AddRef(piece.segment, 1);
      const uint64_t size = job.snap.size;
      const uint64_t limit = std::min(job.snap.base_limit, job.inode.size());
      job.make_inline = size <= inline_max;

      std::set<uint64_t> starts;
      if (job.make_inline) {
        if (size > 0) starts.insert(0);
      } else {
        for (const auto& [off, piece] : job.snap.pieces) {
          for (uint64_t c = p_.chunker->ChunkStart(off); c < off + piece.length && c < size;
               c += p_.chunker->ChunkLength(c, size))
            starts.insert(c);
        }
        if (job.inode.is_inline() && !job.inode.inline_data().empty()) starts.insert(0);
        if (limit < job.inode.size() && limit < size) starts.insert(p_.chunker->ChunkStart(limit));
      }
      // Existing extents: those of rewritten chunks, and all at or past the new end or
      // the truncation point, which are dropped or trimmed.
      const uint64_t cut = job.make_inline ? 0 : std::min(limit, size);
      auto eit = p_.db->NewIterator(Cf::kExtents);
      const std::string prefix = ExtentPrefix(ino);
      std::map<uint64_t, meta::Extent> existing;
      for (uint64_t c : starts) {
        std::string value;
        if (p_.db->Get(Cf::kExtents, ExtentKey(ino, c), &value).ok())
          existing[c].ParseFromString(value);
      }
      for (eit->Seek(ExtentKey(ino, p_.chunker->ChunkStart(cut)));
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
        chunk.length = p_.chunker->ChunkLength(c, size);
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
Status Flusher::BuildChunk(FileJob& file, ChunkJob& chunk) {
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
      if (p_.db->Get(Cf::kExtents, ExtentKey(file.ino, chunk.start), &value).ok()) {
        meta::Extent e;
        e.ParseFromString(value);
        const uint64_t m = std::min<uint64_t>(n, e.length());
        QUID_ASSIGN_OR_RETURN(StoredChunk old, p_.reader->LoadChunk(ChunkIdOf(e.chunk_id())));
        QUID_RETURN_IF_ERROR(p_.reader->ReadChunk(old, 0, MutableByteSpan(content).first(m)));
      }
    }
  }
  for (const auto& [at, piece] : overlay) {
    QUID_RETURN_IF_ERROR(
        p_.journal->ReadData(piece.segment, piece.data_offset,
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
  chunk.id = ComputeChunkId(p_.keys->chunk_id, content);
  std::string existing;
  if (p_.db->Get(Cf::kChunks, ChunkKey(chunk.id), &existing).ok()) return Status::Ok();  // dedup
  QUID_ASSIGN_OR_RETURN(chunk.stored, p_.chunks->Put(chunk.id, content));
  chunk.uploaded = true;
  return Status::Ok();
}

// Builds every chunk of the round, a bounded number at a time. A file with a failed chunk
// is not committed (its dirty data stays in the journal for the next round).
void Flusher::BuildRound(std::vector<FileJob>& files) {
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
          p_.cpu_pool->Submit([this, file, chunk] { return BuildChunk(*file, *chunk); });
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
bool Flusher::CommitRound(std::vector<FileJob>& files) {
  bool any_committed = false;
  {
    auto lock = p_.ns->Lock();
    rocksdb::WriteBatch batch;
    std::map<ChunkId, meta::Chunk> refs;
    std::vector<StoredChunk> unused_uploads;
    std::vector<const StoredChunk*> new_records;  // counted by the quota once committed
    std::vector<Ino> committed;
    for (auto& file : files) {
      meta::Inode inode;
      auto dirty_it = p_.ns->dirty().find(file.ino);
      const bool alive =
          p_.ns->LoadInode(file.ino, &inode).ok() && dirty_it != p_.ns->dirty().end();
      bool ok = file.ok && alive;
      // A reused chunk must still exist at commit (an unlink may have dropped it).
      for (auto& chunk : file.chunks) {
        if (!ok || chunk.hole || chunk.uploaded || file.make_inline) continue;
        std::string v;
        if (!refs.count(chunk.id) && !p_.db->Get(Cf::kChunks, ChunkKey(chunk.id), &v).ok())
          ok = false;
      }
      if (!ok) {
        for (auto& chunk : file.chunks)
          if (chunk.uploaded) unused_uploads.push_back(chunk.stored);
        if (alive) dirty_it->second->FinishFlush(false, p_.journal);
        continue;
      }
      uint64_t stored = inode.is_inline() ? 0 : inode.stored_bytes();
      auto unref = [&](const meta::Extent& e) {
        stored -= std::min<uint64_t>(stored, e.length());
        return p_.ns->AdjustChunkRef(ChunkIdOf(e.chunk_id()), -1, &refs);
      };
      Status s = Status::Ok();
      for (auto& [start, extent] : file.dropped) {
        if (s.ok()) s = unref(extent);
        p_.db->Delete(&batch, Cf::kExtents, ExtentKey(file.ino, start));
      }
      for (auto& chunk : file.chunks) {
        if (!s.ok()) break;
        if (chunk.had_extent) s = unref(chunk.old_extent);
        if (!s.ok()) break;
        if (file.make_inline) continue;
        if (chunk.hole) {
          p_.db->Delete(&batch, Cf::kExtents, ExtentKey(file.ino, chunk.start));
          continue;
        }
        if (chunk.uploaded) {
          std::string v;
          if (refs.count(chunk.id) || p_.db->Get(Cf::kChunks, ChunkKey(chunk.id), &v).ok()) {
            unused_uploads.push_back(chunk.stored);  // the same content landed twice
          } else {
            refs.emplace(chunk.id, ToRecord(chunk.stored));
            new_records.push_back(&chunk.stored);
          }
        }
        s = p_.ns->AdjustChunkRef(chunk.id, +1, &refs);
        meta::Extent extent;
        extent.set_chunk_id(ChunkKey(chunk.id));
        extent.set_length(static_cast<uint32_t>(chunk.length));
        p_.db->PutProto(&batch, Cf::kExtents, ExtentKey(file.ino, chunk.start), extent);
        stored += chunk.length;
      }
      if (!s.ok()) {
        // Metadata disagrees with itself; leave this file dirty and say so loudly.
        spdlog::error("flush commit of inode {}: {}", file.ino, s.message());
        batch.Clear();
        refs.clear();
        for (auto& f : files)
          if (p_.ns->dirty().count(f.ino) && p_.ns->dirty()[f.ino]->flushing())
            p_.ns->dirty()[f.ino]->FinishFlush(false, p_.journal);
        committed.clear();
        unused_uploads.clear();
        new_records.clear();
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
      p_.ns->PutInode(&batch, file.ino, inode);
      committed.push_back(file.ino);
    }
    for (const StoredChunk& chunk : unused_uploads) {
      meta::PendingDelete pd;
      *pd.mutable_chunk() = ToRecord(chunk);
      p_.db->PutProto(&batch, Cf::kDeletes, DeleteKey(chunk.id, chunk.generation), pd);
      p_.gc->NotePendingDeletes(1);
    }
    p_.ns->FinishChunkRefs(&batch, &refs);
    meta::Counters counters;
    counters.set_next_ino(p_.ns->next_ino());
    counters.set_journal_seq(p_.journal->last_seq());
    p_.db->PutProto(&batch, Cf::kConfig, std::string(kCountersKey), counters);
    // Applied now, made durable below without the namespace lock: an fsync must not stall
    // every lookup. Until it is durable the journal keeps the records (their references
    // are held), so a power loss in between replays them; a reader meanwhile sees the
    // new extents overlaid with the same bytes from the dirty pieces.
    Status written = p_.db->Write(&batch, /*sync=*/false);
    if (written.ok()) {
      lock.unlock();
      written = p_.db->SyncWal();
      lock.lock();
    }
    if (!written.ok()) {
      spdlog::error("flush commit failed: {}", written.message());
      committed.clear();
    } else if (p_.quota != nullptr) {
      for (const StoredChunk* chunk : new_records)
        p_.quota->AddChunk(chunk->shard_size, chunk->stores);
    }
    for (auto& file : files) {
      auto it = p_.ns->dirty().find(file.ino);
      if (it == p_.ns->dirty().end()) continue;
      const bool done = std::find(committed.begin(), committed.end(), file.ino) != committed.end();
      if (it->second->flushing()) it->second->FinishFlush(done, p_.journal);
      if (it->second->clean()) p_.ns->dirty().erase(it);
      any_committed = any_committed || done;
    }
    for (auto& file : files)
      for (const auto& [off, piece] : file.snap.pieces) p_.journal->Release(piece.segment, 1);
  }
  return any_committed;
}

}  // namespace quid
