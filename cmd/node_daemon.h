// The node daemon (`quid serve`): one node, both host and tenant (DESIGN.md, "The
// exchange"). It keeps the node book in H/node/, hosts partners' shards under their leases
// (and standing `--tenant` keys) in H/host/, pairs by invitation and trust, sends
// heartbeats that carry addresses, leases and renewals, and answers local commands on
// H/node.sock (one JSON object per line each way; cmd/node_socket.h lists them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/pairing.h"
#include "storage/base/status.h"

namespace quid {

struct NodeDaemonOptions {
  std::string home;
  std::string listen_host = "127.0.0.1";
  uint16_t port = 0;
  uint64_t contribution_bytes = 0;
  std::vector<std::string> tenants;  // standing admissions (serve --tenant)
  net::LeasePolicy policy;           // --lease-term, --notice
  int64_t heartbeat_ms = 10'000;     // --heartbeat
  int64_t grace_s = 7 * 86400;       // --grace: kept after a lease ends (issue 14 deletes)
  std::vector<std::string> labels;   // --label KEY=VALUE (placement, issue 15)
};

class NodeDaemon {
 public:
  // Opens the book (kBusy if another daemon runs on this home), starts listening, the
  // heartbeats and the local socket.
  static Result<std::unique_ptr<NodeDaemon>> Start(NodeDaemonOptions options);
  ~NodeDaemon();  // Stop()
  NodeDaemon(const NodeDaemon&) = delete;
  NodeDaemon& operator=(const NodeDaemon&) = delete;

  uint16_t port() const;
  std::string fingerprint() const;
  uint64_t used_bytes() const;
  // Re-reads every hosted shard (the scrub), logging what it found.
  void Scrub();
  // Stops heartbeats, the socket and the server; writes what the book holds in memory.
  void Stop();

 private:
  NodeDaemon() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quid
