#include "net/secure_channel.h"
#include "storage/crypto/sodium_init.h"

#include <sodium.h>

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>

namespace quid::net {
namespace {

constexpr size_t kVersionBytes = 2;
constexpr size_t kEphemeralBytes = crypto_scalarmult_BYTES;
constexpr size_t kRandomBytes = 32;
constexpr size_t kMessage1Bytes = kVersionBytes + kEphemeralBytes + kRandomBytes;       // 66
constexpr size_t kMessage2Bytes = kEphemeralBytes + kPublicKeyBytes + kSignatureBytes;  // 128
constexpr size_t kMessage3Bytes = kPublicKeyBytes + kSignatureBytes;                    // 96
static_assert(kEphemeralBytes == crypto_kx_PUBLICKEYBYTES &&
              crypto_kx_SECRETKEYBYTES == crypto_scalarmult_SCALARBYTES);

constexpr size_t kHashBytes = crypto_generichash_BYTES_MAX;  // 64
constexpr size_t kSharedBytes = crypto_scalarmult_BYTES;     // 32
static_assert(kSharedBytes >= crypto_generichash_KEYBYTES_MIN &&
              kSharedBytes <= crypto_generichash_KEYBYTES_MAX);

// Domain separation: the transcript starts with the protocol's name, and every value
// derived from the shared secret has its own label, so no output can stand in for another
// (a signature made as responder is useless as an initiator's, a send key is never the
// same direction's receive key).
constexpr std::string_view kPrologue = "quid secure channel v1";
constexpr std::string_view kLabelSignResponder = "quid v1 signature responder";
constexpr std::string_view kLabelSignInitiator = "quid v1 signature initiator";
constexpr std::string_view kLabelKeyInitiatorToResponder = "quid v1 key initiator->responder";
constexpr std::string_view kLabelKeyResponderToInitiator = "quid v1 key responder->initiator";
constexpr std::string_view kLabelChannelBinding = "quid v1 channel binding";

using Key32 = std::array<uint8_t, 32>;
using Hash = std::array<uint8_t, kHashBytes>;

// BLAKE2b keyed with the X25519 shared secret over label || transcript hash.
void DeriveFromShared(const Key32& shared, std::string_view label, const Hash& transcript,
                      MutableByteSpan out) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, shared.data(), shared.size(), out.size());
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  crypto_generichash_update(&state, transcript.data(), transcript.size());
  crypto_generichash_final(&state, out.data(), out.size());
  sodium_memzero(&state, sizeof(state));
}

template <size_t N>
std::array<uint8_t, N> Slice(ByteSpan message, size_t offset) {
  std::array<uint8_t, N> out{};
  std::memcpy(out.data(), message.data() + offset, N);
  return out;
}

std::string MessageName(size_t size) {
  switch (size) {
    case kMessage1Bytes:
      return "message 1";
    case kMessage2Bytes:
      return "message 2";
    case kMessage3Bytes:
      return "message 3";
    default:
      return "a message of " + std::to_string(size) + " bytes";
  }
}

}  // namespace

struct Handshake::State {
  enum class Role { kInitiator, kResponder };
  enum class Step { kStart, kAwaitMessage1, kAwaitMessage2, kAwaitMessage3, kDone, kFailed };

