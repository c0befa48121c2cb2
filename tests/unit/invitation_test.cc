#include "net/invitation.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cctype>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace quid::net {
namespace {

constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
const std::string kMistyped = "the code is mistyped or incomplete: check it was copied whole";

// Ordinary terms: an expiry a week from a 2024 date, 100 GiB, 1:1.
Invitation Sample(std::vector<std::string> addresses) {
  Invitation inv;
  inv.addresses = std::move(addresses);
  for (size_t i = 0; i < inv.key_fingerprint.size(); ++i) {
    inv.key_fingerprint[i] = static_cast<uint8_t>(0xa0 + i);
  }
  for (size_t i = 0; i < inv.secret.size(); ++i) inv.secret[i] = static_cast<uint8_t>(17 * i + 3);
  inv.expires_at = 1718000000 + 7 * 86400;
  inv.capacity_bytes = uint64_t{100} << 30;
  inv.ratio_milli = 1000;
  return inv;
}

void ExpectSame(const Invitation& a, const Invitation& b) {
  EXPECT_EQ(a.addresses, b.addresses);
  EXPECT_EQ(a.key_fingerprint, b.key_fingerprint);
  EXPECT_EQ(a.secret, b.secret);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.capacity_bytes, b.capacity_bytes);
  EXPECT_EQ(a.ratio_milli, b.ratio_milli);
}

// The format written out independently of the encoder (header comment of invitation.h),
// so these tests pin it and can build checksum-correct codes the encoder never would.
std::string CodeFromPayload(Bytes payload) {
  std::array<uint8_t, 16> hash{};
  crypto_generichash(hash.data(), hash.size(), payload.data(), payload.size(), nullptr, 0);
  payload.insert(payload.end(), hash.begin(), hash.begin() + 4);
  std::string out = "quid-";
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : payload) {
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

// Version 1, all-zero fingerprint and secret, expiry 0, capacity 0, ratio 1000.
Bytes PayloadHead() {
  Bytes p = {1};
  p.insert(p.end(), 32, 0);
  p.insert(p.end(), {0x00, 0x00, 0xe8, 0x07});
  return p;
}

Bytes V4Address() {
  return {1, 192, 0, 2, 7, 0x1b, 0x58};  // 192.0.2.7:7000
}

Bytes Concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// What DecodeInvitation reads a code as: lowercase, with Crockford's look-alikes folded.
std::string Folded(std::string code) {
  for (char& c : code) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == 'o') c = '0';
    if (c == 'i' || c == 'l') c = '1';
  }
  return code;
}

void ExpectRefused(const std::string& code, const std::string& why) {
  Result<Invitation> decoded = DecodeInvitation(code);
  ASSERT_FALSE(decoded.ok()) << why << ": " << code;
  EXPECT_EQ(decoded.status().code(), Code::kInvalid) << why;
  EXPECT_FALSE(decoded.status().message().empty());
}

TEST(InvitationTest, RoundTripsEveryAddressKind) {
  const std::vector<std::vector<std::string>> cases = {
      {"192.0.2.7:7000"},
      {"[2001:db8::1]:443"},
      {"[::1]:65535"},
      {"node-1.example.org:1"},
      {"192.0.2.7:7000", "[2001:db8::1]:7000"},
      {"10.0.0.1:7000", "[fe80::1:2]:7001", "quid.example.net:7002"},
  };
  for (const auto& addresses : cases) {
    Invitation inv = Sample(addresses);
    std::string code = EncodeInvitation(inv);
    Result<Invitation> decoded = DecodeInvitation(code);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString() << " for " << code;
    ExpectSame(*decoded, inv);
  }
}

