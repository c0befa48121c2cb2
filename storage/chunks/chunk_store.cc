#include "storage/chunks/chunk_store.h"
#include "storage/crypto/sodium_init.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "storage/chunks/chunk_store_impl.h"

namespace quid {

using namespace chunk_store_internal;  // this file's half of the internals

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
  EnsureSodium();

  std::unique_ptr<ChunkStore> self(new ChunkStore());
  auto impl = std::make_unique<Impl>();
  impl->keys = keys;
  impl->options = options;
  impl->placement = std::move(placement);
  impl->pool = io_pool;
  impl->clock = clock != nullptr ? clock : RealClock::Get();
  impl->coder = std::move(coder).value();
  auto set = std::make_shared<StoreSet>();
  for (auto& store : stores) set->push_back(std::make_shared<StoreSlot>(std::move(store)));
  impl->set = std::move(set);
  self->impl_ = std::move(impl);
  return self;
}

std::vector<std::shared_ptr<ShardStore>> ChunkStore::stores() const {
  const std::shared_ptr<const StoreSet> set = impl_->Stores();
  std::vector<std::shared_ptr<ShardStore>> out;
  out.reserve(set->size());
  for (const auto& slot : *set) out.push_back(slot->store);
  return out;
}

void ChunkStore::SetDraining(uint32_t index, bool draining) {
  const std::shared_ptr<const StoreSet> set = impl_->Stores();
  if (index < set->size()) (*set)[index]->draining.store(draining);
}

std::vector<StoreCalls> ChunkStore::store_calls() const {
  const std::shared_ptr<const StoreSet> set = impl_->Stores();
  std::vector<StoreCalls> out;
  for (const auto& slot : *set)
    out.push_back({slot->draining.load(), slot->distrusted.load(), slot->puts_ok.load(),
                   slot->puts_failed.load(), slot->reads_ok.load(), slot->reads_failed.load(),
                   slot->audits_ok.load(), slot->audits_failed.load()});
  return out;
}

size_t ChunkStore::store_count() const {
  return impl_->Stores()->size();
}

Result<uint32_t> ChunkStore::AddStore(std::shared_ptr<ShardStore> store) {
  if (store == nullptr) return Status::Invalid("chunk store given a null shard store");
  Impl& d = *impl_;
  std::lock_guard lock(d.set_mu);
  if (d.set->size() >= kMaxStores)
    return Status::Invalid("a volume has at most " + std::to_string(kMaxStores) + " stores");
  auto grown = std::make_shared<StoreSet>(*d.set);
  grown->push_back(std::make_shared<StoreSlot>(std::move(store)));
  d.set = std::move(grown);
  return static_cast<uint32_t>(d.set->size() - 1);
}

