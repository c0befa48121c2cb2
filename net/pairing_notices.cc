// Pairing, second half: changes of what a node gives a peer (`quid lease set`, `quid lease
// revoke`, and reciprocity acting on its own) and the notices that carry them. Shrinking
// and revoking go by a notice the tenant's node acknowledges on receipt (its heartbeat
// answer, or its own next heartbeat, brings the acknowledgement back); growing goes by an
// offer of the lease at the larger capacity, countersigned like a renewal.
#include <algorithm>

#include "net/pairing.h"
#include "net/pairing_internal.h"
#include "storage/exchange/lease.h"
#include "storage/exchange/notice.h"

namespace quid::net {
namespace {

using exchange::Book;
using exchange::LeaseEntry;
using namespace pairing_internal;

// Leases this node hosts for `peer`, fully signed and in force now, oldest first.
std::vector<LeaseEntry*> GivenTo(Book* book, const PublicKey& self, const PublicKey& peer,
                                 int64_t now) {
  std::vector<LeaseEntry*> out;
  for (LeaseEntry& entry : *book->mutable_leases()) {
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok() || !exchange::FullySigned(entry.lease()) || exchange::HostKey(*terms) != self ||
        exchange::TenantKey(*terms) != peer)
      continue;
    if (!exchange::InForce(exchange::StateAt(entry, now))) continue;
    out.push_back(&entry);
  }
  return out;
}

}  // namespace

std::vector<std::string> NoticesBetween(const Book& book, const PublicKey& a, const PublicKey& b) {
  std::vector<std::string> out;
  for (const LeaseEntry& entry : book.leases()) {
    if (!entry.has_notice()) continue;
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok() || !Between(*terms, a, b)) continue;
    out.push_back(entry.notice().SerializeAsString());
  }
  return out;
}

bool Pairing::AdoptNotices(Book* book, const PublicKey& peer,
                           const google::protobuf::RepeatedPtrField<std::string>& notices) {
  bool changed = false;
  for (const std::string& bytes : notices) {
    exchange::SignedNotice notice;
    if (!notice.ParseFromString(bytes)) continue;
    Result<exchange::LeaseNotice> decoded = exchange::DecodeNotice(notice);
    if (!decoded.ok()) continue;
    LeaseEntry* entry = exchange::FindLease(book, decoded->lease_id());
    if (entry == nullptr || !exchange::FullySigned(entry->lease())) continue;
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry->lease());
    if (!terms.ok() || !Between(*terms, self_->public_key(), peer)) continue;
    // Only the host signs notices, so a peer cannot shrink what this node gives it.
    if (!exchange::VerifyNotice(notice, *terms).ok()) continue;
    if (exchange::TenantKey(*terms) == self_->public_key() && !exchange::Acknowledged(notice)) {
      // Received now: the notice runs from this moment, and the host learns so from the
      // answer to this heartbeat (or from this node's next one).
      if (entry->has_notice() && entry->notice().notice() == notice.notice()) continue;
      exchange::AcknowledgeNotice(&notice, Now(), SignerOf(self_));
    }
    changed = exchange::AdoptNotice(entry, notice) || changed;
  }
  return changed;
}

Result<GivenChange> Pairing::ChangeGiven(const PublicKey& peer, uint64_t capacity,
                                         uint32_t ratio_permille) {
  GivenChange change;
  QUID_RETURN_IF_ERROR(book_->Update([&](Book* book) -> Status {
    exchange::Peer* known = exchange::FindPeer(book, peer);
    if (known == nullptr)
      return Status::NotFound(Fingerprint(peer) + " is not a peer of this node");
    if (ratio_permille != 0) known->set_ratio_permille(ratio_permille);
    const int64_t now = Now();
    std::vector<LeaseEntry*> given = GivenTo(book, self_->public_key(), peer, now);
    if (given.empty())
      return Status::NotFound("this node gives " + Fingerprint(peer) + " no lease in force");
    for (LeaseEntry* entry : given) change.before += exchange::CapacityPromised(*entry, now);
    change.after = capacity;
    change.notice_s = 0;
    // Share the new capacity out over the leases in order: each keeps what it can up to its
    // record's capacity; the last one grows if the records together are too small.
    uint64_t left = capacity;
    for (size_t i = 0; i < given.size(); ++i) {
      LeaseEntry* entry = given[i];
      Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry->lease());
      if (!terms.ok()) continue;
      const bool last = i + 1 == given.size();
      const uint64_t record = terms->capacity_bytes();
      const uint64_t want = last ? left : std::min(left, record);
      left -= want;
      const uint64_t promised = exchange::CapacityPromised(*entry, now);
      entry->set_grow_to(0);
      if (want > record) {
        // More than the record gives: an offer at `want`, countersigned at the next
        // heartbeat; any notice on the lease is withdrawn by a notice back to the record.
        entry->set_grow_to(want);
        if (promised < record)
          exchange::AdoptNotice(entry, exchange::MakeNotice(*terms, record, now, SignerOf(self_)));
      } else if (want != promised) {
        exchange::AdoptNotice(entry, exchange::MakeNotice(*terms, want, now, SignerOf(self_)));
        if (want < promised) change.notice_s = std::max(change.notice_s, terms->notice_s());
      }
    }
    return Status::Ok();
  }));
  return change;
}

}  // namespace quid::net
