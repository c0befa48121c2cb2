#include "cmd/network_stores.h"

#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>

#include "net/event_loop.h"
#include "net/remote_store.h"

namespace quid {

std::string NodeKeyPath(const std::string& home) {
  return home + "/node.key";
}

Result<net::NodeIdentity> LoadNodeIdentity(const std::string& home) {
  return net::NodeIdentity::LoadOrCreate(NodeKeyPath(home));
}

Status SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  std::string h, p;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find("]:");
    if (close == std::string::npos) return Status::Invalid("bad address " + address);
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return Status::Invalid("address " + address + " is not HOST:PORT");
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || end != p.data() + p.size() || value == 0 || value > 65535)
    return Status::Invalid("bad port in " + address);
  *host = h;
  *port = static_cast<uint16_t>(value);
  return Status::Ok();
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
