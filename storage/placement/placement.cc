#include "storage/placement/placement.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>

namespace quid {
namespace {

constexpr size_t kRendezvousHashBytes = 8;

// Unkeyed BLAKE2b-64 of (chunk id || name): chunk ids are already keyed, so this needs only
// to be uniform, and the fixed-length id first keeps the encoding unambiguous.
uint64_t RendezvousHash(const ChunkId& chunk, const std::string& name) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kRendezvousHashBytes);
  crypto_generichash_update(&state, chunk.data(), chunk.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(name.data()),
                            name.size());
  unsigned char out[kRendezvousHashBytes];
  crypto_generichash_final(&state, out, sizeof(out));
  uint64_t h = 0;
  for (size_t i = 0; i < kRendezvousHashBytes; ++i) h |= uint64_t{out[i]} << (8 * i);
  return h;
}

// Weighted rendezvous score -weight / ln(u), u uniform in (0, 1). Only the top 52 bits of
// the hash are used so that (h + 0.5) / 2^52 is exact in a double and strictly below 1:
// with all 64 bits, hashes near 2^64 round u up to 1.0, ln(u) to 0, and the score to -inf.
double Score(uint64_t hash, double weight) {
  const double u = (static_cast<double>(hash >> 12) + 0.5) * 0x1p-52;
  return -weight / std::log(u);
}

struct Ranked {
  double score;
  const PlacementCandidate* candidate;
};

}  // namespace

std::vector<uint32_t> RendezvousPlacement::Place(
    const ChunkId& chunk, int shard_count,
    const std::vector<PlacementCandidate>& candidates) const {
  if (shard_count <= 0) return {};

  // Rank every candidate, available or not: a store that is down keeps its rank, so its
  // shards are substituted in place below and no other shard changes position.
  std::vector<Ranked> ranked;
  ranked.reserve(candidates.size());
  for (const PlacementCandidate& c : candidates) {
    // A non-positive (or NaN) weight has no meaningful share; never place on it.
    if (!(c.weight > 0)) continue;
    ranked.push_back({Score(RendezvousHash(chunk, c.name), c.weight), &c});
  }
  // Ties (practically impossible) are broken by identity so the order stays deterministic.
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.candidate->name != b.candidate->name) return a.candidate->name < b.candidate->name;
    return a.candidate->store_index < b.candidate->store_index;
  });
  // A store listed twice counts once, at its best rank.
  std::vector<uint32_t> seen;
  std::vector<Ranked> unique;
  unique.reserve(ranked.size());
  for (const Ranked& r : ranked) {
    if (std::find(seen.begin(), seen.end(), r.candidate->store_index) != seen.end()) continue;
    seen.push_back(r.candidate->store_index);
    unique.push_back(r);
  }

  std::vector<uint32_t> available;  // store indexes in score order
  for (const Ranked& r : unique) {
    if (r.candidate->available) available.push_back(r.candidate->store_index);
  }
  if (available.empty()) return {};

  const size_t want = static_cast<size_t>(shard_count);
  std::vector<uint32_t> placement;
  placement.reserve(want);
  if (available.size() < want) {
    // Degraded: every available store gets a shard, then reuse them in the same order.
    for (size_t i = 0; i < want; ++i) placement.push_back(available[i % available.size()]);
    return placement;
  }

  // The chosen set is the top `want` available stores. Shard positions follow the ranking
  // over all stores, an unavailable store's position going to the next available store
  // beyond the top `want`.
  size_t next_spare = want;  // next unused entry of `unique` past the top `want`
  for (size_t i = 0; i < want; ++i) {
    if (unique[i].candidate->available) {
      placement.push_back(unique[i].candidate->store_index);
      continue;
    }
    while (!unique[next_spare].candidate->available) ++next_spare;
    placement.push_back(unique[next_spare].candidate->store_index);
    ++next_spare;
  }
  return placement;
}

}  // namespace quid
