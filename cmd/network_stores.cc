#include "cmd/network_stores.h"

#include <nlohmann/json.hpp>

#include "cmd/node_socket.h"

#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>

#include "net/event_loop.h"
#include "net/remote_store.h"

namespace quid {

// The node daemon answers from its book at once; a busy one (a join in progress) may take
// a while.
constexpr int kLeaseHostsTimeoutMs = 15000;

std::string NodeKeyPath(const std::string& home) {
  return home + "/node.key";
}

namespace {

Result<std::vector<LeaseHost>> AskLeaseHosts(const std::string& home,
                                             const std::vector<PlacedOnHost>& placed) {
  nlohmann::json request = {{"op", "stores"}};
  if (!placed.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const PlacedOnHost& p : placed)
      list.push_back({{"key", ToHex(p.public_key)},
                      {"bytes", p.bytes},
                      {"puts_ok", p.puts_ok},
                      {"puts_failed", p.puts_failed},
                      {"reads_ok", p.reads_ok},
                      {"reads_failed", p.reads_failed}});
    request["placed"] = std::move(list);
  }
  QUID_ASSIGN_OR_RETURN(nlohmann::json reply, NodeRequest(home, request, kLeaseHostsTimeoutMs));
  std::vector<LeaseHost> hosts;
  for (const nlohmann::json& store : reply.at("stores")) {
    LeaseHost host;
    host.spec.kind = "host";
    const auto& addresses = store.at("addresses");
    if (!addresses.empty()) host.spec.location = addresses[0].get<std::string>();
    host.spec.public_key.resize(net::kPublicKeyBytes);
    if (!FromHex(store.at("key").get<std::string>(), host.spec.public_key))
      return Status::IoError("the node daemon named a malformed host key");
    host.draining = store.value("draining", false);
    host.uptime = store.value("uptime", -1.0);
    host.labels = store.value("labels", std::vector<std::string>());
    hosts.push_back(std::move(host));
  }
  return hosts;
}

}  // namespace

Result<std::vector<StoreSpec>> LeaseHosts(const std::string& home) {
  QUID_ASSIGN_OR_RETURN(std::vector<LeaseHost> all, AskLeaseHosts(home, {}));
  std::vector<StoreSpec> hosts;
  for (LeaseHost& host : all)
    if (!host.draining && !host.spec.location.empty()) hosts.push_back(std::move(host.spec));
  return hosts;
}

LeaseHostsFn FollowLeaseHosts(const std::string& home) {
  return [home](const std::vector<PlacedOnHost>& placed) { return AskLeaseHosts(home, placed); };
}

Result<net::NodeIdentity> LoadNodeIdentity(const std::string& home) {
  return net::NodeIdentity::LoadOrCreate(NodeKeyPath(home));
}

namespace {

// Shared by every store the factory opens: the node's identity.
struct NetworkContext {
  std::string home;
  std::mutex mu;
  std::unique_ptr<net::NodeIdentity> identity;

  Status Ready() {
    std::lock_guard lock(mu);
    if (!identity) {
      QUID_ASSIGN_OR_RETURN(net::NodeIdentity id, LoadNodeIdentity(home));
      identity = std::make_unique<net::NodeIdentity>(id);
    }
    return Status::Ok();
  }
};

}  // namespace

StoreFactory MakeNetworkStoreFactory(const std::string& home) {
  auto context = std::make_shared<NetworkContext>();
  context->home = home;
  return [context](const StoreSpec& spec) -> Result<std::shared_ptr<ShardStore>> {
    if (spec.kind != "host") return Status(Code::kNotSupported, "unknown store kind " + spec.kind);
    if (spec.public_key.size() != net::kPublicKeyBytes)
      return Status::Corrupt("host " + spec.location + " has no valid pinned key");
    QUID_RETURN_IF_ERROR(context->Ready());
    net::RemoteStoreOptions options;
    QUID_RETURN_IF_ERROR(SplitHostPort(spec.location, &options.host, &options.port));
    options.identity = *context->identity;
    std::memcpy(options.host_key.data(), spec.public_key.data(), net::kPublicKeyBytes);
    // One loop per host: the loop thread seals and opens that host's frames, so hosts
    // spread the channel's cryptography over the cores instead of queueing on one thread.
    QUID_ASSIGN_OR_RETURN(std::shared_ptr<net::EventLoop> loop, net::EventLoop::Start("quid-net"));
    QUID_ASSIGN_OR_RETURN(auto store, net::RemoteStore::Create(options, loop.get()));
    // The store goes before its loop.
    return std::shared_ptr<ShardStore>(store.get(), [store, loop](ShardStore*) mutable {
      store.reset();
      loop.reset();
    });
  };
}

}  // namespace quid
