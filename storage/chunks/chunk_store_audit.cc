// ChunkStore::AuditChunk: a cheap check that every store still holds what it acknowledged.
//
// Reed-Solomon codes each byte position of the shards independently (shard i's byte j
// depends only on byte j of the data shards), so the bytes at one offset of all k+m shards
// form a codeword of their own. A sample of L bytes from each shard is then checked without
// the rest of the chunk: rebuild the other samples from the first k and compare. With a
// single wrong shard and m >= 2, leaving each answering shard out in turn finds the one
// whose absence makes the rest agree; otherwise the chunk is flagged for a full check.
#include <algorithm>
#include <cstring>

#include "storage/chunks/chunk_store_impl.h"

namespace quid {

using namespace chunk_store_internal;

namespace {

// True if the samples in `use` (a mask of answering shards, at least k+1 of them) form a
// codeword: the first k of them rebuild the others exactly.
bool Consistent(const ErasureCoder& coder, const std::vector<Bytes>& samples, uint64_t use,
                size_t len) {
  const size_t n = samples.size();
  const size_t k = static_cast<size_t>(coder.data_shards());
  std::vector<Bytes> scratch(n);
  std::vector<uint8_t*> ptrs(n);
  std::vector<bool> present(n, false);
  size_t taken = 0;
  for (size_t i = 0; i < n; ++i) {
    if ((use & Bit(i)) != 0 && taken < k) {
      present[i] = true;
      ++taken;
      ptrs[i] = const_cast<uint8_t*>(samples[i].data());  // Reconstruct leaves present ones be
    } else {
      scratch[i].assign(len, 0);
      ptrs[i] = scratch[i].data();
    }
  }
  if (!coder.Reconstruct(ptrs, present, len).ok()) return false;
  for (size_t i = 0; i < n; ++i) {
    if ((use & Bit(i)) == 0 || present[i]) continue;
    if (std::memcmp(scratch[i].data(), samples[i].data(), len) != 0) return false;
  }
  return true;
}

}  // namespace

ShardAudit ChunkStore::AuditChunk(const StoredChunk& chunk, uint64_t offset, size_t sample_bytes) {
  Impl& d = *impl_;
  ShardAudit out;
  const size_t k = chunk.k;
  const size_t n = k + chunk.m;
  const std::shared_ptr<const StoreSet> set = d.Stores();
  const StoreSet& stores = *set;
  bool consistent = k >= 1 && n <= 64 && chunk.stores.size() == n && chunk.shard_size > 0;
  for (uint32_t s : chunk.stores) consistent = consistent && s < stores.size();
  auto coder = consistent ? d.CoderFor(chunk.k, chunk.m) : Status::Corrupt("bad record");
  if (!coder.ok()) {
    out.inconsistent = true;
    return out;
  }
  const size_t len = std::clamp<size_t>(sample_bytes, 1, chunk.shard_size);
  const uint64_t at = offset % (chunk.shard_size - len + 1);

  std::vector<Bytes> samples(n);
  std::vector<Status> results(n);
  RunAll(d.pool, n, [&](size_t i) {
    samples[i].assign(len, 0);
    results[i] = stores[chunk.stores[i]]->store->ReadRange(
        ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)), at, samples[i]);
  });
  uint64_t answered = 0;
  for (size_t i = 0; i < n; ++i) {
    d.Note(*stores[chunk.stores[i]], results[i], Impl::Call::kRead);
    if (results[i].ok()) {
      answered |= Bit(i);
      out.bytes += len;
    } else if (SaysShardIsBad(results[i])) {
      out.bad_mask |= Bit(i);  // missing, rotted (the host's scrub said so), or out of range
    } else {
      out.unreachable_mask |= Bit(i);  // no answer about the shard itself
    }
  }
  const size_t count = static_cast<size_t>(__builtin_popcountll(answered));
  if (count <= k || Consistent(**coder, samples, answered, len)) {
    // With k or fewer answers nothing can be cross-checked; they stand as answered.
    out.ok_mask = answered;
  } else {
    // Someone lies. Leave each answering shard out in turn: if the rest then agree (and are
    // more than k, so agreeing means something), that one is the liar.
    std::optional<size_t> liar;
    if (count >= k + 2) {
      for (size_t i = 0; i < n && !liar; ++i)
        if ((answered & Bit(i)) && Consistent(**coder, samples, answered & ~Bit(i), len)) liar = i;
    }
    if (liar) {
      out.bad_mask |= Bit(*liar);
      out.ok_mask = answered & ~Bit(*liar);
    } else {
      out.inconsistent = true;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (out.ok_mask & Bit(i)) d.NoteAudit(*stores[chunk.stores[i]], true);
    if (out.bad_mask & Bit(i)) d.NoteAudit(*stores[chunk.stores[i]], false);
  }
  return out;
}

}  // namespace quid
