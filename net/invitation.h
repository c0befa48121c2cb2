// Invitation codes: what `quid invite` prints and `quid join CODE` reads, and the proof a
// joiner gives that it holds the code's secret.
//
// A code is one printable token, "quid-" then lowercase Crockford base32 (digits and
// letters without i, l, o, u) of a compact binary form, version 1:
//   version (1 byte, = 1)
//   key fingerprint (16) | secret (16)
//   expiry (varint, zigzag of Unix seconds) | capacity bytes (varint) | ratio milli (varint)
//   address count (1 byte, 1..kMaxInvitationAddresses), then per address a tag:
//     1 IPv4: 4 address bytes, port (2, big endian)
//     2 IPv6: 16 address bytes, port (2, big endian)
//     3 DNS name: length (1, 1..63), the name's bytes, port (2, big endian)
//   checksum: the first 4 bytes of BLAKE2b-128 (unkeyed) over every preceding byte
// Varints are LEB128, minimal (an overlong or overflowing one is malformed). Base32 is
// big-endian bit order with the final partial character's spare bits zero, so each byte
// string has exactly one code and every single-character change reaches the checksum.
// One IPv4 address with ordinary terms (a capacity below 512 TiB, a ratio below 16.384:1,
// an expiry before the year 2514) gives at most 100 characters, two at most 111.
//
// The checksum only catches mistakes: a code is not authenticated (whoever can write one
// can write any), and what protects a join is that the joiner pins the fingerprint in it
// and the inviter checks the proof of its secret. A later version must keep the version
// byte first and the 4-byte checksum last, so that this one can tell "too new" from
// "mistyped".
//
// Pure computation over bytes: no clock (the caller checks expires_at), no sockets, no
// name resolution.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/base/bytes.h"
#include "storage/base/status.h"

namespace quid::net {

constexpr size_t kInvitationSecretBytes = 16;
constexpr size_t kJoinProofBytes = 32;
// Enough for a node's v4, v6 and public name with room to spare; what bounds the work a
// hostile code can ask for.
constexpr size_t kMaxInvitationAddresses = 8;
constexpr size_t kMaxInvitationNameBytes = 63;

// What an invitation code carries. Terms are the inviter's: the capacity each side gives
// the other (raw shard bytes) and the ratio (given:received, in thousandths; 1000 = 1:1).
struct Invitation {
  // "HOST:PORT" the inviter listens on: an IPv4 literal ("192.0.2.7:7000"), an IPv6
  // literal in brackets ("[2001:db8::1]:7000"), or a DNS name of at most 63 characters.
  // Decoding gives literals in their canonical form (inet_ntop's), names as encoded.
  std::vector<std::string> addresses;
  // The inviter's key fingerprint, raw (BLAKE2b-128 of its Ed25519 public key); its hex
  // form is what net::Fingerprint() prints.
  std::array<uint8_t, 16> key_fingerprint{};
  std::array<uint8_t, kInvitationSecretBytes> secret{};  // one-time, random
  int64_t expires_at = 0;                                // Unix seconds
  uint64_t capacity_bytes = 0;
  uint32_t ratio_milli = 1000;  // never 0
};

// Whether `invitation` can be encoded: 1..kMaxInvitationAddresses addresses, each a valid
// HOST:PORT as above (port 1..65535; not 0.0.0.0 or [::], which no joiner can reach), and
// a ratio above zero. kInvalid naming the first
// problem otherwise. `quid invite` checks what it is given with this before encoding.
Status CheckInvitation(const Invitation& invitation);

// The printable code (one token, no spaces or dashes: people paste it).
// REQUIRES: CheckInvitation(invitation).ok(); aborts otherwise, since a code that
// decodes to something other than what was asked for would be worse than none.
std::string EncodeInvitation(const Invitation& invitation);

// Parses a code. Leading and trailing whitespace is ignored; uppercase letters read as
// lowercase, and o, i, l as 0, 1, 1 (Crockford's rule for the look-alikes). Every failure
// is kInvalid with one sentence a user can act on, and says which it is: not a quid
// invitation (prefix or characters), mistyped or incomplete (length, spare bits or
// checksum), made by a newer quid (version), or malformed (a checksum-correct code whose
// fields do not parse: only a broken or hostile encoder makes one). Bounds-checked
// throughout; safe on hostile input. Does not look at expires_at.
Result<Invitation> DecodeInvitation(std::string_view code);

// The joiner's proof that it knows `secret`, without sending it: BLAKE2b-256 keyed by the
// secret over the label "quid join proof v1" then `channel_binding`, a 32-byte value both
// ends of one secure-channel session derive, which makes a proof useless on any other
// session (a relay cannot replay it elsewhere). Both sides compute it.
std::array<uint8_t, kJoinProofBytes> JoinProof(const std::array<uint8_t, 16>& secret,
                                               ByteSpan channel_binding);
// The inviter's check of a received proof: false for a proof of the wrong length;
// otherwise compared in constant time (sodium_memcmp), so timing reveals no prefix.
bool JoinProofMatches(const std::array<uint8_t, 16>& secret, ByteSpan channel_binding,
                      ByteSpan proof);

}  // namespace quid::net
