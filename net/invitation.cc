#include "net/invitation.h"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "storage/crypto/sodium_init.h"

namespace quid::net {
namespace {

constexpr std::string_view kPrefix = "quid-";
constexpr uint8_t kVersion = 1;
constexpr size_t kFingerprintBytes = 16;
constexpr size_t kChecksumBytes = 4;
// crypto_generichash's shortest output; the checksum is its first kChecksumBytes.
constexpr size_t kChecksumHashBytes = crypto_generichash_BYTES_MIN;
static_assert(kChecksumHashBytes >= kChecksumBytes);
static_assert(kInvitationSecretBytes >= crypto_generichash_KEYBYTES_MIN &&
              kInvitationSecretBytes <= crypto_generichash_KEYBYTES_MAX);
static_assert(kJoinProofBytes >= crypto_generichash_BYTES_MIN &&
              kJoinProofBytes <= crypto_generichash_BYTES_MAX);

enum AddressTag : uint8_t { kTagIpv4 = 1, kTagIpv6 = 2, kTagName = 3 };
constexpr size_t kIpv4Bytes = 4;
constexpr size_t kIpv6Bytes = 16;
constexpr size_t kPortBytes = 2;

// A version byte and a checksum: below that there is nothing to check. Anything longer is
// checked first, so that a short but checksum-correct code reads as malformed, not mistyped.
constexpr size_t kMinPayloadBytes = 1 + kChecksumBytes;
// Every field at its largest: what bounds the input worth decoding.
constexpr size_t kMaxVarintBytes = 10;
constexpr size_t kMaxPayloadBytes =
    1 + kFingerprintBytes + kInvitationSecretBytes + 3 * kMaxVarintBytes + 1 +
    kMaxInvitationAddresses * (2 + kMaxInvitationNameBytes + kPortBytes) + kChecksumBytes;
constexpr size_t kMaxCodeChars = kPrefix.size() + (kMaxPayloadBytes * 8 + 4) / 5;

// Crockford's base32 alphabet, lowercase: no i, l, o (they look like 1 and 0) and no u.
constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
static_assert(kAlphabet.size() == 32);

constexpr std::string_view kJoinProofLabel = "quid join proof v1";

// The sentence for every failure the user fixes by copying the code again.
const char kMistyped[] = "the code is mistyped or incomplete: check it was copied whole";

Status NotAnInvitation(const std::string& why) {
  return Status::Invalid("this is not a quid invitation: " + why);
}

Status Malformed(const std::string& what) {
  return Status::Invalid("the invitation is malformed (" + what +
                         "): ask the inviter for a new code");
}

// The value of a code character, after the case and look-alike folding DecodeInvitation
// promises; -1 for a character no code has.
int Base32Value(char c) {
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (c == 'o') c = '0';
  if (c == 'i' || c == 'l') c = '1';
  const size_t at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

std::string Base32Encode(ByteSpan bytes) {
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kAlphabet[(buffer >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::array<uint8_t, kChecksumBytes> Checksum(ByteSpan bytes) {
  std::array<uint8_t, kChecksumHashBytes> hash{};
  crypto_generichash(hash.data(), hash.size(), bytes.data(), bytes.size(), nullptr, 0);
  std::array<uint8_t, kChecksumBytes> out{};
  std::memcpy(out.data(), hash.data(), out.size());
  return out;
}

void PutVarint(Bytes* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ (v < 0 ? ~uint64_t{0} : 0);
}
int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

// One address, split and classified; what both CheckInvitation and the encoder use.
struct ParsedAddress {
  AddressTag tag = kTagIpv4;
  std::array<uint8_t, kIpv6Bytes> ip{};  // first 4 bytes for IPv4
  std::string name;
  uint16_t port = 0;
};

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. The last
// label may not be all digits (RFC 3696 2), so a name never reads as a mangled IPv4.
bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxInvitationNameBytes) return false;
  size_t label_start = 0;
  bool label_all_digits = true;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      const size_t length = i - label_start;
      if (length == 0 || name[label_start] == '-' || name[i - 1] == '-') return false;
      if (i == name.size() && label_all_digits) return false;
      label_start = i + 1;
      label_all_digits = true;
      continue;
    }
    const char c = name[i];
    const bool digit = c >= '0' && c <= '9';
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!digit && !letter && c != '-') return false;
    if (!digit) label_all_digits = false;
  }
  return true;
}

// 0.0.0.0 and [::] are what `serve --listen` binds to, not where a joiner can connect.
bool Unspecified(const ParsedAddress& a) {
  return a.tag != kTagName &&
         std::all_of(a.ip.begin(), a.ip.end(), [](uint8_t b) { return b == 0; });
}

Result<ParsedAddress> ParseAddress(std::string_view address) {
  const std::string quoted = "address \"" + std::string(address) + "\"";
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::Invalid(quoted + " is not HOST:PORT");
  }
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return Status::Invalid(quoted + " has no port between 1 and 65535");
  }
  ParsedAddress parsed;
  parsed.port = static_cast<uint16_t>(port);
  const std::string host_text(host);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string inner(host.substr(1, host.size() - 2));
    if (inet_pton(AF_INET6, inner.c_str(), parsed.ip.data()) != 1) {
      return Status::Invalid(quoted + " is not a valid IPv6 address in brackets");
    }
    parsed.tag = kTagIpv6;
  } else if (inet_pton(AF_INET, host_text.c_str(), parsed.ip.data()) == 1) {
    parsed.tag = kTagIpv4;
  } else if (ValidName(host)) {
    parsed.tag = kTagName;
    parsed.name = host_text;
  } else {
    return Status::Invalid(quoted + " is neither an IP address (IPv6 in brackets) nor a " +
                           "host name of at most " + std::to_string(kMaxInvitationNameBytes) +
                           " characters");
  }
  if (Unspecified(parsed)) {
    return Status::Invalid(quoted + " is the unspecified address: give one a joiner can reach");
  }
  return parsed;
}

