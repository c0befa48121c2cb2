#include "storage/crypto/chunk_cipher.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <string>
#include <vector>

#include "storage/crypto/chunk_id.h"
#include "storage/crypto/keys.h"

namespace quid {
namespace {

constexpr size_t kMiB = 1024 * 1024;

Bytes Pattern(size_t size, uint8_t seed) {
  Bytes b(size);
  uint32_t x = 2463534242u ^ seed;
  for (auto& byte : b) {  // xorshift: cheap, and no two segments look alike
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    byte = static_cast<uint8_t>(x);
  }
  return b;
}

TEST(ChunkIdTest, SameKeyAndContentGiveTheSameId) {
  SecretKey key = SecretKey::Random();
  Bytes data = Pattern(1000, 1);
  EXPECT_EQ(ComputeChunkId(key, data), ComputeChunkId(key, data));
}

TEST(ChunkIdTest, IdDependsOnTheKey) {
  Bytes data = Pattern(1000, 1);
  EXPECT_NE(ComputeChunkId(SecretKey::Random(), data), ComputeChunkId(SecretKey::Random(), data));
}

TEST(ChunkIdTest, IdDependsOnTheContent) {
  SecretKey key = SecretKey::Random();
  Bytes a = Pattern(1000, 1);
  Bytes b = a;
  b[999] ^= 1;
  EXPECT_NE(ComputeChunkId(key, a), ComputeChunkId(key, b));
}

TEST(ChunkIdTest, IdIsKeyedBlake2b256) {
  SecretKey key = SecretKey::Random();
  Bytes data = Pattern(300, 2);
  ChunkId expected;
  crypto_generichash(expected.data(), expected.size(), data.data(), data.size(), key.data(),
                     kKeyBytes);
  EXPECT_EQ(ComputeChunkId(key, data), expected);
  EXPECT_EQ(ChunkIdHex(expected).size(), 64u);
}

TEST(ChunkHeaderTest, SerializeParseRoundTrip) {
  ChunkHeader h;
  h.cipher = Cipher::kAes256Gcm;
  h.plain_size = 0x01020304;
  for (size_t i = 0; i < h.nonce.size(); ++i) h.nonce[i] = static_cast<uint8_t>(i + 1);
  auto bytes = h.Serialize();
  EXPECT_EQ(bytes[4], 0x04);  // little endian
  Result<ChunkHeader> parsed = ChunkHeader::Parse(bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->cipher, h.cipher);
  EXPECT_EQ(parsed->plain_size, h.plain_size);
  EXPECT_EQ(parsed->nonce, h.nonce);
}

TEST(ChunkHeaderTest, UnknownVersionCipherOrReservedIsCorrupt) {
  auto good = ChunkHeader().Serialize();
  for (auto [index, value] : {std::pair{0, 2}, {1, 0}, {1, 3}, {2, 1}, {3, 1}}) {
    auto bad = good;
    bad[index] = static_cast<uint8_t>(value);
    EXPECT_EQ(ChunkHeader::Parse(bad).status().code(), Code::kCorrupt) << index;
  }
  EXPECT_EQ(ChunkHeader::Parse(ByteSpan(good).first(31)).status().code(), Code::kCorrupt);
}

TEST(SegmentsForTest, CoversTheRequestedRangeWithWholeSegments) {
  const size_t size = 3 * kSegmentBytes + 100;
  SegmentSpan s = SegmentsFor(size, kSegmentBytes - 1, 2);
  EXPECT_EQ(s.first_segment, 0u);
  EXPECT_EQ(s.segment_count, 2u);
  EXPECT_EQ(s.plain_offset, 0u);
  EXPECT_EQ(s.plain_length, 2 * kSegmentBytes);
  EXPECT_EQ(s.blob_offset, kChunkHeaderBytes);
  EXPECT_EQ(s.blob_length, 2 * (kSegmentBytes + kTagBytes));

  SegmentSpan last = SegmentsFor(size, size - 1, 1);
  EXPECT_EQ(last.first_segment, 3u);
  EXPECT_EQ(last.segment_count, 1u);
  EXPECT_EQ(last.plain_length, 100u);
  EXPECT_EQ(last.blob_offset + last.blob_length, EncryptedSize(size));
}

TEST(EncryptedSizeTest, AddsHeaderAndOneTagPerSegment) {
  EXPECT_EQ(EncryptedSize(0), kChunkHeaderBytes);
  EXPECT_EQ(EncryptedSize(1), kChunkHeaderBytes + 1 + kTagBytes);
  EXPECT_EQ(EncryptedSize(kSegmentBytes), kChunkHeaderBytes + kSegmentBytes + kTagBytes);
  EXPECT_EQ(EncryptedSize(kSegmentBytes + 1),
            kChunkHeaderBytes + kSegmentBytes + 1 + 2 * kTagBytes);
}

TEST(CipherTest, DefaultCipherIsAvailable) {
  EXPECT_TRUE(CipherAvailable(DefaultCipher()));
  EXPECT_TRUE(CipherAvailable(Cipher::kXChaCha20Poly1305));
  EXPECT_EQ(DefaultCipher() == Cipher::kAes256Gcm, crypto_aead_aes256gcm_is_available() == 1);
}

// Every chunk test runs under both ciphers.
class ChunkCipherTest : public ::testing::TestWithParam<Cipher> {
 protected:
  void SetUp() override { keys_ = VolumeKeys::Derive(SecretKey::Random()); }

