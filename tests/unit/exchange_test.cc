// Leases (signatures, states over time, which record wins) and the node book (durable
// changes, power loss at every sync point, a damaged book refused, one daemon per home).
#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "storage/base/mem_env.h"
#include "storage/crypto/sodium_init.h"
#include "storage/exchange/lease.h"
#include "storage/exchange/node_book.h"
#include "tests/support/exchange_parties.h"

namespace quid::exchange {
namespace {

TEST(LeaseTest, BothPartiesSignAndEitherSignatureCatchesAChange) {
  Party tenant, host, stranger;
  SignedLease lease = MakeLease(Terms(tenant, host));
  EXPECT_EQ(VerifyLease(lease, false).code(), Code::kInvalid);  // signed by no one
  ASSERT_TRUE(SignLease(&lease, host.key, host.signer()).ok());
  EXPECT_TRUE(VerifyLease(lease, false).ok());
  EXPECT_EQ(VerifyLease(lease, true).code(), Code::kInvalid);
  EXPECT_FALSE(FullySigned(lease));
  EXPECT_EQ(SignLease(&lease, stranger.key, stranger.signer()).code(), Code::kPermission);
  ASSERT_TRUE(SignLease(&lease, tenant.key, tenant.signer()).ok());
  EXPECT_TRUE(VerifyLease(lease, true).ok());

  // The capacity raised after signing: neither signature covers it.
  LeaseTerms changed = *DecodeTerms(lease);
  changed.set_capacity_bytes(changed.capacity_bytes() * 2);
  SignedLease forged = lease;
  forged.set_terms(MakeLease(changed).terms());
  EXPECT_EQ(VerifyLease(forged, true).code(), Code::kCorrupt);
  // A signature made by someone else in the tenant's place.
  SignedLease impostor = MakeLease(Terms(tenant, host));
  ASSERT_TRUE(SignLease(&impostor, host.key, host.signer()).ok());
  impostor.set_tenant_signature(lease.host_signature());
  EXPECT_EQ(VerifyLease(impostor, true).code(), Code::kCorrupt);
  // Garbage terms.
  SignedLease garbage = lease;
  garbage.set_terms("\xff\xff\xff");
  EXPECT_EQ(VerifyLease(garbage, false).code(), Code::kCorrupt);
}

// Found by lease_fuzz: a peer may sign any term; absurd times are refused, never summed
// into an overflow.
TEST(LeaseTest, AbsurdTimesAreRefused) {
  Party tenant, host;
  for (auto set : std::vector<std::function<void(LeaseTerms*)>>{
           [](LeaseTerms* t) { t->set_term_s(INT64_MAX - 10); },
           [](LeaseTerms* t) { t->set_start(-1); }, [](LeaseTerms* t) { t->set_start(INT64_MAX); },
           [](LeaseTerms* t) { t->set_notice_s(INT64_MAX); },
           [](LeaseTerms* t) { t->set_term_s(0); }}) {
    LeaseTerms terms = Terms(tenant, host);
    set(&terms);
    EXPECT_EQ(DecodeTerms(MakeLease(terms)).status().code(), Code::kCorrupt);
  }
  LeaseEntry entry;
  *entry.mutable_lease() = Signed(tenant, host);
  entry.set_notice_at(INT64_MAX);  // a damaged local fact: ignored, not overflowed
  EXPECT_EQ(StateAt(entry, 1001), LeaseState::kActive);
  EXPECT_EQ(EndsAt(entry), 1600);
}

TEST(LeaseTest, ARecordMadeTwiceFromTheSameTermsIsTheSameBytes) {
  Party tenant, host;
  EXPECT_EQ(MakeLease(Terms(tenant, host)).terms(), MakeLease(Terms(tenant, host)).terms());
}

TEST(LeaseTest, StatesFollowTheClock) {
  Party tenant, host;
  LeaseEntry entry;
  *entry.mutable_lease() = MakeLease(Terms(tenant, host));
  ASSERT_TRUE(SignLease(entry.mutable_lease(), host.key, host.signer()).ok());
  EXPECT_EQ(StateAt(entry, 1001), LeaseState::kOffered);
  ASSERT_TRUE(SignLease(entry.mutable_lease(), tenant.key, tenant.signer()).ok());
  EXPECT_EQ(StateAt(entry, 1001), LeaseState::kActive);
  EXPECT_EQ(StateAt(entry, 1599), LeaseState::kActive);
  EXPECT_EQ(StateAt(entry, 1600), LeaseState::kExpired);
  EXPECT_EQ(EndsAt(entry), 1600);
  EXPECT_FALSE(InForce(StateAt(entry, 1600)));

  LeaseEntry renewed;
  *renewed.mutable_lease() = Signed(tenant, host, 1);
  EXPECT_EQ(StateAt(renewed, 1001), LeaseState::kRenewed);
  EXPECT_TRUE(InForce(LeaseState::kRenewed));

  // A notice acknowledged at 1100 runs 20 s: expiring, then revoked.
  entry.set_notice_at(1100);
  EXPECT_EQ(StateAt(entry, 1110), LeaseState::kExpiring);
  EXPECT_TRUE(InForce(LeaseState::kExpiring));
  EXPECT_EQ(StateAt(entry, 1120), LeaseState::kRevoked);
  EXPECT_EQ(EndsAt(entry), 1120);
  // A notice that would outlast the term: the term's end comes first.
  entry.set_notice_at(1590);
  EXPECT_EQ(StateAt(entry, 1595), LeaseState::kExpiring);
  EXPECT_EQ(StateAt(entry, 1600), LeaseState::kExpired);
}

TEST(LeaseTest, AHalfSignedRenewalNeverDisplacesTheLeaseInForce) {
  Party tenant, host;
  Book book;
  EXPECT_TRUE(AdoptLease(&book, Signed(tenant, host, 0)));
  EXPECT_FALSE(AdoptLease(&book, Signed(tenant, host, 0)));  // the same again
  SignedLease offer = MakeLease(Terms(tenant, host, 1));
  ASSERT_TRUE(SignLease(&offer, host.key, host.signer()).ok());
  EXPECT_FALSE(AdoptLease(&book, offer));
  ASSERT_EQ(book.leases_size(), 1);
  EXPECT_EQ(DecodeTerms(book.leases(0).lease())->sequence(), 0u);
  EXPECT_TRUE(AdoptLease(&book, Signed(tenant, host, 1)));
  EXPECT_EQ(DecodeTerms(book.leases(0).lease())->sequence(), 1u);
  EXPECT_FALSE(AdoptLease(&book, Signed(tenant, host, 0)));  // an older record
  EXPECT_EQ(DecodeTerms(book.leases(0).lease())->sequence(), 1u);

  // A half-signed offer is held until its countersigned self arrives.
  Book fresh;
  SignedLease first = MakeLease(Terms(tenant, host));
  ASSERT_TRUE(SignLease(&first, host.key, host.signer()).ok());
  EXPECT_TRUE(AdoptLease(&fresh, first));
  EXPECT_TRUE(AdoptLease(&fresh, Signed(tenant, host, 0)));
  EXPECT_TRUE(FullySigned(fresh.leases(0).lease()));
}

TEST(NodeBookTest, ChangesSurviveAReopenAndAFailedChangeLeavesNothing) {
  MemEnv env;
  Party peer;
  {
    auto book = NodeBook::Open(&env, "/home/node");
    ASSERT_TRUE(book.ok()) << book.status().ToString();
    ASSERT_TRUE((*book)
                    ->Update([&](exchange::Book* b) {
                      UpsertPeer(b, peer.key, 5)->add_addresses("127.0.0.1:7001");
                      return Status::Ok();
                    })
                    .ok());
    Status refused = (*book)->Update([&](exchange::Book* b) {
      b->clear_peers();
      return Status::Invalid("no");
    });
    EXPECT_EQ(refused.code(), Code::kInvalid);
    EXPECT_EQ((*book)->Snapshot().peers_size(), 1);
    // A second daemon on the same home.
    EXPECT_EQ(NodeBook::Open(&env, "/home/node").status().code(), Code::kBusy);
  }
  auto again = NodeBook::Open(&env, "/home/node");
  ASSERT_TRUE(again.ok());
  exchange::Book b = (*again)->Snapshot();
  ASSERT_EQ(b.peers_size(), 1);
  EXPECT_EQ(b.peers(0).addresses(0), "127.0.0.1:7001");
  EXPECT_EQ(FindPeer(b, peer.key)->first_seen(), 5);
}

TEST(NodeBookTest, ADamagedBookIsRefusedNotReplaced) {
  MemEnv env;
  {
    auto book = NodeBook::Open(&env, "/home/node");
    ASSERT_TRUE(book.ok());
    ASSERT_TRUE((*book)
                    ->Update([](exchange::Book* b) {
                      b->add_invitations()->set_capacity_bytes(1);
                      return Status::Ok();
                    })
                    .ok());
  }
  std::string bytes = *env.ReadWholeFile("/home/node/book");
  bytes[bytes.size() - 1] ^= 0x40;
  ASSERT_TRUE(env.WriteFileAtomic("/home/node/book", AsBytes(bytes), 0600).ok());
  auto book = NodeBook::Open(&env, "/home/node");
  EXPECT_EQ(book.status().code(), Code::kCorrupt);
  EXPECT_NE(book.status().message().find("damaged"), std::string::npos);
  EXPECT_EQ(*env.ReadWholeFile("/home/node/book"), bytes);  // left as it was
}

// A power cut at each sync point of three changes: the book reopens as it was after the
// last acknowledged change, or (for the change in flight) after that one.
TEST(NodeBookTest, APowerCutAtAnySyncPointLeavesTheBookBeforeOrAfterTheChange) {
  Party peer;
  for (int crash_at = 1;; ++crash_at) {
    MemEnv env;
    int syncs = 0;
    env.SetHook([&](EnvOp op, const std::string&) {
      if (op != EnvOp::kSync && op != EnvOp::kSyncDir) return Status::Ok();
      if (++syncs == crash_at) {
        env.Crash();
        return Status::IoError("power lost");
      }
      return Status::Ok();
    });
    int acked = 0;
    {
      auto book = NodeBook::Open(&env, "/home/node");
      if (book.ok()) {
        for (int i = 1; i <= 3; ++i) {
          Status s = (*book)->Update([&](exchange::Book* b) {
            UpsertPeer(b, peer.key, 1)->add_addresses("127.0.0.1:" + std::to_string(7000 + i));
            return Status::Ok();
          });
          if (!s.ok() || env.crashed()) break;
          acked = i;
        }
      }
    }
    const bool crashed = env.crashed();
    env.SetHook(nullptr);
    if (crashed) env.Restart();
    auto book = NodeBook::Open(&env, "/home/node");
    ASSERT_TRUE(book.ok()) << "crash at sync " << crash_at << ": " << book.status().ToString();
    exchange::Book b = (*book)->Snapshot();
    const int have = b.peers_size() == 0 ? 0 : b.peers(0).addresses_size();
    EXPECT_TRUE(have == acked || have == acked + 1)
        << "crash at sync " << crash_at << ": " << acked << " acknowledged, " << have << " kept";
    if (!crashed) {
      EXPECT_EQ(have, 3);
      EXPECT_GT(crash_at, 3);  // the workload has sync points to cut at
      break;
    }
  }
}

// A change kept in memory only (a heartbeat's time) is seen at once, lost in a power cut
// unless a durable change or Flush wrote it.
TEST(NodeBookTest, AChangeKeptInMemoryIsWrittenByTheNextDurableOneOrFlush) {
  MemEnv env;
  const bool soft = false;
  {
    auto book = NodeBook::Open(&env, "/home/node");
    ASSERT_TRUE(book.ok());
    ASSERT_TRUE((*book)
                    ->Update(
                        [](exchange::Book* b) {
                          b->add_invitations()->set_created_at(1);
                          return Status::Ok();
                        },
                        &soft)
                    .ok());
    EXPECT_EQ((*book)->Snapshot().invitations_size(), 1);
  }
  env.PowerLoss();
  {
    auto book = NodeBook::Open(&env, "/home/node");
    ASSERT_TRUE(book.ok());
    EXPECT_EQ((*book)->Snapshot().invitations_size(), 0);
    ASSERT_TRUE((*book)
                    ->Update(
                        [](exchange::Book* b) {
                          b->add_invitations()->set_created_at(2);
                          return Status::Ok();
                        },
                        &soft)
                    .ok());
    ASSERT_TRUE((*book)->Flush().ok());
  }
  env.PowerLoss();
  auto book = NodeBook::Open(&env, "/home/node");
  ASSERT_TRUE(book.ok());
  ASSERT_EQ((*book)->Snapshot().invitations_size(), 1);
  EXPECT_EQ((*book)->Snapshot().invitations(0).created_at(), 2);
}

}  // namespace
}  // namespace quid::exchange
