#include "net/pairing.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "net/pairing_internal.h"
#include "storage/crypto/sodium_init.h"
#include "storage/exchange/lease.h"
#include "storage/exchange/notice.h"

namespace quid::net {
namespace {

using namespace pairing_internal;  // the helpers pairing_notices.cc shares

using exchange::Book;
using exchange::SignedLease;

// How far the inviter's start time may be from the joiner's clock: clocks drift, but an
// offer that starts a day away is not the one the code promised.
constexpr int64_t kClockSlackS = 600;

std::array<uint8_t, 16> SecretOf(const exchange::Invitation& invitation) {
  std::array<uint8_t, 16> secret{};
  std::memcpy(secret.data(), invitation.secret().data(),
              std::min(invitation.secret().size(), secret.size()));
  return secret;
}

// True if the peer's addresses changed.
// Takes the labels a peer's heartbeat carried, at most 16 of 64 bytes (what `quid serve`
// accepts); anything past that is the peer's mistake and dropped. Not worth a synced write:
// every heartbeat carries them again.
void TakePeerLabels(exchange::Peer* peer,
                    const google::protobuf::RepeatedPtrField<std::string>& labels) {
  peer->clear_labels();
  for (const std::string& label : labels) {
    if (peer->labels_size() >= 16) break;
    if (!label.empty() && label.size() <= 64) peer->add_labels(label);
  }
}

bool SetAddresses(exchange::Peer* peer, const std::vector<std::string>& addresses) {
  if (addresses.empty()) return false;
  if (std::equal(addresses.begin(), addresses.end(), peer->addresses().begin(),
                 peer->addresses().end()))
    return false;
  peer->clear_addresses();
  for (const std::string& a : addresses) peer->add_addresses(a);
  return true;
}

}  // namespace

std::vector<std::string> CleanAddresses(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<std::string> out;
  for (const std::string& address : in) {
    if (out.size() == kMaxInvitationAddresses) break;
    const size_t colon = address.rfind(':');
    if (address.empty() || address.size() > kMaxInvitationNameBytes + 8 || colon == 0 ||
        colon == std::string::npos || colon + 1 == address.size())
      continue;
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  }
  return out;
}

std::vector<std::string> LeasesBetween(const Book& book, const PublicKey& a, const PublicKey& b) {
  std::vector<std::string> out;
  for (const exchange::LeaseEntry& entry : book.leases()) {
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok() || !exchange::FullySigned(entry.lease()) || !Between(*terms, a, b)) continue;
    out.push_back(entry.lease().SerializeAsString());
  }
  return out;
}

Result<Invitation> Pairing::Invite(uint64_t capacity, int64_t valid_s, uint32_t ratio_permille,
                                   std::vector<std::string> addresses) {
  if (capacity == 0) return Status::Invalid("an invitation needs a capacity above 0");
  if (valid_s <= 0) return Status::Invalid("an invitation needs a validity above 0");
  EnsureSodium();
  Invitation code;
  code.addresses = std::move(addresses);
  if (!FromHex(self_->fingerprint(), code.key_fingerprint))
    return Status::Invalid("node fingerprint is malformed");
  randombytes_buf(code.secret.data(), code.secret.size());
  code.expires_at = Now() + valid_s;
  code.capacity_bytes = capacity;
  code.ratio_milli = ratio_permille;
  QUID_RETURN_IF_ERROR(CheckInvitation(code));
  QUID_RETURN_IF_ERROR(book_->Update([&](Book* book) {
    exchange::Invitation* kept = book->add_invitations();
    kept->set_secret(
        std::string(reinterpret_cast<const char*>(code.secret.data()), code.secret.size()));
    kept->set_created_at(Now());
    kept->set_expires_at(code.expires_at);
    kept->set_capacity_bytes(capacity);
    kept->set_ratio_permille(ratio_permille);
    return Status::Ok();
  }));
  return code;
}

