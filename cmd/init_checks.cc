#include "cmd/init_checks.h"

#include <fmt/format.h>

#include "cmd/size_parse.h"
#include "net/wire.h"
#include "storage/chunks/chunk_store.h"

namespace quid {

size_t MaxShardBytes() {
  return net::kMaxPayloadBytes;
}

Status CheckShardsFitFrames(uint32_t chunk_size, int data_shards) {
  if (data_shards < 1) return Status::Invalid("--data must be at least 1");
  const size_t shard = ShardSizeForChunk(chunk_size, data_shards);
  if (shard <= MaxShardBytes()) return Status::Ok();
  // The largest chunk whose shards still fit: shard size only grows with the chunk size.
  uint64_t low = 0, high = chunk_size;
  while (high - low > 1) {
    const uint64_t mid = low + (high - low) / 2;
    (ShardSizeForChunk(mid, data_shards) <= MaxShardBytes() ? low : high) = mid;
  }
  const uint64_t fits_kib = low / 1024;  // a size --chunk-size takes as it is
  return Status::Invalid(fmt::format(
      "--chunk-size {} with --data {} makes shards of {} bytes, more than the {} bytes a host "
      "takes in one message; use --chunk-size {}K or less, or more data shards",
      FormatSize(chunk_size), data_shards, shard, MaxShardBytes(), fits_kib));
}

Status CheckStoreCount(size_t stores, int data_shards, int parity_shards, bool allow_degraded) {
  const size_t width = static_cast<size_t>(data_shards) + static_cast<size_t>(parity_shards);
  if (stores >= width || allow_degraded) return Status::Ok();
  return Status::Invalid(fmt::format(
      "{} stores for {}+{} coding: each chunk has {} shards, so some would share a store and "
      "losing it would cost more than one; give {} stores, or --allow-degraded to accept that",
      stores, data_shards, parity_shards, width, width));
}

}  // namespace quid