TEST(InvitationTest, RoundTripsExtremeTerms) {
  Invitation inv = Sample({"192.0.2.7:7000"});
  for (int64_t expiry : {int64_t{0}, int64_t{-1}, INT64_MIN, INT64_MAX}) {
    for (uint64_t capacity : {uint64_t{0}, uint64_t{127}, uint64_t{128}, UINT64_MAX}) {
      for (uint32_t ratio : {1u, 1000u, UINT32_MAX}) {
        inv.expires_at = expiry;
        inv.capacity_bytes = capacity;
        inv.ratio_milli = ratio;
        Result<Invitation> decoded = DecodeInvitation(EncodeInvitation(inv));
        ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
        ExpectSame(*decoded, inv);
      }
    }
  }
}

TEST(InvitationTest, LiteralsComeBackCanonical) {
  Result<Invitation> decoded =
      DecodeInvitation(EncodeInvitation(Sample({"[2001:0DB8:0:0::0001]:7000"})));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->addresses, std::vector<std::string>{"[2001:db8::1]:7000"});
}

TEST(InvitationTest, CodesAreShortOneTokenLowercase) {
  const std::string one = EncodeInvitation(Sample({"203.0.113.200:7000"}));
  const std::string two = EncodeInvitation(Sample({"203.0.113.200:7000", "198.51.100.1:7000"}));
  EXPECT_EQ(one.size(), 98u) << one;
  EXPECT_EQ(two.size(), 109u) << two;
  EXPECT_LE(one.size(), 100u);
  EXPECT_LE(two.size(), 120u);
  for (const std::string& code : {one, two}) {
    EXPECT_EQ(code.rfind("quid-", 0), 0u);
    for (char c : code.substr(5)) EXPECT_NE(kAlphabet.find(c), std::string_view::npos) << c;
  }

  // The header's bound: the largest ordinary terms (a capacity under 512 TiB, a ratio up
  // to 16.383:1, an expiry before the year 2514) still fit.
  Invitation big = Sample({"203.0.113.200:65535"});
  big.capacity_bytes = (uint64_t{1} << 49) - 1;
  big.ratio_milli = 16383;
  big.expires_at = (int64_t{1} << 34) - 1;
  EXPECT_EQ(EncodeInvitation(big).size(), 100u);
  big.addresses.push_back("198.51.100.1:65535");
  EXPECT_EQ(EncodeInvitation(big).size(), 111u);
}

TEST(InvitationTest, FormatIsPinned) {
  const std::string code = CodeFromPayload(Concat(Concat(PayloadHead(), {1}), V4Address()));
  Result<Invitation> decoded = DecodeInvitation(code);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  Invitation expected;
  expected.addresses = {"192.0.2.7:7000"};
  ExpectSame(*decoded, expected);
  EXPECT_EQ(EncodeInvitation(expected), code);
}

TEST(InvitationTest, EverySubstitutionIsRefused) {
  const std::string code = EncodeInvitation(Sample({"192.0.2.7:7000", "[2001:db8::1]:7000"}));
  size_t tried = 0;
  for (size_t i = 0; i < code.size(); ++i) {
    for (char c : std::string(kAlphabet) + "-_") {
      std::string changed = code;
      if (changed[i] == c) continue;
      changed[i] = c;
      ExpectRefused(changed, "character " + std::to_string(i) + " changed to " + c);
      ++tried;
    }
  }
  EXPECT_GT(tried, code.size() * 30);
}

TEST(InvitationTest, ChangedSpareBitsAreMistyped) {
  // 58 payload bytes = 464 bits in 93 characters: the last one carries a spare bit, which
  // must be zero, or two codes would read as the same bytes.
  const std::string code = EncodeInvitation(Sample({"192.0.2.7:7000"}));
  const size_t spare = (code.size() - 5) * 5 % 8;
  ASSERT_GT(spare, 0u) << "pick terms whose payload does not fill the last character";
  const int last = static_cast<int>(kAlphabet.find(code.back()));
  for (int low = 1; low < (1 << spare); ++low) {
    std::string changed = code;
    changed.back() = kAlphabet[last | low];
    Result<Invitation> decoded = DecodeInvitation(changed);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().message(), kMistyped);
  }
}

