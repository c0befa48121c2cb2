#include "storage/volume/chunk_reader.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"

namespace quid {
namespace {
// Six chunk fetches in flight, twelve chunks (48 MiB) ahead: with two, a cold sequential
// read over six hosts left a core idle a third of the time, waiting on shard round trips;
// with four and eight, once the mount read ahead 4 MiB, still a fifth (a cold 1 GiB read
// through quid demo: 470-480 MB/s, 520-560 with six and twelve; docs/benchmarks.md).
// What runs ahead stays within the cache's bound.
constexpr size_t kPrefetchThreads = 6;
constexpr int kChunksAhead = 12;
constexpr size_t kMaxTrackedReaders = 4096;  // sequential detection is a hint: bounded
}  // namespace

ChunkReader::ChunkReader(MetaDb* db, ChunkStore* chunks, const Chunker* chunker,
                         uint64_t cache_bytes)
    : db_(db),
      chunks_(chunks),
      chunker_(chunker),
      cache_(std::make_unique<ChunkCache>(cache_bytes)) {
  if (cache_->enabled()) prefetch_pool_ = std::make_unique<ThreadPool>(kPrefetchThreads);
}

ChunkReader::~ChunkReader() {
  prefetch_pool_.reset();  // finishes queued prefetches while everything they use exists
}

Result<StoredChunk> ChunkReader::LoadChunk(const ChunkId& id, const MetaSnapshot* at) const {
  meta::Chunk record;
  Status s = db_->GetProto(Cf::kChunks, ChunkKey(id), &record, at);
  if (!s.ok()) return Status::Corrupt("extent points at unknown chunk " + ChunkIdHex(id));
  return FromRecord(id, record);
}

ChunkFetch ChunkReader::NoteRead(Ino ino, uint64_t offset, uint64_t length, uint64_t file_size) {
  if (!cache_->enabled()) return ChunkFetch::kNeeded;
  bool sequential;
  {
    std::lock_guard lock(seq_mu_);
    if (last_read_end_.size() > kMaxTrackedReaders) last_read_end_.clear();
    auto [it, fresh] = last_read_end_.try_emplace(ino, 0);
    sequential = !fresh && it->second == offset;
    it->second = offset + length;
  }
  // Streaming: keep the next chunks coming in the background.
  if (sequential) Prefetch(ino, offset + length, file_size);
  return sequential || offset == 0 ? ChunkFetch::kWhole : ChunkFetch::kNeeded;
}

Result<std::shared_ptr<const Bytes>> ChunkReader::FetchWholeChunk(const StoredChunk& chunk) {
  if (auto cached = cache_->Get(chunk.id)) return cached;
  using Fetched = Result<std::shared_ptr<const Bytes>>;
  std::promise<Fetched> promise;
  std::shared_future<Fetched> pending;
  {
    std::lock_guard lock(fetch_mu_);
    auto it = fetching_.find(chunk.id);
    if (it != fetching_.end())
      pending = it->second;
    else
      fetching_.emplace(chunk.id, promise.get_future().share());
  }
  if (pending.valid()) return pending.get();  // someone else is fetching it
  auto whole = std::make_shared<Bytes>(chunk.plain_size);
  Status s = ReadFromStores(chunk, 0, *whole);
  Fetched result = s.ok() ? Fetched(std::shared_ptr<const Bytes>(whole)) : Fetched(s);
  if (s.ok()) cache_->Put(chunk.id, whole);
  promise.set_value(result);
  std::lock_guard lock(fetch_mu_);
  fetching_.erase(chunk.id);
  return result;
}

Status ChunkReader::ReadFromStores(const StoredChunk& chunk, uint64_t offset, MutableByteSpan out) {
  bool degraded = false;
  Status s = chunks_->Read(chunk, offset, out, &degraded);
  if ((degraded || !s.ok()) && on_degraded_) on_degraded_(chunk.id);
  return s;
}

Status ChunkReader::ReadChunk(const StoredChunk& chunk, uint64_t offset, MutableByteSpan out,
                              ChunkFetch fetch) {
  if (out.empty()) return Status::Ok();
  if (!cache_->enabled()) return ReadFromStores(chunk, offset, out);
  std::shared_ptr<const Bytes> whole;
  if (fetch == ChunkFetch::kNeeded) {
    whole = cache_->Get(chunk.id);
    if (!whole) {
      std::shared_future<Result<std::shared_ptr<const Bytes>>> pending;
      {
        std::lock_guard lock(fetch_mu_);
        auto it = fetching_.find(chunk.id);
        if (it != fetching_.end()) pending = it->second;
      }
      if (!pending.valid()) return ReadFromStores(chunk, offset, out);
      QUID_ASSIGN_OR_RETURN(whole, pending.get());
    }
  } else {
    QUID_ASSIGN_OR_RETURN(whole, FetchWholeChunk(chunk));
  }
  std::memcpy(out.data(), whole->data() + offset, out.size());
  return Status::Ok();
}

void ChunkReader::Prefetch(Ino ino, uint64_t end, uint64_t file_size) {
  uint64_t start = chunker_->ChunkStart(end);
  if (start < end) start += chunker_->ChunkLength(start, file_size);  // the one after
  for (int i = 0; i < kChunksAhead && start < file_size; ++i) {
    std::string value;
    meta::Extent extent;
    if (db_->Get(Cf::kExtents, ExtentKey(ino, start), &value).ok() &&
        extent.ParseFromString(value)) {
      const ChunkId id = ChunkIdOf(extent.chunk_id());
      bool busy = cache_->Get(id) != nullptr;
      {
        std::lock_guard lock(fetch_mu_);
        busy = busy || fetching_.count(id) > 0;
      }
      auto chunk = busy ? Result<StoredChunk>(Status::Exists("")) : LoadChunk(id);
      if (chunk.ok()) {
        (void)prefetch_pool_->Submit(
            [this, c = std::move(chunk).value()] { (void)FetchWholeChunk(c); });
      }
    }
    start += chunker_->ChunkLength(start, file_size);
  }
}

Status ChunkReader::ReadCommitted(Ino ino, const meta::Inode& inode, uint64_t offset,
                                  uint64_t limit, MutableByteSpan out, const MetaSnapshot* at,
                                  ChunkFetch fetch) {
  const uint64_t end = std::min<uint64_t>(offset + out.size(), limit);
  if (offset >= end) return Status::Ok();
  if (inode.is_inline()) {
    const std::string& data = inode.inline_data();
    const uint64_t stop = std::min<uint64_t>(end, data.size());
    if (offset < stop) std::memcpy(out.data(), data.data() + offset, stop - offset);
    return Status::Ok();
  }
  struct Piece {
    uint64_t file_offset;
    uint64_t length;
    uint64_t chunk_offset;
    ChunkId id;
  };
  std::vector<Piece> pieces;
  {
    auto it = db_->NewIterator(Cf::kExtents, at);
    const std::string prefix = ExtentPrefix(ino);
    const uint64_t first = chunker_->ChunkStart(offset);
    for (it->Seek(ExtentKey(ino, first)); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      const uint64_t start = ExtentOffsetFromKey({it->key().data(), it->key().size()});
      if (start >= end) break;
      meta::Extent extent;
      if (!extent.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return Status::Corrupt("unparsable extent");
      const uint64_t from = std::max(start, offset);
      const uint64_t to = std::min(start + extent.length(), end);
      if (from >= to) continue;
      pieces.push_back(Piece{from, to - from, from - start, ChunkIdOf(extent.chunk_id())});
    }
  }
  for (const Piece& p : pieces) {
    QUID_ASSIGN_OR_RETURN(StoredChunk chunk, LoadChunk(p.id, at));
    if (p.chunk_offset + p.length > chunk.plain_size)
      return Status::Corrupt("extent runs past its chunk");
    QUID_RETURN_IF_ERROR(
        ReadChunk(chunk, p.chunk_offset, out.subspan(p.file_offset - offset, p.length), fetch));
  }
  return Status::Ok();
}

}  // namespace quid
