// Reproducible pseudo-random test data: the same seed gives the same bytes.
#pragma once

#include <cstdint>
#include <random>

#include "storage/base/bytes.h"

namespace quid {

inline Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

}  // namespace quid
