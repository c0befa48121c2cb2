#include "storage/erasure/erasure.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>

namespace quid {
namespace {

constexpr int kMaxTotalShards = kMaxDataShards + kMaxParityShards;
// ISA-L expands every matrix coefficient into a 32-byte lookup table.
constexpr size_t kTableBytesPerCoefficient = 32;
// Each entry is at most 32 * kMaxDataShards * kMaxParityShards = 16 KiB, so the cache stays
// under 1 MiB while still covering every pattern a handful of down stores can produce.
constexpr size_t kMaxCachedPatterns = 64;
// ISA-L takes lengths as int; larger shards are coded in slices of this many bytes (a
// multiple of kShardAlignment so every slice but the last stays on the SIMD path).
constexpr size_t kMaxSliceBytes = size_t{1} << 30;

// Runs ISA-L over `len` bytes in int-sized slices. The pointer arrays are scratch space.
void CodeSlices(size_t len, int k, int rows, const uint8_t* tables, const uint8_t* const* in,
                uint8_t* const* out) {
  std::array<unsigned char*, kMaxTotalShards> src{};
  std::array<unsigned char*, kMaxTotalShards> dst{};
  for (size_t offset = 0; offset < len; offset += kMaxSliceBytes) {
    const size_t slice = std::min(kMaxSliceBytes, len - offset);
    // ISA-L never writes through the sources or the tables; its API just lacks const.
    for (int i = 0; i < k; ++i) src[i] = const_cast<unsigned char*>(in[i]) + offset;
    for (int i = 0; i < rows; ++i) dst[i] = out[i] + offset;
    ec_encode_data(static_cast<int>(slice), k, rows, const_cast<unsigned char*>(tables), src.data(),
                   dst.data());
  }
}

// Decode recipe for one loss pattern: which shards to read and the tables that turn them
// into the missing ones.
struct DecodePlan {
  std::array<int, kMaxDataShards> sources{};   // first k present shard indexes
  std::array<int, kMaxTotalShards> targets{};  // missing shard indexes, ascending
  int target_count = 0;
  std::vector<uint8_t> tables;
};

}  // namespace

struct ErasureCoder::DecodeCache {
  std::mutex mu;
  std::unordered_map<uint64_t, std::shared_ptr<const DecodePlan>> plans;  // by missing mask
};

Result<std::unique_ptr<ErasureCoder>> ErasureCoder::Create(int k, int m) {
  if (k < 1 || k > kMaxDataShards || m < 0 || m > kMaxParityShards) {
    return Status::Invalid("erasure scheme " + std::to_string(k) + "+" + std::to_string(m) +
                           " out of range (k 1.." + std::to_string(kMaxDataShards) + ", m 0.." +
                           std::to_string(kMaxParityShards) + ")");
  }
  return std::unique_ptr<ErasureCoder>(new ErasureCoder(k, m));
}

ErasureCoder::ErasureCoder(int k, int m)
    : k_(k),
      m_(m),
      encode_matrix_(static_cast<size_t>((k + m) * k)),
      encode_tables_(kTableBytesPerCoefficient * k * m),
      decode_cache_(std::make_unique<DecodeCache>()) {
  // Cauchy rather than Vandermonde: every k x k submatrix of the Cauchy form is invertible,
  // which ISA-L's Vandermonde generator does not guarantee for wide schemes like 16+16.
  gf_gen_cauchy1_matrix(encode_matrix_.data(), k + m, k);
  if (m > 0) ec_init_tables(k, m, encode_matrix_.data() + k * k, encode_tables_.data());
}

ErasureCoder::~ErasureCoder() = default;

size_t ErasureCoder::ShardSizeFor(size_t blob_bytes, int k) {
  const size_t per_shard = (blob_bytes + static_cast<size_t>(k) - 1) / static_cast<size_t>(k);
  return (per_shard + kShardAlignment - 1) / kShardAlignment * kShardAlignment;
}

void ErasureCoder::Encode(std::span<const uint8_t* const> data, std::span<uint8_t* const> parity,
                          size_t shard_size) const {
  // A wrong shard count would make ISA-L read or write past the caller's arrays; stop
  // rather than hand back parity that cannot rebuild anything.
  if (data.size() != static_cast<size_t>(k_) || parity.size() != static_cast<size_t>(m_)) {
    std::abort();
  }
  if (m_ == 0 || shard_size == 0) return;
  CodeSlices(shard_size, k_, m_, encode_tables_.data(), data.data(), parity.data());
}

Status ErasureCoder::Reconstruct(std::span<uint8_t* const> shards, const std::vector<bool>& present,
                                 size_t shard_size) const {
  const int n = total_shards();
  if (shards.size() != static_cast<size_t>(n) || present.size() != static_cast<size_t>(n)) {
    return Status::Invalid("reconstruct: expected " + std::to_string(n) + " shards, got " +
                           std::to_string(shards.size()) + " buffers and " +
                           std::to_string(present.size()) + " flags");
  }
  uint64_t missing_mask = 0;
  int present_count = 0;
  for (int i = 0; i < n; ++i) {
    if (present[i]) {
      ++present_count;
    } else {
      missing_mask |= uint64_t{1} << i;
    }
  }
  if (missing_mask == 0) return Status::Ok();
  if (present_count < k_) {
    return Status::Corrupt("reconstruct: only " + std::to_string(present_count) + " of " +
                           std::to_string(n) + " shards present, " + std::to_string(k_) +
                           " needed");
  }

  std::shared_ptr<const DecodePlan> plan;
  {
    std::lock_guard<std::mutex> lock(decode_cache_->mu);
    auto it = decode_cache_->plans.find(missing_mask);
    if (it != decode_cache_->plans.end()) plan = it->second;
  }
  if (plan == nullptr) {
    auto fresh = std::make_shared<DecodePlan>();
    int source_count = 0;
    for (int i = 0; i < n && source_count < k_; ++i) {
      if (present[i]) fresh->sources[source_count++] = i;
    }
    for (int i = 0; i < n; ++i) {
      if (!present[i]) fresh->targets[fresh->target_count++] = i;
    }

    // Rows of the encode matrix for the shards we read: sources = B * data, so
    // data = B^-1 * sources.
    std::vector<uint8_t> b(static_cast<size_t>(k_ * k_));
    std::vector<uint8_t> b_inv(static_cast<size_t>(k_ * k_));
    for (int r = 0; r < k_; ++r) {
      std::copy_n(&encode_matrix_[fresh->sources[r] * k_], k_, &b[r * k_]);
    }
    if (gf_invert_matrix(b.data(), b_inv.data(), k_) != 0) {
      // Impossible for a Cauchy matrix; reported rather than trusted if it ever happens.
      return Status::Corrupt("reconstruct: singular decode matrix");
    }

    // A missing data shard is its row of B^-1; a missing parity shard is its encode row
    // applied to the recovered data, i.e. that row times B^-1.
    std::vector<uint8_t> decode(static_cast<size_t>(fresh->target_count * k_));
    for (int t = 0; t < fresh->target_count; ++t) {
      const int idx = fresh->targets[t];
      uint8_t* row = &decode[t * k_];
      if (idx < k_) {
        std::copy_n(&b_inv[idx * k_], k_, row);
        continue;
      }
      const uint8_t* enc = &encode_matrix_[idx * k_];
      for (int c = 0; c < k_; ++c) {
        uint8_t acc = 0;
        for (int j = 0; j < k_; ++j) acc ^= gf_mul(enc[j], b_inv[j * k_ + c]);
        row[c] = acc;
      }
    }
    fresh->tables.resize(kTableBytesPerCoefficient * k_ * fresh->target_count);
    ec_init_tables(k_, fresh->target_count, decode.data(), fresh->tables.data());

    plan = fresh;
    std::lock_guard<std::mutex> lock(decode_cache_->mu);
    // Bounded by dropping an arbitrary entry: patterns that keep recurring come right back.
    if (decode_cache_->plans.size() >= kMaxCachedPatterns) {
      decode_cache_->plans.erase(decode_cache_->plans.begin());
    }
    decode_cache_->plans.emplace(missing_mask, plan);
  }

  if (shard_size == 0) return Status::Ok();
  std::array<const uint8_t*, kMaxDataShards> in{};
  std::array<uint8_t*, kMaxTotalShards> out{};
  for (int i = 0; i < k_; ++i) in[i] = shards[plan->sources[i]];
  for (int t = 0; t < plan->target_count; ++t) out[t] = shards[plan->targets[t]];
  CodeSlices(shard_size, k_, plan->target_count, plan->tables.data(), in.data(), out.data());
  return Status::Ok();
}

}  // namespace quid
