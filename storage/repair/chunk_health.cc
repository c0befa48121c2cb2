#include "storage/repair/chunk_health.h"

#include <algorithm>
#include <vector>

namespace quid {

ChunkHealth AssessChunk(std::span<const uint32_t> stores, int k, uint64_t bad_mask, int threshold,
                        const std::function<HostState(uint32_t)>& state) {
  ChunkHealth out;
  const size_t n = std::min<size_t>(stores.size(), 64);
  std::vector<uint32_t> hosts_counted;  // a host's first good shard counts; later ones do not
  hosts_counted.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t bit = uint64_t{1} << i;
    const HostState s = state(stores[i]);
    const bool bad = (bad_mask & bit) != 0;
    if (bad || s == HostState::kLost) {
      out.replace_mask |= bit;
      continue;
    }
    ++out.existing_shards;
    if (std::find(hosts_counted.begin(), hosts_counted.end(), stores[i]) != hosts_counted.end()) {
      out.replace_mask |= bit;  // doubled up: losing that host would cost two shards
      continue;
    }
    hosts_counted.push_back(stores[i]);
    ++out.intact_shards;
    if (s == HostState::kUp) ++out.healthy_shards;
  }
  out.replace_count = static_cast<int>(__builtin_popcountll(out.replace_mask));
  if (out.existing_shards < k) {
    out.health = ChunkHealthClass::kLost;
  } else if (out.healthy_shards == static_cast<int>(n)) {
    out.health = ChunkHealthClass::kHealthy;
  } else {
    out.health = ChunkHealthClass::kDegraded;
  }
  out.needs_repair =
      out.existing_shards >= k && out.intact_shards <= threshold && out.replace_count > 0;
  return out;
}

}  // namespace quid
