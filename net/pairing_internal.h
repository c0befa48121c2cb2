// Helpers the two halves of Pairing share (pairing.cc: pairing and heartbeats;
// pairing_notices.cc: notices and changes of what is given). Not an interface: include it
// from those two files only.
#pragma once

#include <cstring>
#include <string>

#include "net/identity.h"
#include "storage/crypto/node_key.h"
#include "storage/exchange/exchange.pb.h"

namespace quid::net::pairing_internal {

inline std::string KeyString(const PublicKey& key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

inline bool SameKey(const std::string& bytes, const PublicKey& key) {
  return bytes.size() == key.size() && std::memcmp(bytes.data(), key.data(), key.size()) == 0;
}

// Between exactly these two nodes, either way round.
inline bool Between(const exchange::LeaseTerms& terms, const PublicKey& a, const PublicKey& b) {
  return (SameKey(terms.tenant_key(), a) && SameKey(terms.host_key(), b)) ||
         (SameKey(terms.tenant_key(), b) && SameKey(terms.host_key(), a));
}

inline Signer SignerOf(const NodeIdentity* self) {
  return [self](ByteSpan message) { return self->Sign(message); };
}

}  // namespace quid::net::pairing_internal