Status ChunkStore::ReplaceStore(uint32_t index, std::shared_ptr<ShardStore> store) {
  if (store == nullptr) return Status::Invalid("chunk store given a null shard store");
  Impl& d = *impl_;
  std::lock_guard lock(d.set_mu);
  if (index >= d.set->size())
    return Status::Invalid("no store " + std::to_string(index) + " to replace");
  auto changed = std::make_shared<StoreSet>(*d.set);
  auto slot = std::make_shared<StoreSlot>(std::move(store));
  slot->draining.store((*d.set)[index]->draining.load());      // the lease is the same
  slot->distrusted.store((*d.set)[index]->distrusted.load());  // and so is the host
  {
    const StoreSlot& was = *(*d.set)[index];  // the same host: the same weight and domains
    std::lock_guard profile(was.profile_mu);
    slot->weight = was.weight;
    slot->domains = was.domains;
  }
  (*changed)[index] = std::move(slot);
  d.set = std::move(changed);
  return Status::Ok();
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

size_t ShardSizeForChunk(size_t plain_size, int data_shards) {
  return ErasureCoder::ShardSizeFor(EncryptedSize(plain_size), data_shards);
}

std::vector<PlacementCandidate> ChunkStore::Impl::Candidates(const StoreSet& stores,
                                                             size_t* available) const {
  std::vector<PlacementCandidate> candidates(stores.size());
  *available = 0;
  for (size_t s = 0; s < stores.size(); ++s) {
    const StoreSlot& slot = *stores[s];
    candidates[s].store_index = static_cast<uint32_t>(s);
    candidates[s].name = slot.store->name();
    candidates[s].available =
        !IsDown(slot) && !IsFull(slot) && !slot.draining.load() && !slot.distrusted.load();
    {
      std::lock_guard lock(slot.profile_mu);
      candidates[s].weight = slot.weight;
      candidates[s].domains = slot.domains;
    }
    if (candidates[s].available) ++*available;
  }
  return candidates;
}

void ChunkStore::SetStoreWeight(uint32_t index, double weight) {
  const std::shared_ptr<const StoreSet> set = impl_->Stores();
  if (index >= set->size()) return;
  StoreSlot& slot = *(*set)[index];
  std::lock_guard lock(slot.profile_mu);
  slot.weight = weight;
}

void ChunkStore::SetStoreDomains(uint32_t index, std::vector<std::string> domains) {
  const std::shared_ptr<const StoreSet> set = impl_->Stores();
  if (index >= set->size()) return;
  StoreSlot& slot = *(*set)[index];
  std::lock_guard lock(slot.profile_mu);
  slot.domains = std::move(domains);
}

void ChunkStore::SetDistrusted(uint32_t index, bool distrusted) {
  const std::shared_ptr<const StoreSet> set = impl_->Stores();
  if (index < set->size()) (*set)[index]->distrusted.store(distrusted);
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
  const std::shared_ptr<const StoreSet> set = d.Stores();
  const StoreSet& stores = *set;
  size_t available = 0;
  std::vector<PlacementCandidate> candidates = d.Candidates(stores, &available);
  if (available == 0) {
    // Stores whose leases end are never offered again, unless every store's lease ends.
    bool all_draining = true;
    for (const auto& slot : stores) all_draining = all_draining && slot->draining.load();
    for (size_t s = 0; s < stores.size(); ++s) {
      candidates[s].available =
          (all_draining || !stores[s]->draining.load()) && !stores[s]->distrusted.load();
      if (candidates[s].available) ++available;
    }
  }
  std::vector<uint32_t> assign = d.placement->Place(id, static_cast<int>(n), candidates);
  // Where a failed shard goes next: the available stores in the policy's order.
  std::vector<uint32_t> order = d.placement->Place(id, static_cast<int>(available), candidates);
  const auto bad_index = [&](uint32_t s) { return s >= stores.size(); };
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
      results[i] = stores[assign[i]]->store->Put(
          ids[i], ByteSpan(i < k ? data_ptrs[i] : parity_ptrs[i - k], shard_size));
    });
    std::vector<size_t> retry;
    for (size_t i : pending) {
      d.Note(*stores[assign[i]], results[i], Impl::Call::kPut);
      if (results[i].ok()) {
        stored[i] = true;
      } else {
        failed_stores.insert(assign[i]);
        retry.push_back(i);
      }
    }
    // Shards that succeeded on a store that also failed one of ours still count as used,
    // but that store gets no more of this chunk.
    std::vector<size_t> holding(stores.size(), 0);
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
                             " could not be stored on any of " + std::to_string(stores.size()) +
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
      (void)stores[assign[i]]->store->Remove(ids[i]);
    });
    return failure;
  }

  chunk.stores = std::move(assign);
  d.chunks_put.fetch_add(1, std::memory_order_relaxed);
  return chunk;
}

Status ChunkStore::Remove(const StoredChunk& chunk) {
  uint64_t removed = 0;
  return RemoveShards(chunk, &removed);
}

Status ChunkStore::RemoveShards(const StoredChunk& chunk, uint64_t* removed_mask) {
  Impl& d = *impl_;
  const size_t n = chunk.stores.size();
  if (n > 64) return Status::Corrupt(ChunkLabel(chunk.id) + ": more than 64 shards");
  const std::shared_ptr<const StoreSet> set = d.Stores();
  const StoreSet& stores = *set;
  std::vector<size_t> todo;
  size_t skipped_down = 0;
  for (size_t i = 0; i < n; ++i) {
    if (*removed_mask & (uint64_t{1} << i)) continue;
    if (chunk.stores[i] < stores.size() && d.IsDown(*stores[chunk.stores[i]])) {
      ++skipped_down;  // asked again once the store is back
      continue;
    }
    todo.push_back(i);
  }
  std::vector<Status> results(todo.size());
  RunAll(d.pool, todo.size(), [&](size_t j) {
    const size_t i = todo[j];
    if (chunk.stores[i] >= stores.size()) {
      results[j] = Status::Corrupt("shard " + std::to_string(i) + " names store " +
                                   std::to_string(chunk.stores[i]) + " which does not exist");
      return;
    }
    results[j] = stores[chunk.stores[i]]->store->Remove(
        ShardIdFor(chunk.id, chunk.generation, static_cast<int>(i)));
  });
  Status first_error;
  size_t unreachable = skipped_down;
  for (size_t j = 0; j < todo.size(); ++j) {
    const size_t i = todo[j];
    if (chunk.stores[i] < stores.size())
      d.Note(*stores[chunk.stores[i]], results[j], Impl::Call::kRemove);
    if (results[j].ok()) *removed_mask |= uint64_t{1} << i;
    if (results[j].code() == Code::kUnavailable) ++unreachable;
    if (!results[j].ok() && first_error.ok()) first_error = results[j];
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