Status Pairing::Trust(const PublicKey& peer, std::string address, uint64_t capacity) {
  if (peer == self_->public_key()) return Status::Invalid("a node cannot pair with itself");
  if (capacity == 0) return Status::Invalid("trust needs a capacity above 0");
  return book_->Update([&](Book* book) {
    exchange::Trust* trust = nullptr;
    for (exchange::Trust& t : *book->mutable_trusts())
      if (SameKey(t.key(), peer)) trust = &t;
    if (trust == nullptr) trust = book->add_trusts();
    trust->set_key(KeyString(peer));
    trust->clear_addresses();
    trust->add_addresses(std::move(address));
    trust->set_capacity_bytes(capacity);
    exchange::Peer* known = exchange::UpsertPeer(book, peer, Now());
    SetAddresses(known, {trust->addresses(0)});
    if (known->paired_by().empty()) known->set_paired_by("trust");
    return Status::Ok();
  });
}

SignedLease Pairing::NewLease(const PublicKey& tenant, const PublicKey& host, uint64_t capacity,
                              uint32_t ratio_permille) {
  EnsureSodium();
  exchange::LeaseTerms terms;
  std::array<uint8_t, 16> id{};
  randombytes_buf(id.data(), id.size());
  terms.set_lease_id(std::string(reinterpret_cast<const char*>(id.data()), id.size()));
  terms.set_tenant_key(KeyString(tenant));
  terms.set_host_key(KeyString(host));
  terms.set_capacity_bytes(capacity);
  terms.set_start(Now());
  terms.set_term_s(policy_.term_s);
  terms.set_auto_renew(true);
  terms.set_notice_s(policy_.notice_s);
  terms.mutable_service()->set_uptime_permille(policy_.uptime_permille);
  terms.mutable_service()->set_read_latency_ms(policy_.read_latency_ms);
  terms.set_ratio_permille(ratio_permille);
  SignedLease lease = exchange::MakeLease(terms);
  Status signed_ = exchange::SignLease(&lease, self_->public_key(), SignerOf(self_));
  (void)signed_;  // this node is a party by construction
  return lease;
}

Result<wire::JoinOffer> Pairing::OnJoin(const PublicKey& joiner, ByteSpan channel_binding,
                                        const wire::Join& join) {
  if (joiner == self_->public_key()) return Status::Invalid("a node cannot pair with itself");
  const std::vector<std::string> addresses = CleanAddresses(join.addresses());
  wire::JoinOffer offer;
  Status changed = book_->Update([&](Book* book) -> Status {
    const int64_t now = Now();
    uint64_t capacity = 0;
    uint32_t ratio = 1000;
    std::string paired_by;
    if (!join.proof().empty()) {
      exchange::Invitation* match = nullptr;
      for (exchange::Invitation& inv : *book->mutable_invitations()) {
        if (JoinProofMatches(SecretOf(inv), channel_binding, AsBytes(join.proof()))) match = &inv;
      }
      if (match == nullptr)
        return Status(Code::kPermission, "the inviter knows no such invitation code");
      if (match->used()) return Status(Code::kPermission, "this invitation code was already used");
      if (!match->claimed_by().empty() && !SameKey(match->claimed_by(), joiner))
        return Status(Code::kPermission, "this invitation code was already used by another node");
      if (now >= match->expires_at())
        return Status(Code::kPermission, "this invitation code has expired");
      match->set_claimed_by(KeyString(joiner));
      capacity = match->capacity_bytes();
      ratio = match->ratio_permille();
      paired_by = "invitation";
    } else {
      const exchange::Trust* trust = nullptr;
      for (const exchange::Trust& t : book->trusts())
        if (SameKey(t.key(), joiner)) trust = &t;
      if (trust == nullptr)
        return Status(Code::kPermission, "this node was not told to trust " + Fingerprint(joiner) +
                                             " (run quid trust here too)");
      capacity = trust->capacity_bytes();
      paired_by = "trust";
    }
    for (const exchange::LeaseEntry& entry : book->leases()) {
      Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
      if (terms.ok() && exchange::FullySigned(entry.lease()) &&
          Between(*terms, self_->public_key(), joiner) &&
          exchange::InForce(exchange::StateAt(entry, now)))
        return Status::Exists("already partners with " + Fingerprint(joiner) +
                              " under leases in force (quid lease set changes them)");
    }
    exchange::Peer* peer = exchange::UpsertPeer(book, joiner, now);
    SetAddresses(peer, addresses);
    if (peer->paired_by().empty()) peer->set_paired_by(paired_by);
    peer->set_last_seen(now);

    // A joiner asking again gets the offer it was made, not a second pair of leases.
    std::vector<const SignedLease*> pending;
    for (const exchange::LeaseEntry& entry : book->leases()) {
      Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
      if (terms.ok() && !exchange::FullySigned(entry.lease()) &&
          Between(*terms, self_->public_key(), joiner) && terms->capacity_bytes() == capacity)
        pending.push_back(&entry.lease());
    }
    if (pending.size() != 2) {
      for (int i = book->leases_size() - 1; i >= 0; --i) {
        Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(book->leases(i).lease());
        if (terms.ok() && !exchange::FullySigned(book->leases(i).lease()) &&
            Between(*terms, self_->public_key(), joiner))
          book->mutable_leases()->DeleteSubrange(i, 1);
      }
      *book->add_leases()->mutable_lease() = NewLease(joiner, self_->public_key(), capacity, ratio);
      *book->add_leases()->mutable_lease() = NewLease(self_->public_key(), joiner, capacity, ratio);
      pending = {&book->leases(book->leases_size() - 2).lease(),
                 &book->leases(book->leases_size() - 1).lease()};
    }
    for (const SignedLease* lease : pending) offer.add_leases(lease->SerializeAsString());
    return Status::Ok();
  });
  if (!changed.ok()) return changed;
  return offer;
}