TEST(InvitationTest, EveryTruncationIsRefused) {
  const std::string code = EncodeInvitation(Sample({"192.0.2.7:7000", "host.example:9"}));
  for (size_t n = 0; n < code.size(); ++n) {
    ExpectRefused(code.substr(0, n), "prefix of " + std::to_string(n));
  }
  // Cut inside the data, the user is told to copy it again, not that it is something else.
  for (size_t n = 5; n < code.size(); ++n) {
    EXPECT_EQ(DecodeInvitation(code.substr(0, n)).status().message(), kMistyped) << n;
  }
}

TEST(InvitationTest, AppendedCharactersAreRefused) {
  const std::string code = EncodeInvitation(Sample({"192.0.2.7:7000"}));
  for (char c : kAlphabet) ExpectRefused(code + c, std::string("appended ") + c);
  for (const char* tail : {"00", "zzz", "0000", "00000000", "-x", " quid", "\x01"}) {
    ExpectRefused(code + tail, std::string("appended ") + tail);
  }
  ExpectRefused(code + code.substr(5), "doubled");
  ExpectRefused(code + std::string(5000, 'a'), "very long");
}

TEST(InvitationTest, WhitespaceUppercaseAndLookalikesAreTolerated) {
  const Invitation inv = Sample({"192.0.2.7:7000"});
  const std::string code = EncodeInvitation(inv);
  std::string upper = code;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string lookalikes = code;
  for (char& c : lookalikes) {
    if (&c - lookalikes.data() < 5) continue;
    if (c == '0') c = 'O';
    if (c == '1') c = 'l';
  }
  for (const std::string& variant :
       {" " + code, code + "\n", "\t " + code + " \r\n", upper, "  " + upper + "\n", lookalikes}) {
    Result<Invitation> decoded = DecodeInvitation(variant);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString() << " for [" << variant << "]";
    ExpectSame(*decoded, inv);
  }
  // Inside the code, whitespace is not tolerated: it is one token.
  ExpectRefused(code.substr(0, 40) + " " + code.substr(40), "inner space");
}

TEST(InvitationTest, ErrorsSayWhatIsWrong) {
  const std::string code = EncodeInvitation(Sample({"192.0.2.7:7000"}));
  auto message = [](std::string_view c) { return DecodeInvitation(c).status().message(); };
  EXPECT_NE(message("").find("not a quid invitation"), std::string::npos);
  EXPECT_NE(message("   ").find("not a quid invitation"), std::string::npos);
  EXPECT_NE(message("hello-" + code.substr(5)).find("not a quid invitation"), std::string::npos);
  EXPECT_NE(message("https://example.org").find("not a quid invitation"), std::string::npos);
  std::string with_u = code;
  with_u[20] = 'u';
  EXPECT_NE(message(with_u).find("'u' at character 21"), std::string::npos) << message(with_u);
  std::string flipped = code;
  flipped[30] = flipped[30] == 'a' ? 'b' : 'a';
  EXPECT_EQ(message(flipped), kMistyped);

  Bytes v2 = Concat(Concat(PayloadHead(), {1}), V4Address());
  v2[0] = 2;
  EXPECT_NE(message(CodeFromPayload(v2)).find("newer quid"), std::string::npos);
  v2[0] = 0;
  EXPECT_NE(message(CodeFromPayload(v2)).find("malformed"), std::string::npos);
}

