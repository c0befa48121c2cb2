#include "net/address.h"

#include <charconv>

namespace quid::net {

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

std::string JoinHostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace quid::net