Result<wire::Countersign> Pairing::AcceptOffer(const PublicKey& inviter, uint64_t capacity,
                                               const wire::JoinOffer& offer) {
  if (offer.leases_size() != 2) return Status::Corrupt("the inviter's offer is malformed");
  const PublicKey& self = self_->public_key();
  const int64_t now = Now();
  wire::Countersign countersign;
  std::vector<SignedLease> leases;
  bool hosts = false, tenants = false;
  for (const std::string& bytes : offer.leases()) {
    SignedLease lease;
    if (!lease.ParseFromString(bytes)) return Status::Corrupt("the inviter's offer is malformed");
    QUID_RETURN_IF_ERROR(exchange::VerifyLease(lease, false));
    QUID_ASSIGN_OR_RETURN(exchange::LeaseTerms terms, exchange::DecodeTerms(lease));
    if (!Between(terms, self, inviter)) return Status::Corrupt("the offer names other nodes");
    const bool inviter_hosts = SameKey(terms.host_key(), inviter);
    const std::string& inviter_signature =
        inviter_hosts ? lease.host_signature() : lease.tenant_signature();
    if (inviter_signature.empty()) return Status::Corrupt("the inviter did not sign its offer");
    if (terms.capacity_bytes() != capacity)
      return Status::Corrupt("the offer's capacity differs from the code's");
    if (terms.start() > now + kClockSlackS || terms.start() + terms.term_s() <= now)
      return Status::Corrupt("the offer's term does not run now (check both clocks)");
    (inviter_hosts ? hosts : tenants) = true;
    QUID_RETURN_IF_ERROR(exchange::SignLease(&lease, self, SignerOf(self_)));
    leases.push_back(std::move(lease));
  }
  if (!hosts || !tenants) return Status::Corrupt("the offer is not one lease each way");
  const std::vector<std::string> addresses = CleanAddresses(offer.addresses());
  QUID_RETURN_IF_ERROR(book_->Update([&](Book* book) {
    exchange::Peer* peer = exchange::UpsertPeer(book, inviter, now);
    SetAddresses(peer, addresses);
    if (peer->paired_by().empty()) peer->set_paired_by("invitation");
    peer->set_last_seen(now);
    for (const SignedLease& lease : leases) exchange::AdoptLease(book, lease);
    return Status::Ok();
  }));
  for (const SignedLease& lease : leases) countersign.add_leases(lease.SerializeAsString());
  return countersign;
}

