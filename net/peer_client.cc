#include "net/peer_client.h"

#include "net/address.h"
#include "net/host_client.h"
#include "net/wire.h"

namespace quid::net {

using host_client::Core;
using host_client::Pending;
using host_client::Reply;
using host_client::SteadyClock;

struct PeerClient::Impl {
  std::shared_ptr<Core> core;
  int64_t timeout_ms = 0;
  ~Impl() {
    if (core) host_client::CloseOnLoop(core);
  }
};

Result<std::unique_ptr<PeerClient>> PeerClient::Connect(const std::string& address,
                                                        const NodeIdentity& self,
                                                        std::optional<PublicKey> pinned,
                                                        EventLoop* loop, int64_t timeout_ms) {
  RemoteStoreOptions options;
  QUID_RETURN_IF_ERROR(SplitHostPort(address, &options.host, &options.port));
  options.identity = self;
  options.connect_timeout_ms = timeout_ms;
  options.request_timeout_ms = timeout_ms;
  options.connections = 1;
  options.retries = 0;
  std::unique_ptr<PeerClient> client(new PeerClient());
  client->impl_ = std::make_unique<Impl>();
  client->impl_->timeout_ms = timeout_ms;
  QUID_ASSIGN_OR_RETURN(client->impl_->core,
                        host_client::MakeCore(std::move(options), pinned, loop));
  // The handshake alone first: its key and channel binding are what the caller needs
  // before it can say anything (a join's proof).
  auto pending = std::make_shared<Pending>();
  std::shared_ptr<Core> core = client->impl_->core;
  loop->Post([core, pending] { core->Send(pending, nullptr); });
  // The connect timer fires first; the extra second only covers a stalled loop.
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms + 1000);
  QUID_ASSIGN_OR_RETURN(Reply reply, core->Wait(pending, deadline));
  client->peer_ = reply.peer;
  client->binding_ = reply.channel_binding;
  return client;
}

PeerClient::~PeerClient() = default;

Result<wire::Response> PeerClient::Call(wire::Request request) {
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(impl_->timeout_ms);
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->CallOnce(&request, {}, deadline, nullptr));
  Status answered = StatusFromResponse(reply.response);
  if (!answered.ok()) return answered;
  return std::move(reply.response);
}

}  // namespace quid::net