  struct Sealed {
    Bytes plain;
    ChunkId id;
    ChunkHeader header;
    Bytes blob;
  };

  Sealed Seal(size_t size, uint8_t seed = 7) {
    Sealed s;
    s.plain = Pattern(size, seed);
    s.id = ComputeChunkId(keys_.chunk_id, s.plain);
    s.blob.resize(EncryptedSize(size));
    Result<ChunkHeader> header = EncryptChunk(keys_.data, GetParam(), s.id, s.plain, s.blob);
    EXPECT_TRUE(header.ok()) << header.status().ToString();
    if (header.ok()) s.header = *header;
    return s;
  }

  Status Open(const Sealed& s, const Bytes& blob) {
    Bytes out(s.plain.size());
    return DecryptChunk(keys_.data, s.id, blob, out);
  }

  VolumeKeys keys_;
};

TEST_P(ChunkCipherTest, RoundTripsEverySizeAroundSegmentAndChunkBoundaries) {
  for (size_t size : {size_t{0}, size_t{1}, kSegmentBytes - 1, kSegmentBytes, kSegmentBytes + 1,
                      4 * kMiB - 1, 4 * kMiB}) {
    Sealed s = Seal(size);
    EXPECT_EQ(s.header.plain_size, size);
    EXPECT_EQ(s.header.cipher, GetParam());
    Bytes out(size, 0xEE);
    Status status = DecryptChunk(keys_.data, s.id, s.blob, out);
    ASSERT_TRUE(status.ok()) << size << ": " << status.ToString();
    EXPECT_TRUE(out == s.plain) << "size " << size;
  }
}

TEST_P(ChunkCipherTest, EmptyChunkBlobIsJustTheHeader) {
  Sealed s = Seal(0);
  EXPECT_EQ(s.blob.size(), kChunkHeaderBytes);
  EXPECT_TRUE(Open(s, s.blob).ok());
}

TEST_P(ChunkCipherTest, CiphertextDoesNotContainThePlaintext) {
  Bytes plain(kSegmentBytes, 'A');
  ChunkId id = ComputeChunkId(keys_.chunk_id, plain);
  Bytes blob(EncryptedSize(plain.size()));
  ASSERT_TRUE(EncryptChunk(keys_.data, GetParam(), id, plain, blob).ok());
  Bytes run(64, 'A');
  EXPECT_EQ(std::search(blob.begin(), blob.end(), run.begin(), run.end()), blob.end());
}

TEST_P(ChunkCipherTest, SameChunkEncryptsDifferentlyEachTime) {
  Bytes plain = Pattern(1000, 3);
  ChunkId id = ComputeChunkId(keys_.chunk_id, plain);
  Bytes a(EncryptedSize(plain.size())), b(a.size());
  ASSERT_TRUE(EncryptChunk(keys_.data, GetParam(), id, plain, a).ok());
  ASSERT_TRUE(EncryptChunk(keys_.data, GetParam(), id, plain, b).ok());
  EXPECT_NE(a, b);
}

TEST_P(ChunkCipherTest, EveryTamperedByteOfASmallChunkIsRejected) {
  Sealed s = Seal(1000);
  for (size_t i = 0; i < s.blob.size(); ++i) {
    Bytes bad = s.blob;
    bad[i] ^= 0x01;
    Bytes out(s.plain.size());
    Status status = DecryptChunk(keys_.data, s.id, bad, out);
    ASSERT_EQ(status.code(), Code::kCorrupt) << "byte " << i << ": " << status.ToString();
    EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }))
        << "failed decryption left bytes in the output, byte " << i;
  }
}

