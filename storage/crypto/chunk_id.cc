#include "storage/crypto/chunk_id.h"
#include "storage/crypto/sodium_init.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace quid {
namespace {}  // namespace

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
