#include "cmd/node_daemon.h"
#include "cmd/node_daemon_impl.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "cmd/control_socket.h"
#include "cmd/network_stores.h"
#include "net/address.h"
#include "net/event_loop.h"
#include "net/host_server.h"
#include "net/host_service.h"
#include "net/invitation.h"
#include "net/node_service.h"
#include "net/peer_client.h"
#include "storage/base/env.h"
#include "storage/exchange/lease.h"

namespace quid {

using namespace node_daemon_internal;

Result<std::unique_ptr<NodeDaemon>> NodeDaemon::Start(NodeDaemonOptions options) {
  std::unique_ptr<NodeDaemon> daemon(new NodeDaemon());
  daemon->impl_ = std::make_unique<Impl>();
  Impl& d = *daemon->impl_;
  d.options = std::move(options);
  QUID_ASSIGN_OR_RETURN(net::NodeIdentity id, LoadNodeIdentity(d.options.home));
  d.identity = std::make_unique<net::NodeIdentity>(id);
  QUID_ASSIGN_OR_RETURN(d.book, exchange::NodeBook::Open(Env::Default(), d.options.home + "/node"));
  d.pairing =
      std::make_unique<net::Pairing>(d.book.get(), d.identity.get(), &d.clock, d.options.policy);
  d.pairing->SetLabels(d.options.labels);
  d.node =
      std::make_unique<net::NodeService>(d.book.get(), d.pairing.get(), d.identity->public_key(),
                                         &d.clock, [&d] { return d.Addresses(); });
  net::HostServiceOptions host;
  host.data_dir = d.options.home + "/host";
  host.contribution_bytes = d.options.contribution_bytes;
  host.tenant_fingerprints = d.options.tenants;
  net::NodeService* node = d.node.get();
  host.lease_capacity = [node](const PublicKey& tenant) { return node->LeaseCapacity(tenant); };
  QUID_ASSIGN_OR_RETURN(d.host, net::HostService::Open(host));
  d.node->SetHostService(d.host.get());
  d.node->SetGraceS(d.options.grace_s);

  net::HostServerOptions server;
  server.listen_host = d.options.listen_host;
  server.port = d.options.port;
  server.identity = *d.identity;
  server.service = d.node.get();
  QUID_ASSIGN_OR_RETURN(d.server, net::HostServer::Start(server));
  // Partners are told the address this node listens on; a wildcard listener is reached at
  // this machine's name.
  std::string host_name = d.options.listen_host;
  if (Unspecified(host_name)) {
    char name[256] = {};
    host_name = ::gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  d.advertised = net::JoinHostPort(host_name, d.server->port());
  QUID_ASSIGN_OR_RETURN(d.peer_loop, net::EventLoop::Start("quid-peers"));

  ControlHandlers handlers;
  Impl* impl = &d;
  handlers.command = [impl](const std::string& line) { return impl->Command(line); };
  QUID_ASSIGN_OR_RETURN(d.control,
                        ControlServer::Start(d.options.home + "/" + kNodeSocketName, handlers));
  d.heartbeats = std::thread([impl] { impl->HeartbeatLoop(); });
  return daemon;
}

NodeDaemon::~NodeDaemon() {
  if (impl_) Stop();
}

uint16_t NodeDaemon::port() const {
  return impl_->server->port();
}
std::string NodeDaemon::fingerprint() const {
  return impl_->identity->fingerprint();
}
uint64_t NodeDaemon::used_bytes() const {
  return impl_->host->used_bytes();
}

void NodeDaemon::Scrub() {
  net::ScrubReport report = impl_->host->Scrub();
  spdlog::info("scrub: {} shards checked, {} corrupt", report.shards_checked,
               report.shards_corrupt);
}

void NodeDaemon::Stop() {
  Impl& d = *impl_;
  if (d.stopped.exchange(true)) return;
  {
    std::lock_guard lock(d.mu);
    d.stopping = true;
    d.cv.notify_all();
  }
  if (d.control) d.control->Stop();
  if (d.heartbeats.joinable()) d.heartbeats.join();
  d.clients.clear();
  if (d.server) d.server->Stop();
  if (d.book) {
    Status flushed = d.book->Flush();
    if (!flushed.ok()) spdlog::warn("node book: {}", flushed.message());
  }
}

void NodeDaemon::Impl::HeartbeatLoop() {
  auto next_flush = std::chrono::steady_clock::now() + kBookFlushInterval;
  for (;;) {
    const exchange::Book snapshot = book->Snapshot();
    {
      std::lock_guard lock(mu);
      if (stopping) return;
    }
    // Every peer at once: a peer that is away costs its own timeout, not everyone's round
    // (an address change reaches every partner within one heartbeat). Each task touches
    // only its own peer's client, made here beforehand.
    for (const exchange::Peer& peer : snapshot.peers()) clients[KeyOf(peer.key())];
    for (int first = 0; first < snapshot.peers_size(); first += kBeatsAtOnce) {
      std::vector<std::thread> beats;
      const int last = std::min(snapshot.peers_size(), first + kBeatsAtOnce);
      for (int i = first; i < last; ++i)
        beats.emplace_back([this, &peer = snapshot.peers(i)] { Beat(peer); });
      for (std::thread& t : beats) t.join();
    }
    EnforceReciprocity();
    node->Refresh();  // leases renewed or adopted, and states that passed with the clock
    DropEndedTenants();
    if (std::chrono::steady_clock::now() >= next_flush) {
      Status flushed = book->Flush();
      if (!flushed.ok()) spdlog::warn("node book: {}", flushed.message());
      next_flush = std::chrono::steady_clock::now() + kBookFlushInterval;
    }
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, std::chrono::milliseconds(options.heartbeat_ms),
                    [this] { return stopping; }))
      return;
  }
}

