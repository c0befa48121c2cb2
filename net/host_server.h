// HostServer: `quid serve`. Accepts TCP connections on libuv, runs the responder side of
// the handshake (admitting only the tenants HostService admits), then serves sealed
// request frames. Disk work runs on a worker pool (uv_queue_work or a ThreadPool), never
// on the loop thread; responses go back in any order, tagged with the request id.
//
// A connection that sends a malformed, oversized, unknown-version, forged or replayed
// frame is closed and logged once; every other connection is unaffected. Per-connection
// memory is bounded (one frame being read, a bounded queue of requests in progress).
//
// Limits, so that no client can exhaust the host (docs/architecture.md, "Host limits"):
// - connections still in their handshake: at most max_handshaking_connections; a new one
//   beyond it displaces the oldest (closed), so silent connections cannot hold every slot
//   for the handshake timeout;
// - connections per authenticated tenant: one beyond max_connections_per_tenant is closed
//   right after its handshake; the tenant's other connections are untouched;
// - bytes in flight per tenant (request frames taken off its sockets plus responses not
//   yet written): at max_tenant_bytes_in_flight its connections stop reading until answers
//   have gone out, so TCP pushes back on the tenant and on no one else;
// - requests in flight per connection: at max_requests_in_flight it stops reading;
// - requests on or waiting for a worker, all connections together: one beyond
//   max_queued_requests is answered kBusy at once, without touching the disk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/identity.h"
#include "net/request_handler.h"
#include "storage/base/status.h"

namespace quid::net {

struct HostServerOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (tests)
  NodeIdentity identity = NodeIdentity::Generate();
  RequestHandler* service = nullptr;  // REQUIRES: outlives the server
  size_t workers = 4;
  int64_t handshake_timeout_ms = 5000;
  size_t max_requests_in_flight = 32;  // per connection; reading pauses beyond it
  size_t max_handshaking_connections = 64;
  size_t max_connections_per_tenant = 8;  // a RemoteStore opens 2
  // Connections of peers the handler calls guests (come to pair, no lease yet), all
  // together; one beyond it is closed right after its handshake.
  size_t max_guest_connections = 16;
  uint64_t max_tenant_bytes_in_flight = 64ull << 20;  // what a RemoteStore sends at most
  size_t max_queued_requests = 256;                   // 8 per worker thread and more
};

struct HostServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // handshake failed, tenant not admitted or over its limit
  uint64_t connections_dropped = 0;  // closed for a bad frame
  uint64_t connections_shed = 0;     // displaced while in the handshake (the cap was reached)
  uint64_t handshaking = 0;          // connections in their handshake now
  uint64_t requests_served = 0;
  uint64_t requests_busy = 0;  // answered kBusy: the queue was full
  uint64_t peak_queued_requests = 0;
  uint64_t peak_tenant_bytes_in_flight = 0;  // the most any one tenant ever had
};

// port(), stats() and Stop() may be called from any thread.
class HostServer {
 public:
  // Listens before it returns: kUnavailable if the address cannot be bound (in use),
  // kInvalid if listen_host is not an IP address. Runs its own EventLoop thread.
  // Sets SIGPIPE to be ignored, process-wide: a peer's reset must not kill the host.
  static Result<std::unique_ptr<HostServer>> Start(HostServerOptions options);
  ~HostServer();  // Stop()
  HostServer(const HostServer&) = delete;
  HostServer& operator=(const HostServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  uint16_t port() const;
  HostServerStats stats() const;
  // Closes the listener and every connection, lets requests already on a worker finish
  // (their answers are dropped), and joins the threads. Idempotent.
  void Stop();

 private:
  HostServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quid::net
