// Leases: the written terms under which a host keeps a tenant's shards (DESIGN.md, "The
// exchange"). A lease is a LeaseTerms record signed by both parties; the host offers and
// signs first, the tenant countersigns, and from then on either side can prove what was
// agreed. Renewal signs a new record with the same id and a higher sequence; the newest
// fully signed one is the lease.
//
// States, derived from the record, its entry's local facts and the time (never stored, so
// they cannot disagree with the clock):
//   offered   one signature only: the other party has not countersigned yet
//   active    both signed, within its term, never renewed
//   renewed   as active, on a record renewed at least once
//   expiring  a notice of revocation runs (notice_at + notice_s still ahead)
//   expired   its term ran out without a renewal
//   revoked   a notice ran out
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/base/status.h"
#include "storage/crypto/node_key.h"
#include "storage/exchange/exchange.pb.h"

namespace quid::exchange {

enum class LeaseState { kOffered, kActive, kRenewed, kExpiring, kExpired, kRevoked };
std::string_view LeaseStateName(LeaseState state);

// Terms decoded from a SignedLease with the keys checked for length; kCorrupt otherwise.
Result<LeaseTerms> DecodeTerms(const SignedLease& lease);
PublicKey TenantKey(const LeaseTerms& terms);
PublicKey HostKey(const LeaseTerms& terms);
std::string LeaseIdHex(const LeaseTerms& terms);

// A record of `terms`, signed by no one yet.
SignedLease MakeLease(const LeaseTerms& terms);
// Signs as the party `self` is in the lease (tenant or host); kPermission if neither.
Status SignLease(SignedLease* lease, const PublicKey& self, const Signer& sign);
// Every signature present verifies, and with `need_both` both are present: kCorrupt for a
// bad or forged signature or record, kInvalid for a missing one.
Status VerifyLease(const SignedLease& lease, bool need_both);
bool FullySigned(const SignedLease& lease);

// The state of `entry` at `now` (Unix seconds). REQUIRES: the record decodes.
LeaseState StateAt(const LeaseEntry& entry, int64_t now);
// When the lease stops being in force: the end of its term, or of a running notice.
int64_t EndsAt(const LeaseEntry& entry);
// True in the states under which a host stores the tenant's shards.
bool InForce(LeaseState state);

}  // namespace quid::exchange
