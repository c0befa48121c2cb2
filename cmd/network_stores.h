// The bridge from a volume's configured hosts to the network layer: the node's identity
// (home/node.key) and a StoreFactory that opens a RemoteStore per host, pinned to the
// key `quid init --peer` recorded. Kept in cmd/ so storage/ never learns about sockets.
#pragma once

#include <string>
#include <vector>

#include "net/address.h"
#include "net/identity.h"
#include "storage/base/status.h"
#include "storage/volume/volume.h"

namespace quid {

std::string NodeKeyPath(const std::string& home);

// The node's identity, created (0600) on first use.
Result<net::NodeIdentity> LoadNodeIdentity(const std::string& home);

// A factory for "host" stores. Each store gets an event loop of its own, started when the
// store is opened (inside Volume::Open, after the daemon's signal handling is set up) and
// stopped after the store is destroyed.
StoreFactory MakeNetworkStoreFactory(const std::string& home);

// The hosts of the leases this node receives and that are in force, from its node daemon
// (node.sock "stores"): where a new volume on the node's leases places its shards (hosts
// whose leases end, or whose address is not known yet, are left out).
Result<std::vector<StoreSpec>> LeaseHosts(const std::string& home);
// For a mounted volume on the node's leases (VolumeOpenOptions::lease_hosts): every host
// with a lease, draining or not, and the volume's own count of what it placed on each,
// handed to the node daemon's ledger on the way.
LeaseHostsFn FollowLeaseHosts(const std::string& home);

using net::SplitHostPort;  // net/address.h

}  // namespace quid