void NodeDaemon::Impl::Beat(const exchange::Peer& peer) {
  const PublicKey key = KeyOf(peer.key());
  if (peer.addresses().empty()) return;
  const int64_t timeout = std::clamp<int64_t>(options.heartbeat_ms, 500, kMaxHeartbeatTimeoutMs);
  Client& c = clients.at(key);  // made by HeartbeatLoop before the round
  Status failed;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!c.client || c.address != peer.addresses(0)) {
      c.address = peer.addresses(0);
      auto client = net::PeerClient::Connect(c.address, *identity, key, peer_loop.get(), timeout);
      if (!client.ok()) {
        c.client.reset();
        failed = client.status();
        break;
      }
      c.client = std::move(*client);
    }
    wire::Request request;
    *request.mutable_heartbeat() = pairing->MakeHeartbeat(key, Addresses());
    Result<wire::Response> answer = c.client->Call(std::move(request));
    if (answer.ok()) {
      Status s = pairing->OnHeartbeatReply(key, &answer->heartbeat());
      if (!s.ok()) spdlog::warn("heartbeat from {}: {}", Fingerprint(key), s.message());
      return;
    }
    failed = answer.status();
    c.client.reset();  // a connection that failed once is made afresh
    if (answer.status().code() != Code::kUnavailable) break;
  }
  spdlog::debug("heartbeat to {} at {}: {}", Fingerprint(key), c.address, failed.message());
  Status s = pairing->OnHeartbeatReply(key, nullptr);
  (void)s;
}

std::string NodeDaemon::Impl::Command(const std::string& line) {
  json request = json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object() || !request.contains("op"))
    return json{{"error", "malformed request"}}.dump();
  const std::string op = request.value("op", "");
  Result<json> reply = Status::Invalid("unknown request \"" + op + "\"");
  try {
    if (op == "id") {
      reply = json{{"fingerprint", identity->fingerprint()}, {"addresses", Addresses()}};
    } else if (op == "invite") {
      reply = Invite(request);
    } else if (op == "join") {
      reply = Join(request);
    } else if (op == "trust") {
      reply = Trust(request);
    } else if (op == "peers") {
      reply = Peers();
    } else if (op == "leases") {
      reply = Leases();
    } else if (op == "stores") {
      reply = Stores(request);
    } else if (op == "ledger") {
      reply = Ledger();
    } else if (op == "lease_set" || op == "lease_revoke") {
      reply = LeaseChange(request, op == "lease_revoke");
    }
  } catch (const json::exception& e) {
    reply = Status::Invalid(std::string("malformed request: ") + e.what());
  }
  if (!reply.ok()) return json{{"error", reply.status().message()}}.dump();
  return reply->dump();
}

Result<json> NodeDaemon::Impl::Invite(const json& request) {
  const uint64_t capacity = request.at("capacity").get<uint64_t>();
  const int64_t valid_s = request.value("valid_s", int64_t{86400});
  const uint32_t ratio = request.value("ratio", uint32_t{1000});
  QUID_ASSIGN_OR_RETURN(net::Invitation code,
                        pairing->Invite(capacity, valid_s, ratio, Addresses()));
  spdlog::info("invitation made: {} bytes each way, valid until {}", capacity, code.expires_at);
  return json{{"code", net::EncodeInvitation(code)}, {"expires_at", code.expires_at}};
}

