#include "storage/crypto/chunk_cipher.h"
#include "storage/crypto/sodium_init.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace quid {
namespace {

constexpr size_t kIndexBytes = 8;
constexpr size_t kAdBytes = kChunkIdBytes + kIndexBytes + kChunkHeaderBytes;
constexpr size_t kHeaderNonceBytes = 24;
constexpr size_t kStoredSegmentBytes = kSegmentBytes + kTagBytes;

static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kTagBytes);
static_assert(crypto_aead_aes256gcm_ABYTES == kTagBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == kHeaderNonceBytes);
static_assert(crypto_aead_aes256gcm_NPUBBYTES <= kHeaderNonceBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kKeyBytes);
static_assert(crypto_aead_aes256gcm_KEYBYTES == kKeyBytes);

size_t SegmentCount(size_t plain_size) {
  return (plain_size + kSegmentBytes - 1) / kSegmentBytes;
}

size_t SegmentPlainSize(size_t plain_size, size_t index) {
  return std::min(kSegmentBytes, plain_size - index * kSegmentBytes);
}

void PutLittleEndian(uint64_t v, uint8_t* out, size_t width) {
  for (size_t i = 0; i < width; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

// The per-chunk key and the associated data shared by all segments of one chunk, set up once
// so each segment costs only its AEAD call. Wipes the key material it holds.
class SegmentAead {
 public:
  // REQUIRES: CipherAvailable(header.cipher).
  SegmentAead(const SecretKey& data_key, const ChunkHeader& header, const ChunkId& id)
      : cipher_(header.cipher) {
    // A fresh random header nonce gives every chunk its own key, so segment nonces can be
    // plain indexes without ever repeating under one key.
    crypto_generichash(key_.data(), kKeyBytes, header.nonce.data(), header.nonce.size(),
                       data_key.data(), kKeyBytes);
    if (cipher_ == Cipher::kAes256Gcm) crypto_aead_aes256gcm_beforenm(&aes_, key_.data());
    std::memcpy(ad_.data(), id.data(), kChunkIdBytes);
    const auto serialized = header.Serialize();
    std::memcpy(ad_.data() + kChunkIdBytes + kIndexBytes, serialized.data(), serialized.size());
  }
  ~SegmentAead() { sodium_memzero(&aes_, sizeof(aes_)); }
  SegmentAead(const SegmentAead&) = delete;
  SegmentAead& operator=(const SegmentAead&) = delete;

  void Seal(uint64_t index, ByteSpan plain, uint8_t* cipher_out, uint8_t* tag_out) {
    SetIndex(index);
    if (cipher_ == Cipher::kAes256Gcm) {
      crypto_aead_aes256gcm_encrypt_detached_afternm(cipher_out, tag_out, nullptr, plain.data(),
                                                     plain.size(), ad_.data(), ad_.size(), nullptr,
                                                     nonce_.data(), &aes_);
    } else {
      crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
          cipher_out, tag_out, nullptr, plain.data(), plain.size(), ad_.data(), ad_.size(), nullptr,
          nonce_.data(), key_.data());
    }
  }

  // False if the segment does not authenticate.
  bool Open(uint64_t index, ByteSpan ciphertext, const uint8_t* tag, uint8_t* plain_out) {
    SetIndex(index);
    if (cipher_ == Cipher::kAes256Gcm) {
      return crypto_aead_aes256gcm_decrypt_detached_afternm(plain_out, nullptr, ciphertext.data(),
                                                            ciphertext.size(), tag, ad_.data(),
                                                            ad_.size(), nonce_.data(), &aes_) == 0;
    }
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
               plain_out, nullptr, ciphertext.data(), ciphertext.size(), tag, ad_.data(),
               ad_.size(), nonce_.data(), key_.data()) == 0;
  }

 private:
  // The index is both the nonce (under this chunk's own key) and part of the associated data,
  // so segments cannot be reordered. AES-GCM reads only the first 12 nonce bytes.
  void SetIndex(uint64_t index) {
    PutLittleEndian(index, nonce_.data(), kIndexBytes);
    PutLittleEndian(index, ad_.data() + kChunkIdBytes, kIndexBytes);
  }

  Cipher cipher_;
  SecretKey key_;
  crypto_aead_aes256gcm_state aes_{};
  std::array<uint8_t, kHeaderNonceBytes> nonce_{};
  std::array<uint8_t, kAdBytes> ad_{};
};

