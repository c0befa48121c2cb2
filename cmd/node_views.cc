// What node.sock shows of the exchange (peers, leases, the stores a mount may use, the
// ledger), changes of what this node gives (`quid lease set`, `quid lease revoke`), and
// reciprocity acting on its own after each heartbeat round.
#include <spdlog/spdlog.h>

#include "cmd/node_daemon_impl.h"
#include "storage/exchange/lease.h"
#include "storage/exchange/notice.h"
#include "storage/exchange/standing.h"

namespace quid {

using namespace node_daemon_internal;

namespace {

// What this node's volume keeps on `host`, by the volume's own count (0 if not reported).
uint64_t HeldBy(const exchange::Book& book, const PublicKey& host) {
  const exchange::Peer* peer = exchange::FindPeer(book, host);
  return peer != nullptr ? peer->held_by_peer_bytes() : 0;
}

}  // namespace

json NodeDaemon::Impl::Peers() {
  const exchange::Book b = book->Snapshot();
  const int64_t now = Now();
  const int64_t online_s =
      std::max<int64_t>(kOnlineIntervals * options.heartbeat_ms / 1000, kOnlineIntervals);
  json peers = json::array();
  for (const exchange::Peer& p : b.peers()) {
    const double uptime = p.heartbeats_sent() == 0 ? 0.0
                                                   : static_cast<double>(p.heartbeats_answered()) /
                                                         static_cast<double>(p.heartbeats_sent());
    peers.push_back(
        {{"peer", Fingerprint(KeyOf(p.key()))},
         {"addresses", std::vector<std::string>(p.addresses().begin(), p.addresses().end())},
         {"online", p.last_seen() > 0 && now - p.last_seen() <= online_s},
         {"uptime", uptime},
         {"last_seen", p.last_seen()},
         {"paired_by", p.paired_by()}});
  }
  return json{{"peers", peers}};
}

json NodeDaemon::Impl::Leases() {
  const exchange::Book b = book->Snapshot();
  const int64_t now = Now();
  const PublicKey& self = identity->public_key();
  json leases = json::array();
  for (const exchange::LeaseEntry& entry : b.leases()) {
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok()) continue;
    const bool given = exchange::HostKey(*terms) == self;
    const PublicKey other = given ? exchange::TenantKey(*terms) : exchange::HostKey(*terms);
    leases.push_back(
        {{"id", exchange::LeaseIdHex(*terms)},
         {"peer", Fingerprint(other)},
         {"direction", given ? "given" : "received"},
         {"state", exchange::LeaseStateName(exchange::StateAt(entry, now))},
         {"capacity_bytes", terms->capacity_bytes()},
         {"used_bytes", given ? host->TenantBytes(other) : HeldBy(b, other)},
         {"promised_bytes", exchange::CapacityPromised(entry, now)},
         {"notice_acknowledged", entry.has_notice() && exchange::Acknowledged(entry.notice())},
         {"expires_at", exchange::EndsAt(entry)},
         {"sequence", terms->sequence()}});
  }
  return json{{"leases", leases}};
}

