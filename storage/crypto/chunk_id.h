// Chunk ids: keyed BLAKE2b-256 of a chunk's plaintext. Equal contents in one volume get
// equal ids (dedup); without the volume's chunk-id key nobody can compute or test an id.
#pragma once

#include <array>
#include <string>

#include "storage/base/bytes.h"
#include "storage/crypto/keys.h"

namespace quid {

constexpr size_t kChunkIdBytes = 32;
using ChunkId = std::array<uint8_t, kChunkIdBytes>;

ChunkId ComputeChunkId(const SecretKey& chunk_id_key, ByteSpan plaintext);

inline std::string ChunkIdHex(const ChunkId& id) {
  return ToHex(id);
}

}  // namespace quid
