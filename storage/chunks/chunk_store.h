// ChunkStore: the data path below the namespace. Turns a plaintext chunk into encrypted,
// erasure-coded shards on the volume's stores, and reads plaintext ranges back:
//
//   Put:  AEAD-encrypt by segments -> RS(k, m) encode -> placement -> k+m shard puts in
//         parallel, each durable before Put returns.
//   Read: healthy path fetches only the needed segments from the data shards that hold
//         them (no decoding); if any piece is missing, corrupt or unreachable, fetches whole
//         shards from any k, reconstructs, and decrypts. Never returns wrong bytes.
//
// Thread-safe: many FUSE and flusher threads call it at once; shard I/O fans out on the
// I/O pool given at construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/base/thread_pool.h"
#include "storage/crypto/chunk_cipher.h"
#include "storage/crypto/chunk_id.h"
#include "storage/crypto/keys.h"
#include "storage/erasure/erasure.h"
#include "storage/placement/placement.h"
#include "storage/stores/shard_store.h"

namespace quid {

class Clock;

// Everything needed to find and read a stored chunk; kept in the chunk's metadata record.
struct StoredChunk {
  ChunkId id{};
  uint64_t generation = 0;  // random per upload: re-uploads never reuse shard ids
  std::array<uint8_t, kChunkHeaderBytes> header{};  // the blob's header (cipher, nonce)
  uint32_t plain_size = 0;
  uint32_t blob_size = 0;   // EncryptedSize(plain_size)
  uint32_t shard_size = 0;  // bytes in each of the k+m shards
  uint8_t k = 0;
  uint8_t m = 0;
  std::vector<uint32_t> stores;  // store index holding shard i, for i in [0, k+m)
};

// A generous bound on a volume's stores (a store per lease): keeps a mistaken loop from
// growing the list without end.
constexpr size_t kMaxStores = 4096;

struct ChunkStoreOptions {
  int data_shards = 4;
  int parity_shards = 2;
  Cipher cipher = Cipher::kXChaCha20Poly1305;
};

// Counters for `quid status` and tests. Monotonic since construction.
struct ChunkStoreStats {
  uint64_t chunks_put = 0;
  uint64_t degraded_reads = 0;  // reads that needed parity
  uint64_t shard_failures = 0;  // shard gets/puts that failed (missing, corrupt, down)
};

// One store as the chunk store has used it (ChunkStore::store_calls).
struct StoreCalls {
  bool draining = false;
  bool distrusted = false;
  uint64_t puts_ok = 0, puts_failed = 0, reads_ok = 0, reads_failed = 0;
  uint64_t audits_ok = 0, audits_failed = 0;  // shards audited there, and found bad
};

// What ChunkStore::RepairShards did to one chunk.
struct ShardRepair {
  std::vector<uint32_t> stores;  // the chunk's stores after the repair, shard by shard
  uint64_t rebuilt_mask = 0;     // shards now durable on their new store
  uint64_t bad_mask = 0;         // shards their store lacks, holds rotted, or that disagree with
                                 // the authentic chunk
  int unplaced = 0;              // shards to replace that found no store to go to
  uint64_t bytes_read = 0;       // whole shards fetched
  uint64_t bytes_written = 0;    // rebuilt shards put
};

// What ChunkStore::AuditChunk found out about one chunk's shards.
struct ShardAudit {
  uint64_t ok_mask = 0;           // answered, and (when checked) consistent with the others
  uint64_t bad_mask = 0;          // answered missing, corrupt, or (located) wrong
  uint64_t unreachable_mask = 0;  // did not answer: says nothing of the shard
  // The answers do not form a codeword, and which shard lies could not be told from the
  // sample alone: a full check (RepairShards with check_all) locates it.
  bool inconsistent = false;
  uint64_t bytes = 0;  // sampled bytes fetched, all stores together
};

// Bytes in each shard of a chunk of `plain_size` bytes at `data_shards` (k >= 1): the
// encrypted blob cut k ways and padded, as ChunkStore::Put makes them.
size_t ShardSizeForChunk(size_t plain_size, int data_shards);

class ChunkStore {
 public:
  // `stores` are indexed as in the volume's store list; `io_pool` runs shard I/O and must
  // outlive this object (and must not be the pool the caller runs on: calls wait on it).
  // `clock` (default: the real clock; must outlive this object) times the short back-off
  // after a store reports itself unreachable. kInvalid for a bad (k, m), an empty store
  // list, a null store, placement or pool, or an unavailable cipher.
  static Result<std::unique_ptr<ChunkStore>> Create(const VolumeKeys& keys,
                                                    ChunkStoreOptions options,
                                                    std::vector<std::shared_ptr<ShardStore>> stores,
                                                    std::shared_ptr<PlacementPolicy> placement,
                                                    ThreadPool* io_pool, Clock* clock = nullptr);