// Decrypts segments [first, first + count) laid out back to back in `stored` into `plain_out`.
// On failure wipes `plain_out`, so no caller can use bytes from a blob that failed.
Status OpenSegments(SegmentAead& aead, size_t plain_size, size_t first, size_t count,
                    ByteSpan stored, MutableByteSpan plain_out) {
  for (size_t j = 0; j < count; ++j) {
    const size_t index = first + j;
    const size_t len = SegmentPlainSize(plain_size, index);
    const uint8_t* in = stored.data() + j * kStoredSegmentBytes;
    if (!aead.Open(index, {in, len}, in + len, plain_out.data() + j * kSegmentBytes)) {
      std::fill(plain_out.begin(), plain_out.end(), uint8_t{0});
      return Status::Corrupt("chunk segment " + std::to_string(index) + " failed authentication");
    }
  }
  return Status::Ok();
}

}  // namespace

bool CipherAvailable(Cipher cipher) {
  switch (cipher) {
    case Cipher::kXChaCha20Poly1305:
      return true;
    case Cipher::kAes256Gcm:
      EnsureSodium();
      return crypto_aead_aes256gcm_is_available() == 1;
  }
  return false;
}

Cipher DefaultCipher() {
  return CipherAvailable(Cipher::kAes256Gcm) ? Cipher::kAes256Gcm : Cipher::kXChaCha20Poly1305;
}

const char* CipherName(Cipher cipher) {
  switch (cipher) {
    case Cipher::kXChaCha20Poly1305:
      return "xchacha20-poly1305";
    case Cipher::kAes256Gcm:
      return "aes-256-gcm";
  }
  return "unknown";
}

std::array<uint8_t, kChunkHeaderBytes> ChunkHeader::Serialize() const {
  std::array<uint8_t, kChunkHeaderBytes> out{};
  out[0] = version;
  out[1] = static_cast<uint8_t>(cipher);
  PutLittleEndian(plain_size, out.data() + 4, 4);
  std::memcpy(out.data() + 8, nonce.data(), nonce.size());
  return out;
}

Result<ChunkHeader> ChunkHeader::Parse(ByteSpan bytes) {
  if (bytes.size() < kChunkHeaderBytes) return Status::Corrupt("chunk blob shorter than header");
  if (bytes[0] != kChunkFormatVersion) {
    return Status::Corrupt("unknown chunk format version " + std::to_string(bytes[0]));
  }
  if (bytes[1] != static_cast<uint8_t>(Cipher::kXChaCha20Poly1305) &&
      bytes[1] != static_cast<uint8_t>(Cipher::kAes256Gcm)) {
    return Status::Corrupt("unknown chunk cipher " + std::to_string(bytes[1]));
  }
  if (bytes[2] != 0 || bytes[3] != 0) return Status::Corrupt("chunk header reserved bytes set");
  ChunkHeader h;
  h.version = bytes[0];
  h.cipher = static_cast<Cipher>(bytes[1]);
  h.plain_size = static_cast<uint32_t>(bytes[4]) | static_cast<uint32_t>(bytes[5]) << 8 |
                 static_cast<uint32_t>(bytes[6]) << 16 | static_cast<uint32_t>(bytes[7]) << 24;
  std::memcpy(h.nonce.data(), bytes.data() + 8, h.nonce.size());
  return h;
}

size_t EncryptedSize(size_t plain_size) {
  return kChunkHeaderBytes + plain_size + SegmentCount(plain_size) * kTagBytes;
}

