// Pairing and heartbeats between node daemons, over the node book: what each side does
// with Join, Countersign and Heartbeat (net/wire.proto), apart from the sockets. The node
// daemon calls these from its request handler (inviter side) and from its client (joiner
// side); tests call them directly on a book.
//
// Join by invitation (DESIGN.md, "The exchange"):
//   1 joiner -> inviter   Join {proof = JoinProof(secret, channel binding), addresses}
//   2 inviter             finds the unused, unexpired invitation the proof matches (a wrong
//                         proof changes nothing and uses nothing up), claims it for this
//                         joiner, and offers two leases on its terms, one each way, signed
//                         by itself
//   3 joiner              checks the offer against the code (the inviter's key, capacity),
//                         countersigns, keeps both leases active
//   4 joiner -> inviter   Countersign {leases}: the inviter keeps them active and the code
//                         is used for good
// The proof is bound to the secure channel, so it is worthless on any other session and
// the secret never travels. A joiner that fails after step 2 may run again with the same
// code (it is claimed for that joiner alone and the same offer comes back); if step 4 is
// lost, the next heartbeat carries the countersigned leases.
//
// `quid trust FP --address A --capacity C`, run on both sides, pairs the same way with an
// empty proof: the inviter role goes to whichever side is asked second, and it accepts
// only a key it was told to trust.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "net/identity.h"
#include "net/invitation.h"
#include "net/wire.pb.h"
#include "storage/base/clock.h"
#include "storage/base/status.h"
#include "storage/exchange/node_book.h"

namespace quid::net {

// The terms this node offers on the leases it opens (`quid serve`'s timing flags).
struct LeasePolicy {
  int64_t term_s = 30 * 86400;
  int64_t notice_s = 7 * 86400;
  uint32_t uptime_permille = 900;
  uint32_t read_latency_ms = 2000;
};

// What a change of what is given did (Pairing::ChangeGiven).
struct GivenChange {
  uint64_t before = 0;   // raw bytes promised to the peer before
  uint64_t after = 0;    // and once the change has taken effect
  int64_t notice_s = 0;  // a shrink runs this long from the peer's acknowledgement (0: none)
};

class Pairing {
 public:
  // REQUIRES: book, identity and clock outlive this.
  Pairing(exchange::NodeBook* book, const NodeIdentity* self, const Clock* clock,
          LeasePolicy policy)
      : book_(book), self_(self), clock_(clock), policy_(policy) {}

  // This node's failure-domain labels ("site=home"), sent with every heartbeat and
  // heartbeat reply. Set before the first heartbeat.
  void SetLabels(std::vector<std::string> labels) { labels_ = std::move(labels); }

  // A new invitation for `capacity` bytes each way, valid for `valid_s` seconds, recorded
  // in the book; the code to print is EncodeInvitation(result).
  Result<Invitation> Invite(uint64_t capacity, int64_t valid_s, uint32_t ratio_permille,
                            std::vector<std::string> addresses);
  // Records that `peer` (at `address`) may pair without a code, `capacity` each way.
  Status Trust(const PublicKey& peer, std::string address, uint64_t capacity);

  // Inviter, step 2. kPermission, with a sentence for the joiner, when no invitation or
  // trust admits `joiner`; the book is then unchanged.
  Result<wire::JoinOffer> OnJoin(const PublicKey& joiner, ByteSpan channel_binding,
                                 const wire::Join& join);
  // Inviter, step 4.
  Status OnCountersign(const PublicKey& joiner, const wire::Countersign& countersign);
  // Joiner, step 3: checks the offer from `inviter` for a pairing of `capacity` each way,
  // countersigns and records it; the message for step 4.
  Result<wire::Countersign> AcceptOffer(const PublicKey& inviter, uint64_t capacity,
                                        const wire::JoinOffer& offer);

  // Either side: a heartbeat from `peer` (kPermission for a node that is no peer). Keeps
  // its addresses and every lease both signed; the reply carries this node's.
  Result<wire::Heartbeat> OnHeartbeat(const PublicKey& peer, const wire::Heartbeat& heartbeat);
  // This node's heartbeat for `peer`, and what to do with its answer (nullptr: no
  // answer came, the peer was away). The heartbeat offers a renewal of every lease this
  // node gives `peer` that renews itself and is past half its term: the same terms, a
  // sequence one higher, starting now, signed by this node; the tenant countersigns it in
  // its answer, so a lease between nodes that meet renews with no person involved.
  wire::Heartbeat MakeHeartbeat(const PublicKey& peer, std::vector<std::string> addresses);
  Status OnHeartbeatReply(const PublicKey& peer, const wire::Heartbeat* reply);

  // Host side (pairing_notices.cc): gives `peer` `capacity` raw bytes in all over the
  // leases this node hosts for it: less by a notice on each lease that shrinks (0 revokes),
  // more by an offer at the next heartbeat. `ratio_permille` (0: unchanged) becomes the
  // peer's reciprocity ratio. kNotFound for no such peer, or no lease given to it.
  Result<GivenChange> ChangeGiven(const PublicKey& peer, uint64_t capacity,
                                  uint32_t ratio_permille);

 private:
  int64_t Now() const { return clock_->now_ns() / 1'000'000'000; }
  exchange::SignedLease NewLease(const PublicKey& tenant, const PublicKey& host, uint64_t capacity,
                                 uint32_t ratio_permille);
  // Tenant side of a renewal: countersigns and keeps each offer from `host` that renews a
  // lease held on the same terms. True if the book changed.
  bool CountersignRenewals(exchange::Book* book, const PublicKey& host,
                           const google::protobuf::RepeatedPtrField<std::string>& offers);
  // Keeps the notices in `notices` on leases between this node and `peer` that the host
  // signed; as the tenant, acknowledges each new one now. True if the book changed.
  bool AdoptNotices(exchange::Book* book, const PublicKey& peer,
                    const google::protobuf::RepeatedPtrField<std::string>& notices);
  // Adopts the fully signed leases in `leases` that are between this node and `peer`.
  static bool AdoptBetween(exchange::Book* book, const PublicKey& self, const PublicKey& peer,
                           const google::protobuf::RepeatedPtrField<std::string>& leases);

  exchange::NodeBook* const book_;
  const NodeIdentity* const self_;
  const Clock* const clock_;
  const LeasePolicy policy_;
  std::vector<std::string> labels_;
};

// The fully signed leases in `book` between `a` and `b`, serialised for the wire.
std::vector<std::string> LeasesBetween(const exchange::Book& book, const PublicKey& a,
                                       const PublicKey& b);
// The notices on leases in `book` between `a` and `b`, serialised for the wire.
std::vector<std::string> NoticesBetween(const exchange::Book& book, const PublicKey& a,
                                        const PublicKey& b);
// Keeps at most kMaxInvitationAddresses well-formed "HOST:PORT" addresses.
std::vector<std::string> CleanAddresses(const google::protobuf::RepeatedPtrField<std::string>& in);

}  // namespace quid::net
