// Two parties to a lease, with real Ed25519 keys, and the lease records tests sign between
// them: shared by the lease, notice and standing tests.
#pragma once

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <string>

#include "storage/crypto/sodium_init.h"
#include "storage/exchange/lease.h"

namespace quid::exchange {

struct Party {
  PublicKey key{};
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> secret{};
  Party() {
    EnsureSodium();
    crypto_sign_keypair(key.data(), secret.data());
  }
  Signer signer() const {
    return [this](ByteSpan message) {
      Signature sig{};
      crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret.data());
      return sig;
    };
  }
};

inline std::string Str(const PublicKey& key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

inline LeaseTerms Terms(const Party& tenant, const Party& host, uint64_t sequence = 0) {
  LeaseTerms terms;
  terms.set_lease_id(std::string(16, '\x07'));
  terms.set_sequence(sequence);
  terms.set_tenant_key(Str(tenant.key));
  terms.set_host_key(Str(host.key));
  terms.set_capacity_bytes(48 << 20);
  terms.set_start(1000);
  terms.set_term_s(600);
  terms.set_notice_s(20);
  terms.set_auto_renew(true);
  return terms;
}

inline SignedLease Signed(const Party& tenant, const Party& host, uint64_t sequence = 0) {
  SignedLease lease = MakeLease(Terms(tenant, host, sequence));
  EXPECT_TRUE(SignLease(&lease, host.key, host.signer()).ok());
  EXPECT_TRUE(SignLease(&lease, tenant.key, tenant.signer()).ok());
  return lease;
}

}  // namespace quid::exchange
