#include "storage/chunk_store.h"

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

#include "storage/clock.h"

namespace quid {
namespace {

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
std::string ChunkLabel(const ChunkId& id) {
  return "chunk " + ToHex(ByteSpan(id.data(), 8));
}

// Runs fn(0) .. fn(n-1) concurrently and returns when all have finished. The last one
// runs on the calling thread: it would only wait otherwise, and a single piece (a small
// read) then costs no thread hop at all.
void RunAll(ThreadPool* pool, size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::vector<std::future<void>> futures;
  futures.reserve(n - 1);
  for (size_t i = 0; i + 1 < n; ++i) futures.push_back(pool->Submit([&fn, i] { fn(i); }));
  fn(n - 1);
  // Every task borrows the caller's locals: all of them must finish before we return.
  for (auto& f : futures) f.wait();
}

uint64_t Bit(size_t i) {
  return uint64_t{1} << i;
}

}  // namespace

struct ChunkStore::Impl {
  VolumeKeys keys;
  ChunkStoreOptions options;
  std::shared_ptr<PlacementPolicy> placement;
  ThreadPool* pool = nullptr;
  Clock* clock = nullptr;
  std::shared_ptr<const ErasureCoder> coder;  // for options' (k, m): every Put uses it

  // Per store, monotonic ns until which it is considered down (skipped by placement, read
  // last) or full (skipped by placement only). 0: healthy.
  std::unique_ptr<std::atomic<int64_t>[]> down_until;
  std::unique_ptr<std::atomic<int64_t>[]> full_until;

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

  bool IsDown(size_t store) const {
    return clock->monotonic_ns() < down_until[store].load(std::memory_order_relaxed);
  }
  bool IsFull(size_t store) const {
    return clock->monotonic_ns() < full_until[store].load(std::memory_order_relaxed);
  }

  // Records the outcome of one call to `store`, keeping the health flags current.
  void Note(size_t store, const Status& status) {
    if (status.ok()) {
      down_until[store].store(0, std::memory_order_relaxed);
      return;
    }
    shard_failures.fetch_add(1, std::memory_order_relaxed);
    const int64_t until = clock->monotonic_ns() + kStoreBackoffNs;
    if (status.code() == Code::kUnavailable) {
      down_until[store].store(until, std::memory_order_relaxed);
    } else if (status.code() == Code::kNoSpace) {
      full_until[store].store(until, std::memory_order_relaxed);
    }
  }

