#include "storage/chunk_id.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace quid {
namespace {

// sodium_init selects the vectorized BLAKE2b for this CPU; without it the reference code runs.
void EnsureSodium() {
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      std::fputs("quid: libsodium failed to initialize\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

}  // namespace

ChunkId ComputeChunkId(const SecretKey& chunk_id_key, ByteSpan plaintext) {
  EnsureSodium();
  static_assert(kChunkIdBytes >= crypto_generichash_BYTES_MIN &&
                kChunkIdBytes <= crypto_generichash_BYTES_MAX);
  ChunkId id;
  crypto_generichash(id.data(), id.size(), plaintext.data(), plaintext.size(), chunk_id_key.data(),
                     kKeyBytes);
  return id;
}

}  // namespace quid
