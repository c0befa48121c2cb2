// Network addresses as people and invitation codes write them: "HOST:PORT", with an IPv6
// literal in brackets ("[::1]:7001").
#pragma once

#include <cstdint>
#include <string>

#include "storage/base/status.h"

namespace quid::net {

// kInvalid, naming the address, unless it is HOST:PORT with a port in 1..65535.
Status SplitHostPort(const std::string& address, std::string* host, uint16_t* port);
std::string JoinHostPort(const std::string& host, uint16_t port);

}  // namespace quid::net
