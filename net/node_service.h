// NodeService: what a node daemon's host server answers. The exchange's own requests
// (Join, Countersign, Heartbeat) go to Pairing; shard requests go to the HostService, which
// admits a tenant only under a lease in force (LeaseCapacity) or a standing `--tenant`.
//
// Who gets in: any key completes the handshake, so that a node with a code can ask to
// pair and hear why it is refused; a key that is no peer of this node is a guest (the
// server keeps few guests at a time) and may only ask to pair.
//
// The leases' capacities are looked up on every shard request, so they are kept in an
// index rebuilt from the book whenever this service changes it (Refresh): a lookup costs a
// map find and the clock, never a walk of the book.
//
// Thread-safe: Serve runs on the server's worker threads.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "net/host_service.h"
#include "net/pairing.h"
#include "net/request_handler.h"
#include "storage/base/clock.h"
#include "storage/exchange/node_book.h"

namespace quid::net {

class NodeService : public RequestHandler {
 public:
  // REQUIRES: everything given outlives the service. `addresses` says where this node
  // listens now (sent with every pairing answer and heartbeat).
  NodeService(exchange::NodeBook* book, Pairing* pairing, const PublicKey& self, const Clock* clock,
              std::function<std::vector<std::string>()> addresses);

  // Serves shards through `host` (set once, before the server starts: the HostService is
  // opened with LeaseCapacity as its lease callback, so it comes after this service).
  void SetHostService(HostService* host) { host_ = host; }

  Status Admit(const PublicKey& peer) const override;
  bool IsGuest(const PublicKey& peer) const override;
  void Serve(const RequestContext& context, const wire::Request& request, ByteSpan payload,
             wire::Response* response, Bytes* reply_payload) override;

  // The raw shard bytes this node keeps for `tenant` under its leases in force now. After
  // its last lease ended the tenant is still admitted, with no room, for the grace period:
  // it may read, list and delete what it left here (a tenant finishing its move), never
  // put. nullopt: not admitted.
  std::optional<uint64_t> LeaseCapacity(const PublicKey& tenant) const;
  // Tenants whose every lease with this node ended long enough ago that what they left here
  // may go: a revoked lease after its grace, one that lapsed (its parties may simply not
  // have met) one more term after that. Standing `--tenant` keys are never listed.
  std::vector<PublicKey> TenantsPastGrace() const;
  // How long after a lease ends its tenant may still reach what it left (`--grace`).
  void SetGraceS(int64_t grace_s) { grace_s_ = grace_s; }
  // Rebuilds the index from the book; call after changing the book elsewhere.
  void Refresh();

 private:
  struct Given {
    int64_t start = 0;
    int64_t end = 0;  // EndsAt
    uint64_t capacity = 0;
    int64_t shrink_at = 0;  // an acknowledged notice to a smaller capacity takes effect here
    uint64_t shrunk = 0;
    int64_t lapse_s = 0;  // ended by its term, not a notice: kept one term longer
  };
  int64_t Now() const { return clock_->now_ns() / 1'000'000'000; }

  exchange::NodeBook* const book_;
  Pairing* const pairing_;
  const PublicKey self_;
  const Clock* const clock_;
  const std::function<std::vector<std::string>()> addresses_;
  HostService* host_ = nullptr;
  std::atomic<int64_t> grace_s_{0};

  mutable std::shared_mutex mu_;  // guards the index below
  std::set<PublicKey> peers_;
  std::map<PublicKey, std::vector<Given>> given_;  // leases where this node is the host
};

}  // namespace quid::net
