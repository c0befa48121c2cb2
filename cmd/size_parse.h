// Sizes on the command line (`--cache-size 256M`) and in human output.
//
// DESIGN.md promises binary suffixes: K = 1024, M, G and T likewise. "0" is a size (it turns
// the read cache off), so the parser never treats zero as "unset".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/base/status.h"

namespace quid {

// A whole number of bytes with an optional suffix K, M, G or T (either case, optionally
// followed by "iB"), or a plain "B". kInvalid, with the offending text, otherwise or when the
// value does not fit in 64 bits.
Result<uint64_t> ParseSize(std::string_view text);

// The other way, for people: "0 B", "512 B", "4.0 KiB", "1.5 GiB".
std::string FormatSize(uint64_t bytes);

}  // namespace quid
