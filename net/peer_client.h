// PeerClient: one node daemon's connection to another, for the exchange's own requests
// (Join, Countersign, Heartbeat; net/pairing.h), not for shards (RemoteStore). One
// connection, no retries: a Join's proof is bound to the connection it was made on, so it
// must not be resent on another.
//
// Thread-safe; calls block the caller (never the loop) for at most the timeout.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "net/event_loop.h"
#include "net/identity.h"
#include "net/wire.pb.h"
#include "storage/base/status.h"

namespace quid::net {

class PeerClient {
 public:
  // Connects to `address` ("HOST:PORT") and completes the handshake. With `pinned`, any
  // other key is refused (kPermission); without, the peer's key is taken as it comes and
  // the caller checks it (a join compares it with the code's fingerprint). kUnavailable if
  // nothing answers within `timeout_ms`. `loop` must outlive the client.
  static Result<std::unique_ptr<PeerClient>> Connect(const std::string& address,
                                                     const NodeIdentity& self,
                                                     std::optional<PublicKey> pinned,
                                                     EventLoop* loop, int64_t timeout_ms);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  const PublicKey& peer() const { return peer_; }
  const std::array<uint8_t, 32>& channel_binding() const { return binding_; }

  // Sends one request and returns the peer's answer; a non-OK answer comes back as its
  // Status (the peer's own sentence).
  Result<wire::Response> Call(wire::Request request);

 private:
  PeerClient() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PublicKey peer_{};
  std::array<uint8_t, 32> binding_{};
};

}  // namespace quid::net
