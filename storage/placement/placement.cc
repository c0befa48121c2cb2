#include "storage/placement/placement.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <map>

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

// Every candidate with a positive weight, best first, each store once (at its best rank).
// Unavailable ones keep their rank: Place substitutes them in their own shard position.
std::vector<Ranked> Rank(const ChunkId& chunk, const std::vector<PlacementCandidate>& candidates) {
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
  std::vector<uint32_t> seen;
  std::vector<Ranked> unique;
  unique.reserve(ranked.size());
  for (const Ranked& r : ranked) {
    if (std::find(seen.begin(), seen.end(), r.candidate->store_index) != seen.end()) continue;
    seen.push_back(r.candidate->store_index);
    unique.push_back(r);
  }
  return unique;
}

// Shards per failure domain for one chunk, as stores are chosen.
class DomainCount {
 public:
  explicit DomainCount(int limit) : limit_(limit) {}
  bool Allows(const PlacementCandidate& c) const {
    if (limit_ <= 0) return true;
    for (const std::string& d : c.domains) {
      auto it = count_.find(d);
      if (it != count_.end() && it->second >= limit_) return false;
    }
    return true;
  }
  void Add(const PlacementCandidate& c) {
    for (const std::string& d : c.domains) ++count_[d];
  }

 private:
  int limit_;
  std::map<std::string, int> count_;
};

// Up to `want` available stores from `ranked` not in `taken`, best first: first those the
// domain limit allows, then (if still short) the rest in rank order. `domains` holds the
// counts of stores already chosen for the chunk.
std::vector<const PlacementCandidate*> Choose(const std::vector<Ranked>& ranked, size_t want,
                                              std::vector<uint32_t> taken, DomainCount domains) {
  std::vector<const PlacementCandidate*> chosen;
  const auto is_taken = [&](uint32_t s) {
    return std::find(taken.begin(), taken.end(), s) != taken.end();
  };
  for (int pass = 0; pass < 2 && chosen.size() < want; ++pass) {
    for (const Ranked& r : ranked) {
      if (chosen.size() == want) break;
      const PlacementCandidate& c = *r.candidate;
      if (!c.available || is_taken(c.store_index)) continue;
      if (pass == 0 && !domains.Allows(c)) continue;
      chosen.push_back(&c);
      taken.push_back(c.store_index);
      domains.Add(c);
    }
  }
  return chosen;
}

}  // namespace

std::vector<uint32_t> RendezvousPlacement::Place(
    const ChunkId& chunk, int shard_count,
    const std::vector<PlacementCandidate>& candidates) const {
  if (shard_count <= 0) return {};
  const std::vector<Ranked> unique = Rank(chunk, candidates);
  const size_t want = static_cast<size_t>(shard_count);
  const std::vector<const PlacementCandidate*> chosen =
      Choose(unique, want, {}, DomainCount(max_per_domain_));
  if (chosen.empty()) return {};

  std::vector<uint32_t> placement;
  placement.reserve(want);
  if (chosen.size() < want) {
    // Degraded: every available store gets a shard, then reuse them in the same order.
    for (size_t i = 0; i < want; ++i) placement.push_back(chosen[i % chosen.size()]->store_index);
    return placement;
  }
  // Shard positions follow the ranking over all stores: a chosen store among the top
  // `want` keeps its rank's position; the positions of the others (unavailable, or passed
  // over for their domain) go to the chosen stores beyond the top `want`, in rank order.
  // So a store going down moves only its own shard, and no other shard changes position.
  const auto is_chosen = [&](const PlacementCandidate* c) {
    return std::find(chosen.begin(), chosen.end(), c) != chosen.end();
  };
  std::vector<uint32_t> spares;
  for (size_t i = 0; i < unique.size(); ++i) {
    if (i >= want && is_chosen(unique[i].candidate))
      spares.push_back(unique[i].candidate->store_index);
  }
  size_t next_spare = 0;
  for (size_t i = 0; i < want; ++i) {
    if (i < unique.size() && is_chosen(unique[i].candidate)) {
      placement.push_back(unique[i].candidate->store_index);
    } else {
      placement.push_back(spares[next_spare++]);
    }
  }
  return placement;
}

std::vector<uint32_t> RendezvousPlacement::PlaceMore(
    const ChunkId& chunk, int count, const std::vector<uint32_t>& kept,
    const std::vector<PlacementCandidate>& candidates) const {
  if (count <= 0) return {};
  DomainCount domains(max_per_domain_);
  for (uint32_t s : kept) {
    for (const PlacementCandidate& c : candidates) {
      if (c.store_index == s) {
        domains.Add(c);
        break;
      }
    }
  }
  std::vector<uint32_t> out;
  for (const PlacementCandidate* c :
       Choose(Rank(chunk, candidates), static_cast<size_t>(count), kept, domains))
    out.push_back(c->store_index);
  return out;
}

}  // namespace quid
