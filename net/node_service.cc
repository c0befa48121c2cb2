#include "net/node_service.h"

#include <algorithm>

#include "net/wire.h"
#include "storage/exchange/lease.h"
#include "storage/exchange/notice.h"

namespace quid::net {

NodeService::NodeService(exchange::NodeBook* book, Pairing* pairing, const PublicKey& self,
                         const Clock* clock, std::function<std::vector<std::string>()> addresses)
    : book_(book), pairing_(pairing), self_(self), clock_(clock), addresses_(std::move(addresses)) {
  Refresh();
}

void NodeService::Refresh() {
  const exchange::Book book = book_->Snapshot();
  std::set<PublicKey> peers;
  std::map<PublicKey, std::vector<Given>> given;
  for (const exchange::Peer& peer : book.peers()) {
    if (peer.key().size() != kPublicKeyBytes) continue;
    PublicKey key{};
    std::copy(peer.key().begin(), peer.key().end(), key.begin());
    peers.insert(key);
  }
  for (const exchange::LeaseEntry& entry : book.leases()) {
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok() || !exchange::FullySigned(entry.lease())) continue;
    if (exchange::HostKey(*terms) != self_) continue;
    Given g{terms->start(),
            exchange::EndsAt(entry),
            terms->capacity_bytes(),
            0,
            0,
            entry.notice_at() > 0 ? 0 : terms->term_s()};
    if (entry.has_notice() && exchange::Acknowledged(entry.notice())) {
      Result<exchange::LeaseNotice> notice = exchange::DecodeNotice(entry.notice());
      if (notice.ok() && notice->capacity_bytes() < g.capacity) {
        g.shrink_at = entry.notice().acknowledged_at() + terms->notice_s();
        g.shrunk = notice->capacity_bytes();
      }
    }
    given[exchange::TenantKey(*terms)].push_back(g);
  }
  std::unique_lock lock(mu_);
  peers_ = std::move(peers);
  given_ = std::move(given);
}

std::optional<uint64_t> NodeService::LeaseCapacity(const PublicKey& tenant) const {
  const int64_t now = Now();
  std::shared_lock lock(mu_);
  auto it = given_.find(tenant);
  if (it == given_.end()) return std::nullopt;
  std::optional<uint64_t> capacity;
  const int64_t grace = grace_s_.load(std::memory_order_relaxed);
  for (const Given& g : it->second) {
    // A lease whose start lies a little ahead (the tenant's clock is behind) admits too.
    if (now < g.end) {
      const bool shrunk = g.shrink_at != 0 && now >= g.shrink_at;
      capacity = capacity.value_or(0) + (shrunk ? g.shrunk : g.capacity);
    } else if (now < g.end + grace) {
      capacity = capacity.value_or(0);  // admitted, with no room: the tenant's grace
    }
  }
  return capacity;
}

std::vector<PublicKey> NodeService::TenantsPastGrace() const {
  const int64_t now = Now();
  const int64_t grace = grace_s_.load(std::memory_order_relaxed);
  std::vector<PublicKey> out;
  std::shared_lock lock(mu_);
  for (const auto& [tenant, leases] : given_) {
    if (host_ != nullptr && host_->IsStandingTenant(tenant)) continue;
    const bool all_past = std::all_of(leases.begin(), leases.end(), [&](const Given& g) {
      return now >= g.end + grace + g.lapse_s;
    });
    if (all_past) out.push_back(tenant);
  }
  return out;
}

Status NodeService::Admit(const PublicKey& peer) const {
  if (peer == self_) return Status(Code::kPermission, "a node does not connect to itself");
  return Status::Ok();
}

bool NodeService::IsGuest(const PublicKey& peer) const {
  std::shared_lock lock(mu_);
  return peers_.count(peer) == 0 && given_.count(peer) == 0 &&
         !(host_ != nullptr && host_->Admit(peer).ok());
}

void NodeService::Serve(const RequestContext& context, const wire::Request& request,
                        ByteSpan payload, wire::Response* response, Bytes* reply_payload) {
  response->Clear();
  response->set_id(request.id());
  reply_payload->clear();
  auto answer = [&]() -> Status {
    switch (request.op_case()) {
      case wire::Request::kJoin: {
        QUID_ASSIGN_OR_RETURN(
            wire::JoinOffer offer,
            pairing_->OnJoin(context.peer, context.channel_binding, request.join()));
        for (std::string& a : addresses_()) offer.add_addresses(std::move(a));
        *response->mutable_offer() = std::move(offer);
        Refresh();
        return Status::Ok();
      }
      case wire::Request::kCountersign: {
        Status s = pairing_->OnCountersign(context.peer, request.countersign());
        Refresh();
        return s;
      }
      case wire::Request::kHeartbeat: {
        QUID_ASSIGN_OR_RETURN(wire::Heartbeat reply,
                              pairing_->OnHeartbeat(context.peer, request.heartbeat()));
        for (std::string& a : addresses_()) reply.add_addresses(std::move(a));
        *response->mutable_heartbeat() = std::move(reply);
        Refresh();
        return Status::Ok();
      }
      default:
        break;
    }
    if (host_ == nullptr) return Status::Unavailable("this node hosts no shards yet");
    host_->Handle(context.peer, request, payload, response, reply_payload);
    return StatusFromResponse(*response);
  };
  Status s = answer();
  if (!s.ok()) {
    response->clear_result();
    reply_payload->clear();
  }
  SetStatus(response, s);
  response->set_id(request.id());
}

}  // namespace quid::net