  Status ReadHealthy(ChunkStore& self, const StoredChunk& chunk, const ChunkHeader& header,
                     const SegmentSpan& span, MutableByteSpan blob_part, MutableByteSpan plain_out);
  Status ReadDegraded(ChunkStore& self, const StoredChunk& chunk, const ChunkHeader& header,
                      const SegmentSpan& span, MutableByteSpan blob_part, MutableByteSpan plain_out,
                      bool* degraded);
};

ChunkStore::~ChunkStore() = default;

Result<std::unique_ptr<ChunkStore>> ChunkStore::Create(
    const VolumeKeys& keys, ChunkStoreOptions options,
    std::vector<std::shared_ptr<ShardStore>> stores, std::shared_ptr<PlacementPolicy> placement,
    ThreadPool* io_pool, Clock* clock) {
  // Stored chunks record k and m in one byte each.
  if (options.data_shards + options.parity_shards > 255) {
    return Status::Invalid("k + m must be at most 255");
  }
  auto coder = ErasureCoder::Create(options.data_shards, options.parity_shards);
  if (!coder.ok()) return coder.status();
  if (stores.empty()) return Status::Invalid("chunk store needs at least one shard store");
  for (const auto& store : stores) {
    if (store == nullptr) return Status::Invalid("chunk store given a null shard store");
  }
  if (placement == nullptr || io_pool == nullptr) {
    return Status::Invalid("chunk store needs a placement policy and an I/O pool");
  }
  if (!CipherAvailable(options.cipher)) {
    return Status::Invalid(std::string("cipher not available on this CPU: ") +
                           CipherName(options.cipher));
  }
  // Makes libsodium pick its fastest implementations; safe to call again and again.
  if (sodium_init() < 0) return Status::IoError("libsodium failed to initialise");

  std::unique_ptr<ChunkStore> self(new ChunkStore());
  auto impl = std::make_unique<Impl>();
  impl->keys = keys;
  impl->options = options;
  impl->placement = std::move(placement);
  impl->pool = io_pool;
  impl->clock = clock != nullptr ? clock : RealClock::Get();
  impl->coder = std::move(coder).value();
  impl->down_until = std::make_unique<std::atomic<int64_t>[]>(stores.size());
  impl->full_until = std::make_unique<std::atomic<int64_t>[]>(stores.size());
  for (size_t i = 0; i < stores.size(); ++i) {
    impl->down_until[i].store(0);
    impl->full_until[i].store(0);
  }
  self->impl_ = std::move(impl);
  self->stores_ = std::move(stores);
  return self;
}

int ChunkStore::data_shards() const {
  return impl_->coder->data_shards();
}
int ChunkStore::parity_shards() const {
  return impl_->coder->parity_shards();
}

ChunkStoreStats ChunkStore::stats() const {
  ChunkStoreStats s;
  s.chunks_put = impl_->chunks_put.load();
  s.degraded_reads = impl_->degraded_reads.load();
  s.shard_failures = impl_->shard_failures.load();
  return s;
}

ShardId ChunkStore::ShardIdFor(const ChunkId& id, uint64_t generation, int index) const {
  // Keyed by the volume's shard-id key, so ids from two volumes (or the same chunk in
  // two volumes) never correlate; the generation makes every upload's ids fresh, so a
  // re-upload never overwrites shards an older record still points at.
  uint8_t msg[kChunkIdBytes + 8 + 4];
  std::memcpy(msg, id.data(), kChunkIdBytes);
  for (int b = 0; b < 8; ++b) msg[kChunkIdBytes + b] = static_cast<uint8_t>(generation >> (8 * b));
  const auto idx = static_cast<uint32_t>(index);
  for (int b = 0; b < 4; ++b) msg[kChunkIdBytes + 8 + b] = static_cast<uint8_t>(idx >> (8 * b));
  ShardId out;
  crypto_generichash(out.bytes.data(), out.bytes.size(), msg, sizeof(msg),
                     impl_->keys.shard_id.data(), kKeyBytes);
  return out;
}

Result<StoredChunk> ChunkStore::Put(const ChunkId& id, ByteSpan plain) {
  Impl& d = *impl_;
  // The record keeps sizes in 32 bits, and the blob is a little larger than the plaintext.
  if (plain.size() > UINT32_MAX || EncryptedSize(plain.size()) > UINT32_MAX) {
    return Status::Invalid(ChunkLabel(id) + ": " + std::to_string(plain.size()) +
                           " bytes is too large for one chunk");
  }
  const ErasureCoder& coder = *d.coder;
  const size_t k = static_cast<size_t>(coder.data_shards());
  const size_t n = static_cast<size_t>(coder.total_shards());
  const size_t blob_size = EncryptedSize(plain.size());
  const size_t shard_size = coder.ShardSize(blob_size);

  // One buffer holds the padded blob (which is the k data shards, back to back) followed by
  // the m parity shards: 1.5x the chunk for (4, 2), and no shard is ever copied.
  auto buffer = std::make_unique_for_overwrite<uint8_t[]>(n * shard_size);
  uint8_t* const base = buffer.get();
  QUID_ASSIGN_OR_RETURN(ChunkHeader header, EncryptChunk(d.keys.data, d.options.cipher, id,
                                                         ByteSpan(plain), {base, blob_size}));
  std::memset(base + blob_size, 0, k * shard_size - blob_size);
  std::vector<const uint8_t*> data_ptrs(k);
  std::vector<uint8_t*> parity_ptrs(n - k);
  for (size_t i = 0; i < k; ++i) data_ptrs[i] = base + i * shard_size;
  for (size_t i = k; i < n; ++i) parity_ptrs[i - k] = base + i * shard_size;
  if (n > k) coder.Encode(data_ptrs, parity_ptrs, shard_size);

  StoredChunk chunk;
  chunk.id = id;
  randombytes_buf(&chunk.generation, sizeof(chunk.generation));
  chunk.header = header.Serialize();
  chunk.plain_size = static_cast<uint32_t>(plain.size());
  chunk.blob_size = static_cast<uint32_t>(blob_size);
  chunk.shard_size = static_cast<uint32_t>(shard_size);
  chunk.k = static_cast<uint8_t>(k);
  chunk.m = static_cast<uint8_t>(n - k);
  std::vector<ShardId> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = ShardIdFor(id, chunk.generation, static_cast<int>(i));

  // Placement over the stores not currently backed off. If every store is backed off, all
  // are offered anyway: the back-off is a hint to save time, and must not on its own turn
  // a brief blip of every host into refused writes.
  std::vector<PlacementCandidate> candidates(stores_.size());
  size_t available = 0;
  for (size_t s = 0; s < stores_.size(); ++s) {
    candidates[s].store_index = static_cast<uint32_t>(s);
    candidates[s].name = stores_[s]->name();
    candidates[s].available = !d.IsDown(s) && !d.IsFull(s);
    if (candidates[s].available) ++available;
  }
  if (available == 0) {
    for (auto& c : candidates) c.available = true;
    available = candidates.size();
  }
  std::vector<uint32_t> assign = d.placement->Place(id, static_cast<int>(n), candidates);
  // Where a failed shard goes next: the available stores in the policy's order.
  std::vector<uint32_t> order = d.placement->Place(id, static_cast<int>(available), candidates);
  const auto bad_index = [&](uint32_t s) { return s >= stores_.size(); };
  if (assign.size() != n || std::any_of(assign.begin(), assign.end(), bad_index) ||
      std::any_of(order.begin(), order.end(), bad_index)) {
    return Status::Unavailable(ChunkLabel(id) + ": placement found no store for its shards");
  }

  std::vector<bool> stored(n, false);
  std::vector<Status> results(n);
  std::set<uint32_t> failed_stores;  // stores that refused a shard of this chunk
  Status failure;                    // set when some shard cannot go anywhere
  std::vector<size_t> pending(n);
  for (size_t i = 0; i < n; ++i) pending[i] = i;

  while (!pending.empty()) {
    RunAll(d.pool, pending.size(), [&](size_t p) {
      const size_t i = pending[p];
      results[i] = stores_[assign[i]]->Put(
          ids[i], ByteSpan(i < k ? data_ptrs[i] : parity_ptrs[i - k], shard_size));
    });
    std::vector<size_t> retry;
    for (size_t i : pending) {
      d.Note(assign[i], results[i]);
      if (results[i].ok()) {
        stored[i] = true;
      } else {
        failed_stores.insert(assign[i]);
        retry.push_back(i);
      }
    }
    // Shards that succeeded on a store that also failed one of ours still count as used,
    // but that store gets no more of this chunk.
    std::vector<size_t> holding(stores_.size(), 0);
    for (size_t i = 0; i < n; ++i) {
      if (stored[i]) ++holding[assign[i]];
    }
    for (size_t i : retry) {
      // Next distinct store in placement order that this chunk does not use yet.
      std::optional<uint32_t> next;
      for (uint32_t s : order) {
        if (holding[s] == 0 && failed_stores.count(s) == 0) {
          next = s;
          break;
        }
      }
      // None left: degrade to doubling up on a store that took a shard of this chunk
      // without failing, the least loaded first, so one store loss still costs the fewest
      // shards.
      if (!next) {
        for (uint32_t s : order) {
          if (holding[s] == 0 || failed_stores.count(s) != 0) continue;
          if (!next || holding[s] < holding[*next]) next = s;
        }
      }
      if (!next) {
        const Status& why = results[i];
        Code code = why.code();
        if (code != Code::kNoSpace) code = Code::kUnavailable;
        failure =
            Status(code, ChunkLabel(id) + ": shard " + std::to_string(i) +
                             " could not be stored on any of " + std::to_string(stores_.size()) +
                             " stores (last: " + why.ToString() + ")");
        break;
      }
      assign[i] = *next;
      ++holding[*next];  // reserves it: the next retried shard looks further
    }
    if (!failure.ok()) break;
    pending = std::move(retry);
  }

  if (!failure.ok()) {
    // Leave nothing of a failed upload behind. Best effort: whatever stays (a store that
    // went away meanwhile) has no metadata and the cleanup pass removes it.
    std::vector<size_t> landed;
    for (size_t i = 0; i < n; ++i) {
      if (stored[i]) landed.push_back(i);
    }
    RunAll(d.pool, landed.size(), [&](size_t p) {
      const size_t i = landed[p];
      (void)stores_[assign[i]]->Remove(ids[i]);
    });
    return failure;
  }

  chunk.stores = std::move(assign);
  d.chunks_put.fetch_add(1, std::memory_order_relaxed);
  return chunk;
}

Status ChunkStore::Impl::ReadHealthy(ChunkStore& self, const StoredChunk& chunk,
                                     const ChunkHeader& header, const SegmentSpan& span,
                                     MutableByteSpan blob_part, MutableByteSpan plain_out) {
  const size_t shard_size = chunk.shard_size;
  const size_t first = span.blob_offset / shard_size;
  const size_t last = (span.blob_offset + span.blob_length - 1) / shard_size;
  // A store known to be down would only cost a timeout before the degraded path anyway.
  for (size_t i = first; i <= last; ++i) {
    if (IsDown(chunk.stores[i])) return Status::Unavailable("a data shard's store is down");
  }
  std::vector<Status> results(last - first + 1);
  RunAll(pool, results.size(), [&](size_t p) {
    const size_t i = first + p;
    const size_t lo = std::max(span.blob_offset, i * shard_size);
    const size_t hi = std::min(span.blob_offset + span.blob_length, (i + 1) * shard_size);
    results[p] = self.stores_[chunk.stores[i]]->ReadRange(
        self.ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)), lo - i * shard_size,
        blob_part.subspan(lo - span.blob_offset, hi - lo));
  });
  Status first_error;
  for (size_t p = 0; p < results.size(); ++p) {
    Note(chunk.stores[first + p], results[p]);
    if (!results[p].ok() && first_error.ok()) first_error = results[p];
  }
  if (!first_error.ok()) return first_error;
  Status s = DecryptSegments(keys.data, header, chunk.id, span, blob_part, plain_out);
  if (!s.ok()) shard_failures.fetch_add(1, std::memory_order_relaxed);
  return s;
}

