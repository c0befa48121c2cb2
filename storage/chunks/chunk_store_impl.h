// ChunkStore's internals, shared by its two source files: chunk_store.cc (create, put,
// remove) and chunk_store_read.cc (the healthy and degraded read paths). Not an interface:
// include it from those two files only.
#pragma once

#include "storage/chunks/chunk_store.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "storage/base/clock.h"

namespace quid {
namespace chunk_store_internal {

// How long a store that answered kUnavailable (or kNoSpace, for placement only) is passed
// over. Short: long enough that a host that just vanished does not cost every following
// chunk a timeout, short enough that one that comes back is used again almost at once.
constexpr int64_t kStoreBackoffNs = 2'000'000'000;

// Upper bound on the k-subsets of shards tried when reconstructed data fails to
// authenticate. Each try costs a reconstruct and a decrypt of the span; this covers any one
// or two lying stores for every scheme up to (16, 16), and bounds the work a set of
// colluding liars can cause.
constexpr int kMaxDecodeAttempts = 256;

// Enough of a chunk id to find it in logs without printing the whole name.
inline std::string ChunkLabel(const ChunkId& id) {
  return "chunk " + ToHex(ByteSpan(id.data(), 8));
}

// Runs fn(0) .. fn(n-1) concurrently and returns when all have finished. The last one
// runs on the calling thread: it would only wait otherwise, and a single piece (a small
// read) then costs no thread hop at all.
inline void RunAll(ThreadPool* pool, size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::vector<std::future<void>> futures;
  futures.reserve(n - 1);
  for (size_t i = 0; i + 1 < n; ++i) futures.push_back(pool->Submit([&fn, i] { fn(i); }));
  fn(n - 1);
  // Every task borrows the caller's locals: all of them must finish before we return.
  for (auto& f : futures) f.wait();
}

// A store's own word that it does not hold a shard as written: missing, rotten, the wrong
// size or shorter than asked. Anything else (unreachable, refused, busy, a host that does not
// know the tenant yet after a restart) says nothing about the shard, so never makes it bad.
inline bool SaysShardIsBad(const Status& s) {
  return s.code() == Code::kNotFound || s.code() == Code::kCorrupt || s.code() == Code::kInvalid;
}

inline uint64_t Bit(size_t i) {
  return uint64_t{1} << i;
}

}  // namespace chunk_store_internal

// One of the volume's stores and what the chunk store has lately seen of it. A slot is never
// reused: a store given a new address gets a fresh slot (and fresh health) at its index.
struct StoreSlot {
  explicit StoreSlot(std::shared_ptr<ShardStore> s) : store(std::move(s)) {}
  std::shared_ptr<ShardStore> store;
  // Monotonic ns until which the store is considered down (skipped by placement, read
  // last) or full (skipped by placement only). 0: healthy.
  std::atomic<int64_t> down_until{0};
  std::atomic<int64_t> full_until{0};
  // Its lease is ending: placement passes it over; the volume moves its shards away.
  std::atomic<bool> draining{false};
  // Caught failing audits: never offered to placement again (SetDistrusted).
  std::atomic<bool> distrusted{false};
  // Calls answered and failed, by kind: the volume's own record of the host's service.
  std::atomic<uint64_t> puts_ok{0}, puts_failed{0}, reads_ok{0}, reads_failed{0};
  std::atomic<uint64_t> audits_ok{0}, audits_failed{0};
  // What placement weighs it by (ChunkStore::SetStoreProfile); guarded by profile_mu.
  mutable std::mutex profile_mu;
  double weight = 1.0;
  std::vector<std::string> domains;
};
// The store list as one operation sees it: indices are the volume's store indices, and a
// list only ever grows, so an index taken from any snapshot stays valid in every later one.
using StoreSet = std::vector<std::shared_ptr<StoreSlot>>;

struct ChunkStore::Impl {
  VolumeKeys keys;
  ChunkStoreOptions options;
  std::shared_ptr<PlacementPolicy> placement;
  ThreadPool* pool = nullptr;
  Clock* clock = nullptr;
  std::shared_ptr<const ErasureCoder> coder;  // for options' (k, m): every Put uses it