  State(Role r, const NodeIdentity& id) : role(r), self(id) {
    crypto_generichash_init(&transcript, nullptr, 0, kHashBytes);
    Absorb(AsBytes(kPrologue));
  }
  ~State() { Wipe(); }  // session keys included: FrameCipher holds its own copy
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  void Absorb(ByteSpan bytes) {
    crypto_generichash_update(&transcript, bytes.data(), bytes.size());
  }
  // The hash of everything absorbed so far; the running hash goes on.
  Hash TranscriptHash() const {
    crypto_generichash_state copy = transcript;
    Hash out{};
    crypto_generichash_final(&copy, out.data(), out.size());
    sodium_memzero(&copy, sizeof(copy));
    return out;
  }
  // The bytes a side signs: the transcript so far, hashed under a key only the two ends of
  // this exchange hold. Binding the shared secret in means a signature is worthless outside
  // the session it was made for, so a third party who relays a peer's messages cannot
  // re-sign message 3 under its own key and be taken for that peer (identity misbinding).
  Hash SignedDigest(std::string_view label) const {
    Hash digest{};
    DeriveFromShared(shared, label, TranscriptHash(), digest);
    return digest;
  }
  // X25519 with the peer's ephemeral key; the ephemeral secret is wiped whatever happens.
  Status Agree(const Key32& peer_ephemeral) {
    int rc = crypto_scalarmult(shared.data(), ephemeral_secret.data(), peer_ephemeral.data());
    sodium_memzero(ephemeral_secret.data(), ephemeral_secret.size());
    // libsodium refuses a low-order point (all-zero result): the peer would fix the key.
    if (rc != 0) return Status::Corrupt("handshake: the peer's ephemeral key is a weak point");
    return Status::Ok();
  }
  // Session keys over the whole transcript (all three messages); then nothing secret from
  // the exchange remains but the keys themselves.
  void DeriveSessionKeys() {
    Hash full = TranscriptHash();
    Key32 to_responder{}, to_initiator{};
    DeriveFromShared(shared, kLabelKeyInitiatorToResponder, full, to_responder);
    DeriveFromShared(shared, kLabelKeyResponderToInitiator, full, to_initiator);
    DeriveFromShared(shared, kLabelChannelBinding, full, keys.binding);
    keys.send = role == Role::kInitiator ? to_responder : to_initiator;
    keys.receive = role == Role::kInitiator ? to_initiator : to_responder;
    sodium_memzero(to_responder.data(), to_responder.size());
    sodium_memzero(to_initiator.data(), to_initiator.size());
    sodium_memzero(shared.data(), shared.size());
  }
  void Wipe() {
    sodium_memzero(ephemeral_secret.data(), ephemeral_secret.size());
    sodium_memzero(shared.data(), shared.size());
    sodium_memzero(&transcript, sizeof(transcript));
    sodium_memzero(&keys, sizeof(keys));
  }
  void Fail() {
    step = Step::kFailed;
    Wipe();
  }

  Result<Bytes> ReceiveMessage1(ByteSpan message);
  Result<Bytes> ReceiveMessage2(ByteSpan message);
  Result<Bytes> ReceiveMessage3(ByteSpan message);

  Role role;
  Step step = Step::kStart;
  NodeIdentity self;
  std::optional<PublicKey> pinned;  // initiator
  PeerPolicy accept;                // responder
  crypto_generichash_state transcript;
  Key32 ephemeral_public{};
  Key32 ephemeral_secret{};
  Key32 shared{};
  PublicKey peer{};
  SessionKeys keys;
};

namespace {

// A message's length tells which of the three it is. One of the wrong kind is an order
// error (kInvalid); any other length is malformed (kCorrupt).
Status CheckLength(ByteSpan message, size_t expected, const char* what) {
  if (message.size() == expected) return Status::Ok();
  size_t size = message.size();
  if (size == kMessage1Bytes || size == kMessage2Bytes || size == kMessage3Bytes) {
    return Status::Invalid("handshake: expected " + std::string(what) + ", got " +
                           MessageName(size) + " (out of order)");
  }
  return Status::Corrupt("handshake: " + std::string(what) + " must be " +
                         std::to_string(expected) + " bytes, got " + std::to_string(size));
}

}  // namespace

// Responder: message 1 in, message 2 out.
Result<Bytes> Handshake::State::ReceiveMessage1(ByteSpan message) {
  // The version comes first so that a newer peer, whose message 1 may be longer, hears
  // "version" rather than "malformed".
  if (message.size() >= kVersionBytes && message.size() != kMessage2Bytes &&
      message.size() != kMessage3Bytes) {
    uint16_t version = static_cast<uint16_t>(message[0] << 8 | message[1]);
    if (version != kProtocolVersion) {
      return Status::Invalid("handshake: peer speaks protocol version " + std::to_string(version) +
                             ", this node " + std::to_string(kProtocolVersion));
    }
  }
  QUID_RETURN_IF_ERROR(CheckLength(message, kMessage1Bytes, "message 1"));
  Absorb(message);
  crypto_kx_keypair(ephemeral_public.data(), ephemeral_secret.data());
  QUID_RETURN_IF_ERROR(Agree(Slice<kEphemeralBytes>(message, kVersionBytes)));

  Bytes reply;
  reply.reserve(kMessage2Bytes);
  reply.insert(reply.end(), ephemeral_public.begin(), ephemeral_public.end());
  reply.insert(reply.end(), self.public_key().begin(), self.public_key().end());
  Absorb(reply);
  Hash digest = SignedDigest(kLabelSignResponder);
  Signature signature = self.Sign(digest);
  Absorb(signature);
  reply.insert(reply.end(), signature.begin(), signature.end());
  step = Step::kAwaitMessage3;
  return reply;
}

