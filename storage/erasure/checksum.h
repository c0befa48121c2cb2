// CRC-32C (Castagnoli), hardware-accelerated through ISA-L: catches rot in stored shards
// and torn records in the journal. Not a MAC: authenticity comes from the chunk AEAD.
#pragma once

#include <cstdint>

#include "storage/base/bytes.h"

namespace quid {

uint32_t Crc32c(ByteSpan data, uint32_t seed = 0);

}  // namespace quid
