#include "cmd/duration_parse.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <string>

namespace quid {

Result<int64_t> ParseDuration(std::string_view text) {
  const auto bad = [&] {
    return Status::Invalid(
        fmt::format("'{}' is not a duration (a whole number with ms, s, m, h or d)", text));
  };
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return bad();
  const std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1'000'000;
  } else if (unit == "s") {
    scale = 1'000'000'000;
  } else if (unit == "m") {
    scale = 60'000'000'000;
  } else if (unit == "h") {
    scale = 3'600'000'000'000;
  } else if (unit == "d") {
    scale = 86'400'000'000'000;
  } else {
    return bad();
  }
  if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / scale) return bad();
  return static_cast<int64_t>(value * scale);
}

}  // namespace quid
