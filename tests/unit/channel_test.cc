#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "net/identity.h"
#include "net/secure_channel.h"

namespace quid::net {
namespace {

constexpr size_t kMessage1Bytes = 66;
constexpr size_t kMessage2Bytes = 128;
constexpr size_t kMessage3Bytes = 96;

Status AcceptAll(const PublicKey&) {
  return Status::Ok();
}

// A fresh temporary directory per test, removed with its key files afterwards.
class IdentityFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/quid_channel_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const char* name : {"node.key", "node.key.tmp", "sub/node.key", "sub/node.key.tmp"}) {
      std::remove(Path(name).c_str());
    }
    rmdir(Path("sub").c_str());
    rmdir(dir_.c_str());
  }
  std::string Path(const char* name) const { return dir_ + "/" + name; }
  std::string ReadText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteText(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  std::string dir_;
};

TEST(IdentityTest, FingerprintIs32LowercaseHexAndStable) {
  NodeIdentity id = NodeIdentity::Generate();
  std::string fp = id.fingerprint();
  ASSERT_EQ(fp.size(), 32u);
  for (char c : fp) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << fp;
  EXPECT_EQ(fp, Fingerprint(id.public_key()));
  EXPECT_EQ(fp, NodeIdentity(id).fingerprint());
  EXPECT_NE(fp, NodeIdentity::Generate().fingerprint());
}

TEST(IdentityTest, FingerprintOfAKnownKey) {
  // BLAKE2b-128 of 32 zero bytes (Python: hashlib.blake2b(bytes(32), digest_size=16)):
  // pins the definition so fingerprints stay comparable across versions and tools.
  EXPECT_EQ(Fingerprint(PublicKey{}), "ff0f22492f44bac4c4b30ae58d0e8daa");
}

TEST(IdentityTest, SignaturesVerifyOnlyForTheirMessageAndKey) {
  NodeIdentity a = NodeIdentity::Generate();
  NodeIdentity b = NodeIdentity::Generate();
  Signature sig = a.Sign(AsBytes("hello"));
  EXPECT_TRUE(VerifySignature(a.public_key(), AsBytes("hello"), sig));
  EXPECT_FALSE(VerifySignature(a.public_key(), AsBytes("hellO"), sig));
  EXPECT_FALSE(VerifySignature(b.public_key(), AsBytes("hello"), sig));
  sig[10] ^= 1;
  EXPECT_FALSE(VerifySignature(a.public_key(), AsBytes("hello"), sig));
}

TEST_F(IdentityFileTest, CreatesWithMode0600AndLoadsTheSameKey) {
  std::string path = Path("node.key");
  Result<NodeIdentity> created = NodeIdentity::LoadOrCreate(path);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(access(Path("node.key.tmp").c_str(), F_OK), 0);

  Result<NodeIdentity> loaded = NodeIdentity::LoadOrCreate(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->public_key(), created->public_key());
  EXPECT_EQ(loaded->fingerprint(), created->fingerprint());
  // The loaded secret signs for the same public key.
  Signature sig = loaded->Sign(AsBytes("x"));
  EXPECT_TRUE(VerifySignature(created->public_key(), AsBytes("x"), sig));
  EXPECT_EQ(ReadText(path).rfind("quid-node-key-v1 ", 0), 0u);
}

