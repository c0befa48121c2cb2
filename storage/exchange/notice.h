// Notices: how a host changes what it gives under a lease (DESIGN.md, "The exchange"). The
// host signs a LeaseNotice (the capacity it will give, 0 to revoke); the tenant's node
// acknowledges it on receipt by signing the moment it did, and the notice runs from then,
// for the lease's notice period. A tenant that never received a notice was never given
// one: until the acknowledgement the lease stands as it was, and no host may delete data
// under it.
//
// Pure functions over records; the daemon moves them in heartbeats (net/pairing.h).
#pragma once

#include <cstdint>

#include "storage/base/status.h"
#include "storage/crypto/node_key.h"
#include "storage/exchange/exchange.pb.h"

namespace quid::exchange {

// A notice on `terms`' lease from its host: give `capacity` once it has run. Signed by the
// host (`sign` must be the host's key).
SignedNotice MakeNotice(const LeaseTerms& terms, uint64_t capacity, int64_t now,
                        const Signer& host_sign);
// The tenant's acknowledgement, at `now`. REQUIRES: VerifyNotice passed.
void AcknowledgeNotice(SignedNotice* notice, int64_t now, const Signer& tenant_sign);
// Decodes the notice; kCorrupt for one that does not parse.
Result<LeaseNotice> DecodeNotice(const SignedNotice& notice);
// The host's signature verifies for `terms`' lease, and the tenant's too when present:
// kCorrupt for a forged or malformed one, kInvalid for a notice on another lease.
Status VerifyNotice(const SignedNotice& notice, const LeaseTerms& terms);
bool Acknowledged(const SignedNotice& notice);

// Keeps `notice` on `entry` if it is newer than the one held (given later, or the same
// one now acknowledged), and sets entry.notice_at for an acknowledged revocation. True if
// the entry changed. REQUIRES: VerifyNotice passed for entry's lease.
bool AdoptNotice(LeaseEntry* entry, const SignedNotice& notice);

// Raw bytes the host gives under `entry` at `now`: its capacity, the notice's once an
// acknowledged notice has run, 0 when the lease is not in force.
uint64_t CapacityAt(const LeaseEntry& entry, int64_t now);
// What the host will give once every notice on `entry` has run: what a tenant plans by,
// and what reciprocity counts. Unacknowledged notices count (the host has said so), a
// lease past its term counts 0.
uint64_t CapacityPromised(const LeaseEntry& entry, int64_t now);

}  // namespace quid::exchange