Result<json> NodeDaemon::Impl::Pair(net::PeerClient* client, std::string proof, uint64_t capacity) {
  wire::Request request;
  request.mutable_join()->set_proof(std::move(proof));
  for (const std::string& a : Addresses()) request.mutable_join()->add_addresses(a);
  QUID_ASSIGN_OR_RETURN(wire::Response offered, client->Call(std::move(request)));
  QUID_ASSIGN_OR_RETURN(wire::Countersign countersign,
                        pairing->AcceptOffer(client->peer(), capacity, offered.offer()));
  node->Refresh();
  wire::Request signed_;
  *signed_.mutable_countersign() = std::move(countersign);
  Result<wire::Response> done = client->Call(std::move(signed_));
  // Both leases are ours already; the next heartbeat carries them if this was lost.
  if (!done.ok())
    spdlog::warn(
        "pairing with {}: countersignature not confirmed ({}); the next heartbeat "
        "carries it",
        Fingerprint(client->peer()), done.status().message());
  spdlog::info("paired with {}: {} bytes each way", Fingerprint(client->peer()), capacity);
  return json{
      {"peer", Fingerprint(client->peer())}, {"capacity_bytes", capacity}, {"state", "paired"}};
}

Result<json> NodeDaemon::Impl::Join(const json& request) {
  QUID_ASSIGN_OR_RETURN(net::Invitation code,
                        net::DecodeInvitation(request.at("code").get<std::string>()));
  const std::string inviter = ToHex(code.key_fingerprint);
  if (inviter == identity->fingerprint())
    return Status::Invalid("this code was made by this node: give it to the node that joins");
  if (code.expires_at <= Now())
    return Status(Code::kPermission, "this invitation code has expired");
  Status last = Status::Unavailable("the code names no address");
  for (const std::string& address : code.addresses) {
    auto client =
        net::PeerClient::Connect(address, *identity, std::nullopt, peer_loop.get(), kPairTimeoutMs);
    if (!client.ok()) {
      last = client.status();
      continue;
    }
    if (Fingerprint((*client)->peer()) != inviter)
      return Status(Code::kPermission, "the node at " + address +
                                           " is not the one that made this code (its key is " +
                                           Fingerprint((*client)->peer()) + ")");
    auto proof = net::JoinProof(code.secret, (*client)->channel_binding());
    Result<json> paired =
        Pair(client->get(), std::string(proof.begin(), proof.end()), code.capacity_bytes);
    // `quid join --ratio R`: this node's own rule for the new partner.
    const uint32_t ratio = request.value("ratio", uint32_t{0});
    if (paired.ok() && ratio != 0) {
      const PublicKey peer = (*client)->peer();
      QUID_RETURN_IF_ERROR(book->Update([&](exchange::Book* b) -> Status {
        exchange::Peer* known = exchange::FindPeer(b, peer);
        if (known != nullptr) known->set_ratio_permille(ratio);
        return Status::Ok();
      }));
    }
    return paired;
  }
  return Status::Unavailable("cannot reach the inviter: " + last.message());
}

Result<json> NodeDaemon::Impl::Trust(const json& request) {
  const std::string fp = request.at("peer").get<std::string>();
  const std::string address = request.at("address").get<std::string>();
  const uint64_t capacity = request.at("capacity").get<uint64_t>();
  if (fp == identity->fingerprint()) return Status::Invalid("a node cannot pair with itself");
  auto client =
      net::PeerClient::Connect(address, *identity, std::nullopt, peer_loop.get(), kPairTimeoutMs);
  if (!client.ok()) return client.status();
  if (Fingerprint((*client)->peer()) != fp)
    return Status(Code::kPermission, "the node at " + address + " is " +
                                         Fingerprint((*client)->peer()) + ", not " + fp);
  QUID_RETURN_IF_ERROR(pairing->Trust((*client)->peer(), address, capacity));
  node->Refresh();
  Result<json> paired = Pair(client->get(), "", capacity);
  if (paired.ok()) return paired;
  // The other side has not run quid trust for this node yet: it pairs when it does.
  if (paired.status().code() == Code::kPermission)
    return json{{"peer", fp}, {"capacity_bytes", capacity}, {"state", "waiting"}};
  return paired.status();
}

}  // namespace quid
