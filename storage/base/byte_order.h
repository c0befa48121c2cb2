// Fixed-width integers in a byte order of our choosing, for every on-disk and on-wire
// format: big endian where keys must sort numerically (RocksDB keys, frame lengths, shard
// headers), little endian for the journal's record headers. One definition each, here.
#pragma once

#include <cstdint>

namespace quid {

inline void PutBigEndian32(uint32_t v, uint8_t* out) {
  for (int i = 3; i >= 0; --i, v >>= 8) out[i] = static_cast<uint8_t>(v);
}
inline void PutBigEndian64(uint64_t v, uint8_t* out) {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<uint8_t>(v);
}
inline uint32_t GetBigEndian32(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | in[i];
  return v;
}
inline uint64_t GetBigEndian64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | in[i];
  return v;
}

inline void PutLittleEndian32(uint32_t v, uint8_t* out) {
  for (int i = 0; i < 4; ++i, v >>= 8) out[i] = static_cast<uint8_t>(v);
}
inline void PutLittleEndian64(uint64_t v, uint8_t* out) {
  for (int i = 0; i < 8; ++i, v >>= 8) out[i] = static_cast<uint8_t>(v);
}
inline uint32_t GetLittleEndian32(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | in[i];
  return v;
}
inline uint64_t GetLittleEndian64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | in[i];
  return v;
}

}  // namespace quid
