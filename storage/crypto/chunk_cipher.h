// Authenticated encryption of one chunk, by segments.
//
// A chunk's encrypted form (its "blob") is:
//   header (kChunkHeaderBytes) || segment 0 ciphertext || tag 0 || segment 1 ... || tag n-1
// Each segment encrypts kSegmentBytes of plaintext (the last one may be shorter) under a
// per-chunk key = BLAKE2b(data key, header nonce), with nonce = segment index and the
// associated data = chunk id || segment index || header. So a reader can fetch and
// authenticate only the segments it needs, and no store can pass one chunk's (or one
// segment's) bytes off as another's. A tampered blob fails authentication: kCorrupt,
// never wrong bytes.
#pragma once

#include <array>
#include <cstdint>

#include "storage/base/bytes.h"
#include "storage/base/status.h"
#include "storage/crypto/chunk_id.h"
#include "storage/crypto/keys.h"

namespace quid {

enum class Cipher : uint8_t {
  kXChaCha20Poly1305 = 1,
  kAes256Gcm = 2,  // only where the CPU has AES-NI (crypto_aead_aes256gcm_is_available)
};

// AES-256-GCM where the CPU supports it (measured faster here), else XChaCha20-Poly1305.
Cipher DefaultCipher();
bool CipherAvailable(Cipher cipher);
const char* CipherName(Cipher cipher);

constexpr size_t kSegmentBytes = 64 * 1024;
constexpr size_t kTagBytes = 16;
constexpr size_t kChunkHeaderBytes = 32;
constexpr uint8_t kChunkFormatVersion = 1;

// Header layout (32 bytes): version (1) | cipher (1) | reserved (2, zero) |
// plaintext size (4, little endian) | nonce (24).
struct ChunkHeader {
  uint8_t version = kChunkFormatVersion;
  Cipher cipher = Cipher::kXChaCha20Poly1305;
  uint32_t plain_size = 0;
  std::array<uint8_t, 24> nonce{};

  std::array<uint8_t, kChunkHeaderBytes> Serialize() const;
  // kCorrupt on an unknown version or cipher or non-zero reserved bytes.
  static Result<ChunkHeader> Parse(ByteSpan bytes);
};

// Size of the blob for `plain_size` bytes of plaintext (header and all tags included).
size_t EncryptedSize(size_t plain_size);

// Encrypts `plain` into `out` (exactly EncryptedSize(plain.size()) bytes) with a fresh
// random nonce. Returns the header it wrote at the start of `out`.
// REQUIRES: plain.size() <= UINT32_MAX, CipherAvailable(cipher).
Result<ChunkHeader> EncryptChunk(const SecretKey& data_key, Cipher cipher, const ChunkId& id,
                                 ByteSpan plain, MutableByteSpan out);

// Decrypts a whole blob into `plain_out` (exactly header.plain_size bytes).
Status DecryptChunk(const SecretKey& data_key, const ChunkId& id, ByteSpan blob,
                    MutableByteSpan plain_out);

// The segments that cover plaintext bytes [offset, offset + length) of a chunk of
// `plain_size` bytes, and where they sit in the blob.
struct SegmentSpan {
  size_t first_segment = 0;
  size_t segment_count = 0;
  size_t blob_offset = 0;   // offset of the first needed segment in the blob
  size_t blob_length = 0;   // bytes from blob_offset to the end of the last needed tag
  size_t plain_offset = 0;  // plaintext offset of the first needed segment
  size_t plain_length = 0;  // plaintext bytes those segments decrypt to
};
// REQUIRES: offset + length <= plain_size, length > 0.
SegmentSpan SegmentsFor(size_t plain_size, size_t offset, size_t length);

// Decrypts the segments described by `span` from `blob_part` (span.blob_length bytes,
// taken from the blob at span.blob_offset) into `plain_out` (span.plain_length bytes).
Status DecryptSegments(const SecretKey& data_key, const ChunkHeader& header, const ChunkId& id,
                       const SegmentSpan& span, ByteSpan blob_part, MutableByteSpan plain_out);

}  // namespace quid