TEST(InvitationTest, HostileChecksumCorrectCodesAreMalformed) {
  const Bytes head = PayloadHead();
  std::vector<std::pair<std::string, Bytes>> hostile = {
      {"no addresses", Concat(head, {0})},
      {"255 addresses, one present", Concat(Concat(head, {255}), V4Address())},
      {"9 addresses",
       [&] {
         Bytes p = Concat(head, {9});
         for (int i = 0; i < 9; ++i) p = Concat(p, V4Address());
         return p;
       }()},
      {"count says 2, one present", Concat(Concat(head, {2}), V4Address())},
      {"unknown tag", Concat(head, {1, 9, 1, 2, 3, 4, 0, 1})},
      {"v4 cut short", Concat(head, {1, 1, 192, 0, 2})},
      {"v6 cut short", Concat(head, {1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})},
      {"name of 255 bytes, 3 present", Concat(head, {1, 3, 255, 'a', 'b', 'c'})},
      {"name of 64 bytes",
       [&] {
         Bytes p = Concat(head, {1, 3, 64});
         p.insert(p.end(), 64, 'a');
         return Concat(p, {0, 80});
       }()},
      {"empty name", Concat(head, {1, 3, 0, 0, 80})},
      {"name with a slash", Concat(head, {1, 3, 3, 'a', '/', 'b', 0, 80})},
      {"name with a NUL", Concat(head, {1, 3, 3, 'a', 0, 'b', 0, 80})},
      {"port 0", Concat(head, {1, 1, 192, 0, 2, 7, 0, 0})},
      {"0.0.0.0", Concat(head, {1, 1, 0, 0, 0, 0, 0, 80})},
      {"trailing byte", Concat(Concat(Concat(head, {1}), V4Address()), {0})},
      {"ratio 0",
       [&] {
         Bytes p = head;
         p[p.size() - 2] = 0;
         p.pop_back();
         return Concat(Concat(p, {1}), V4Address());
       }()},
      {"ratio beyond 32 bits",
       [&] {
         Bytes p(head.begin(), head.end() - 2);
         p.insert(p.end(), {0x80, 0x80, 0x80, 0x80, 0x10});  // 2^32
         return Concat(Concat(p, {1}), V4Address());
       }()},
      {"overlong varint",
       [&] {
         Bytes p(head.begin(), head.end() - 3);        // up to the capacity
         p.insert(p.end(), {0x80, 0x00, 0xe8, 0x07});  // capacity 0 in two bytes
         return Concat(Concat(p, {1}), V4Address());
       }()},
      {"varint beyond 64 bits",
       [&] {
         Bytes p(head.begin(), head.end() - 3);
         p.insert(p.end(), 9, 0xff);
         p.insert(p.end(), {0x02, 0xe8, 0x07});
         return Concat(Concat(p, {1}), V4Address());
       }()},
      {"endless varint",
       [&] {
         Bytes p(head.begin(), head.end() - 3);
         p.insert(p.end(), 30, 0xff);
         return p;
       }()},
  };
  for (const auto& [why, payload] : hostile) {
    Result<Invitation> decoded = DecodeInvitation(CodeFromPayload(payload));
    ASSERT_FALSE(decoded.ok()) << why;
    EXPECT_EQ(decoded.status().code(), Code::kInvalid) << why;
    EXPECT_NE(decoded.status().message().find("malformed"), std::string::npos)
        << why << ": " << decoded.status().message();
  }
}

TEST(InvitationTest, RandomInputNeverDecodes) {
  std::mt19937_64 rng(20240611);
  const std::string valid = EncodeInvitation(Sample({"192.0.2.7:7000"}));
  for (int i = 0; i < 6000; ++i) {
    std::string s;
    const size_t length = rng() % 160;
    switch (i % 3) {
      case 0:  // any bytes at all
        for (size_t j = 0; j < length; ++j) s.push_back(static_cast<char>(rng()));
        break;
      case 1:  // the prefix and alphabet characters: past every check but the checksum
        s = "quid-";
        for (size_t j = 0; j < length; ++j) s.push_back(kAlphabet[rng() % 32]);
        break;
      case 2:  // a real code with a few random bytes overwritten
        s = valid;
        for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
          s[5 + rng() % (s.size() - 5)] = static_cast<char>(rng());
        }
        if (Folded(s) == Folded(valid)) continue;  // the same code, spelt another way
        break;
    }
    ExpectRefused(s, "random input " + std::to_string(i));
  }
}

