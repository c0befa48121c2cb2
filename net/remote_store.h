// RemoteStore: a ShardStore on a host reached over TCP through the secure channel.
//
// - A small pool of connections to the host, each multiplexing many requests (ids).
// - Every call posts its request to the EventLoop and waits on its own future with a
//   timeout: callers (FUSE and flusher threads) never run on, or block, the loop.
// - Retries with backoff on quick transport errors, within the call's one deadline
//   (request_timeout_ms); a circuit breaker: after consecutive failures, or one call that
//   waited its whole timeout, the host is treated as down (kUnavailable at once) and a
//   background ping probes it every cooling period, so neither a dead host nor the
//   probing of it costs a caller anything. A host's kBusy answer (its request queue is
//   full) is retried the same way, within the deadline, without counting against it.
// - Bounded memory: bytes in flight per host are capped; callers wait (up to their
//   timeout) for room instead of buffering without limit behind a slow host. A request
//   that times out on a connection that has heard nothing since it was sent closes that
//   connection (the host is stuck, not slow), which frees what its socket queue held.
//
// Errors: kUnavailable for anything that kept the request from an answer (connect,
// handshake cut short, write, timeout, circuit open); a tenant the host does not admit
// also sees kUnavailable, because the host checks the tenant's key last and just hangs
// up. kPermission when the host's key is not the pinned one (not retried). Everything
// else is the host's own answer (kNotFound, kNoSpace, kCorrupt, kInvalid ...).
//
// Thread-safe: every method may be called from any thread but the loop's, concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "net/event_loop.h"
#include "net/identity.h"
#include "storage/stores/shard_store.h"

namespace quid::net {

struct RemoteStoreOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  NodeIdentity identity = NodeIdentity::Generate();  // this tenant
  PublicKey host_key{};                              // pinned: anything else is refused
  int64_t connect_timeout_ms = 3000;
  int64_t request_timeout_ms = 10000;
  int retries = 2;
  size_t connections = 2;
  uint64_t max_bytes_in_flight = 64ull << 20;
  int breaker_failures = 3;            // consecutive failures that open the breaker
  int64_t breaker_cooldown_ms = 2000;  // how long it stays open before a probe
  // A call that got no answer within its whole timeout opens the breaker at once; false
  // counts it like any other failure (tests that need every call to reach the socket).
  bool breaker_opens_on_timeout = true;
};

struct RemoteStoreStats {
  uint64_t bytes_in_flight = 0;       // request bytes encoded and not yet written or given up
  uint64_t peak_bytes_in_flight = 0;  // the most ever (tests check the cap holds)
};

class RemoteStore : public ShardStore {
 public:
  // `loop` must outlive the store. Connects lazily, on first use. A host name (not an
  // address) is resolved here, once; kUnavailable if it cannot be.
  static Result<std::shared_ptr<RemoteStore>> Create(RemoteStoreOptions options, EventLoop* loop);
  // Closes the connections; requests still waiting fail with kUnavailable.
  ~RemoteStore() override;

  std::string name() const override;
  Status Put(const ShardId& id, ByteSpan data) override;
  Result<Bytes> Get(const ShardId& id) override;
  Status ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) override;
  Status Remove(const ShardId& id) override;
  Result<ShardInfo> Stat(const ShardId& id) override;
  Status List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) override;
  Result<StoreUsage> Usage() override;
  // The stamp of this tenant's area on the host (a VolumeStamp request, wire.proto).
  Result<std::optional<StoreStamp>> ReadStamp() override;
  Result<StoreStamp> ClaimStamp(const StoreStamp& stamp) override;

  // Round trip to the host (ping), for status and tests.
  Status Ping();

  RemoteStoreStats stats() const;

 private:
  RemoteStore() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Connects to a host once, completes the handshake without a pinned key, and returns the
// host's public key (for `quid init --peer`: trust on first use, fingerprint printed).
Result<PublicKey> ProbeHostKey(const std::string& host, uint16_t port, const NodeIdentity& identity,
                               int64_t timeout_ms);

}  // namespace quid::net
