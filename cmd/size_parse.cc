#include "cmd/size_parse.h"

#include <fmt/format.h>

#include <array>
#include <cctype>

namespace quid {
namespace {

Status BadSize(std::string_view text) {
  return Status::Invalid(fmt::format(
      "invalid size \"{}\": expected a whole number with an optional K, M, G or T suffix", text));
}

// log2 of the multiplier a suffix letter stands for, or -1 for a letter that is no suffix.
int SuffixShift(char letter) {
  switch (std::toupper(static_cast<unsigned char>(letter))) {
    case 'K':
      return 10;
    case 'M':
      return 20;
    case 'G':
      return 30;
    case 'T':
      return 40;
    default:
      return -1;
  }
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  size_t pos = 0;
  uint64_t value = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
    const uint64_t digit = static_cast<uint64_t>(text[pos] - '0');
    if (__builtin_mul_overflow(value, uint64_t{10}, &value) ||
        __builtin_add_overflow(value, digit, &value)) {
      return Status::Invalid(fmt::format("size \"{}\" is too large", text));
    }
    ++pos;
  }
  if (pos == 0) return BadSize(text);

  std::string_view suffix = text.substr(pos);
  if (suffix.empty() || suffix == "B" || suffix == "b") return value;
  const int shift = SuffixShift(suffix[0]);
  suffix.remove_prefix(1);
  if (shift < 0 || !(suffix.empty() || suffix == "iB")) return BadSize(text);
  if (value > (UINT64_MAX >> shift)) {
    return Status::Invalid(fmt::format("size \"{}\" is too large", text));
  }
  return value << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double scaled = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (scaled >= 1024.0 && unit + 1 < kUnits.size()) {
    scaled /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", scaled, kUnits[unit]);
}

}  // namespace quid
