// ChunkStore::Read: the healthy path (only the segments needed, from the data shards that
// hold them) and the degraded path (whole shards from any k, reconstruct, authenticate).
#include <algorithm>
#include <cstring>

#include "storage/chunks/chunk_store_impl.h"

namespace quid {

using namespace chunk_store_internal;  // this file's half of the internals

Status ChunkStore::Impl::ReadHealthy(const ChunkStore& self, const StoreSet& stores,
                                     const StoredChunk& chunk, const ChunkHeader& header,
                                     const SegmentSpan& span, MutableByteSpan blob_part,
                                     MutableByteSpan plain_out) {
  const size_t shard_size = chunk.shard_size;
  const size_t first = span.blob_offset / shard_size;
  const size_t last = (span.blob_offset + span.blob_length - 1) / shard_size;
  // A store known to be down would only cost a timeout before the degraded path anyway.
  for (size_t i = first; i <= last; ++i) {
    if (IsDown(*stores[chunk.stores[i]]))
      return Status::Unavailable("a data shard's store is down");
  }
  std::vector<Status> results(last - first + 1);
  RunAll(pool, results.size(), [&](size_t p) {
    const size_t i = first + p;
    const size_t lo = std::max(span.blob_offset, i * shard_size);
    const size_t hi = std::min(span.blob_offset + span.blob_length, (i + 1) * shard_size);
    results[p] = stores[chunk.stores[i]]->store->ReadRange(
        self.ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)), lo - i * shard_size,
        blob_part.subspan(lo - span.blob_offset, hi - lo));
  });
  Status first_error;
  for (size_t p = 0; p < results.size(); ++p) {
    Note(*stores[chunk.stores[first + p]], results[p], Call::kRead);
    if (!results[p].ok() && first_error.ok()) first_error = results[p];
  }
  if (!first_error.ok()) return first_error;
  Status s = DecryptSegments(keys.data, header, chunk.id, span, blob_part, plain_out);
  if (!s.ok()) shard_failures.fetch_add(1, std::memory_order_relaxed);
  return s;
}

Status ChunkStore::Impl::ReadDegraded(const ChunkStore& self, const StoreSet& stores,
                                      const StoredChunk& chunk, const ChunkHeader& header,
                                      const SegmentSpan& span, MutableByteSpan blob_part,
                                      MutableByteSpan plain_out, bool* degraded,
                                      const DecodeExtras* extras_or_null) {
  static const DecodeExtras kNoExtras{};
  const DecodeExtras& extras = extras_or_null != nullptr ? *extras_or_null : kNoExtras;
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
      if ((extras.skip_mask & Bit(i)) != 0) continue;
      if (IsDown(*stores[chunk.stores[i]]) == (pass == 1)) order.push_back(i);
    }
  }

  std::vector<Bytes> shards(n);
  std::vector<bool> good(n, false);
  // Whatever was fetched goes to a repair caller, however the decode ends.
  struct Publish {
    const DecodeExtras& extras;
    std::vector<Bytes>& shards;
    std::vector<bool>& good;
    ~Publish() {
      if (extras.fetched_mask != nullptr) {
        *extras.fetched_mask = 0;
        for (size_t i = 0; i < good.size(); ++i)
          if (good[i]) *extras.fetched_mask |= Bit(i);
      }
      if (extras.fetched != nullptr) *extras.fetched = std::move(shards);
    }
  } publish{extras, shards, good};
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
      auto got = stores[chunk.stores[i]]->store->Get(
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
      Note(*stores[chunk.stores[batch[p]]], results[p], Call::kRead);
      if (results[p].ok()) {
        good[batch[p]] = true;
        ++good_count;
      } else if (results[p].code() == Code::kUnavailable) {
        ++unreachable;
      } else if (extras.missing_mask != nullptr && SaysShardIsBad(results[p])) {
        *extras.missing_mask |= Bit(batch[p]);
      }
    }
  };
  while (good_count < k && next < order.size())
    fetch(extras.fetch_all ? order.size() - next : k - good_count);
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
  const std::shared_ptr<const StoreSet> stores = d.Stores();
  for (uint32_t s : chunk.stores) consistent = consistent && s < stores->size();
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

  Status s = d.ReadHealthy(*this, *stores, chunk, header, span, blob_part, plain);
  if (!s.ok()) {
    bool used_parity = false;
    s = d.ReadDegraded(*this, *stores, chunk, header, span, blob_part, plain, &used_parity);
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

}  // namespace quid
