// A node's public identity, as far as storage/ needs it: the Ed25519 public key, its
// signatures and its printable fingerprint. Leases are signed by both parties' node keys
// (storage/exchange/), so verifying lives here, below the network; the key pair itself and
// its file are net/identity.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "storage/base/bytes.h"

namespace quid {

constexpr size_t kPublicKeyBytes = 32;  // crypto_sign_PUBLICKEYBYTES
constexpr size_t kSignatureBytes = 64;  // crypto_sign_BYTES
using PublicKey = std::array<uint8_t, kPublicKeyBytes>;
using Signature = std::array<uint8_t, kSignatureBytes>;

// Signs a message with the node's secret key (NodeIdentity::Sign); what storage/ is given
// instead of the key itself.
using Signer = std::function<Signature(ByteSpan message)>;

// Printable fingerprint of a public key: 32 lowercase hex characters (BLAKE2b-128 of the
// key), shown by `quid id` and given to `quid serve --tenant` and `quid trust`.
std::string Fingerprint(const PublicKey& key);
bool VerifySignature(const PublicKey& key, ByteSpan message, const Signature& signature);

}  // namespace quid