  // Copy-on-write: each operation takes the current list once and works on that, so stores
  // joining (AddStore) or moving (ReplaceStore) never disturb a call in flight.
  mutable std::mutex set_mu;
  std::shared_ptr<const StoreSet> set;  // guarded by set_mu; never null

  std::shared_ptr<const StoreSet> Stores() const {
    std::lock_guard lock(set_mu);
    return set;
  }

  std::atomic<uint64_t> chunks_put{0};
  std::atomic<uint64_t> degraded_reads{0};
  std::atomic<uint64_t> shard_failures{0};

  // Chunks written under an earlier (k, m) of the volume stay readable: their coders are
  // made on first use and kept.
  std::mutex coders_mu;
  std::map<std::pair<int, int>, std::shared_ptr<const ErasureCoder>> coders;  // guarded

  Result<std::shared_ptr<const ErasureCoder>> CoderFor(int k, int m) {
    if (k == coder->data_shards() && m == coder->parity_shards()) return coder;
    std::lock_guard lock(coders_mu);
    auto it = coders.find({k, m});
    if (it != coders.end()) return it->second;
    auto made = ErasureCoder::Create(k, m);
    if (!made.ok()) return made.status();
    std::shared_ptr<const ErasureCoder> shared = std::move(made).value();
    coders.emplace(std::make_pair(k, m), shared);
    return shared;
  }

  bool IsDown(const StoreSlot& store) const {
    return clock->monotonic_ns() < store.down_until.load(std::memory_order_relaxed);
  }
  bool IsFull(const StoreSlot& store) const {
    return clock->monotonic_ns() < store.full_until.load(std::memory_order_relaxed);
  }

  // Records the outcome of one call to `store`, keeping the health flags current.
  enum class Call { kPut, kRead, kRemove };
  void Note(StoreSlot& store, const Status& status, Call call) {
    // A put refused for room (the lease or the host full) is the host keeping its terms,
    // not failing them: it counts neither way.
    const bool refused_for_room = status.code() == Code::kNoSpace || status.code() == Code::kQuota;
    if (call == Call::kPut && !refused_for_room)
      (status.ok() ? store.puts_ok : store.puts_failed).fetch_add(1);
    if (call == Call::kRead) (status.ok() ? store.reads_ok : store.reads_failed).fetch_add(1);
    if (status.ok()) {
      store.down_until.store(0, std::memory_order_relaxed);
      return;
    }
    shard_failures.fetch_add(1, std::memory_order_relaxed);
    const int64_t until = clock->monotonic_ns() + chunk_store_internal::kStoreBackoffNs;
    if (status.code() == Code::kUnavailable) {
      store.down_until.store(until, std::memory_order_relaxed);
    } else if (status.code() == Code::kNoSpace || status.code() == Code::kQuota) {
      store.full_until.store(until, std::memory_order_relaxed);
    }
  }

  void NoteAudit(StoreSlot& store, bool ok) {
    (ok ? store.audits_ok : store.audits_failed).fetch_add(1);
  }

  Status ReadHealthy(const ChunkStore& self, const StoreSet& stores, const StoredChunk& chunk,
                     const ChunkHeader& header, const SegmentSpan& span, MutableByteSpan blob_part,
                     MutableByteSpan plain_out);
  // What a repair needs of the degraded path beyond the plaintext.
  struct DecodeExtras {
    uint64_t skip_mask = 0;                 // shards not to fetch (being replaced anyway)
    bool fetch_all = false;                 // fetch every shard not skipped, not just k
    std::vector<Bytes>* fetched = nullptr;  // out: the whole shards fetched, by index
    uint64_t* fetched_mask = nullptr;       // out: which of them passed their store's check
    uint64_t* missing_mask = nullptr;       // out: shards their store answered for as missing,
                                            // corrupt or the wrong size (not merely unreachable)
  };
  Status ReadDegraded(const ChunkStore& self, const StoreSet& stores, const StoredChunk& chunk,
                      const ChunkHeader& header, const SegmentSpan& span, MutableByteSpan blob_part,
                      MutableByteSpan plain_out, bool* degraded,
                      const DecodeExtras* extras = nullptr);
  // The candidates placement chooses from: every store, with those down, full or draining
  // marked unavailable. `*available` counts the others.
  std::vector<PlacementCandidate> Candidates(const StoreSet& stores, size_t* available) const;
};

}  // namespace quid