std::string FormatAddress(const ParsedAddress& a) {
  // Appended piece by piece: GCC 12 at -O2 reports a false -Wrestrict on operator+ of
  // short strings here (see TRAPS.md).
  std::string out;
  char text[INET6_ADDRSTRLEN] = {};
  switch (a.tag) {
    case kTagIpv4:
      inet_ntop(AF_INET, a.ip.data(), text, sizeof(text));
      out.append(text);
      break;
    case kTagIpv6:
      inet_ntop(AF_INET6, a.ip.data(), text, sizeof(text));
      out.push_back('[');
      out.append(text);
      out.push_back(']');
      break;
    case kTagName:
      out.append(a.name);
      break;
  }
  out.push_back(':');
  out.append(std::to_string(a.port));
  return out;
}

// Reads the binary form front to back; every read checks what is left first.
class Reader {
 public:
  explicit Reader(ByteSpan bytes) : bytes_(bytes) {}
  size_t left() const { return bytes_.size() - at_; }

  bool Byte(uint8_t* out) {
    if (left() < 1) return false;
    *out = bytes_[at_++];
    return true;
  }
  bool Copy(MutableByteSpan out) {
    if (left() < out.size()) return false;
    std::memcpy(out.data(), bytes_.data() + at_, out.size());
    at_ += out.size();
    return true;
  }
  bool Port(uint16_t* out) {
    std::array<uint8_t, kPortBytes> b{};
    if (!Copy(b)) return false;
    *out = static_cast<uint16_t>((b[0] << 8) | b[1]);
    return true;
  }
  // Minimal LEB128 only: a second spelling of a value would be a second code for it.
  bool Varint(uint64_t* out) {
    uint64_t value = 0;
    for (size_t i = 0; i < kMaxVarintBytes; ++i) {
      uint8_t b = 0;
      if (!Byte(&b)) return false;
      if (i == kMaxVarintBytes - 1 && b > 1) return false;  // beyond 64 bits
      value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        if (b == 0 && i > 0) return false;  // overlong
        *out = value;
        return true;
      }
    }
    return false;
  }

 private:
  ByteSpan bytes_;
  size_t at_ = 0;
};

