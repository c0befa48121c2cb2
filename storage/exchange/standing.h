// Standing: what this node gives a peer, what the peer gives it, and whether the peer holds
// up its side (DESIGN.md, "The exchange": reciprocity). Judged from this node's book alone
// (its own leases, notices and heartbeat counts), never from what the peer says of itself.
//
//   given     raw bytes this node promises the peer, after every notice (CapacityPromised)
//   received  raw bytes the peer promises this node, likewise; a lease that lapsed while the
//             two were apart counts for one more term (it renews when they meet again)
//   allowed   what reciprocity lets this node give: received x ratio (1:1 unless set per
//             peer), or nothing for a peer in poor standing
//   standing  "new" until one lease term of observations, then "good", or "poor" when the
//             peer answered fewer heartbeats than the uptime its leases promise, or its
//             host failed more than a tenth of this node's volume's puts and reads
// A pairing made by `serve --tenant` is one-way by design: it is never judged.
#pragma once

#include <cstdint>
#include <string>

#include "storage/crypto/node_key.h"
#include "storage/exchange/exchange.pb.h"

namespace quid::exchange {

constexpr uint32_t kDefaultRatioPermille = 1000;

struct Standing {
  uint64_t given_bytes = 0;     // promised to the peer (after notices)
  uint64_t received_bytes = 0;  // promised by the peer (after notices)
  uint64_t allowed_bytes = 0;   // what reciprocity lets this node give
  uint32_t ratio_permille = kDefaultRatioPermille;
  double uptime = 0;       // heartbeats answered / sent
  int64_t observed_s = 0;  // since the peer was first seen
  bool reciprocal = true;  // false for `serve --tenant` pairings
  std::string standing;    // "new", "good" or "poor"
  std::string why;         // for "poor": one line
};

Standing JudgeStanding(const Book& book, const PublicKey& self, const Peer& peer, int64_t now);

}  // namespace quid::exchange
