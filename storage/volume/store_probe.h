// Asks every store of a ChunkStore for its usage, in parallel, with a bounded wait.
#pragma once

#include <vector>

#include "storage/base/thread_pool.h"
#include "storage/chunks/chunk_store.h"

namespace quid {

// One answer per store, in the ChunkStore's order. A store that has not answered within
// 1.5 s counts as unreachable (kUnavailable): statfs and status answer in that time even
// when a host has silently vanished, whose own request timeout is far longer.
std::vector<Result<StoreUsage>> ProbeStores(ChunkStore& chunks, ThreadPool& pool);

}  // namespace quid
