// Standing from a node's own book: what each side gives after notices, what reciprocity
// allows, and when a peer falls into poor standing (uptime, failed calls), never before a
// lease term of observations.
#include "storage/exchange/standing.h"

#include <gtest/gtest.h>

#include "storage/exchange/notice.h"
#include "tests/support/exchange_parties.h"

namespace quid::exchange {
namespace {

class StandingTest : public ::testing::Test {
 protected:
  // `self_` and `peer_` each give the other one 48 MiB lease (start 1000, term 600).
  void SetUp() override {
    LeaseTerms given = Terms(peer_, self_);  // self_ hosts peer_
    given.set_lease_id(std::string(16, '\x01'));
    given.mutable_service()->set_uptime_permille(900);
    LeaseTerms received = Terms(self_, peer_);  // peer_ hosts self_
    received.set_lease_id(std::string(16, '\x02'));
    received.mutable_service()->set_uptime_permille(900);
    for (const LeaseTerms& t : {given, received}) {
      SignedLease lease = MakeLease(t);
      ASSERT_TRUE(SignLease(&lease, self_.key, self_.signer()).ok());
      ASSERT_TRUE(SignLease(&lease, peer_.key, peer_.signer()).ok());
      *book_.add_leases()->mutable_lease() = lease;
    }
    Peer* p = book_.add_peers();
    p->set_key(Str(peer_.key));
    p->set_first_seen(1000);
    p->set_paired_by("invitation");
  }
  Standing Judge(int64_t now) { return JudgeStanding(book_, self_.key, book_.peers(0), now); }
  Party self_, peer_;
  Book book_;
};

TEST_F(StandingTest, OneToOneByDefaultAndWhatARevocationTakesAway) {
  Standing s = Judge(1100);
  EXPECT_EQ(s.given_bytes, 48u << 20);
  EXPECT_EQ(s.received_bytes, 48u << 20);
  EXPECT_EQ(s.allowed_bytes, 48u << 20);
  EXPECT_EQ(s.standing, "new") << "less than a term observed";
  // The peer revokes what it gives (given, not yet acknowledged: it has said so).
  LeaseEntry* received = book_.mutable_leases(1);
  *received->mutable_notice() =
      MakeNotice(*DecodeTerms(received->lease()), 0, 1100, peer_.signer());
  s = Judge(1100);
  EXPECT_EQ(s.received_bytes, 0u);
  EXPECT_EQ(s.allowed_bytes, 0u);
  // A friend: the ratio lets this node give twice what it gets.
  received->clear_notice();
  book_.mutable_peers(0)->set_ratio_permille(2000);
  EXPECT_EQ(Judge(1100).allowed_bytes, 96u << 20);
}

TEST_F(StandingTest, PoorStandingNeedsATermOfObservationsAndThenCostsEverything) {
  Peer* p = book_.mutable_peers(0);
  p->set_heartbeats_sent(100);
  p->set_heartbeats_answered(50);  // 50% against 90% promised
  EXPECT_EQ(Judge(1500).standing, "new");
  Standing s = Judge(1600);
  EXPECT_EQ(s.standing, "poor");
  EXPECT_NE(s.why.find("50.0%"), std::string::npos) << s.why;
  EXPECT_EQ(s.allowed_bytes, 0u);
  p->set_heartbeats_answered(95);
  EXPECT_EQ(Judge(1600).standing, "good");
  // Failed puts and reads count too, over enough calls to tell.
  p->set_puts_ok(90);
  p->set_reads_failed(10);
  EXPECT_EQ(Judge(1600).standing, "good") << "a tenth is the limit, not passed";
  p->set_reads_failed(30);
  s = Judge(1600);
  EXPECT_EQ(s.standing, "poor");
  EXPECT_NE(s.why.find("failed 30 of 120"), std::string::npos) << s.why;
}

TEST_F(StandingTest, AOneWayTenantIsNeverJudged) {
  book_.mutable_peers(0)->set_paired_by("tenant");
  book_.mutable_leases()->RemoveLast();  // it gives nothing back
  const Standing s = Judge(2000);
  EXPECT_FALSE(s.reciprocal);
  EXPECT_EQ(s.allowed_bytes, s.given_bytes);
}

}  // namespace
}  // namespace quid::exchange
