// Durations on the command line (`--journal-wait 30s`), as DESIGN.md spells them: a whole
// number with a suffix ms, s, m, h or d ("500ms", "10s", "30d"). A bare number is refused,
// so "30" is never silently read as 30 ns or 30 days.
#pragma once

#include <cstdint>
#include <string_view>

#include "storage/base/status.h"

namespace quid {

// Nanoseconds; kInvalid, naming the text, when malformed or beyond 64 bits.
Result<int64_t> ParseDuration(std::string_view text);

}  // namespace quid
