// Fuzz target: a lease record as a peer sends it (a join offer, a countersignature, a
// heartbeat). Parsing, decoding the terms, verifying the signatures and deriving a state
// must end in a Status or a state, whatever the bytes; a record that verifies with both
// signatures must decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "storage/exchange/lease.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  quid::exchange::SignedLease lease;
  if (!lease.ParseFromArray(data, static_cast<int>(size))) return 0;
  quid::Status verified = quid::exchange::VerifyLease(lease, true);
  quid::Result<quid::exchange::LeaseTerms> terms = quid::exchange::DecodeTerms(lease);
  if (verified.ok()) Check(terms.ok());
  quid::exchange::LeaseEntry entry;
  *entry.mutable_lease() = lease;
  entry.set_notice_at(1'800'000'000);
  const quid::exchange::LeaseState state = quid::exchange::StateAt(entry, 1'800'000'100);
  Check(!quid::exchange::LeaseStateName(state).empty());
  (void)quid::exchange::EndsAt(entry);
  return 0;
}