// Initiator: message 2 in, message 3 out; done.
Result<Bytes> Handshake::State::ReceiveMessage2(ByteSpan message) {
  QUID_RETURN_IF_ERROR(CheckLength(message, kMessage2Bytes, "message 2"));
  QUID_RETURN_IF_ERROR(Agree(Slice<kEphemeralBytes>(message, 0)));
  PublicKey responder = Slice<kPublicKeyBytes>(message, kEphemeralBytes);
  Signature signature = Slice<kSignatureBytes>(message, kEphemeralBytes + kPublicKeyBytes);
  Absorb(message.first(kEphemeralBytes + kPublicKeyBytes));
  // Signature before policy: a refusal then names a key the peer proved it holds.
  if (!VerifySignature(responder, SignedDigest(kLabelSignResponder), signature)) {
    return Status::Corrupt("handshake: the responder's signature does not verify");
  }
  if (pinned && sodium_memcmp(pinned->data(), responder.data(), responder.size()) != 0) {
    return Status(Code::kPermission, "handshake: the host's key " + Fingerprint(responder) +
                                         " is not the pinned key " + Fingerprint(*pinned));
  }
  Absorb(signature);
  peer = responder;

  Bytes reply;
  reply.reserve(kMessage3Bytes);
  reply.insert(reply.end(), self.public_key().begin(), self.public_key().end());
  Absorb(reply);
  Signature own = self.Sign(SignedDigest(kLabelSignInitiator));
  Absorb(own);
  reply.insert(reply.end(), own.begin(), own.end());
  DeriveSessionKeys();
  step = Step::kDone;
  return reply;
}

// Responder: message 3 in, nothing out; done.
Result<Bytes> Handshake::State::ReceiveMessage3(ByteSpan message) {
  QUID_RETURN_IF_ERROR(CheckLength(message, kMessage3Bytes, "message 3"));
  PublicKey initiator = Slice<kPublicKeyBytes>(message, 0);
  Signature signature = Slice<kSignatureBytes>(message, kPublicKeyBytes);
  Absorb(message.first(kPublicKeyBytes));
  if (!VerifySignature(initiator, SignedDigest(kLabelSignInitiator), signature)) {
    return Status::Corrupt("handshake: the initiator's signature does not verify");
  }
  if (!accept) {
    return Status(Code::kPermission,
                  "handshake: no peer policy; refusing " + Fingerprint(initiator));
  }
  QUID_RETURN_IF_ERROR(accept(initiator));
  Absorb(signature);
  peer = initiator;
  DeriveSessionKeys();
  step = Step::kDone;
  return Bytes{};
}

Handshake Handshake::Initiator(const NodeIdentity& self, std::optional<PublicKey> pinned_peer) {
  EnsureSodium();
  auto state = std::make_unique<State>(State::Role::kInitiator, self);
  state->pinned = pinned_peer;
  return Handshake(std::move(state));
}

Handshake Handshake::Responder(const NodeIdentity& self, PeerPolicy accept) {
  EnsureSodium();
  auto state = std::make_unique<State>(State::Role::kResponder, self);
  state->accept = std::move(accept);
  state->step = State::Step::kAwaitMessage1;
  return Handshake(std::move(state));
}

Handshake::Handshake(std::unique_ptr<State> state) : state_(std::move(state)) {}
Handshake::Handshake(Handshake&&) noexcept = default;
Handshake& Handshake::operator=(Handshake&&) noexcept = default;
Handshake::~Handshake() = default;

Result<Bytes> Handshake::Start() {
  State& s = *state_;
  if (s.role != State::Role::kInitiator || s.step != State::Step::kStart) {
    s.Fail();
    return Status::Invalid("handshake: Start() is for an initiator that has not started");
  }
  Bytes message(kMessage1Bytes);
  message[0] = static_cast<uint8_t>(kProtocolVersion >> 8);
  message[1] = static_cast<uint8_t>(kProtocolVersion & 0xff);
  crypto_kx_keypair(s.ephemeral_public.data(), s.ephemeral_secret.data());
  std::memcpy(message.data() + kVersionBytes, s.ephemeral_public.data(), kEphemeralBytes);
  // The random bytes make message 1, and so the transcript, unique even if an ephemeral
  // key ever repeated.
  randombytes_buf(message.data() + kVersionBytes + kEphemeralBytes, kRandomBytes);
  s.Absorb(message);
  s.step = State::Step::kAwaitMessage2;
  return message;
}

Result<Bytes> Handshake::Receive(ByteSpan message) {
  State& s = *state_;
  Result<Bytes> reply = Status::Invalid("handshake: no message is expected now");
  switch (s.step) {
    case State::Step::kAwaitMessage1:
      reply = s.ReceiveMessage1(message);
      break;
    case State::Step::kAwaitMessage2:
      reply = s.ReceiveMessage2(message);
      break;
    case State::Step::kAwaitMessage3:
      reply = s.ReceiveMessage3(message);
      break;
    case State::Step::kStart:
      reply = Status::Invalid("handshake: the initiator must Start() before receiving");
      break;
    case State::Step::kDone:
      reply = Status::Invalid("handshake: already complete");
      break;
    case State::Step::kFailed:
      reply = Status::Invalid("handshake: failed earlier");
      break;
  }
  if (!reply.ok()) s.Fail();
  return reply;
}

