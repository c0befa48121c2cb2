#include "storage/erasure/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace quid {
namespace {

// Bit-at-a-time CRC-32C (reflected polynomial 0x82F63B78), the definition itself.
uint32_t ReferenceCrc32c(ByteSpan data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

TEST(ChecksumTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(AsBytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(ByteSpan()), 0u);
}

TEST(ChecksumTest, MatchesIscsiTestVectors) {
  // RFC 3720 appendix B.4.
  std::vector<uint8_t> buf(32, 0x00);
  EXPECT_EQ(Crc32c(buf), 0x8A9136AAu);
  std::fill(buf.begin(), buf.end(), uint8_t{0xFF});
  EXPECT_EQ(Crc32c(buf), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(buf), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(Crc32c(buf), 0x113FDB5Cu);
}

TEST(ChecksumTest, MatchesReferenceOnRandomData) {
  std::mt19937_64 rng(1);
  for (size_t len : {size_t{1}, size_t{7}, size_t{63}, size_t{64}, size_t{4097}, size_t{1 << 20}}) {
    std::vector<uint8_t> data(len);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(Crc32c(data), ReferenceCrc32c(data)) << len;
  }
}

TEST(ChecksumTest, ChainsThroughTheSeed) {
  std::mt19937_64 rng(2);
  std::vector<uint8_t> data(10000);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const uint32_t whole = Crc32c(data);
  for (size_t split :
       {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, size_t{9999}, data.size()}) {
    ByteSpan a(data.data(), split);
    ByteSpan b(data.data() + split, data.size() - split);
    EXPECT_EQ(Crc32c(b, Crc32c(a)), whole) << split;
  }
  EXPECT_EQ(Crc32c(AsBytes("56789"), Crc32c(AsBytes("1234"))), 0xE3069283u);
}

TEST(ChecksumTest, DetectsASingleFlippedBit) {
  std::vector<uint8_t> data(4096, 0x5A);
  const uint32_t before = Crc32c(data);
  data[1234] ^= 0x10;
  EXPECT_NE(Crc32c(data), before);
}

}  // namespace
}  // namespace quid
