// Byte spans and hex helpers shared by every layer.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quid {

using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;
using Bytes = std::vector<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsStringView(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Lower-case hex of `b`.
std::string ToHex(ByteSpan b);
// Parses lower- or upper-case hex; false if `hex` is not exactly out.size()*2 hex digits.
bool FromHex(std::string_view hex, MutableByteSpan out);

}  // namespace quid