// Parses a checksum-verified body (checksum removed, version already checked).
Result<Invitation> ParseBody(ByteSpan body) {
  Reader r(body);
  Invitation inv;
  uint8_t version = 0;
  uint64_t expiry = 0, ratio = 0;
  if (!r.Byte(&version) || !r.Copy(inv.key_fingerprint) || !r.Copy(inv.secret)) {
    return Malformed("it ends inside the key fingerprint or secret");
  }
  if (!r.Varint(&expiry) || !r.Varint(&inv.capacity_bytes) || !r.Varint(&ratio)) {
    return Malformed("a bad expiry, capacity or ratio");
  }
  if (ratio == 0 || ratio > UINT32_MAX) return Malformed("a ratio of " + std::to_string(ratio));
  inv.expires_at = UnZigZag(expiry);
  inv.ratio_milli = static_cast<uint32_t>(ratio);
  uint8_t count = 0;
  if (!r.Byte(&count) || count == 0 || count > kMaxInvitationAddresses) {
    return Malformed(std::to_string(count) + " addresses");
  }
  for (size_t i = 0; i < count; ++i) {
    const std::string which = "address " + std::to_string(i + 1);
    ParsedAddress a;
    uint8_t tag = 0;
    if (!r.Byte(&tag)) return Malformed(which + " is missing");
    bool read = false;
    switch (tag) {
      case kTagIpv4:
        read = r.Copy(MutableByteSpan(a.ip).first(kIpv4Bytes));
        break;
      case kTagIpv6:
        read = r.Copy(a.ip);
        break;
      case kTagName: {
        uint8_t length = 0;
        if (!r.Byte(&length) || length == 0 || length > kMaxInvitationNameBytes) {
          return Malformed(which + " is a name of " + std::to_string(length) + " bytes");
        }
        a.name.resize(length);
        read = r.Copy({reinterpret_cast<uint8_t*>(a.name.data()), a.name.size()});
        if (read && !ValidName(a.name)) return Malformed(which + " is not a valid host name");
        break;
      }
      default:
        return Malformed(which + " has unknown kind " + std::to_string(tag));
    }
    a.tag = static_cast<AddressTag>(tag);
    if (!read || !r.Port(&a.port)) return Malformed(which + " is cut short");
    if (a.port == 0) return Malformed(which + " has port 0");
    if (Unspecified(a)) return Malformed(which + " is the unspecified address");
    inv.addresses.push_back(FormatAddress(a));
  }
  if (r.left() != 0) return Malformed(std::to_string(r.left()) + " bytes after the addresses");
  return inv;
}

}  // namespace

Status CheckInvitation(const Invitation& invitation) {
  if (invitation.addresses.empty()) return Status::Invalid("an invitation needs an address");
  if (invitation.addresses.size() > kMaxInvitationAddresses) {
    return Status::Invalid("an invitation carries at most " +
                           std::to_string(kMaxInvitationAddresses) + " addresses");
  }
  for (const std::string& address : invitation.addresses) {
    Result<ParsedAddress> parsed = ParseAddress(address);
    if (!parsed.ok()) return parsed.status();
  }
  if (invitation.ratio_milli == 0) return Status::Invalid("an invitation's ratio must be above 0");
  return Status::Ok();
}

std::string EncodeInvitation(const Invitation& invitation) {
  EnsureSodium();
  if (Status s = CheckInvitation(invitation); !s.ok()) {
    std::fprintf(stderr, "EncodeInvitation: %s\n", s.message().c_str());
    std::abort();
  }
  Bytes out;
  out.reserve(kMaxPayloadBytes);
  out.push_back(kVersion);
  out.insert(out.end(), invitation.key_fingerprint.begin(), invitation.key_fingerprint.end());
  out.insert(out.end(), invitation.secret.begin(), invitation.secret.end());
  PutVarint(&out, ZigZag(invitation.expires_at));
  PutVarint(&out, invitation.capacity_bytes);
  PutVarint(&out, invitation.ratio_milli);
  out.push_back(static_cast<uint8_t>(invitation.addresses.size()));
  for (const std::string& address : invitation.addresses) {
    ParsedAddress a = ParseAddress(address).value();  // checked above
    out.push_back(a.tag);
    switch (a.tag) {
      case kTagIpv4:
        out.insert(out.end(), a.ip.begin(), a.ip.begin() + kIpv4Bytes);
        break;
      case kTagIpv6:
        out.insert(out.end(), a.ip.begin(), a.ip.end());
        break;
      case kTagName:
        out.push_back(static_cast<uint8_t>(a.name.size()));
        out.insert(out.end(), a.name.begin(), a.name.end());
        break;
    }
    out.push_back(static_cast<uint8_t>(a.port >> 8));
    out.push_back(static_cast<uint8_t>(a.port & 0xff));
  }
  const auto checksum = Checksum(out);
  out.insert(out.end(), checksum.begin(), checksum.end());
  std::string code = std::string(kPrefix) + Base32Encode(out);
  sodium_memzero(out.data(), out.size());  // it holds the secret
  return code;
}

