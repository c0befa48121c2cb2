// A host's service score and whether to trust it, from what the volume saw it do. Pure
// functions, shared by the mount daemon and the simulator.
#pragma once

#include <cstdint>

namespace quid {

struct ServiceRecord {
  uint64_t calls_ok = 0, calls_failed = 0;    // puts and reads
  uint64_t audits_ok = 0, audits_failed = 0;  // shards audited there, and found bad
};

// In [0.01, 1]: the share of calls that went well times the share of audits that did, each
// with a prior of good ones (20 calls, 2 audits) so a new host starts at 1 and one early
// failure does not sink it. Audits count apart from calls: a host answering every call
// but failing half its audits must score low, however many calls it answers.
double ServiceScore(const ServiceRecord& r);

// A host caught failing audits often enough that no shard of it can be believed: at least
// 3 failures, making up at least a tenth of its audits. Its shards are rebuilt elsewhere
// (not copied: it might copy garbage) and it gets no new ones.
bool Distrusted(const ServiceRecord& r);

// Placement weighs a host by its free room (GiB) times its service score (DESIGN.md); a
// full host keeps a sliver, since the policy never places on weight 0 and a host that frees
// room should come back without a special case.
double PlacementWeight(uint64_t capacity_bytes, uint64_t used_bytes, const ServiceRecord& record);

}  // namespace quid