json NodeDaemon::Impl::Stores(const json& request) {
  // The mount's own count of what it placed where: the ledger's "held by peer" (kept in
  // memory, written with the next durable change; a lost count is sent again in seconds).
  if (request.contains("placed")) {
    std::map<PublicKey, json> placed;
    for (const json& p : request.at("placed")) {
      PublicKey key{};
      if (FromHex(p.at("key").get<std::string>(), key)) placed[key] = p;
    }
    bool durable = false;
    Status noted = book->Update(
        [&](exchange::Book* b) -> Status {
          for (exchange::Peer& peer : *b->mutable_peers()) {
            auto it = placed.find(KeyOf(peer.key()));
            if (it == placed.end()) continue;
            peer.set_held_by_peer_bytes(it->second.value("bytes", uint64_t{0}));
            peer.set_puts_ok(it->second.value("puts_ok", uint64_t{0}));
            peer.set_puts_failed(it->second.value("puts_failed", uint64_t{0}));
            peer.set_reads_ok(it->second.value("reads_ok", uint64_t{0}));
            peer.set_reads_failed(it->second.value("reads_failed", uint64_t{0}));
          }
          return Status::Ok();
        },
        &durable);
    if (!noted.ok()) spdlog::warn("node book: {}", noted.message());
  }
  const exchange::Book b = book->Snapshot();
  const int64_t now = Now();
  const PublicKey& self = identity->public_key();
  // Per host: what its leases promise from now on. A host whose every lease is ending
  // (revoked, shrunk to nothing, or past its term) is draining: the mount moves its shards
  // to other leases before the host may delete them.
  std::map<PublicKey, uint64_t> promised;
  for (const exchange::LeaseEntry& entry : b.leases()) {
    Result<exchange::LeaseTerms> terms = exchange::DecodeTerms(entry.lease());
    if (!terms.ok() || exchange::TenantKey(*terms) != self) continue;
    if (!exchange::InForce(exchange::StateAt(entry, now))) continue;
    uint64_t capacity = exchange::CapacityPromised(entry, now);
    // A lease that does not renew itself counts as ending once less than its notice is left.
    if (!terms->auto_renew() && exchange::EndsAt(entry) - now < terms->notice_s()) capacity = 0;
    promised[exchange::HostKey(*terms)] += capacity;
  }
  json stores = json::array();
  for (const auto& [key, capacity] : promised) {
    const exchange::Peer* peer = exchange::FindPeer(b, key);
    stores.push_back(
        {{"peer", Fingerprint(key)},
         {"key", KeyHex(key)},
         {"addresses",
          peer ? std::vector<std::string>(peer->addresses().begin(), peer->addresses().end())
               : std::vector<std::string>()},
         {"capacity_bytes", capacity},
         {"draining", capacity == 0},
         {"labels", peer ? std::vector<std::string>(peer->labels().begin(), peer->labels().end())
                         : std::vector<std::string>()},
         // Heartbeats answered / sent: the host's measured uptime (-1: none yet).
         {"uptime", peer && peer->heartbeats_sent() > 0
                        ? static_cast<double>(peer->heartbeats_answered()) /
                              static_cast<double>(peer->heartbeats_sent())
                        : -1.0}});
  }
  // Tells the mount how often to ask again: about once a heartbeat.
  return json{{"stores", stores}, {"refresh_ms", options.heartbeat_ms}};
}

json NodeDaemon::Impl::Ledger() {
  const exchange::Book b = book->Snapshot();
  const int64_t now = Now();
  json peers = json::array();
  for (const exchange::Peer& p : b.peers()) {
    const PublicKey key = KeyOf(p.key());
    const exchange::Standing s = exchange::JudgeStanding(b, identity->public_key(), p, now);
    peers.push_back({{"peer", Fingerprint(key)},
                     {"given_bytes", s.given_bytes},
                     {"received_bytes", s.received_bytes},
                     {"held_for_peer_bytes", host->TenantBytes(key)},
                     {"held_by_peer_bytes", p.held_by_peer_bytes()},
                     {"ratio", s.ratio_permille / 1000.0},
                     {"allowed_bytes", s.allowed_bytes},
                     {"standing", s.standing},
                     {"why", s.why},
                     {"uptime", s.uptime},
                     {"observed_s", s.observed_s},
                     {"puts_ok", p.puts_ok()},
                     {"puts_failed", p.puts_failed()},
                     {"reads_ok", p.reads_ok()},
                     {"reads_failed", p.reads_failed()},
                     {"paired_by", p.paired_by()}});
  }
  return json{{"peers", peers}};
}