bool Handshake::done() const {
  return state_ && state_->step == State::Step::kDone;
}

const PublicKey& Handshake::peer() const {
  assert(done());
  return state_->peer;
}

const SessionKeys& Handshake::keys() const {
  assert(done());
  return state_->keys;
}

namespace {

// The 96-bit IETF nonce: the 64-bit frame counter, little endian, then zeros. Each
// direction has its own key, so (key, counter) never repeats within or across sessions.
std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> CounterNonce(uint64_t n) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> nonce{};
  for (size_t i = 0; i < 8; ++i) nonce[i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

static_assert(kFrameTagBytes == crypto_aead_chacha20poly1305_ietf_ABYTES);

}  // namespace

FrameCipher::FrameCipher(const SessionKeys& keys) : keys_(keys) {
  EnsureSodium();
}

FrameCipher::~FrameCipher() {
  sodium_memzero(&keys_, sizeof(keys_));
}

void FrameCipher::Seal(ByteSpan plain, MutableByteSpan frame, size_t head_bytes) {
  // Violating these would write out of bounds or reuse a nonce: there is no safe way on.
  if (frame.size() != plain.size() + kFrameOverheadBytes) std::abort();
  if (head_bytes > plain.size() || head_bytes > std::numeric_limits<uint32_t>::max()) std::abort();
  if (send_counter_ == std::numeric_limits<uint64_t>::max()) std::abort();
  // libsodium encrypts in place only when the spans start together; any other overlap is
  // first moved into place.
  if (plain.data() != frame.data() && plain.size() > 0) {
    std::memmove(frame.data(), plain.data(), plain.size());
  }
  uint8_t* length = frame.data() + plain.size();
  for (size_t i = 0; i < 4; ++i) length[i] = static_cast<uint8_t>(head_bytes >> (8 * i));
  uint8_t* tag = length + 4;
  auto nonce = CounterNonce(send_counter_);
  // Associated data: the tail and the length, contiguous between the head and the tag.
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      frame.data(), tag, nullptr, frame.data(), head_bytes, frame.data() + head_bytes,
      plain.size() - head_bytes + 4, nullptr, nonce.data(), keys_.send.data());
  ++send_counter_;
}

Status FrameCipher::Open(ByteSpan frame, MutableByteSpan plain, size_t* head_bytes_out) {
  if (frame.size() < kFrameOverheadBytes) {
    return Status::Corrupt("frame of " + std::to_string(frame.size()) +
                           " bytes is shorter than its length and tag");
  }
  const size_t length = frame.size() - kFrameOverheadBytes;
  if (plain.size() != length) {
    return Status::Invalid("frame plaintext buffer has the wrong size");
  }
  if (receive_counter_ == std::numeric_limits<uint64_t>::max()) {
    return Status::Corrupt("frame counter exhausted");
  }
  size_t head_bytes = 0;
  for (size_t i = 0; i < 4; ++i) head_bytes |= size_t{frame[length + i]} << (8 * i);
  // A length past the frame is a forgery (an honest one could not authenticate anyway).
  if (head_bytes > length) {
    return Status::Corrupt("frame " + std::to_string(receive_counter_) +
                           " failed authentication (its encrypted length is past its end)");
  }
  // The tag is checked before any byte of `plain` is written, so what `plain` overlaps
  // survives a failed open. Partial overlaps go through a copy.
  Bytes moved;
  const uint8_t* sealed = frame.data();
  if (plain.data() != frame.data() && length > 0 && plain.data() < frame.data() + frame.size() &&
      frame.data() < plain.data() + length) {
    moved.assign(frame.begin(), frame.end());
    sealed = moved.data();
  }
  auto nonce = CounterNonce(receive_counter_);
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          plain.data(), nullptr, sealed, head_bytes, sealed + length + 4, sealed + head_bytes,
          length - head_bytes + 4, nonce.data(), keys_.receive.data()) != 0) {
    return Status::Corrupt("frame " + std::to_string(receive_counter_) +
                           " failed authentication (forged, altered, replayed, reordered "
                           "or truncated)");
  }
  // The tail, authenticated above, is the plaintext as it is.
  if (plain.data() != sealed && length > head_bytes)
    std::memmove(plain.data() + head_bytes, sealed + head_bytes, length - head_bytes);
  if (head_bytes_out != nullptr) *head_bytes_out = head_bytes;
  ++receive_counter_;
  return Status::Ok();
}

}  // namespace quid::net
