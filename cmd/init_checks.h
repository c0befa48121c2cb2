// What `quid init` refuses before it creates anything: stripes a host could never take,
// and fewer stores than a chunk has shards. Kept apart from the command so tests can ask.
#pragma once

#include <cstddef>
#include <cstdint>

#include "storage/base/status.h"

namespace quid {

// The largest shard one frame of the host protocol carries (net's kMaxPayloadBytes).
size_t MaxShardBytes();

// kInvalid if a chunk of `chunk_size` bytes, encrypted and cut into `data_shards` data
// shards, makes shards larger than MaxShardBytes(): such a chunk could never be uploaded
// and would stay in the journal for good. The message names the largest chunk size that
// fits at this k.
Status CheckShardsFitFrames(uint32_t chunk_size, int data_shards);

// kInvalid if `stores` is less than k + m (two shards of a chunk would share a store, so
// one lost store could cost two), unless `allow_degraded`.
Status CheckStoreCount(size_t stores, int data_shards, int parity_shards, bool allow_degraded);

}  // namespace quid
