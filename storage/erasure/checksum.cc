#include "storage/erasure/checksum.h"

#include <isa-l/crc.h>

#include <algorithm>

namespace quid {

uint32_t Crc32c(ByteSpan data, uint32_t seed) {
  // crc32_iscsi neither pre- nor post-inverts: it wants the raw register and returns it.
  // Inverting on both sides gives the standard CRC-32C, and lets a finished CRC serve as
  // the seed for the next piece, so Crc32c(b, Crc32c(a)) == Crc32c(a + b).
  uint32_t crc = ~seed;
  // ISA-L takes an int length; feed larger spans in pieces.
  constexpr size_t kMaxPieceBytes = size_t{1} << 30;
  size_t offset = 0;
  while (offset < data.size()) {
    const size_t piece = std::min(kMaxPieceBytes, data.size() - offset);
    // ISA-L only reads the buffer; its signature just lacks const.
    crc =
        crc32_iscsi(const_cast<unsigned char*>(data.data() + offset), static_cast<int>(piece), crc);
    offset += piece;
  }
  return ~crc;
}

}  // namespace quid