bool Pairing::AdoptBetween(Book* book, const PublicKey& self, const PublicKey& peer,
                           const google::protobuf::RepeatedPtrField<std::string>& leases) {
  bool changed = false;
  for (const std::string& bytes : leases) {
    SignedLease lease;
    if (!lease.ParseFromString(bytes) || !exchange::VerifyLease(lease, true).ok()) continue;
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(lease);
    if (!terms.ok() || !Between(*terms, self, peer)) continue;
    changed = exchange::AdoptLease(book, lease) || changed;
  }
  return changed;
}

Status Pairing::OnCountersign(const PublicKey& joiner, const wire::Countersign& countersign) {
  return book_->Update([&](Book* book) -> Status {
    // Only the offers this node made: a countersigned record of terms it never offered
    // (its own signature would not verify) is dropped by AdoptBetween's check.
    int adopted = 0;
    for (const std::string& bytes : countersign.leases()) {
      SignedLease lease;
      if (!lease.ParseFromString(bytes) || !exchange::VerifyLease(lease, true).ok())
        return Status::Corrupt("countersigned lease does not verify");
      Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(lease);
      if (!terms.ok() || !Between(*terms, self_->public_key(), joiner))
        return Status::Corrupt("countersigned lease names other nodes");
      if (exchange::FindLease(book, terms->lease_id()) == nullptr)
        return Status(Code::kPermission, "countersigned lease was never offered");
      if (exchange::AdoptLease(book, lease)) ++adopted;
    }
    for (exchange::Invitation& inv : *book->mutable_invitations())
      if (SameKey(inv.claimed_by(), joiner)) inv.set_used(true);
    if (adopted == 0 && countersign.leases_size() == 0)
      return Status::Invalid("nothing to countersign");
    return Status::Ok();
  });
}

Result<wire::Heartbeat> Pairing::OnHeartbeat(const PublicKey& peer,
                                             const wire::Heartbeat& heartbeat) {
  wire::Heartbeat reply;
  const std::vector<std::string> addresses = CleanAddresses(heartbeat.addresses());
  bool durable = false;  // only a change of leases or addresses must survive a power cut
  QUID_RETURN_IF_ERROR(book_->Update(
      [&](Book* book) -> Status {
        exchange::Peer* known = exchange::FindPeer(book, peer);
        if (known == nullptr)
          return Status(Code::kPermission, Fingerprint(peer) + " is not a peer of this node");
        durable = SetAddresses(known, addresses);
        TakePeerLabels(known, heartbeat.labels());
        known->set_last_seen(Now());
        durable = AdoptBetween(book, self_->public_key(), peer, heartbeat.leases()) || durable;
        durable = CountersignRenewals(book, peer, heartbeat.renewals()) || durable;
        durable = AdoptNotices(book, peer, heartbeat.notices()) || durable;
        for (std::string& lease : LeasesBetween(*book, self_->public_key(), peer))
          reply.add_leases(std::move(lease));
        for (std::string& notice : NoticesBetween(*book, self_->public_key(), peer))
          reply.add_notices(std::move(notice));
        for (const std::string& label : labels_) reply.add_labels(label);
        return Status::Ok();
      },
      &durable));
  return reply;
}

