// Pairing by invitation and by trust, and heartbeats, on two (or three) node books in
// memory: both sides end with the same two fully signed leases; a used, expired, wrong or
// replayed proof is refused and changes nothing; a forged offer is refused by the joiner.
#include "net/pairing.h"
#include "net/node_service.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <string>

#include "storage/base/mem_env.h"
#include "storage/crypto/sodium_init.h"
#include "storage/exchange/lease.h"
#include "storage/exchange/notice.h"
#include "storage/exchange/standing.h"

namespace quid::net {
namespace {

using exchange::LeaseState;

constexpr uint64_t kCapacity = 48 << 20;

struct Node {
  MemEnv env;
  NodeIdentity identity = NodeIdentity::Generate();
  std::unique_ptr<exchange::NodeBook> book;
  std::unique_ptr<Pairing> pairing;
  Node(const Clock* clock, const std::string& name) {
    book = std::move(exchange::NodeBook::Open(&env, "/" + name + "/node").value());
    LeasePolicy policy;
    policy.term_s = 600;
    policy.notice_s = 20;
    pairing = std::make_unique<Pairing>(book.get(), &identity, clock, policy);
  }
  const PublicKey& key() const { return identity.public_key(); }
  std::string Serialized() const { return book->Snapshot().SerializeAsString(); }
};

std::array<uint8_t, 32> RandomBinding() {
  EnsureSodium();
  std::array<uint8_t, 32> b{};
  randombytes_buf(b.data(), b.size());
  return b;
}

wire::Join JoinWith(const Invitation& code, ByteSpan binding) {
  wire::Join join;
  auto proof = JoinProof(code.secret, binding);
  join.set_proof(std::string(reinterpret_cast<const char*>(proof.data()), proof.size()));
  join.add_addresses("127.0.0.1:7002");
  return join;
}

class PairingTest : public ::testing::Test {
 protected:
  FakeClock clock_{int64_t{1'800'000'000} * 1'000'000'000};
  Node a_{&clock_, "a"}, b_{&clock_, "b"}, c_{&clock_, "c"};

  Invitation Invite() {
    Result<Invitation> code = a_.pairing->Invite(kCapacity, 3600, 1000, {"127.0.0.1:7001"});
    EXPECT_TRUE(code.ok()) << code.status().ToString();
    // What a person pastes: the printed code, decoded again.
    Result<Invitation> pasted = DecodeInvitation(EncodeInvitation(*code));
    EXPECT_TRUE(pasted.ok());
    return *pasted;
  }

  // Runs the whole join of `joiner` to a_ with `code`; OK once both sides hold the leases.
  Status Join(Node& joiner, const Invitation& code) {
    const auto binding = RandomBinding();
    Result<wire::JoinOffer> offer =
        a_.pairing->OnJoin(joiner.key(), binding, JoinWith(code, binding));
    if (!offer.ok()) return offer.status();
    Result<wire::Countersign> signed_ =
        joiner.pairing->AcceptOffer(a_.key(), code.capacity_bytes, *offer);
    if (!signed_.ok()) return signed_.status();
    return a_.pairing->OnCountersign(joiner.key(), *signed_);
  }

  // "given" / "received" leases of `node` with `peer`, in the given state.
  static int Count(const Node& node, const Node& peer, bool given, LeaseState state, int64_t now) {
    int n = 0;
    const exchange::Book book = node.book->Snapshot();
    for (const auto& entry : book.leases()) {
      auto terms = exchange::DecodeTerms(entry.lease());
      if (!terms.ok()) continue;
      const PublicKey host = exchange::HostKey(*terms), tenant = exchange::TenantKey(*terms);
      const bool is_given = host == node.key() && tenant == peer.key();
      const bool is_received = tenant == node.key() && host == peer.key();
      if ((given ? is_given : is_received) && exchange::StateAt(entry, now) == state &&
          terms->capacity_bytes() == kCapacity)
        ++n;
    }
    return n;
  }
  int64_t Now() const { return clock_.now_ns() / 1'000'000'000; }
  // One heartbeat from `from` to `to`, and its answer back.
  static void Beat(Node& from, Node& to) {
    auto reply = to.pairing->OnHeartbeat(from.key(), from.pairing->MakeHeartbeat(to.key(), {}));
    ASSERT_TRUE(reply.ok());
    ASSERT_TRUE(from.pairing->OnHeartbeatReply(to.key(), &*reply).ok());
  }
};

TEST_F(PairingTest, AnInvitationOpensOneActiveLeaseEachWayOnBothSides) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  for (bool given : {true, false}) {
    EXPECT_EQ(Count(a_, b_, given, LeaseState::kActive, Now()), 1);
    EXPECT_EQ(Count(b_, a_, given, LeaseState::kActive, Now()), 1);
  }
  // Both hold the very same records.
  EXPECT_EQ(LeasesBetween(a_.book->Snapshot(), a_.key(), b_.key()),
            LeasesBetween(b_.book->Snapshot(), a_.key(), b_.key()));
  const exchange::Book at_a = a_.book->Snapshot();
  const exchange::Peer* b_at_a = exchange::FindPeer(at_a, b_.key());
  ASSERT_NE(b_at_a, nullptr);
  EXPECT_EQ(b_at_a->addresses(0), "127.0.0.1:7002");
  EXPECT_EQ(b_at_a->paired_by(), "invitation");
}

TEST_F(PairingTest, HeartbeatsCarryEachSidesFailureDomainLabels) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  a_.pairing->SetLabels({"site=home", "owner=alice"});
  b_.pairing->SetLabels({"site=office"});
  Beat(a_, b_);  // a_'s labels reach b_ in the beat, b_'s reach a_ in the answer
  const auto labels_of = [](Node& at, Node& peer) {
    const exchange::Book book = at.book->Snapshot();
    const exchange::Peer* p = exchange::FindPeer(book, peer.key());
    return p ? std::vector<std::string>(p->labels().begin(), p->labels().end())
             : std::vector<std::string>{"?"};
  };
  EXPECT_EQ(labels_of(b_, a_), (std::vector<std::string>{"site=home", "owner=alice"}));
  EXPECT_EQ(labels_of(a_, b_), (std::vector<std::string>{"site=office"}));
  a_.pairing->SetLabels({});  // relabelled: the next beat says so
  Beat(a_, b_);
  EXPECT_TRUE(labels_of(b_, a_).empty());
}

TEST_F(PairingTest, AUsedCodeIsRefusedAndChangesNothing) {
  const Invitation code = Invite();
  ASSERT_TRUE(Join(b_, code).ok());
  const std::string before = a_.Serialized();
  Status again = Join(c_, code);
  EXPECT_EQ(again.code(), Code::kPermission);
  EXPECT_NE(again.message().find("already used"), std::string::npos) << again.message();
  EXPECT_EQ(a_.Serialized(), before);
  EXPECT_EQ(c_.book->Snapshot().leases_size(), 0);
}

TEST_F(PairingTest, AWrongSecretChangesNothingAndTheGenuineCodeStillWorks) {
  const Invitation code = Invite();
  Invitation forged = code;
  forged.secret[7] ^= 1;
  const std::string before = a_.Serialized();
  Status refused = Join(c_, forged);
  EXPECT_EQ(refused.code(), Code::kPermission);
  EXPECT_EQ(a_.Serialized(), before);
  ASSERT_TRUE(Join(c_, code).ok());
  EXPECT_EQ(Count(a_, c_, true, LeaseState::kActive, Now()), 1);
}

TEST_F(PairingTest, AProofMadeForAnotherChannelIsRefused) {
  const Invitation code = Invite();
  const auto overheard = RandomBinding();
  const std::string before = a_.Serialized();
  // A proof replayed from another session (a relay in the middle) does not match here.
  auto offer = a_.pairing->OnJoin(c_.key(), RandomBinding(), JoinWith(code, overheard));
  EXPECT_EQ(offer.status().code(), Code::kPermission);
  EXPECT_EQ(a_.Serialized(), before);
}

TEST_F(PairingTest, AnExpiredCodeIsRefused) {
  const Invitation code = Invite();
  clock_.advance_ns(int64_t{3601} * 1'000'000'000);
  const std::string before = a_.Serialized();
  Status late = Join(b_, code);
  EXPECT_EQ(late.code(), Code::kPermission);
  EXPECT_NE(late.message().find("expired"), std::string::npos);
  EXPECT_EQ(a_.Serialized(), before);
}

TEST_F(PairingTest, AJoinerThatAsksAgainGetsTheSameOfferAndNoOneElseCanUseTheCode) {
  const Invitation code = Invite();
  const auto binding = RandomBinding();
  auto first = a_.pairing->OnJoin(b_.key(), binding, JoinWith(code, binding));
  ASSERT_TRUE(first.ok());
  const auto binding2 = RandomBinding();
  auto second = a_.pairing->OnJoin(b_.key(), binding2, JoinWith(code, binding2));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->SerializeAsString(), second->SerializeAsString());
  EXPECT_EQ(a_.book->Snapshot().leases_size(), 2);
  EXPECT_EQ(Join(c_, code).code(), Code::kPermission);  // claimed by b_
  ASSERT_TRUE(b_.pairing->AcceptOffer(a_.key(), kCapacity, *second).ok());
}

TEST_F(PairingTest, TheJoinerRefusesAnOfferThatIsNotWhatTheCodeSaid) {
  const Invitation code = Invite();
  const auto binding = RandomBinding();
  auto offer = a_.pairing->OnJoin(b_.key(), binding, JoinWith(code, binding));
  ASSERT_TRUE(offer.ok());
  const std::string before = b_.Serialized();
  // Another capacity than the code's.
  EXPECT_EQ(b_.pairing->AcceptOffer(a_.key(), kCapacity / 2, *offer).status().code(),
            Code::kCorrupt);
  // An offer from someone posing as the inviter (c_ is not the key the code pins).
  EXPECT_EQ(b_.pairing->AcceptOffer(c_.key(), kCapacity, *offer).status().code(), Code::kCorrupt);
  // A lease with its capacity changed after the inviter signed.
  wire::JoinOffer tampered = *offer;
  exchange::SignedLease lease;
  ASSERT_TRUE(lease.ParseFromString(tampered.leases(0)));
  auto terms = *exchange::DecodeTerms(lease);
  terms.set_capacity_bytes(kCapacity);
  terms.set_term_s(terms.term_s() * 100);
  lease.set_terms(exchange::MakeLease(terms).terms());
  tampered.set_leases(0, lease.SerializeAsString());
  EXPECT_EQ(b_.pairing->AcceptOffer(a_.key(), kCapacity, tampered).status().code(), Code::kCorrupt);
  // One lease only.
  wire::JoinOffer half = *offer;
  half.mutable_leases()->RemoveLast();
  EXPECT_EQ(b_.pairing->AcceptOffer(a_.key(), kCapacity, half).status().code(), Code::kCorrupt);
  EXPECT_EQ(b_.Serialized(), before);
}

TEST_F(PairingTest, ALostCountersignArrivesWithTheNextHeartbeat) {
  const Invitation code = Invite();
  const auto binding = RandomBinding();
  auto offer = a_.pairing->OnJoin(b_.key(), binding, JoinWith(code, binding));
  ASSERT_TRUE(offer.ok());
  ASSERT_TRUE(b_.pairing->AcceptOffer(a_.key(), kCapacity, *offer).ok());
  EXPECT_EQ(Count(a_, b_, true, LeaseState::kOffered, Now()), 1);
  // b_'s heartbeat carries the countersigned leases.
  auto reply = a_.pairing->OnHeartbeat(b_.key(), b_.pairing->MakeHeartbeat(a_.key(), {}));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(Count(a_, b_, true, LeaseState::kActive, Now()), 1);
  EXPECT_EQ(Count(a_, b_, false, LeaseState::kActive, Now()), 1);
  EXPECT_EQ(reply->leases_size(), 2);
  ASSERT_TRUE(b_.pairing->OnHeartbeatReply(a_.key(), &*reply).ok());
  const exchange::Book at_b = b_.book->Snapshot();
  const exchange::Peer* a_at_b = exchange::FindPeer(at_b, a_.key());
  EXPECT_EQ(a_at_b->heartbeats_answered(), 1u);
}

TEST_F(PairingTest, TrustPairsOnlyTheKeyItNames) {
  wire::Join no_code;
  no_code.add_addresses("127.0.0.1:7003");
  const std::string before = a_.Serialized();
  EXPECT_EQ(a_.pairing->OnJoin(c_.key(), RandomBinding(), no_code).status().code(),
            Code::kPermission);
  EXPECT_EQ(a_.Serialized(), before);
  ASSERT_TRUE(a_.pairing->Trust(b_.key(), "127.0.0.1:7002", kCapacity).ok());
  EXPECT_EQ(a_.pairing->OnJoin(c_.key(), RandomBinding(), no_code).status().code(),
            Code::kPermission);
  auto offer = a_.pairing->OnJoin(b_.key(), RandomBinding(), no_code);
  ASSERT_TRUE(offer.ok()) << offer.status().ToString();
  auto signed_ = b_.pairing->AcceptOffer(a_.key(), kCapacity, *offer);
  ASSERT_TRUE(signed_.ok());
  ASSERT_TRUE(a_.pairing->OnCountersign(b_.key(), *signed_).ok());
  EXPECT_EQ(Count(a_, b_, true, LeaseState::kActive, Now()), 1);
  EXPECT_EQ(Count(b_, a_, false, LeaseState::kActive, Now()), 1);
}

TEST_F(PairingTest, HeartbeatsComeOnlyFromPeersAndCarryTheirAddress) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  wire::Heartbeat from_c;
  EXPECT_EQ(a_.pairing->OnHeartbeat(c_.key(), from_c).status().code(), Code::kPermission);
  wire::Heartbeat moved = b_.pairing->MakeHeartbeat(a_.key(), {"127.0.0.1:7999"});
  moved.add_leases("garbage that is no lease");
  ASSERT_TRUE(a_.pairing->OnHeartbeat(b_.key(), moved).ok());
  const exchange::Book at_a = a_.book->Snapshot();
  EXPECT_EQ(exchange::FindPeer(at_a, b_.key())->addresses(0), "127.0.0.1:7999");
  EXPECT_EQ(a_.book->Snapshot().leases_size(), 2);
  // A lease between b_ and c_ smuggled into b_'s heartbeat is not a_'s business.
  ASSERT_TRUE(c_.pairing->Trust(b_.key(), "127.0.0.1:7002", kCapacity).ok());
  auto offer = c_.pairing->OnJoin(b_.key(), RandomBinding(), wire::Join());
  ASSERT_TRUE(offer.ok());
  auto signed_ = b_.pairing->AcceptOffer(c_.key(), kCapacity, *offer);
  ASSERT_TRUE(signed_.ok());
  wire::Heartbeat smuggled;
  for (const std::string& l : signed_->leases()) smuggled.add_leases(l);
  ASSERT_TRUE(a_.pairing->OnHeartbeat(b_.key(), smuggled).ok());
  EXPECT_EQ(a_.book->Snapshot().leases_size(), 2);
}

TEST_F(PairingTest, LeasesRenewThemselvesPastHalfTheirTerm) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  Beat(a_, b_);
  EXPECT_EQ(a_.pairing->MakeHeartbeat(b_.key(), {}).renewals_size(), 0);  // too early
  clock_.advance_ns(int64_t{301} * 1'000'000'000);  // past half of the 600 s term
  EXPECT_EQ(a_.pairing->MakeHeartbeat(b_.key(), {}).renewals_size(), 1);  // what a_ gives
  Beat(a_, b_);
  Beat(b_, a_);
  clock_.advance_ns(int64_t{400} * 1'000'000'000);  // past the first term's end
  for (bool given : {true, false}) {
    EXPECT_EQ(Count(a_, b_, given, LeaseState::kRenewed, Now()), 1) << given;
    EXPECT_EQ(Count(b_, a_, given, LeaseState::kRenewed, Now()), 1) << given;
  }
  // A "renewal" that changes the terms is not countersigned (at 701 s, the renewed lease
  // of [301, 901) is past its half again).
  wire::Heartbeat greedy = a_.pairing->MakeHeartbeat(b_.key(), {});
  ASSERT_EQ(greedy.renewals_size(), 1);
  exchange::SignedLease offer;
  ASSERT_TRUE(offer.ParseFromString(greedy.renewals(0)));
  auto terms = *exchange::DecodeTerms(offer);
  terms.set_capacity_bytes(terms.capacity_bytes() / 2);
  offer = exchange::MakeLease(terms);
  ASSERT_TRUE(
      exchange::SignLease(&offer, a_.key(), [&](ByteSpan m) { return a_.identity.Sign(m); }).ok());
  greedy.set_renewals(0, offer.SerializeAsString());
  const std::string before = b_.Serialized();
  ASSERT_TRUE(b_.pairing->OnHeartbeat(a_.key(), greedy).ok());
  const exchange::Book after = b_.book->Snapshot();
  for (const auto& entry : after.leases())
    EXPECT_EQ(exchange::DecodeTerms(entry.lease())->capacity_bytes(), kCapacity);
}

// `quid lease revoke`: a notice the tenant's node acknowledges on receipt; the lease is
// expiring on both sides from that moment, then revoked; never renewed meanwhile; and the
// other side's reciprocity answers by revoking what it gives.
TEST_F(PairingTest, ARevocationIsAcknowledgedRunsItsNoticeAndIsAnsweredInKind) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  // b_ revokes what it gives a_. Until a_ hears of it, nothing changes.
  Result<GivenChange> change = b_.pairing->ChangeGiven(a_.key(), 0, 0);
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  EXPECT_EQ(change->before, kCapacity);
  EXPECT_EQ(change->after, 0u);
  EXPECT_EQ(change->notice_s, 20);
  EXPECT_EQ(Count(b_, a_, true, LeaseState::kActive, Now()), 1);
  const int64_t told = Now() + 5;
  clock_.advance_ns(int64_t{5} * 1'000'000'000);
  Beat(b_, a_);  // a_ acknowledges in its answer
  EXPECT_EQ(Count(a_, b_, false, LeaseState::kExpiring, Now()), 1);
  EXPECT_EQ(Count(b_, a_, true, LeaseState::kExpiring, Now()), 1);
  const exchange::Book b_book = b_.book->Snapshot();  // a copy: never iterate a temporary's
  for (const auto& entry : b_book.leases()) {
    if (exchange::HostKey(*exchange::DecodeTerms(entry.lease())) == b_.key()) {
      EXPECT_EQ(entry.notice_at(), told) << "the notice runs from the acknowledgement";
    }
  }
  // a_ now receives nothing from b_ (after the notice), so reciprocity allows it to give
  // nothing: its own notice, acknowledged at b_'s next heartbeat.
  const exchange::Book book = a_.book->Snapshot();
  const exchange::Standing s =
      exchange::JudgeStanding(book, a_.key(), *exchange::FindPeer(book, b_.key()), Now());
  EXPECT_EQ(s.received_bytes, 0u);
  EXPECT_EQ(s.given_bytes, kCapacity);
  EXPECT_EQ(s.allowed_bytes, 0u);
  ASSERT_TRUE(a_.pairing->ChangeGiven(b_.key(), s.allowed_bytes, 0).ok());
  Beat(a_, b_);
  EXPECT_EQ(Count(a_, b_, true, LeaseState::kExpiring, Now()), 1);
  EXPECT_EQ(Count(b_, a_, false, LeaseState::kExpiring, Now()), 1);
  // Past half the term, a lease being revoked is offered no renewal.
  clock_.advance_ns(int64_t{301} * 1'000'000'000);
  EXPECT_EQ(b_.pairing->MakeHeartbeat(a_.key(), {}).renewals_size(), 0);
  for (bool given : {true, false}) {
    EXPECT_EQ(Count(a_, b_, given, LeaseState::kRevoked, Now()), 1) << given;
    EXPECT_EQ(Count(b_, a_, given, LeaseState::kRevoked, Now()), 1) << given;
  }
}

// `quid lease set` to more: an offer at the larger capacity, countersigned like a renewal.
// To less: a notice, after which the host admits only the smaller capacity.
TEST_F(PairingTest, LeaseSetGrowsByACountersignedOfferAndShrinksByNotice) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  ASSERT_TRUE(a_.pairing->ChangeGiven(b_.key(), 2 * kCapacity, 2000).ok());
  Beat(a_, b_);
  auto capacity_of = [&](const Node& node, bool given) {
    uint64_t total = 0;
    const exchange::Book book = node.book->Snapshot();
    for (const auto& entry : book.leases()) {
      auto terms = exchange::DecodeTerms(entry.lease());
      const bool is_given = exchange::HostKey(*terms) == node.key();
      if (is_given == given) total += exchange::CapacityPromised(entry, Now());
    }
    return total;
  };
  EXPECT_EQ(capacity_of(a_, true), 2 * kCapacity);
  EXPECT_EQ(capacity_of(b_, false), 2 * kCapacity);
  EXPECT_EQ(exchange::FindPeer(a_.book->Snapshot(), b_.key())->ratio_permille(), 2000u);
  ASSERT_TRUE(a_.pairing->ChangeGiven(b_.key(), kCapacity / 2, 0).ok());
  Beat(a_, b_);
  EXPECT_EQ(capacity_of(b_, false), kCapacity / 2) << "the tenant plans by the notice at once";
  const exchange::Book a_book = a_.book->Snapshot();
  for (const auto& entry : a_book.leases()) {
    if (exchange::HostKey(*exchange::DecodeTerms(entry.lease())) != a_.key()) continue;
    EXPECT_EQ(exchange::CapacityAt(entry, Now()), 2 * kCapacity) << "until the notice has run";
    EXPECT_EQ(exchange::CapacityAt(entry, Now() + 20), kCapacity / 2);
  }
  EXPECT_EQ(a_.pairing->ChangeGiven(c_.key(), 0, 0).status().code(), Code::kNotFound);
}

// A partner away for less than a lease term keeps its leases: they lapse while the two are
// apart and renew at the first heartbeat after it returns.
TEST_F(PairingTest, APartnerAwayForLessThanATermKeepsItsLeases) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  clock_.advance_ns(int64_t{900} * 1'000'000'000);  // away from 0 to 900 s; the term is 600
  for (bool given : {true, false}) EXPECT_EQ(Count(a_, b_, given, LeaseState::kExpired, Now()), 1);
  Beat(a_, b_);
  Beat(b_, a_);
  for (bool given : {true, false}) {
    EXPECT_EQ(Count(a_, b_, given, LeaseState::kRenewed, Now()), 1) << given;
    EXPECT_EQ(Count(b_, a_, given, LeaseState::kRenewed, Now()), 1) << given;
  }
  // Away for longer than a term past the end: the leases stay ended.
  clock_.advance_ns(int64_t{600 + 601} * 1'000'000'000);
  EXPECT_EQ(a_.pairing->MakeHeartbeat(b_.key(), {}).renewals_size(), 0);
}

// The host's side of a lease's end: a revoked tenant keeps reading (no room to put) through
// the grace period, and only then may what it left go; a lease that merely lapsed (the two
// may just not have met) keeps the data one term longer.
TEST_F(PairingTest, AHostKeepsWhatATenantLeftUntilTheGraceHasPassed) {
  ASSERT_TRUE(Join(b_, Invite()).ok());
  NodeService host_a(a_.book.get(), a_.pairing.get(), a_.key(), &clock_,
                     [] { return std::vector<std::string>{}; });
  NodeService host_b(b_.book.get(), b_.pairing.get(), b_.key(), &clock_,
                     [] { return std::vector<std::string>{}; });
  host_a.SetGraceS(10);
  host_b.SetGraceS(10);
  EXPECT_EQ(host_a.LeaseCapacity(b_.key()), kCapacity);
  ASSERT_TRUE(a_.pairing->ChangeGiven(b_.key(), 0, 0).ok());
  // Not received yet: nothing changes, however long b_ is away (within the term).
  clock_.advance_ns(int64_t{100} * 1'000'000'000);
  host_a.Refresh();
  EXPECT_EQ(host_a.LeaseCapacity(b_.key()), kCapacity);
  EXPECT_TRUE(host_a.TenantsPastGrace().empty());
  Beat(a_, b_);  // received: 20 s of notice from now
  host_a.Refresh();
  auto advance = [&](int64_t s) {
    clock_.advance_ns(s * 1'000'000'000);
    host_a.Refresh();
    host_b.Refresh();
  };
  advance(19);
  EXPECT_EQ(host_a.LeaseCapacity(b_.key()), kCapacity);
  advance(1);  // the notice has run: revoked, in its grace
  EXPECT_EQ(host_a.LeaseCapacity(b_.key()), std::optional<uint64_t>(0));
  EXPECT_TRUE(host_a.TenantsPastGrace().empty());
  advance(10);
  EXPECT_EQ(host_a.LeaseCapacity(b_.key()), std::nullopt);
  ASSERT_EQ(host_a.TenantsPastGrace().size(), 1u);
  EXPECT_EQ(host_a.TenantsPastGrace()[0], b_.key());
  // What b_ gives a_ lapses at the end of its term (600 s from the start, 130 s ago).
  EXPECT_TRUE(host_b.TenantsPastGrace().empty());
  advance(600 - 130 + 10 + 1);  // ended, and its grace passed: still kept, a term longer
  EXPECT_EQ(host_b.LeaseCapacity(a_.key()), std::nullopt);
  EXPECT_TRUE(host_b.TenantsPastGrace().empty());
  advance(600);
  EXPECT_EQ(host_b.TenantsPastGrace().size(), 1u);
}

}  // namespace
}  // namespace quid::net