Result<Invitation> DecodeInvitation(std::string_view code) {
  EnsureSodium();
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t first = code.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return NotAnInvitation("it is empty");
  code = code.substr(first, code.find_last_not_of(kSpace) - first + 1);

  bool prefixed = code.size() >= kPrefix.size();
  for (size_t i = 0; prefixed && i < kPrefix.size(); ++i) {
    const char c = code[i];
    prefixed = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == kPrefix[i];
  }
  if (!prefixed) {
    // A code cut short inside its prefix is still recognisably the start of one.
    std::string lower(code);
    for (char& c : lower) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (kPrefix.substr(0, lower.size()) == lower) return Status::Invalid(kMistyped);
    return NotAnInvitation("a code starts with \"" + std::string(kPrefix) + "\"");
  }
  const std::string_view digits = code.substr(kPrefix.size());
  if (digits.size() > kMaxCodeChars - kPrefix.size()) {
    return NotAnInvitation("it is longer than any code");
  }
  Bytes bytes;
  bytes.reserve(digits.size() * 5 / 8);
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < digits.size(); ++i) {
    const int value = Base32Value(digits[i]);
    if (value < 0) {
      const auto c = static_cast<unsigned char>(digits[i]);
      char shown[16];
      if (c > ' ' && c < 0x7f) {
        std::snprintf(shown, sizeof(shown), "'%c'", c);
      } else {
        std::snprintf(shown, sizeof(shown), "byte 0x%02x", c);
      }
      sodium_memzero(bytes.data(), bytes.size());
      return NotAnInvitation("it contains " + std::string(shown) + " at character " +
                             std::to_string(kPrefix.size() + i + 1) +
                             ", and a code has only letters and digits");
    }
    buffer = (buffer << 5) | static_cast<uint32_t>(value);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uint8_t>(buffer >> bits));
    }
    buffer &= (1u << bits) - 1;
  }
  // What is left over must be a partial character's zero bits (fewer than 5): any other
  // length or spare bits cannot come from the encoder, so a character was lost or changed.
  Status status = Status::Ok();
  if (bits >= 5 || buffer != 0 || bytes.size() < kMinPayloadBytes) {
    status = Status::Invalid(kMistyped);
  } else {
    const ByteSpan body = ByteSpan(bytes).first(bytes.size() - kChecksumBytes);
    const auto expected = Checksum(body);
    if (std::memcmp(expected.data(), bytes.data() + body.size(), kChecksumBytes) != 0) {
      status = Status::Invalid(kMistyped);
    } else if (bytes[0] > kVersion) {
      status = Status::Invalid("this invitation was made by a newer quid (code version " +
                               std::to_string(bytes[0]) + "): upgrade quid to join with it");
    } else if (bytes[0] < kVersion) {
      status = Malformed("code version 0");
    } else {
      Result<Invitation> parsed = ParseBody(body);
      sodium_memzero(bytes.data(), bytes.size());
      return parsed;
    }
  }
  sodium_memzero(bytes.data(), bytes.size());
  return status;
}

std::array<uint8_t, kJoinProofBytes> JoinProof(const std::array<uint8_t, 16>& secret,
                                               ByteSpan channel_binding) {
  EnsureSodium();
  std::array<uint8_t, kJoinProofBytes> proof{};
  crypto_generichash_state state;
  crypto_generichash_init(&state, secret.data(), secret.size(), proof.size());
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(kJoinProofLabel.data()),
                            kJoinProofLabel.size());
  crypto_generichash_update(&state, channel_binding.data(), channel_binding.size());
  crypto_generichash_final(&state, proof.data(), proof.size());
  sodium_memzero(&state, sizeof(state));
  return proof;
}

bool JoinProofMatches(const std::array<uint8_t, 16>& secret, ByteSpan channel_binding,
                      ByteSpan proof) {
  if (proof.size() != kJoinProofBytes) return false;
  const std::array<uint8_t, kJoinProofBytes> expected = JoinProof(secret, channel_binding);
  return sodium_memcmp(expected.data(), proof.data(), proof.size()) == 0;
}

}  // namespace quid::net