Result<ChunkHeader> EncryptChunk(const SecretKey& data_key, Cipher cipher, const ChunkId& id,
                                 ByteSpan plain, MutableByteSpan out) {
  if (plain.size() > std::numeric_limits<uint32_t>::max()) {
    return Status::Invalid("chunk too large to encrypt: " + std::to_string(plain.size()));
  }
  if (!CipherAvailable(cipher)) {
    return Status(Code::kNotSupported, std::string(CipherName(cipher)) + " not available");
  }
  if (out.size() != EncryptedSize(plain.size())) {
    return Status::Invalid("chunk output buffer has the wrong size");
  }
  ChunkHeader header;
  header.cipher = cipher;
  header.plain_size = static_cast<uint32_t>(plain.size());
  randombytes_buf(header.nonce.data(), header.nonce.size());
  const auto serialized = header.Serialize();
  std::memcpy(out.data(), serialized.data(), serialized.size());

  SegmentAead aead(data_key, header, id);
  const size_t count = SegmentCount(plain.size());
  for (size_t i = 0; i < count; ++i) {
    const size_t len = SegmentPlainSize(plain.size(), i);
    uint8_t* dst = out.data() + kChunkHeaderBytes + i * kStoredSegmentBytes;
    aead.Seal(i, plain.subspan(i * kSegmentBytes, len), dst, dst + len);
  }
  return header;
}

Status DecryptChunk(const SecretKey& data_key, const ChunkId& id, ByteSpan blob,
                    MutableByteSpan plain_out) {
  QUID_ASSIGN_OR_RETURN(ChunkHeader header, ChunkHeader::Parse(blob));
  if (blob.size() != EncryptedSize(header.plain_size)) {
    return Status::Corrupt("chunk blob has " + std::to_string(blob.size()) +
                           " bytes, header says " +
                           std::to_string(EncryptedSize(header.plain_size)));
  }
  // The caller sized plain_out from trusted metadata; a blob claiming another size is not
  // the chunk asked for.
  if (plain_out.size() != header.plain_size) {
    return Status::Corrupt("chunk blob holds " + std::to_string(header.plain_size) +
                           " bytes, expected " + std::to_string(plain_out.size()));
  }
  if (!CipherAvailable(header.cipher)) {
    return Status(Code::kNotSupported,
                  std::string(CipherName(header.cipher)) + " not available on this CPU");
  }
  SegmentAead aead(data_key, header, id);
  return OpenSegments(aead, header.plain_size, 0, SegmentCount(header.plain_size),
                      blob.subspan(kChunkHeaderBytes), plain_out);
}

SegmentSpan SegmentsFor(size_t plain_size, size_t offset, size_t length) {
  SegmentSpan s;
  s.first_segment = offset / kSegmentBytes;
  const size_t last = (offset + length - 1) / kSegmentBytes;
  s.segment_count = last - s.first_segment + 1;
  s.plain_offset = s.first_segment * kSegmentBytes;
  s.plain_length = std::min((last + 1) * kSegmentBytes, plain_size) - s.plain_offset;
  s.blob_offset = kChunkHeaderBytes + s.first_segment * kStoredSegmentBytes;
  s.blob_length = s.plain_length + s.segment_count * kTagBytes;
  return s;
}

Status DecryptSegments(const SecretKey& data_key, const ChunkHeader& header, const ChunkId& id,
                       const SegmentSpan& span, ByteSpan blob_part, MutableByteSpan plain_out) {
  // The span must be exactly what SegmentsFor gives for this chunk: every offset and length
  // below is derived from it.
  const bool span_in_chunk = span.plain_length > 0 && span.plain_offset < header.plain_size &&
                             span.plain_length <= header.plain_size - span.plain_offset;
  if (!span_in_chunk) return Status::Invalid("segment span outside the chunk");
  const SegmentSpan expected = SegmentsFor(header.plain_size, span.plain_offset, span.plain_length);
  if (expected.first_segment != span.first_segment ||
      expected.segment_count != span.segment_count || expected.blob_offset != span.blob_offset ||
      expected.blob_length != span.blob_length || expected.plain_offset != span.plain_offset ||
      expected.plain_length != span.plain_length) {
    return Status::Invalid("segment span does not match the chunk header");
  }
  if (plain_out.size() != span.plain_length) {
    return Status::Invalid("segment output buffer has the wrong size");
  }
  if (blob_part.size() != span.blob_length) {
    return Status::Corrupt("chunk blob part has " + std::to_string(blob_part.size()) +
                           " bytes, expected " + std::to_string(span.blob_length));
  }
  if (!CipherAvailable(header.cipher)) {
    return Status(Code::kNotSupported,
                  std::string(CipherName(header.cipher)) + " not available on this CPU");
  }
  SegmentAead aead(data_key, header, id);
  return OpenSegments(aead, header.plain_size, span.first_segment, span.segment_count, blob_part,
                      plain_out);
}

}  // namespace quid
