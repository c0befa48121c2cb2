// ChunkReader: the read path below the namespace. Given a version of a file (its inode
// and a metadata snapshot), it reads committed bytes: inline data, or the extents' chunks
// through the read cache, fetching each chunk once however many readers ask at the same
// time, and prefetching ahead of a sequential reader. A random read that misses the cache
// fetches only the segments it needs and leaves the cache alone.
//
// It knows nothing of dirty data (the caller overlays the journal's bytes) and takes no
// lock of the volume's: its own fetch_mu_ and seq_mu_ are leaves in the lock order.
// Every method is safe for concurrent use by multiple threads.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "storage/base/thread_pool.h"
#include "storage/chunks/chunk_cache.h"
#include "storage/chunks/chunk_store.h"
#include "storage/chunks/chunker.h"
#include "storage/meta/meta.pb.h"
#include "storage/meta/metadata.h"

namespace quid {

using Ino = uint64_t;

// How a read gets a chunk the cache does not hold: the whole chunk, into the cache (a
// reader going through the file wants the rest next), or only the segments the read needs
// (a random reader would otherwise pay 4 MiB of fetching and decryption for 4 KiB).
enum class ChunkFetch { kWhole, kNeeded };

class ChunkReader {
 public:
  // `cache_bytes` 0: no cache (every read goes to the stores) and no prefetching.
  ChunkReader(MetaDb* db, ChunkStore* chunks, const Chunker* chunker, uint64_t cache_bytes);
  ~ChunkReader();  // finishes queued prefetches first
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // The chunk's record, as of `at` (default: now). kCorrupt if there is none.
  Result<StoredChunk> LoadChunk(const ChunkId& id, const MetaSnapshot* at = nullptr) const;
  // Plaintext [offset, offset+out.size()) of a stored chunk, through the cache. kNeeded
  // still serves from the cache, or waits for a whole-chunk fetch already under way.
  Status ReadChunk(const StoredChunk& chunk, uint64_t offset, MutableByteSpan out,
                   ChunkFetch fetch = ChunkFetch::kWhole);
  // Committed bytes of [offset, offset + out.size()) below `limit` of file `ino` whose
  // inode is `inode`, as of `at`, into `out` (which the caller zeroed; holes stay zero).
  Status ReadCommitted(Ino ino, const meta::Inode& inode, uint64_t offset, uint64_t limit,
                       MutableByteSpan out, const MetaSnapshot* at,
                       ChunkFetch fetch = ChunkFetch::kWhole);
  // Tells the reader that [offset, offset+length) of `ino` is being read, and says how
  // that read should fetch: whole chunks when it starts the file or continues the last
  // read of it (and then the next chunks are fetched into the cache in the background),
  // else only what it needs.
  ChunkFetch NoteRead(Ino ino, uint64_t offset, uint64_t length, uint64_t file_size);

  bool caching() const { return cache_->enabled(); }
  // Called (on the reading thread) for every chunk a read had to decode from parity or
  // could not read at all: the repair engine's hint. Set before the first read.
  void SetDegradedHook(std::function<void(const ChunkId&)> hook) { on_degraded_ = std::move(hook); }

 private:
  // The whole plaintext of a chunk from the cache, or fetched once however many readers
  // (and the prefetcher) ask at the same time. REQUIRES: cache enabled.
  Result<std::shared_ptr<const Bytes>> FetchWholeChunk(const StoredChunk& chunk);
  void Prefetch(Ino ino, uint64_t end, uint64_t file_size);

  MetaDb* const db_;
  Status ReadFromStores(const StoredChunk& chunk, uint64_t offset, MutableByteSpan out);
  ChunkStore* const chunks_;
  std::function<void(const ChunkId&)> on_degraded_;
  const Chunker* const chunker_;
  std::unique_ptr<ChunkCache> cache_;
  std::mutex fetch_mu_;  // guards fetching_
  std::map<ChunkId, std::shared_future<Result<std::shared_ptr<const Bytes>>>> fetching_;
  std::mutex seq_mu_;                                // guards last_read_end_
  std::unordered_map<Ino, uint64_t> last_read_end_;  // sequential detection; a hint only
  std::unique_ptr<ThreadPool> prefetch_pool_;        // last: its tasks use the above
};

}  // namespace quid
