// What a host server asks of the node behind it: who may connect, and the answer to each
// request. HostService (shards only, for `serve --tenant` and tests) is one; NodeService
// (the exchange: pairing and heartbeats, shards under leases) is the other.
#pragma once

#include <array>
#include <cstdint>

#include "net/wire.pb.h"
#include "storage/base/bytes.h"
#include "storage/base/status.h"
#include "storage/crypto/node_key.h"

namespace quid::net {

// Who sent a request, as the secure channel established it.
struct RequestContext {
  PublicKey peer{};
  std::array<uint8_t, 32> channel_binding{};  // SessionKeys::binding of this connection
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // At the end of the handshake: OK to let `peer` in; anything else closes the connection.
  virtual Status Admit(const PublicKey& peer) const = 0;
  // A peer admitted only to ask to pair (it holds no lease here): the server keeps few
  // such connections at a time (HostServerOptions::max_guest_connections).
  virtual bool IsGuest(const PublicKey& peer) const {
    (void)peer;
    return false;
  }
  // One request, on a worker thread. The response's payload goes to `reply_payload`.
  virtual void Serve(const RequestContext& context, const wire::Request& request, ByteSpan payload,
                     wire::Response* response, Bytes* reply_payload) = 0;
};

}  // namespace quid::net