TEST_F(IdentityFileTest, CreatesMissingParentFolder) {
  Result<NodeIdentity> created = NodeIdentity::LoadOrCreate(Path("sub/node.key"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
}

TEST_F(IdentityFileTest, StaleTempFileWithOpenModeDoesNotLeakTheSecret) {
  WriteText(Path("node.key.tmp"), "junk", 0644);
  Result<NodeIdentity> created = NodeIdentity::LoadOrCreate(Path("node.key"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  struct stat st {};
  ASSERT_EQ(stat(Path("node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(IdentityFileTest, RefusesAKeyFileOthersCanRead) {
  std::string path = Path("node.key");
  ASSERT_TRUE(NodeIdentity::LoadOrCreate(path).ok());
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    Result<NodeIdentity> loaded = NodeIdentity::LoadOrCreate(path);
    ASSERT_FALSE(loaded.ok()) << std::oct << mode;
    EXPECT_EQ(loaded.status().code(), Code::kPermission) << loaded.status().ToString();
  }
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);  // owner-only read is fine
  EXPECT_TRUE(NodeIdentity::LoadOrCreate(path).ok());
}

TEST_F(IdentityFileTest, MalformedKeyFilesAreCorrupt) {
  std::string path = Path("node.key");
  ASSERT_TRUE(NodeIdentity::LoadOrCreate(path).ok());
  std::string good = ReadText(path);
  std::string flipped_seed = good;
  flipped_seed[20] = flipped_seed[20] == 'a' ? 'b' : 'a';
  std::string bad_hex = good;
  bad_hex[30] = 'z';
  std::string wrong_tag = good;
  wrong_tag[15] = '2';
  const std::string cases[] = {
      "",
      "quid-node-key-v1\n",
      good.substr(0, good.size() - 1),  // no newline
      good + "x",
      good.substr(0, 40) + "\n",
      flipped_seed,
      bad_hex,
      wrong_tag,
      std::string(good.size(), '\0'),
  };
  for (const std::string& text : cases) {
    WriteText(path, text, 0600);
    Result<NodeIdentity> loaded = NodeIdentity::LoadOrCreate(path);
    ASSERT_FALSE(loaded.ok()) << text;
    EXPECT_EQ(loaded.status().code(), Code::kCorrupt) << loaded.status().ToString();
  }
}

// Runs a handshake to the end, returning the first error.
struct Pair {
  Handshake initiator;
  Handshake responder;
};

Pair MakePair(const NodeIdentity& i, const NodeIdentity& r,
              std::optional<PublicKey> pinned = std::nullopt, PeerPolicy accept = AcceptAll) {
  return Pair{Handshake::Initiator(i, pinned), Handshake::Responder(r, std::move(accept))};
}

// Carries the three messages, letting `tamper` change message `which` (1..3) on the way.
Status RunHandshake(Pair& p, int which = 0, const std::function<void(Bytes&)>& tamper = {}) {
  Result<Bytes> m1 = p.initiator.Start();
  if (!m1.ok()) return m1.status();
  if (which == 1) tamper(*m1);
  Result<Bytes> m2 = p.responder.Receive(*m1);
  if (!m2.ok()) return m2.status();
  if (which == 2) tamper(*m2);
  Result<Bytes> m3 = p.initiator.Receive(*m2);
  if (!m3.ok()) return m3.status();
  if (which == 3) tamper(*m3);
  Result<Bytes> none = p.responder.Receive(*m3);
  if (!none.ok()) return none.status();
  EXPECT_TRUE(none->empty());
  return Status::Ok();
}

class HandshakeTest : public ::testing::Test {
 protected:
  NodeIdentity tenant_ = NodeIdentity::Generate();
  NodeIdentity host_ = NodeIdentity::Generate();
};

TEST_F(HandshakeTest, CompletesAndBothSidesAgreeOnKeysAndPeers) {
  Pair p = MakePair(tenant_, host_, host_.public_key());
  Result<Bytes> m1 = p.initiator.Start();
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(m1->size(), kMessage1Bytes);
  Result<Bytes> m2 = p.responder.Receive(*m1);
  ASSERT_TRUE(m2.ok()) << m2.status().ToString();
  EXPECT_EQ(m2->size(), kMessage2Bytes);
  EXPECT_FALSE(p.initiator.done());
  EXPECT_FALSE(p.responder.done());
  Result<Bytes> m3 = p.initiator.Receive(*m2);
  ASSERT_TRUE(m3.ok()) << m3.status().ToString();
  EXPECT_EQ(m3->size(), kMessage3Bytes);
  EXPECT_TRUE(p.initiator.done());
  Result<Bytes> none = p.responder.Receive(*m3);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(p.responder.done());

  EXPECT_EQ(p.initiator.peer(), host_.public_key());
  EXPECT_EQ(p.responder.peer(), tenant_.public_key());
  EXPECT_EQ(p.initiator.keys().send, p.responder.keys().receive);
  EXPECT_EQ(p.initiator.keys().receive, p.responder.keys().send);
  EXPECT_NE(p.initiator.keys().send, p.initiator.keys().receive);
  EXPECT_NE(p.initiator.keys().send, SessionKeys{}.send);
  EXPECT_EQ(p.initiator.keys().binding, p.responder.keys().binding);
  EXPECT_NE(p.initiator.keys().binding, p.initiator.keys().send);
  EXPECT_NE(p.initiator.keys().binding, p.initiator.keys().receive);
}

TEST_F(HandshakeTest, TrustOnFirstUseAcceptsAndReportsTheHostKey) {
  Pair p = MakePair(tenant_, host_, std::nullopt);
  ASSERT_TRUE(RunHandshake(p).ok());
  EXPECT_EQ(Fingerprint(p.initiator.peer()), host_.fingerprint());
}

TEST_F(HandshakeTest, HandshakesSurviveBeingMoved) {
  Pair p = MakePair(tenant_, host_, host_.public_key());
  Handshake initiator = std::move(p.initiator);
  Handshake responder = std::move(p.responder);
  Pair moved{std::move(initiator), std::move(responder)};
  ASSERT_TRUE(RunHandshake(moved).ok());
  EXPECT_EQ(moved.initiator.keys().send, moved.responder.keys().receive);
}

TEST_F(HandshakeTest, PinnedKeyMismatchIsRefusedNamingBothFingerprints) {
  NodeIdentity other = NodeIdentity::Generate();
  Pair p = MakePair(tenant_, host_, other.public_key());
  Status s = RunHandshake(p);
  EXPECT_EQ(s.code(), Code::kPermission) << s.ToString();
  EXPECT_NE(s.message().find(host_.fingerprint()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(other.fingerprint()), std::string::npos) << s.message();
  EXPECT_FALSE(p.initiator.done());
}

TEST_F(HandshakeTest, ResponderPolicyRefusalReturnsItsStatus) {
  PublicKey seen{};
  Pair p = MakePair(tenant_, host_, host_.public_key(), [&](const PublicKey& peer) {
    seen = peer;
    return Status(Code::kPermission, "tenant not admitted");
  });
  Status s = RunHandshake(p);
  EXPECT_EQ(s.code(), Code::kPermission);
  EXPECT_EQ(s.message(), "tenant not admitted");
  EXPECT_EQ(seen, tenant_.public_key());
  EXPECT_FALSE(p.responder.done());
  // A refused handshake is dead.
  EXPECT_EQ(p.responder.Receive(Bytes(kMessage3Bytes)).status().code(), Code::kInvalid);
}

TEST_F(HandshakeTest, ResponderWithoutPolicyRefuses) {
  Pair p = MakePair(tenant_, host_, host_.public_key(), PeerPolicy{});
  EXPECT_EQ(RunHandshake(p).code(), Code::kPermission);
}

TEST_F(HandshakeTest, PolicyAcceptsOnlyListedTenants) {
  NodeIdentity stranger = NodeIdentity::Generate();
  PeerPolicy only_tenant = [&](const PublicKey& peer) {
    return peer == tenant_.public_key() ? Status::Ok()
                                        : Status(Code::kPermission, "unknown tenant");
  };
  Pair good = MakePair(tenant_, host_, host_.public_key(), only_tenant);
  EXPECT_TRUE(RunHandshake(good).ok());
  Pair bad = MakePair(stranger, host_, host_.public_key(), only_tenant);
  EXPECT_EQ(RunHandshake(bad).code(), Code::kPermission);
}

// Every single-bit flip, every truncation and every extension of every message makes the
// handshake fail (with an error, never a crash) before both sides hold keys.
TEST_F(HandshakeTest, EveryTamperedMessageIsRejected) {
  const size_t sizes[] = {0, kMessage1Bytes, kMessage2Bytes, kMessage3Bytes};
  for (int which = 1; which <= 3; ++which) {
    for (size_t bit = 0; bit < sizes[which] * 8; ++bit) {
      Pair p = MakePair(tenant_, host_, host_.public_key());
      Status s = RunHandshake(p, which, [&](Bytes& m) { m[bit / 8] ^= 1u << (bit % 8); });
      ASSERT_FALSE(s.ok()) << "message " << which << " bit " << bit;
      EXPECT_TRUE(s.code() == Code::kCorrupt || s.code() == Code::kInvalid ||
                  s.code() == Code::kPermission)
          << s.ToString();
      EXPECT_FALSE(p.responder.done()) << "message " << which << " bit " << bit;
    }
    for (size_t keep = 0; keep < sizes[which]; ++keep) {
      Pair p = MakePair(tenant_, host_, host_.public_key());
      Status s = RunHandshake(p, which, [&](Bytes& m) { m.resize(keep); });
      ASSERT_FALSE(s.ok()) << "message " << which << " truncated to " << keep;
      EXPECT_TRUE(s.code() == Code::kCorrupt || s.code() == Code::kInvalid) << s.ToString();
    }
    for (size_t extra : {1, 2, 31, 64, 1000}) {
      Pair p = MakePair(tenant_, host_, host_.public_key());
      Status s = RunHandshake(p, which, [&](Bytes& m) { m.resize(m.size() + extra, 0); });
      ASSERT_FALSE(s.ok()) << "message " << which << " extended by " << extra;
      EXPECT_TRUE(s.code() == Code::kCorrupt || s.code() == Code::kInvalid) << s.ToString();
    }
  }
}

TEST_F(HandshakeTest, MalformedMessagesAreCorruptAtTheReceiver) {
  {
    Pair p = MakePair(tenant_, host_);
    Bytes m1 = *p.initiator.Start();
    m1.push_back(0);
    EXPECT_EQ(p.responder.Receive(m1).status().code(), Code::kCorrupt);
  }
  {
    Pair p = MakePair(tenant_, host_);
    Bytes m2 = *p.responder.Receive(*p.initiator.Start());
    m2[100] ^= 0x80;  // inside the signature
    EXPECT_EQ(p.initiator.Receive(m2).status().code(), Code::kCorrupt);
  }
  {
    Pair p = MakePair(tenant_, host_);
    Bytes m3 = *p.initiator.Receive(*p.responder.Receive(*p.initiator.Start()));
    m3[0] ^= 1;  // the initiator's key: its signature no longer verifies
    EXPECT_EQ(p.responder.Receive(m3).status().code(), Code::kCorrupt);
  }
}

TEST_F(HandshakeTest, ALowOrderEphemeralKeyIsRefused) {
  Pair p = MakePair(tenant_, host_);
  Bytes m1 = *p.initiator.Start();
  std::fill(m1.begin() + 2, m1.begin() + 34, 0);  // the identity point: shared secret 0
  EXPECT_EQ(p.responder.Receive(m1).status().code(), Code::kCorrupt);
}

TEST_F(HandshakeTest, VersionMismatchIsInvalid) {
  for (uint16_t version : {0, 1, 3, 0x0100, 0xffff}) {
    Pair p = MakePair(tenant_, host_);
    Bytes m1 = *p.initiator.Start();
    m1[0] = static_cast<uint8_t>(version >> 8);
    m1[1] = static_cast<uint8_t>(version);
    Status s = p.responder.Receive(m1).status();
    EXPECT_EQ(s.code(), Code::kInvalid) << version;
    EXPECT_NE(s.message().find("version"), std::string::npos) << s.message();
  }
  // A newer peer's message 1 may be longer: it still hears "version", not "malformed".
  Pair p = MakePair(tenant_, host_);
  Bytes m1 = *p.initiator.Start();
  m1[1] = static_cast<uint8_t>(kProtocolVersion + 1);
  m1.resize(80);
  EXPECT_EQ(p.responder.Receive(m1).status().code(), Code::kInvalid);
}

TEST_F(HandshakeTest, MessagesOutOfOrderAreInvalid) {
  Pair ref = MakePair(tenant_, host_);
  Bytes m1 = *ref.initiator.Start();
  Bytes m2 = *ref.responder.Receive(m1);
  Bytes m3 = *ref.initiator.Receive(m2);

  // A responder fed message 2 or 3 first.
  for (const Bytes* m : {&m2, &m3}) {
    Pair p = MakePair(tenant_, host_);
    EXPECT_EQ(p.responder.Receive(*m).status().code(), Code::kInvalid);
  }
  // An initiator fed message 1 or 3 in place of message 2.
  for (const Bytes* m : {&m1, &m3}) {
    Pair p = MakePair(tenant_, host_);
    ASSERT_TRUE(p.initiator.Start().ok());
    EXPECT_EQ(p.initiator.Receive(*m).status().code(), Code::kInvalid);
  }
  // A responder fed message 1 twice.
  {
    Pair p = MakePair(tenant_, host_);
    Bytes first = *p.initiator.Start();
    ASSERT_TRUE(p.responder.Receive(first).ok());
    EXPECT_EQ(p.responder.Receive(first).status().code(), Code::kInvalid);
  }
  // An initiator that receives before Start(), or starts twice.
  {
    Pair p = MakePair(tenant_, host_);
    EXPECT_EQ(p.initiator.Receive(m2).status().code(), Code::kInvalid);
    EXPECT_EQ(p.initiator.Start().status().code(), Code::kInvalid);  // dead after the error
  }
  {
    Pair p = MakePair(tenant_, host_);
    ASSERT_TRUE(p.initiator.Start().ok());
    EXPECT_EQ(p.initiator.Start().status().code(), Code::kInvalid);
  }
  // A responder asked to Start().
  {
    Pair p = MakePair(tenant_, host_);
    EXPECT_EQ(p.responder.Start().status().code(), Code::kInvalid);
  }
  // Anything after completion.
  {
    Pair p = MakePair(tenant_, host_);
    ASSERT_TRUE(RunHandshake(p).ok());
    EXPECT_EQ(p.initiator.Receive(m2).status().code(), Code::kInvalid);
    EXPECT_EQ(p.responder.Receive(m3).status().code(), Code::kInvalid);
  }
}

TEST_F(HandshakeTest, MessagesFromAnotherSessionAreRejected) {
  Pair a = MakePair(tenant_, host_);
  Pair b = MakePair(tenant_, host_);
  Bytes a1 = *a.initiator.Start();
  Bytes b1 = *b.initiator.Start();
  Bytes a2 = *a.responder.Receive(a1);
  ASSERT_TRUE(b.responder.Receive(b1).ok());
  // Session b's initiator gets a's message 2: the signature covers a's transcript.
  EXPECT_EQ(b.initiator.Receive(a2).status().code(), Code::kCorrupt);
  // And a's message 3 does not finish b's responder.
  Bytes a3 = *a.initiator.Receive(a2);
  EXPECT_EQ(b.responder.Receive(a3).status().code(), Code::kCorrupt);
}

// A relay between tenant and host re-signs the tenant's message 3 under its own key, so
// that the host would file the tenant's session under the relay (identity misbinding).
// It can hash the whole public transcript, but the signed digest is keyed by the session's
// shared secret, which the relay lacks: the host refuses.
TEST_F(HandshakeTest, RelayCannotClaimTheInitiatorsSessionAsItsOwn) {
  NodeIdentity relay = NodeIdentity::Generate();
  Pair p = MakePair(tenant_, host_, host_.public_key());
  Bytes m1 = *p.initiator.Start();
  Bytes m2 = *p.responder.Receive(m1);
  Bytes m3 = *p.initiator.Receive(m2);
  ASSERT_TRUE(p.initiator.done());

  Bytes forged(relay.public_key().begin(), relay.public_key().end());
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, crypto_generichash_BYTES_MAX);
  const std::string_view prologue = "quid secure channel v1";
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(prologue.data()),
                            prologue.size());
  crypto_generichash_update(&st, m1.data(), m1.size());
  crypto_generichash_update(&st, m2.data(), m2.size());
  crypto_generichash_update(&st, forged.data(), forged.size());
  std::array<uint8_t, crypto_generichash_BYTES_MAX> transcript{};
  crypto_generichash_final(&st, transcript.data(), transcript.size());
  Signature sig = relay.Sign(transcript);
  forged.insert(forged.end(), sig.begin(), sig.end());
  ASSERT_EQ(forged.size(), m3.size());

  EXPECT_EQ(p.responder.Receive(forged).status().code(), Code::kCorrupt);
  EXPECT_FALSE(p.responder.done());
}

TEST_F(HandshakeTest, TwoSessionsBetweenTheSameNodesGetDifferentKeys) {
  Pair a = MakePair(tenant_, host_, host_.public_key());
  Pair b = MakePair(tenant_, host_, host_.public_key());
  ASSERT_TRUE(RunHandshake(a).ok());
  ASSERT_TRUE(RunHandshake(b).ok());
  EXPECT_NE(a.initiator.keys().send, b.initiator.keys().send);
  EXPECT_NE(a.initiator.keys().receive, b.initiator.keys().receive);
  EXPECT_NE(a.initiator.keys().send, b.initiator.keys().receive);
  EXPECT_NE(a.initiator.keys().binding, b.initiator.keys().binding);
}

// --- frames ---

class FrameTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NodeIdentity tenant = NodeIdentity::Generate();
    NodeIdentity host = NodeIdentity::Generate();
    Pair p = MakePair(tenant, host, host.public_key());
    ASSERT_TRUE(RunHandshake(p).ok());
    tenant_keys_ = p.initiator.keys();
    host_keys_ = p.responder.keys();
  }
  static Bytes Seal(FrameCipher& c, std::string_view text) {
    Bytes frame(text.size() + kFrameOverheadBytes);
    c.Seal(AsBytes(text), frame);
    return frame;
  }
  static Result<std::string> Open(FrameCipher& c, const Bytes& frame) {
    if (frame.size() < kFrameOverheadBytes) {
      QUID_RETURN_IF_ERROR(c.Open(frame, {}));
      return std::string();
    }
    Bytes plain(frame.size() - kFrameOverheadBytes);
    QUID_RETURN_IF_ERROR(c.Open(frame, plain));
    return std::string(AsStringView(plain));
  }

  SessionKeys tenant_keys_;
  SessionKeys host_keys_;
};

TEST_F(FrameTest, FramesRoundTripInBothDirections) {
  FrameCipher tenant(tenant_keys_);
  FrameCipher host(host_keys_);
  for (int i = 0; i < 5; ++i) {
    std::string up = "request " + std::to_string(i);
    std::string down =
        "response " + std::to_string(i) + std::string(static_cast<size_t>(i) * 1000, 'x');
    Bytes f1 = Seal(tenant, up);
    EXPECT_EQ(f1.size(), up.size() + kFrameOverheadBytes);
    Result<std::string> got1 = Open(host, f1);
    ASSERT_TRUE(got1.ok()) << got1.status().ToString();
    EXPECT_EQ(*got1, up);
    Result<std::string> got2 = Open(tenant, Seal(host, down));
    ASSERT_TRUE(got2.ok()) << got2.status().ToString();
    EXPECT_EQ(*got2, down);
  }
  Result<std::string> empty = Open(host, Seal(tenant, ""));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST_F(FrameTest, SameTextSealsDifferentlyEachTime) {
  FrameCipher tenant(tenant_keys_);
  EXPECT_NE(Seal(tenant, "same"), Seal(tenant, "same"));
}

TEST_F(FrameTest, SealAndOpenInPlace) {
  FrameCipher tenant(tenant_keys_);
  FrameCipher host(host_keys_);
  std::string text = "in place payload";
  Bytes buf(text.begin(), text.end());
  buf.resize(text.size() + kFrameOverheadBytes);
  tenant.Seal(ByteSpan(buf.data(), text.size()), buf);
  EXPECT_NE(std::string(AsStringView(ByteSpan(buf.data(), text.size()))), text);
  ASSERT_TRUE(host.Open(buf, MutableByteSpan(buf.data(), text.size())).ok());
  EXPECT_EQ(std::string(AsStringView(ByteSpan(buf.data(), text.size()))), text);

  // Overlapping spans that start at different bytes: seal a plaintext that sits one byte
  // into the frame buffer, then open into a span one byte into the frame.
  Bytes shifted(1 + text.size() + kFrameOverheadBytes);
  std::copy(text.begin(), text.end(), shifted.begin() + 1);
  tenant.Seal(ByteSpan(shifted.data() + 1, text.size()),
              MutableByteSpan(shifted.data(), text.size() + kFrameOverheadBytes));
  MutableByteSpan dest(shifted.data() + 1, text.size());
  ASSERT_TRUE(host.Open(ByteSpan(shifted.data(), text.size() + kFrameOverheadBytes), dest).ok());
  EXPECT_EQ(std::string(AsStringView(dest)), text);
}

TEST_F(FrameTest, ReplayedFrameIsRejected) {
  FrameCipher tenant(tenant_keys_);
  FrameCipher host(host_keys_);
  Bytes f = Seal(tenant, "pay me once");
  ASSERT_TRUE(Open(host, f).ok());
  EXPECT_EQ(Open(host, f).status().code(), Code::kCorrupt);
}

TEST_F(FrameTest, ReorderedOrDroppedFramesAreRejected) {
  FrameCipher tenant(tenant_keys_);
  FrameCipher host(host_keys_);
  Bytes f0 = Seal(tenant, "zero");
  Bytes f1 = Seal(tenant, "one");
  Bytes f2 = Seal(tenant, "two");
  EXPECT_EQ(Open(host, f1).status().code(), Code::kCorrupt);
  EXPECT_EQ(Open(host, f2).status().code(), Code::kCorrupt);
  // A failure does not advance the counter: the right frame still opens.
  ASSERT_TRUE(Open(host, f0).ok());
  EXPECT_EQ(Open(host, f2).status().code(), Code::kCorrupt);  // f1 dropped
  ASSERT_TRUE(Open(host, f1).ok());
  ASSERT_TRUE(Open(host, f2).ok());
}

TEST_F(FrameTest, TruncatedFramesAreRejected) {
  FrameCipher tenant(tenant_keys_);
  Bytes f = Seal(tenant, "a frame that loses its tail");
  for (size_t keep = 0; keep < f.size(); ++keep) {
    FrameCipher host(host_keys_);
    Bytes cut(f.begin(), f.begin() + static_cast<long>(keep));
    EXPECT_EQ(Open(host, cut).status().code(), Code::kCorrupt) << keep;
  }
}

TEST_F(FrameTest, EveryBitFlipIsRejected) {
  FrameCipher tenant(tenant_keys_);
  Bytes f = Seal(tenant, "integrity");
  for (size_t bit = 0; bit < f.size() * 8; ++bit) {
    FrameCipher host(host_keys_);
    Bytes bad = f;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(Open(host, bad).status().code(), Code::kCorrupt) << bit;
  }
  FrameCipher host(host_keys_);
  EXPECT_TRUE(Open(host, f).ok());
}

TEST_F(FrameTest, FramesDoNotOpenInTheWrongDirectionOrSession) {
  FrameCipher tenant(tenant_keys_);
  Bytes f = Seal(tenant, "to the host");
  FrameCipher tenant_reflected(tenant_keys_);  // the sender's own receive side
  EXPECT_EQ(Open(tenant_reflected, f).status().code(), Code::kCorrupt);

  NodeIdentity a = NodeIdentity::Generate();
  NodeIdentity b = NodeIdentity::Generate();
  Pair other = MakePair(a, b);
  ASSERT_TRUE(RunHandshake(other).ok());
  FrameCipher other_host(other.responder.keys());
  EXPECT_EQ(Open(other_host, f).status().code(), Code::kCorrupt);
}

TEST_F(FrameTest, WrongSizedPlainBufferIsRefused) {
  FrameCipher tenant(tenant_keys_);
  FrameCipher host(host_keys_);
  Bytes f = Seal(tenant, "four");
  Bytes small(3);
  EXPECT_EQ(host.Open(f, small).code(), Code::kInvalid);
  Bytes right(4);
  EXPECT_TRUE(host.Open(f, right).ok());
}

TEST_F(FrameTest, ATailLeftInTheClearIsStillAuthenticated) {
  FrameCipher tenant(tenant_keys_);
  const std::string head = "header: put shard 42";
  const std::string tail = "shard bytes, ciphertext already";
  const std::string text = head + tail;
  Bytes frame(text.size() + kFrameOverheadBytes);
  tenant.Seal(AsBytes(text), frame, head.size());
  // The head is encrypted, the tail travels as it is.
  EXPECT_EQ(AsStringView(ByteSpan(frame.data() + head.size(), tail.size())), tail);
  EXPECT_EQ(std::string(AsStringView(ByteSpan(frame.data(), head.size()))).find("shard 42"),
            std::string::npos);
  {
    FrameCipher host(host_keys_);
    Bytes plain(text.size());
    size_t head_bytes = 0;
    ASSERT_TRUE(host.Open(frame, plain, &head_bytes).ok());
    EXPECT_EQ(AsStringView(plain), text);
    EXPECT_EQ(head_bytes, head.size());
  }
  // Every bit of it counts: the tail, the length, the head and the tag.
  for (size_t bit = 0; bit < frame.size() * 8; ++bit) {
    FrameCipher host(host_keys_);
    Bytes bad = frame;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Bytes plain(text.size());
    EXPECT_EQ(host.Open(bad, plain).code(), Code::kCorrupt) << bit;
  }
  // So does where the head ends: the same bytes with another split do not open.
  for (size_t split : {size_t{0}, head.size() - 1, head.size() + 1, text.size()}) {
    FrameCipher host(host_keys_);
    Bytes moved = frame;
    for (size_t i = 0; i < 4; ++i) moved[text.size() + i] = static_cast<uint8_t>(split >> (8 * i));
    Bytes plain(text.size());
    EXPECT_EQ(host.Open(moved, plain).code(), Code::kCorrupt) << split;
  }
  // A length past the end is refused before anything is read from it.
  FrameCipher host(host_keys_);
  Bytes past = frame;
  past[text.size() + 3] = 0x7f;
  Bytes plain(text.size());
  EXPECT_EQ(host.Open(past, plain).code(), Code::kCorrupt);
}

TEST_F(FrameTest, AClearTailOpensInPlaceAndIntoAnotherBuffer) {
  FrameCipher tenant(tenant_keys_);
  FrameCipher host(host_keys_);
  const std::string text = std::string(100, 'h') + std::string(5000, 't');
  for (int round = 0; round < 2; ++round) {
    Bytes buf(text.begin(), text.end());
    buf.resize(text.size() + kFrameOverheadBytes);
    tenant.Seal(ByteSpan(buf.data(), text.size()), buf, 100);
    if (round == 0) {
      ASSERT_TRUE(host.Open(buf, MutableByteSpan(buf.data(), text.size())).ok());
      EXPECT_EQ(AsStringView(ByteSpan(buf.data(), text.size())), text);
    } else {
      Bytes other(text.size());
      ASSERT_TRUE(host.Open(buf, other).ok());
      EXPECT_EQ(AsStringView(other), text);
    }
  }
}

}  // namespace
}  // namespace quid::net
