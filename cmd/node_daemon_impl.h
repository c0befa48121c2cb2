// NodeDaemon's internals, shared by its source files: node_daemon.cc (start, stop,
// heartbeats, pairing commands) and node_views.cc (what node.sock shows: peers, leases,
// stores, the ledger; changes of what is given, and reciprocity). Not an interface:
// include it from those files only.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "cmd/control_socket.h"
#include "cmd/node_daemon.h"
#include "net/event_loop.h"
#include "net/host_server.h"
#include "net/host_service.h"
#include "net/node_service.h"
#include "net/peer_client.h"
#include "storage/base/clock.h"
#include "storage/exchange/node_book.h"

namespace quid {
namespace node_daemon_internal {

// A join or trust waits this long for the other node; a heartbeat at most its interval.
constexpr int64_t kPairTimeoutMs = 10'000;
constexpr int64_t kMaxHeartbeatTimeoutMs = 5'000;
// Heartbeats in flight at once (a thread each), so a node with many peers stays bounded.
constexpr int kBeatsAtOnce = 32;
// Heartbeats' times are written this often (they are kept in memory in between).
constexpr auto kBookFlushInterval = std::chrono::seconds(30);
// A peer is online when heard from within this many heartbeat intervals.
constexpr int64_t kOnlineIntervals = 3;

inline std::string KeyHex(const PublicKey& key) {
  return ToHex(key);
}

inline PublicKey KeyOf(const std::string& bytes) {
  PublicKey key{};
  if (bytes.size() == key.size()) std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

inline bool Unspecified(const std::string& host) {
  return host == "0.0.0.0" || host == "::";
}

}  // namespace node_daemon_internal

using nlohmann::json;

struct NodeDaemon::Impl {
  NodeDaemonOptions options;
  RealClock clock;
  std::unique_ptr<net::NodeIdentity> identity;
  std::unique_ptr<exchange::NodeBook> book;
  std::unique_ptr<net::Pairing> pairing;
  std::unique_ptr<net::NodeService> node;
  std::unique_ptr<net::HostService> host;
  std::unique_ptr<net::HostServer> server;
  std::unique_ptr<net::EventLoop> peer_loop;  // the clients' connections to peers
  std::unique_ptr<ControlServer> control;
  std::string advertised;  // "HOST:PORT" partners reach this node at

  std::mutex mu;  // guards stopping and clients
  std::condition_variable cv;
  bool stopping = false;
  struct Client {
    std::string address;
    std::unique_ptr<net::PeerClient> client;
  };
  // The heartbeat thread's; during a round each peer's entry belongs to its Beat task.
  std::map<PublicKey, Client> clients;
  std::thread heartbeats;
  std::atomic<bool> stopped{false};

  int64_t Now() const { return clock.now_ns() / 1'000'000'000; }
  std::vector<std::string> Addresses() const { return {advertised}; }

  void HeartbeatLoop();
  void Beat(const exchange::Peer& peer);
  std::string Command(const std::string& line);
  Result<json> Invite(const json& request);
  Result<json> Join(const json& request);
  Result<json> Trust(const json& request);
  json Peers();
  json Leases();
  // The hosts of the leases this node receives, for its mount; `request` may carry the
  // mount's own count of what it placed on each (kept as the ledger's held_by_peer).
  json Stores(const json& request);
  json Ledger();
  // `quid lease set` / `quid lease revoke` (op "lease_set", "lease_revoke").
  Result<json> LeaseChange(const json& request, bool revoke);
  // After each heartbeat round: what a peer no longer gives, it no longer gets (with notice).
  void EnforceReciprocity();
  // Deletes what tenants left here once their leases ended and the grace passed.
  void DropEndedTenants();
  // The peer a fingerprint (or a unique prefix of one) names.
  Result<PublicKey> PeerByPrefix(const std::string& prefix);
  // Asks `client`'s node to pair (with `proof`, or none for a trust) and completes it.
  Result<json> Pair(net::PeerClient* client, std::string proof, uint64_t capacity);
};

}  // namespace quid
