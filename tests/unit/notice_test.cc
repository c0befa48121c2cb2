// Notices: signed by the host, acknowledged (and signed) by the tenant, running from the
// acknowledgement; which notice wins; what capacity a lease gives before and after.
#include "storage/exchange/notice.h"

#include <gtest/gtest.h>

#include "tests/support/exchange_parties.h"

namespace quid::exchange {
namespace {

class NoticeTest : public ::testing::Test {
 protected:
  LeaseEntry Entry() {
    LeaseEntry entry;
    *entry.mutable_lease() = Signed(tenant_, host_);
    return entry;
  }
  Party tenant_, host_, stranger_;
  const LeaseTerms terms_ = Terms(tenant_, host_);  // start 1000, term 600, notice 20
};

TEST_F(NoticeTest, ARevocationRunsFromItsAcknowledgementThenTheLeaseIsRevoked) {
  LeaseEntry entry = Entry();
  SignedNotice notice = MakeNotice(terms_, 0, 1100, host_.signer());
  ASSERT_TRUE(VerifyNotice(notice, terms_).ok());
  EXPECT_FALSE(Acknowledged(notice));
  // Given but not yet received: the lease stands as it was.
  ASSERT_TRUE(AdoptNotice(&entry, notice));
  EXPECT_EQ(StateAt(entry, 1200), LeaseState::kActive);
  EXPECT_EQ(CapacityAt(entry, 1200), 48u << 20);
  EXPECT_EQ(CapacityPromised(entry, 1200), 0u) << "the host has said it will give nothing";
  // Received at 1300: expiring for the notice period, then revoked.
  AcknowledgeNotice(&notice, 1300, tenant_.signer());
  ASSERT_TRUE(VerifyNotice(notice, terms_).ok());
  ASSERT_TRUE(AdoptNotice(&entry, notice));
  EXPECT_EQ(entry.notice_at(), 1300);
  EXPECT_EQ(StateAt(entry, 1310), LeaseState::kExpiring);
  EXPECT_EQ(CapacityAt(entry, 1310), 48u << 20) << "the data stays under the lease during notice";
  EXPECT_EQ(StateAt(entry, 1320), LeaseState::kRevoked);
  EXPECT_EQ(CapacityAt(entry, 1320), 0u);
  EXPECT_EQ(EndsAt(entry), 1320);
  // The same notice again changes nothing.
  EXPECT_FALSE(AdoptNotice(&entry, notice));
}

TEST_F(NoticeTest, AShrinkTakesEffectWhenItsNoticeHasRun) {
  LeaseEntry entry = Entry();
  SignedNotice notice = MakeNotice(terms_, 16u << 20, 1100, host_.signer());
  AcknowledgeNotice(&notice, 1100, tenant_.signer());
  ASSERT_TRUE(AdoptNotice(&entry, notice));
  EXPECT_EQ(entry.notice_at(), 0) << "a shrink is no revocation";
  EXPECT_EQ(StateAt(entry, 1110), LeaseState::kActive);
  EXPECT_EQ(CapacityAt(entry, 1110), 48u << 20);
  EXPECT_EQ(CapacityAt(entry, 1120), 16u << 20);
  EXPECT_EQ(CapacityPromised(entry, 1110), 16u << 20);
  // A later notice replaces it (here: back to the whole lease); an older one does not.
  SignedNotice back = MakeNotice(terms_, 48u << 20, 1200, host_.signer());
  ASSERT_TRUE(AdoptNotice(&entry, back));
  EXPECT_EQ(CapacityPromised(entry, 1200), 48u << 20);
  EXPECT_FALSE(AdoptNotice(&entry, notice));
}

TEST_F(NoticeTest, ForgedOrMisdirectedNoticesAreRefused) {
  // Signed by someone other than the host.
  SignedNotice forged = MakeNotice(terms_, 0, 1100, stranger_.signer());
  EXPECT_EQ(VerifyNotice(forged, terms_).code(), Code::kCorrupt);
  // The tenant cannot revoke what the host gives: its signature is no host's.
  SignedNotice by_tenant = MakeNotice(terms_, 0, 1100, tenant_.signer());
  EXPECT_EQ(VerifyNotice(by_tenant, terms_).code(), Code::kCorrupt);
  // An acknowledgement moved to another time no longer verifies.
  SignedNotice notice = MakeNotice(terms_, 0, 1100, host_.signer());
  AcknowledgeNotice(&notice, 1300, tenant_.signer());
  SignedNotice backdated = notice;
  backdated.set_acknowledged_at(1000);
  EXPECT_EQ(VerifyNotice(backdated, terms_).code(), Code::kCorrupt);
  SignedNotice unsigned_ack = MakeNotice(terms_, 0, 1100, host_.signer());
  unsigned_ack.set_acknowledged_at(1300);
  EXPECT_EQ(VerifyNotice(unsigned_ack, terms_).code(), Code::kCorrupt);
  // A notice about another lease.
  LeaseTerms other = terms_;
  other.set_lease_id(std::string(16, '\x09'));
  EXPECT_EQ(VerifyNotice(notice, other).code(), Code::kInvalid);
  // Garbage.
  SignedNotice garbage;
  garbage.set_notice("\xff\xff\xff");
  EXPECT_FALSE(VerifyNotice(garbage, terms_).ok());
}

TEST_F(NoticeTest, ALeasePastItsTermGivesNothing) {
  LeaseEntry entry = Entry();
  EXPECT_EQ(CapacityAt(entry, 1599), 48u << 20);
  EXPECT_EQ(CapacityAt(entry, 1600), 0u);
  EXPECT_EQ(CapacityPromised(entry, 1600), 0u);
}

}  // namespace
}  // namespace quid::exchange