TEST_P(ChunkCipherTest, TamperedHeaderCiphertextOrTagOfAnySegmentIsRejected) {
  const size_t size = 3 * kSegmentBytes + 500;
  Sealed s = Seal(size);
  std::vector<size_t> positions;
  for (size_t i = 0; i < kChunkHeaderBytes; ++i) positions.push_back(i);
  for (size_t seg = 0; seg < 4; ++seg) {
    const size_t start = kChunkHeaderBytes + seg * (kSegmentBytes + kTagBytes);
    const size_t len = std::min(kSegmentBytes, size - seg * kSegmentBytes);
    for (size_t p : {start, start + len / 2, start + len - 1}) positions.push_back(p);
    for (size_t t = 0; t < kTagBytes; ++t) positions.push_back(start + len + t);
  }
  for (size_t p : positions) {
    Bytes bad = s.blob;
    bad[p] ^= 0x80;
    EXPECT_EQ(Open(s, bad).code(), Code::kCorrupt) << "byte " << p;
  }
}

TEST_P(ChunkCipherTest, SwappedSegmentsAreRejected) {
  Sealed s = Seal(3 * kSegmentBytes);
  Bytes bad = s.blob;
  const size_t stored = kSegmentBytes + kTagBytes;
  std::swap_ranges(bad.begin() + kChunkHeaderBytes, bad.begin() + kChunkHeaderBytes + stored,
                   bad.begin() + kChunkHeaderBytes + stored);
  EXPECT_EQ(Open(s, bad).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, TruncatedOrExtendedBlobIsRejected) {
  Sealed s = Seal(kSegmentBytes + 10);
  for (size_t len : {size_t{0}, size_t{5}, kChunkHeaderBytes, s.blob.size() - 1}) {
    Bytes bad(s.blob.begin(), s.blob.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_EQ(Open(s, bad).code(), Code::kCorrupt) << len;
  }
  Bytes longer = s.blob;
  longer.push_back(0);
  EXPECT_EQ(Open(s, longer).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, AnotherChunksIdIsRejected) {
  Sealed s = Seal(2 * kSegmentBytes);
  ChunkId other = s.id;
  other[0] ^= 1;
  Bytes out(s.plain.size());
  EXPECT_EQ(DecryptChunk(keys_.data, other, s.blob, out).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, AnotherVolumesDataKeyIsRejected) {
  Sealed s = Seal(1000);
  Bytes out(s.plain.size());
  EXPECT_EQ(DecryptChunk(SecretKey::Random(), s.id, s.blob, out).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, AnotherChunksBlobOfTheSameSizeIsRejected) {
  Sealed a = Seal(5000, 1);
  Sealed b = Seal(5000, 2);
  EXPECT_EQ(Open(a, b.blob).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, BlobOfAnotherSizeThanExpectedIsRejected) {
  Sealed s = Seal(1000);
  Bytes out(999);
  EXPECT_EQ(DecryptChunk(keys_.data, s.id, s.blob, out).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, PartialReadsAtSegmentBoundariesMatchThePlaintext) {
  const size_t size = 4 * kMiB - 1;
  Sealed s = Seal(size);
  struct Range {
    size_t offset, length;
  };
  const Range ranges[] = {
      {0, 1},
      {0, kSegmentBytes},
      {kSegmentBytes - 1, 2},
      {kSegmentBytes, kSegmentBytes},
      {kSegmentBytes, 1},
      {3 * kSegmentBytes + 17, 5 * kSegmentBytes},
      {size - 1, 1},
      {size - kSegmentBytes, kSegmentBytes},
      {0, size},
  };
  for (const Range& r : ranges) {
    SegmentSpan span = SegmentsFor(size, r.offset, r.length);
    ASSERT_LE(span.plain_offset, r.offset);
    ASSERT_GE(span.plain_offset + span.plain_length, r.offset + r.length);
    Bytes out(span.plain_length);
    Status status =
        DecryptSegments(keys_.data, s.header, s.id, span,
                        ByteSpan(s.blob).subspan(span.blob_offset, span.blob_length), out);
    ASSERT_TRUE(status.ok()) << r.offset << "+" << r.length << ": " << status.ToString();
    EXPECT_TRUE(std::equal(out.begin(), out.end(), s.plain.begin() + span.plain_offset))
        << r.offset << "+" << r.length;
  }
}

TEST_P(ChunkCipherTest, PartialReadOfATamperedSegmentIsRejected) {
  Sealed s = Seal(3 * kSegmentBytes);
  SegmentSpan span = SegmentsFor(s.plain.size(), kSegmentBytes, 10);
  Bytes part(s.blob.begin() + static_cast<std::ptrdiff_t>(span.blob_offset),
             s.blob.begin() + static_cast<std::ptrdiff_t>(span.blob_offset + span.blob_length));
  part[3] ^= 1;
  Bytes out(span.plain_length);
  EXPECT_EQ(DecryptSegments(keys_.data, s.header, s.id, span, part, out).code(), Code::kCorrupt);
}

TEST_P(ChunkCipherTest, PartialReadOfTheWrongSegmentIsRejected) {
  Sealed s = Seal(3 * kSegmentBytes);
  SegmentSpan span = SegmentsFor(s.plain.size(), kSegmentBytes, 10);
  SegmentSpan other = SegmentsFor(s.plain.size(), 2 * kSegmentBytes, 10);
  Bytes out(span.plain_length);
  // Segment 2's bytes handed over as segment 1.
  EXPECT_EQ(DecryptSegments(keys_.data, s.header, s.id, span,
                            ByteSpan(s.blob).subspan(other.blob_offset, other.blob_length), out)
                .code(),
            Code::kCorrupt);
}

TEST_P(ChunkCipherTest, PartialReadWithAForgedHeaderIsRejected) {
  Sealed s = Seal(3 * kSegmentBytes);
  ChunkHeader forged = s.header;
  forged.nonce[0] ^= 1;
  SegmentSpan span = SegmentsFor(s.plain.size(), 0, 10);
  Bytes out(span.plain_length);
  EXPECT_EQ(DecryptSegments(keys_.data, forged, s.id, span,
                            ByteSpan(s.blob).subspan(span.blob_offset, span.blob_length), out)
                .code(),
            Code::kCorrupt);
}

TEST_P(ChunkCipherTest, PartialReadWithAMismatchedSpanIsInvalid) {
  Sealed s = Seal(3 * kSegmentBytes);
  SegmentSpan span = SegmentsFor(s.plain.size(), 0, 10);
  span.plain_length += 1;
  Bytes out(span.plain_length);
  EXPECT_EQ(DecryptSegments(keys_.data, s.header, s.id, span,
                            ByteSpan(s.blob).subspan(span.blob_offset, span.blob_length), out)
                .code(),
            Code::kInvalid);
}

// Every cipher this CPU can run (AES-256-GCM needs AES-NI): nothing is instantiated only
// to be skipped.
std::vector<Cipher> AvailableCiphers() {
  std::vector<Cipher> ciphers;
  for (Cipher c : {Cipher::kXChaCha20Poly1305, Cipher::kAes256Gcm})
    if (CipherAvailable(c)) ciphers.push_back(c);
  return ciphers;
}

INSTANTIATE_TEST_SUITE_P(BothCiphers, ChunkCipherTest, ::testing::ValuesIn(AvailableCiphers()),
                         [](const ::testing::TestParamInfo<Cipher>& info) {
                           return info.param == Cipher::kAes256Gcm ? std::string("Aes256Gcm")
                                                                   : std::string("XChaCha20");
                         });

}  // namespace
}  // namespace quid