wire::Heartbeat Pairing::MakeHeartbeat(const PublicKey& peer, std::vector<std::string> addresses) {
  wire::Heartbeat heartbeat;
  for (std::string& a : addresses) heartbeat.add_addresses(std::move(a));
  for (const std::string& label : labels_) heartbeat.add_labels(label);
  const Book book = book_->Snapshot();
  for (std::string& lease : LeasesBetween(book, self_->public_key(), peer))
    heartbeat.add_leases(std::move(lease));
  for (std::string& notice : NoticesBetween(book, self_->public_key(), peer))
    heartbeat.add_notices(std::move(notice));
  const int64_t now = Now();
  for (const exchange::LeaseEntry& entry : book.leases()) {
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok() || !terms->auto_renew() || exchange::HostKey(*terms) != self_->public_key() ||
        exchange::TenantKey(*terms) != peer)
      continue;
    const exchange::LeaseState state = exchange::StateAt(entry, now);
    // A lease that lapsed while the two were apart (no notice, within a term of its end)
    // renews when they meet again: a partner away on holiday keeps its leases.
    const bool lapsed = state == exchange::LeaseState::kExpired && !entry.has_notice() &&
                        now < exchange::EndsAt(entry) + terms->term_s();
    if (state != exchange::LeaseState::kActive && state != exchange::LeaseState::kRenewed &&
        !lapsed)
      continue;
    // A lease being revoked is never renewed; one asked to grow is offered at once.
    if (entry.has_notice() && entry.notice_at() == 0) {
      Result<exchange::LeaseNotice> notice = exchange::DecodeNotice(entry.notice());
      if (notice.ok() && notice->capacity_bytes() == 0) continue;
    }
    const bool grow = entry.grow_to() > terms->capacity_bytes();
    if (!grow && now < terms->start() + terms->term_s() / 2) continue;
    exchange::LeaseTerms next = *terms;
    next.set_sequence(terms->sequence() + 1);
    next.set_start(now);
    if (grow) next.set_capacity_bytes(entry.grow_to());
    SignedLease offer = exchange::MakeLease(next);
    if (exchange::SignLease(&offer, self_->public_key(), SignerOf(self_)).ok())
      heartbeat.add_renewals(offer.SerializeAsString());
  }
  return heartbeat;
}

bool Pairing::CountersignRenewals(Book* book, const PublicKey& host,
                                  const google::protobuf::RepeatedPtrField<std::string>& offers) {
  bool changed = false;
  for (const std::string& bytes : offers) {
    SignedLease offer;
    if (!offer.ParseFromString(bytes) || !exchange::VerifyLease(offer, false).ok() ||
        offer.host_signature().empty())
      continue;
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(offer);
    if (!terms.ok() || exchange::HostKey(*terms) != host ||
        exchange::TenantKey(*terms) != self_->public_key())
      continue;
    // Only a renewal of a lease held, on its terms: the same term, notice and service, the
    // next sequence number, and the same capacity or more (the host gives more).
    exchange::LeaseEntry* held = exchange::FindLease(book, terms->lease_id());
    if (held == nullptr || !exchange::FullySigned(held->lease())) continue;
    Result<exchange::LeaseTerms> old = exchange::DecodeTerms(held->lease());
    if (!old.ok() || terms->sequence() != old->sequence() + 1) continue;
    if (terms->capacity_bytes() < old->capacity_bytes()) continue;  // less goes by notice
    exchange::LeaseTerms same = *terms;
    same.set_sequence(old->sequence());
    same.set_start(old->start());
    same.set_capacity_bytes(old->capacity_bytes());
    if (same.SerializeAsString() != old->SerializeAsString()) continue;
    if (!exchange::SignLease(&offer, self_->public_key(), SignerOf(self_)).ok()) continue;
    changed = exchange::AdoptLease(book, offer) || changed;
  }
  return changed;
}

Status Pairing::OnHeartbeatReply(const PublicKey& peer, const wire::Heartbeat* reply) {
  bool durable = false;
  return book_->Update(
      [&](Book* book) -> Status {
        exchange::Peer* known = exchange::FindPeer(book, peer);
        if (known == nullptr) return Status::NotFound(Fingerprint(peer) + " is no longer a peer");
        known->set_heartbeats_sent(known->heartbeats_sent() + 1);
        if (reply == nullptr) return Status::Ok();
        known->set_heartbeats_answered(known->heartbeats_answered() + 1);
        known->set_last_seen(Now());
        durable = SetAddresses(known, CleanAddresses(reply->addresses()));
        TakePeerLabels(known, reply->labels());
        durable = AdoptBetween(book, self_->public_key(), peer, reply->leases()) || durable;
        durable = AdoptNotices(book, peer, reply->notices()) || durable;
        // A growth this node offered is done once the peer's countersigned record is held.
        for (exchange::LeaseEntry& entry : *book->mutable_leases()) {
          Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
          if (entry.grow_to() != 0 && terms.ok() && exchange::FullySigned(entry.lease()) &&
              terms->capacity_bytes() >= entry.grow_to()) {
            entry.set_grow_to(0);
            durable = true;
          }
        }
        return Status::Ok();
      },
      &durable);
}

}  // namespace quid::net
