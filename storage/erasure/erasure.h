// Systematic Reed-Solomon erasure coding over GF(2^8) with ISA-L (Cauchy matrix, so any
// k of the k+m shards rebuild the rest for every k <= kMaxDataShards, m <= kMaxParityShards).
// Shards 0..k-1 are the data itself; k..k+m-1 are parity.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "storage/base/status.h"

namespace quid {

constexpr int kMaxDataShards = 32;
constexpr int kMaxParityShards = 16;
// Shard lengths are padded to a multiple of this, which keeps ISA-L on its SIMD path.
constexpr size_t kShardAlignment = 64;

class ErasureCoder {
 public:
  // kInvalid unless 1 <= k <= kMaxDataShards and 0 <= m <= kMaxParityShards.
  static Result<std::unique_ptr<ErasureCoder>> Create(int k, int m);
  ~ErasureCoder();
  ErasureCoder(const ErasureCoder&) = delete;
  ErasureCoder& operator=(const ErasureCoder&) = delete;

  int data_shards() const { return k_; }
  int parity_shards() const { return m_; }
  int total_shards() const { return k_ + m_; }

  // Length of each shard for a blob of `blob_bytes`: ceil(blob_bytes / k), rounded up to
  // kShardAlignment. The blob is zero-padded to k * ShardSize(blob_bytes).
  size_t ShardSize(size_t blob_bytes) const { return ShardSizeFor(blob_bytes, k_); }
  // The same for any k >= 1, without a coder (to check a stripe before making one).
  static size_t ShardSizeFor(size_t blob_bytes, int k);

  // Computes the m parity shards from the k data shards, each `shard_size` bytes.
  // Thread-safe (the coder is immutable after Create).
  void Encode(std::span<const uint8_t* const> data, std::span<uint8_t* const> parity,
              size_t shard_size) const;

  // Rebuilds, in place, every shard i with present[i] == false, from the shards that are
  // present. `shards` holds k+m buffers of `shard_size` bytes. kCorrupt if fewer than k
  // are present. Thread-safe.
  Status Reconstruct(std::span<uint8_t* const> shards, const std::vector<bool>& present,
                     size_t shard_size) const;

 private:
  ErasureCoder(int k, int m);
  int k_;
  int m_;
  std::vector<uint8_t> encode_matrix_;  // (k+m) x k, top k rows identity
  std::vector<uint8_t> encode_tables_;  // ISA-L expanded tables for the parity rows
  // Decode tables per loss pattern: a store that is down repeats the same pattern for
  // every chunk, and inverting the matrix each time would dominate small reconstructs.
  struct DecodeCache;
  std::unique_ptr<DecodeCache> decode_cache_;
};

}  // namespace quid
