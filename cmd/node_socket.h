// How commands reach the node daemon of a home: one JSON object per line on H/node.sock
// (mode 0600), one JSON object back, {"error": "..."} when it failed. Requests, by "op":
//   id                                  -> {fingerprint, addresses}
//   invite {capacity, valid_s, ratio}   -> {code, expires_at}
//   join {code}                         -> {peer, capacity_bytes, state}
//   trust {peer, address, capacity}     -> {peer, capacity_bytes, state: paired|waiting}
//   peers                               -> {peers: [{peer, addresses, online, uptime, last_seen}]}
//   leases                              -> {leases: [{id, peer, direction, state,
//                                            capacity_bytes, used_bytes, expires_at}]}
//   stores                              -> {stores: [{peer, key, addresses, capacity_bytes}]}
//                                          (the hosts of leases this node received, in force:
//                                          what a volume on the node's leases is placed on)
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "storage/base/status.h"

namespace quid {

std::string NodeSocketPath(const std::string& home);

// Sends `request` and returns the daemon's answer: kUnavailable (with a sentence that says
// to start `quid serve`) when no node daemon answers, the daemon's own error as kInvalid.
Result<nlohmann::json> NodeRequest(const std::string& home, const nlohmann::json& request,
                                   int timeout_ms);

}  // namespace quid