  // Stores `plain` (at most UINT32_MAX bytes) as chunk `id`. A shard whose store fails is
  // retried on the next store placement offers; kUnavailable/kNoSpace if some shard could
  // not be stored anywhere (then no shard of this upload is left behind).
  Result<StoredChunk> Put(const ChunkId& id, ByteSpan plain);

  // Reads plaintext [offset, offset + out.size()) of `chunk` into `out`.
  // `*degraded` (if given) is set when parity had to be used (a repair candidate).
  // kCorrupt/kUnavailable when fewer than k good shards remain.
  Status Read(const StoredChunk& chunk, uint64_t offset, MutableByteSpan out,
              bool* degraded = nullptr);

  // Removes every shard of `chunk`. Idempotent; shards already gone are fine.
  // kUnavailable if a store could not be reached (the caller retries later).
  Status Remove(const StoredChunk& chunk);
  // The same, resumable: shards whose bit is set in `*removed_mask` are skipped, and the
  // bits of shards removed now (or found gone) are set. Stores known to be down are not
  // asked (their shards stay for a later call). OK once every bit is set.
  Status RemoveShards(const StoredChunk& chunk, uint64_t* removed_mask);

  // The opaque id of shard `index` of one upload of chunk `id`.
  ShardId ShardIdFor(const ChunkId& id, uint64_t generation, int index) const;

  // The stores as of now, indexed as in the volume's store list. The list only grows, and an
  // index keeps naming the same store (perhaps at a new address) for the volume's life.
  std::vector<std::shared_ptr<ShardStore>> stores() const;
  size_t store_count() const;

  // A store joins the volume (a new lease): placement offers it from the next Put on.
  // Returns its index, one past the last; kInvalid past kMaxStores or for a null store.
  // The caller records the store in the volume's configuration before calling, so no chunk
  // record can name an index the configuration does not know.
  Result<uint32_t> AddStore(std::shared_ptr<ShardStore> store);
  // The store at `index` is now reached through `store` (a host's new address). Calls in
  // flight finish on the old one; its health record starts afresh. kInvalid for a bad index.
  Status ReplaceStore(uint32_t index, std::shared_ptr<ShardStore> store);
  // The store's lease is ending (or no longer so): placement never offers a draining store
  // while any other is left. Ignored for a bad index.
  void SetDraining(uint32_t index, bool draining);
  // Per store: whether it drains, and the calls it answered and failed since construction.
  std::vector<StoreCalls> store_calls() const;

  // What placement weighs the store by from now on (> 0: its free room times its service
  // score), and its failure domains ("site=home"). A store replaced (a new address) keeps
  // both. Ignored for a bad index.
  void SetStoreWeight(uint32_t index, double weight);
  void SetStoreDomains(uint32_t index, std::vector<std::string> domains);
  // The store failed too many audits to be believed: placement never offers it again (its
  // shards are the repair engine's to rebuild elsewhere). Ignored for a bad index.
  void SetDistrusted(uint32_t index, bool distrusted);

  // Rebuilds the shards of `chunk` in `replace_mask` (on lost stores, corrupt, doubled up)
  // from any k others, checks the whole chunk authenticates, and puts each rebuilt shard
  // on a store placement chooses among those the chunk does not keep (never one down,
  // full, draining, in `avoid`, or one a replaced shard was on). Every fetched shard is compared
  // with the rebuilt chunk, so a store that answered with bytes that pass its checksum but are
  // wrong is caught
  // (`bad_mask`). Shards that found no store stay where they were; shards whose put
  // failed too. The caller commits `stores` to metadata before removing anything.
  // kCorrupt/kUnavailable when no k shards decode to the authentic chunk.
  // `check_all`: fetch every reachable shard, not just k, so each one is compared (a full
  // check; the audit's answer to an inconsistent sample).
  Result<ShardRepair> RepairShards(const StoredChunk& chunk, uint64_t replace_mask,
                                   const std::vector<uint32_t>& avoid = {}, bool check_all = false);

  // Verifies every reachable shard of `chunk` against the authentic chunk (a whole fetch of
  // each, a decode, a re-encode) and writes nothing: the shards found missing or wrong.
  // kCorrupt/kUnavailable when no k shards decode to the authentic chunk.
  Result<uint64_t> CheckChunk(const StoredChunk& chunk);

  // Audits one chunk: reads the same `sample_bytes` (clamped to the shard) at `offset`
  // (taken modulo what fits) from every one of its shards, in parallel. Reed-Solomon works
  // byte column by byte column, so the k+m samples must form a codeword: any k of them
  // determine the rest. A shard its store lacks or reports rotted is bad outright; with all
  // answering, one wrong shard shows as a sample that disagrees with the codeword the others
  // agree on (located when m >= 2, else `inconsistent`). A store cannot tell an audit from a
  // read: both are ReadRange. Outcomes count in store_calls (audits_ok, audits_failed).
  ShardAudit AuditChunk(const StoredChunk& chunk, uint64_t offset, size_t sample_bytes);

  int data_shards() const;
  int parity_shards() const;
  ChunkStoreStats stats() const;

  ~ChunkStore();

 private:
  ChunkStore() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quid
