// ChunkStore::RepairShards: rebuild a chunk's missing shards from any k others.
//
// The rebuild decodes the whole chunk through the degraded read path (so a lying shard is
// outvoted exactly as on a read), authenticates every segment, then re-encodes the blob:
// Reed-Solomon is deterministic, so the rebuilt shard i is byte for byte the one Put wrote.
// Each shard fetched on the way is compared with its rebuilt twin: one that passed its
// store's checksum yet differs is a store lying (or rotting under a fresh checksum).
#include <algorithm>
#include <cstring>

#include "storage/chunks/chunk_store_impl.h"

namespace quid {

using namespace chunk_store_internal;

Result<ShardRepair> ChunkStore::RepairShards(const StoredChunk& chunk, uint64_t replace_mask,
                                             const std::vector<uint32_t>& avoid, bool check_all) {
  Impl& d = *impl_;
  const std::string label = ChunkLabel(chunk.id);
  const size_t k = chunk.k;
  const size_t n = k + chunk.m;
  const std::shared_ptr<const StoreSet> set = d.Stores();
  const StoreSet& stores = *set;
  bool consistent = k >= 1 && n <= 64 && chunk.stores.size() == n && chunk.shard_size > 0 &&
                    chunk.plain_size > 0 && chunk.blob_size == EncryptedSize(chunk.plain_size) &&
                    uint64_t{chunk.shard_size} * k >= chunk.blob_size;
  for (uint32_t s : chunk.stores) consistent = consistent && s < stores.size();
  if (!consistent) return Status::Corrupt(label + ": inconsistent chunk record");
  QUID_ASSIGN_OR_RETURN(ChunkHeader header, ChunkHeader::Parse(chunk.header));
  if (header.plain_size != chunk.plain_size)
    return Status::Corrupt(label + ": header size disagrees with the chunk record");
  QUID_ASSIGN_OR_RETURN(std::shared_ptr<const ErasureCoder> coder, d.CoderFor(chunk.k, chunk.m));
  replace_mask &= n == 64 ? ~uint64_t{0} : (Bit(n) - 1);

  // The whole blob, padded to k shards, then room for the m parity shards.
  const size_t shard_size = chunk.shard_size;
  auto buffer = std::make_unique_for_overwrite<uint8_t[]>(n * shard_size);
  uint8_t* const base = buffer.get();
  std::memset(base + chunk.blob_size, 0, k * shard_size - chunk.blob_size);
  const SegmentSpan span = SegmentsFor(chunk.plain_size, 0, chunk.plain_size);
  auto plain = std::make_unique_for_overwrite<uint8_t[]>(chunk.plain_size);
  std::vector<Bytes> fetched;
  uint64_t fetched_mask = 0, missing_mask = 0;
  Impl::DecodeExtras extras{replace_mask, check_all, &fetched, &fetched_mask, &missing_mask};
  bool used_parity = false;
  Status decoded =
      d.ReadDegraded(*this, stores, chunk, header, span,
                     MutableByteSpan(base + span.blob_offset, span.blob_length),
                     MutableByteSpan(plain.get(), chunk.plain_size), &used_parity, &extras);
  ShardRepair out;
  out.stores = chunk.stores;
  for (size_t i = 0; i < n; ++i)
    if (fetched_mask & Bit(i)) out.bytes_read += shard_size;
  if (!decoded.ok()) return decoded;
  std::memcpy(base, chunk.header.data(), kChunkHeaderBytes);
  std::vector<const uint8_t*> data_ptrs(k);
  std::vector<uint8_t*> parity_ptrs(n - k);
  for (size_t i = 0; i < k; ++i) data_ptrs[i] = base + i * shard_size;
  for (size_t i = k; i < n; ++i) parity_ptrs[i - k] = base + i * shard_size;
  if (n > k) coder->Encode(data_ptrs, parity_ptrs, shard_size);
  const auto rebuilt = [&](size_t i) { return ByteSpan(base + i * shard_size, shard_size); };

  for (size_t i = 0; i < n; ++i) {
    if ((fetched_mask & Bit(i)) == 0) continue;
    const ByteSpan want = rebuilt(i);
    if (fetched[i].size() != shard_size ||
        std::memcmp(fetched[i].data(), want.data(), shard_size) != 0)
      out.bad_mask |= Bit(i);
  }
  // A shard its store says it lacks (or holds rotted) is as bad as one that lies.
  out.bad_mask |= missing_mask;
  for (size_t i = 0; i < n; ++i)
    if (out.bad_mask & Bit(i)) d.NoteAudit(*stores[chunk.stores[i]], false);
  replace_mask |= out.bad_mask;

  // Where the rebuilt shards go: stores the chunk keeps are never chosen again.
  std::vector<uint32_t> kept;
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    if (replace_mask & Bit(i)) {
      todo.push_back(i);
    } else {
      kept.push_back(chunk.stores[i]);
    }
  }
  if (todo.empty()) return out;
  size_t available = 0;
  std::vector<PlacementCandidate> candidates = d.Candidates(stores, &available);
  // Nor the stores the replaced shards were on: lost, lying or rotting, none earns them back.
  for (size_t i : todo) candidates[chunk.stores[i]].available = false;
  for (uint32_t s : avoid)
    if (s < candidates.size()) candidates[s].available = false;
  std::vector<uint32_t> targets =
      d.placement->PlaceMore(chunk.id, static_cast<int>(todo.size()), kept, candidates);
  out.unplaced = static_cast<int>(todo.size() - std::min(todo.size(), targets.size()));
  todo.resize(std::min(todo.size(), targets.size()));

  std::vector<Status> results(todo.size());
  RunAll(d.pool, todo.size(), [&](size_t j) {
    const size_t i = todo[j];
    results[j] = stores[targets[j]]->store->Put(
        ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)), rebuilt(i));
  });
  for (size_t j = 0; j < todo.size(); ++j) {
    d.Note(*stores[targets[j]], results[j], Impl::Call::kPut);
    if (!results[j].ok()) continue;
    out.stores[todo[j]] = targets[j];
    out.rebuilt_mask |= Bit(todo[j]);
    out.bytes_written += shard_size;
  }
  return out;
}

Result<uint64_t> ChunkStore::CheckChunk(const StoredChunk& chunk) {
  // A repair that may place nowhere: it decodes and compares every shard, and every rebuilt
  // shard finds no store, so nothing is written.
  std::vector<uint32_t> everywhere(store_count());
  for (uint32_t s = 0; s < everywhere.size(); ++s) everywhere[s] = s;
  QUID_ASSIGN_OR_RETURN(ShardRepair r, RepairShards(chunk, 0, everywhere, /*check_all=*/true));
  return r.bad_mask;
}

}  // namespace quid