Status ChunkStore::Impl::ReadDegraded(ChunkStore& self, const StoredChunk& chunk,
                                      const ChunkHeader& header, const SegmentSpan& span,
                                      MutableByteSpan blob_part, MutableByteSpan plain_out,
                                      bool* degraded) {
  const size_t k = chunk.k;
  const size_t n = static_cast<size_t>(chunk.k) + chunk.m;
  const size_t shard_size = chunk.shard_size;
  QUID_ASSIGN_OR_RETURN(std::shared_ptr<const ErasureCoder> coder, CoderFor(chunk.k, chunk.m));

  // Fetch order: data shards first (no decoding if they are all good), then parity; stores
  // known to be down go last, but are still tried.
  std::vector<size_t> order;
  order.reserve(n);
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < n; ++i) {
      if (IsDown(chunk.stores[i]) == (pass == 1)) order.push_back(i);
    }
  }

  std::vector<Bytes> shards(n);
  std::vector<bool> good(n, false);
  size_t good_count = 0;
  size_t unreachable = 0;
  size_t next = 0;
  // Gets up to `want` more whole shards, in parallel. Get verifies the store's checksum,
  // so a rotted shard counts as missing here.
  const auto fetch = [&](size_t want) {
    std::vector<size_t> batch;
    while (batch.size() < want && next < order.size()) batch.push_back(order[next++]);
    std::vector<Status> results(batch.size());
    RunAll(pool, batch.size(), [&](size_t p) {
      const size_t i = batch[p];
      auto got = self.stores_[chunk.stores[i]]->Get(
          self.ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)));
      if (!got.ok()) {
        results[p] = got.status();
      } else if (got->size() != shard_size) {
        results[p] =
            Status::Corrupt("shard " + std::to_string(i) + " has " + std::to_string(got->size()) +
                            " bytes, expected " + std::to_string(shard_size));
      } else {
        shards[i] = std::move(got).value();
      }
    });
    for (size_t p = 0; p < batch.size(); ++p) {
      Note(chunk.stores[batch[p]], results[p]);
      if (results[p].ok()) {
        good[batch[p]] = true;
        ++good_count;
      } else if (results[p].code() == Code::kUnavailable) {
        ++unreachable;
      }
    }
  };
  while (good_count < k && next < order.size()) fetch(k - good_count);
  if (good_count < k) {
    // Unreachable shards may come back; rotted or lost ones will not.
    const Code code = good_count + unreachable >= k ? Code::kUnavailable : Code::kCorrupt;
    return Status(code, ChunkLabel(chunk.id) + ": only " + std::to_string(good_count) + " of " +
                            std::to_string(n) + " shards readable (" + std::to_string(unreachable) +
                            " unreachable), " + std::to_string(k) + " needed");
  }

  // Shards outside the subset being tried are rebuilt into scratch slots; the fetched
  // shards themselves are never written, so another subset can be tried from them.
  auto scratch = std::make_unique_for_overwrite<uint8_t[]>((n - k) * shard_size);
  const size_t first_needed = span.blob_offset / shard_size;
  const size_t last_needed = (span.blob_offset + span.blob_length - 1) / shard_size;

  // Decodes the blob span from exactly the shards in `subset` and authenticates it.
  const auto attempt = [&](uint64_t subset) -> Status {
    std::vector<uint8_t*> ptrs(n);
    std::vector<bool> present(n);
    size_t slot = 0;
    bool rebuild = false;
    for (size_t i = 0; i < n; ++i) {
      present[i] = (subset & Bit(i)) != 0;
      ptrs[i] = present[i] ? shards[i].data() : scratch.get() + (slot++) * shard_size;
      if (!present[i] && i >= first_needed && i <= last_needed) rebuild = true;
    }
    if (rebuild) QUID_RETURN_IF_ERROR(coder->Reconstruct(ptrs, present, shard_size));
    for (size_t i = first_needed; i <= last_needed; ++i) {
      const size_t lo = std::max(span.blob_offset, i * shard_size);
      const size_t hi = std::min(span.blob_offset + span.blob_length, (i + 1) * shard_size);
      std::memcpy(blob_part.data() + (lo - span.blob_offset), ptrs[i] + (lo - i * shard_size),
                  hi - lo);
    }
    return DecryptSegments(keys.data, header, chunk.id, span, blob_part, plain_out);
  };
  // Parity was needed if the subset lacks a data shard the span lives in.
  const auto used_parity = [&](uint64_t subset) {
    for (size_t i = first_needed; i <= last_needed; ++i) {
      if ((subset & Bit(i)) == 0) return true;
    }
    return false;
  };

  std::vector<size_t> avail;  // good shards, data before parity
  const auto collect = [&] {
    avail.clear();
    for (size_t i = 0; i < n; ++i) {
      if (good[i]) avail.push_back(i);
    }
  };
  collect();
  uint64_t first_subset = 0;
  for (size_t j = 0; j < k; ++j) first_subset |= Bit(avail[j]);
  Status s = attempt(first_subset);
  if (s.ok()) {
    if (degraded != nullptr) *degraded = used_parity(first_subset);
    return s;
  }
  if (s.code() != Code::kCorrupt) return s;

  // Some shard that passed its store's checksum is lying. Fetch all the others, then try
  // other k-subsets: first those leaving out one shard, then two, and so on. Leaving out a
  // set E of size t only changes the subset if E lies within the first k + t candidates,
  // so only those are enumerated.
  shard_failures.fetch_add(1, std::memory_order_relaxed);
  if (degraded != nullptr) *degraded = true;
  fetch(order.size() - next);
  collect();
  std::set<uint64_t> tried = {first_subset};
  int attempts = 1;
  for (size_t t = 1; t + k <= avail.size() && attempts < kMaxDecodeAttempts; ++t) {
    const size_t window = k + t;
    // All t-element subsets of [0, window), as index combinations in lexicographic order.
    std::vector<size_t> comb(t);
    for (size_t j = 0; j < t; ++j) comb[j] = j;
    for (;;) {
      uint64_t subset = 0;
      size_t taken = 0;
      for (size_t j = 0, c = 0; j < avail.size() && taken < k; ++j) {
        if (c < t && comb[c] == j) {
          ++c;
          continue;
        }
        subset |= Bit(avail[j]);
        ++taken;
      }
      if (tried.insert(subset).second) {
        if (++attempts > kMaxDecodeAttempts) break;
        s = attempt(subset);
        if (s.ok()) return s;
        if (s.code() != Code::kCorrupt) return s;
      }
      // Advance to the next combination.
      size_t j = t;
      while (j > 0 && comb[j - 1] == window - t + (j - 1)) --j;
      if (j == 0) break;
      ++comb[j - 1];
      for (size_t r = j; r < t; ++r) comb[r] = comb[r - 1] + 1;
    }
  }
  return Status::Corrupt(
      ChunkLabel(chunk.id) + ": no " + std::to_string(k) + " of the " +
      std::to_string(avail.size()) + " readable shards decode to " + "authentic data (" +
      std::to_string(std::min(attempts, kMaxDecodeAttempts)) + " combinations tried)");
}