Result<PublicKey> NodeDaemon::Impl::PeerByPrefix(const std::string& prefix) {
  if (prefix.empty()) return Status::Invalid("name a peer by its fingerprint (or a prefix)");
  const exchange::Book b = book->Snapshot();
  std::vector<PublicKey> matches;
  for (const exchange::Peer& p : b.peers()) {
    const PublicKey key = KeyOf(p.key());
    if (Fingerprint(key).rfind(prefix, 0) == 0) matches.push_back(key);
  }
  if (matches.empty()) return Status::NotFound("no peer's fingerprint starts with " + prefix);
  if (matches.size() > 1)
    return Status::Invalid(prefix + " names " + std::to_string(matches.size()) +
                           " peers: give more of the fingerprint");
  return matches[0];
}

Result<json> NodeDaemon::Impl::LeaseChange(const json& request, bool revoke) {
  QUID_ASSIGN_OR_RETURN(PublicKey peer, PeerByPrefix(request.value("peer", std::string())));
  const uint32_t ratio = request.value("ratio", uint32_t{0});
  uint64_t capacity = 0;
  uint32_t set_ratio = ratio;
  if (!revoke) {
    if (!request.contains("capacity") && ratio == 0)
      return Status::Invalid("say what to give: --capacity SIZE, --ratio R, or both");
    const exchange::Book b = book->Snapshot();
    const exchange::Peer* known = exchange::FindPeer(b, peer);
    if (known == nullptr)
      return Status::NotFound(Fingerprint(peer) + " is not a peer of this node");
    const exchange::Standing s = exchange::JudgeStanding(b, identity->public_key(), *known, Now());
    capacity =
        request.contains("capacity") ? request.at("capacity").get<uint64_t>() : s.given_bytes;
    // Giving more than reciprocity allows is the owner's choice: it becomes the peer's
    // ratio, so that reciprocity does not take it back at the next heartbeat.
    if (set_ratio == 0 && capacity > s.allowed_bytes && s.received_bytes > 0)
      set_ratio = static_cast<uint32_t>(
          std::min<uint64_t>(capacity * 1000 / s.received_bytes + 1, UINT32_MAX));
  }
  QUID_ASSIGN_OR_RETURN(net::GivenChange change, pairing->ChangeGiven(peer, capacity, set_ratio));
  node->Refresh();
  spdlog::info("{} what this node gives {}: {} -> {} bytes{}", revoke ? "revoked" : "changed",
               Fingerprint(peer), change.before, change.after,
               change.notice_s > 0 ? " after the notice period" : "");
  return json{{"peer", Fingerprint(peer)},
              {"before_bytes", change.before},
              {"after_bytes", change.after},
              {"notice_s", change.notice_s}};
}

void NodeDaemon::Impl::EnforceReciprocity() {
  const exchange::Book b = book->Snapshot();
  const int64_t now = Now();
  for (const exchange::Peer& p : b.peers()) {
    const exchange::Standing s = exchange::JudgeStanding(b, identity->public_key(), p, now);
    if (!s.reciprocal || s.given_bytes <= s.allowed_bytes) continue;
    const PublicKey key = KeyOf(p.key());
    Result<net::GivenChange> change = pairing->ChangeGiven(key, s.allowed_bytes, 0);
    if (!change.ok()) {
      spdlog::warn("reciprocity with {}: {}", Fingerprint(key), change.status().message());
      continue;
    }
    spdlog::info(
        "{} now gives this node {} bytes{}{}: what this node gives it goes from {} to {} bytes "
        "after the notice period",
        Fingerprint(key), s.received_bytes, s.why.empty() ? "" : " and ", s.why, change->before,
        change->after);
  }
  node->Refresh();
}

void NodeDaemon::Impl::DropEndedTenants() {
  for (const PublicKey& tenant : node->TenantsPastGrace()) {
    if (host->TenantBytes(tenant) == 0) continue;
    Result<uint64_t> freed = host->DropTenant(tenant);
    if (!freed.ok()) {
      spdlog::warn("deleting what {} left here: {}", Fingerprint(tenant), freed.status().message());
      continue;
    }
    spdlog::info("deleted the {} bytes {} left here: its leases ended {} s ago or more", *freed,
                 Fingerprint(tenant), options.grace_s);
  }
}

}  // namespace quid
