#include "storage/crypto/node_key.h"

#include <sodium.h>

#include "storage/crypto/sodium_init.h"

namespace quid {

static_assert(kPublicKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kSignatureBytes == crypto_sign_BYTES);

std::string Fingerprint(const PublicKey& key) {
  EnsureSodium();
  std::array<uint8_t, 16> digest{};
  crypto_generichash(digest.data(), digest.size(), key.data(), key.size(), nullptr, 0);
  return ToHex(digest);
}

bool VerifySignature(const PublicKey& key, ByteSpan message, const Signature& signature) {
  EnsureSodium();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.data()) == 0;
}

}  // namespace quid