Status ChunkStore::Read(const StoredChunk& chunk, uint64_t offset, MutableByteSpan out,
                        bool* degraded) {
  Impl& d = *impl_;
  if (degraded != nullptr) *degraded = false;
  const std::string label = ChunkLabel(chunk.id);
  if (offset > chunk.plain_size || out.size() > chunk.plain_size - offset) {
    return Status::Invalid(label + ": read of " + std::to_string(out.size()) + " bytes at " +
                           std::to_string(offset) + " is past its end (" +
                           std::to_string(chunk.plain_size) + " bytes)");
  }
  if (out.empty()) return Status::Ok();

  // The record comes from metadata; check it hangs together before trusting its sizes.
  const size_t n = static_cast<size_t>(chunk.k) + chunk.m;
  bool consistent = chunk.k >= 1 && chunk.stores.size() == n && chunk.shard_size > 0 &&
                    chunk.blob_size == EncryptedSize(chunk.plain_size) &&
                    uint64_t{chunk.shard_size} * chunk.k >= chunk.blob_size;
  for (uint32_t s : chunk.stores) consistent = consistent && s < stores_.size();
  if (!consistent) return Status::Corrupt(label + ": inconsistent chunk record");
  QUID_ASSIGN_OR_RETURN(ChunkHeader header, ChunkHeader::Parse(chunk.header));
  if (header.plain_size != chunk.plain_size) {
    return Status::Corrupt(label + ": header size disagrees with the chunk record");
  }

  const SegmentSpan span = SegmentsFor(chunk.plain_size, offset, out.size());
  // One allocation: the blob bytes of the needed segments, followed (for a read that does
  // not start and end on segment boundaries) by room for their plaintext. Aligned reads
  // decrypt straight into `out`.
  const bool aligned = span.plain_offset == offset && span.plain_length == out.size();
  auto buffer = std::make_unique_for_overwrite<uint8_t[]>(span.blob_length +
                                                          (aligned ? 0 : span.plain_length));
  const MutableByteSpan blob_part(buffer.get(), span.blob_length);
  const MutableByteSpan plain =
      aligned ? out : MutableByteSpan(buffer.get() + span.blob_length, span.plain_length);

  Status s = d.ReadHealthy(*this, chunk, header, span, blob_part, plain);
  if (!s.ok()) {
    bool used_parity = false;
    s = d.ReadDegraded(*this, chunk, header, span, blob_part, plain, &used_parity);
    if (used_parity) {
      d.degraded_reads.fetch_add(1, std::memory_order_relaxed);
      if (degraded != nullptr) *degraded = true;
    }
  }
  if (!s.ok()) {
    // Whatever a failed attempt left in `out` is unauthenticated: never hand it over.
    std::memset(out.data(), 0, out.size());
    return s;
  }
  if (!aligned) std::memcpy(out.data(), plain.data() + (offset - span.plain_offset), out.size());
  return Status::Ok();
}

Status ChunkStore::Remove(const StoredChunk& chunk) {
  Impl& d = *impl_;
  std::vector<Status> results(chunk.stores.size());
  RunAll(d.pool, chunk.stores.size(), [&](size_t i) {
    if (chunk.stores[i] >= stores_.size()) {
      results[i] = Status::Corrupt("shard " + std::to_string(i) + " names store " +
                                   std::to_string(chunk.stores[i]) + " which does not exist");
      return;
    }
    results[i] = stores_[chunk.stores[i]]->Remove(
        ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)));
  });
  Status first_error;
  size_t unreachable = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (chunk.stores[i] < stores_.size()) d.Note(chunk.stores[i], results[i]);
    if (results[i].code() == Code::kUnavailable) ++unreachable;
    if (!results[i].ok() && first_error.ok()) first_error = results[i];
  }
  if (unreachable > 0) {
    return Status::Unavailable(ChunkLabel(chunk.id) + ": " + std::to_string(unreachable) +
                               " shard(s) on unreachable stores not removed");
  }
  if (!first_error.ok()) {
    return Status(first_error.code(), ChunkLabel(chunk.id) + ": " + first_error.message());
  }
  return Status::Ok();
}

}  // namespace quid
