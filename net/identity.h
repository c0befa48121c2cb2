// Node identity: an Ed25519 key pair per node. The node id that people compare and
// tests pin is the fingerprint of the public key.
#pragma once

#include <array>
#include <string>

#include "storage/base/bytes.h"
#include "storage/base/env.h"
#include "storage/base/status.h"
#include "storage/crypto/node_key.h"

namespace quid::net {

// The public half lives in storage/crypto/node_key.h (leases are verified below net/).
using ::quid::Fingerprint;
using ::quid::kPublicKeyBytes;
using ::quid::kSignatureBytes;
using ::quid::PublicKey;
using ::quid::Signature;
using ::quid::VerifySignature;

class NodeIdentity {
 public:
  // A fresh key pair (crypto_sign_keypair).
  static NodeIdentity Generate();
  // Loads the key file at `path`, or creates it (mode 0600, atomically) if absent.
  // kCorrupt for a malformed file; kPermission if it is readable by others.
  // Goes through `env` (default: the real disk).
  static Result<NodeIdentity> LoadOrCreate(const std::string& path, Env* env = nullptr);
  ~NodeIdentity();  // wipes the secret key
  NodeIdentity(const NodeIdentity&) = default;
  NodeIdentity& operator=(const NodeIdentity&) = default;

  const PublicKey& public_key() const { return public_key_; }
  std::string fingerprint() const { return Fingerprint(public_key_); }
  Signature Sign(ByteSpan message) const;

 private:
  NodeIdentity() = default;
  PublicKey public_key_{};
  std::array<uint8_t, 64> secret_key_{};  // crypto_sign_SECRETKEYBYTES
};

}  // namespace quid::net