TEST(InvitationTest, CheckRefusesWhatCannotBeEncoded) {
  EXPECT_TRUE(CheckInvitation(Sample({"192.0.2.7:7000"})).ok());
  for (const char* bad :
       {"192.0.2.7", "192.0.2.7:0", "192.0.2.7:65536", "192.0.2.7:x", ":7000", "::1:7000", "[::1]",
        "[nothost]:7000", "bad_name:7000", "-lead.example:7000", "a..b:7000", "999.1.1.1:7000",
        "host name:7", "0.0.0.0:7000", "[::]:7000"}) {
    Status s = CheckInvitation(Sample({bad}));
    EXPECT_EQ(s.code(), Code::kInvalid) << bad;
  }
  EXPECT_FALSE(CheckInvitation(Sample({std::string(64, 'a') + ":7000"})).ok());
  EXPECT_TRUE(CheckInvitation(Sample({std::string(63, 'a') + ":7000"})).ok());
  EXPECT_FALSE(CheckInvitation(Sample({})).ok());
  EXPECT_FALSE(CheckInvitation(Sample(std::vector<std::string>(9, "192.0.2.7:7000"))).ok());
  Invitation zero_ratio = Sample({"192.0.2.7:7000"});
  zero_ratio.ratio_milli = 0;
  EXPECT_FALSE(CheckInvitation(zero_ratio).ok());
}

TEST(InvitationDeathTest, EncodeAbortsOnWhatCheckRefuses) {
  EXPECT_DEATH(EncodeInvitation(Sample({"not an address"})), "EncodeInvitation");
}

TEST(JoinProofTest, DependsOnSecretAndBinding) {
  std::array<uint8_t, 16> secret_a{}, secret_b{};
  secret_b[15] = 1;
  std::array<uint8_t, 32> binding_a{}, binding_b{};
  binding_b[0] = 1;
  const auto proof = JoinProof(secret_a, binding_a);
  EXPECT_EQ(proof, JoinProof(secret_a, binding_a));
  EXPECT_NE(proof, JoinProof(secret_b, binding_a));
  EXPECT_NE(proof, JoinProof(secret_a, binding_b));
  EXPECT_TRUE(JoinProofMatches(secret_a, binding_a, proof));
  EXPECT_FALSE(JoinProofMatches(secret_b, binding_a, proof));
  EXPECT_FALSE(JoinProofMatches(secret_a, binding_b, proof));

  // Pinned: BLAKE2b-256 keyed by the secret over the label then the binding.
  const std::string_view label = "quid join proof v1";
  Bytes message(label.begin(), label.end());
  message.insert(message.end(), binding_a.begin(), binding_a.end());
  std::array<uint8_t, 32> expected{};
  crypto_generichash(expected.data(), expected.size(), message.data(), message.size(),
                     secret_a.data(), secret_a.size());
  EXPECT_EQ(proof, expected);
}

TEST(JoinProofTest, RefusesWrongLengthAndAnyChangedByte) {
  std::array<uint8_t, 16> secret{};
  secret[0] = 42;
  const std::array<uint8_t, 32> binding{7};
  const auto proof = JoinProof(secret, binding);
  const ByteSpan span(proof);
  EXPECT_FALSE(JoinProofMatches(secret, binding, span.first(31)));
  EXPECT_FALSE(JoinProofMatches(secret, binding, {}));
  Bytes longer(proof.begin(), proof.end());
  longer.push_back(0);
  EXPECT_FALSE(JoinProofMatches(secret, binding, longer));
  for (size_t i = 0; i < proof.size(); ++i) {
    auto changed = proof;
    changed[i] ^= 0x01;
    EXPECT_FALSE(JoinProofMatches(secret, binding, changed)) << i;
  }
}

}  // namespace
}  // namespace quid::net
