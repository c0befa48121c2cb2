// The secure channel: mutual authentication of two node keys, forward-secret session
// keys, then every frame sealed with AEAD under a counter.
//
// Handshake (three messages, SIGMA-style, all from libsodium):
//   1  I -> R  version (2, big endian) | I's ephemeral X25519 key | 32 random bytes  (66)
//   2  R -> I  R's ephemeral X25519 key | R's Ed25519 key | sig_R(transcript so far) (128)
//   3  I -> R  I's Ed25519 key | sig_I(transcript so far)                            (96)
// The transcript is BLAKE2b over every byte sent; each signature covers it, so both
// sides agree on every ephemeral key and identity. What is signed is the transcript hash
// keyed by the X25519 shared secret (with a label per role), so a signature is bound to
// its session and no relay can re-sign a peer's message 3 as its own. Session keys:
// BLAKE2b keyed by the X25519 shared secret over the whole transcript, one key per
// direction (distinct labels). The ephemeral secrets are wiped as soon as the shared
// secret is computed, and the shared secret once keys are derived (forward secrecy).
//
// Frames: each sealed frame is ChaCha20-Poly1305-IETF under the direction's key with the
// nonce = frame counter (64-bit little endian, zero padded), no associated data, the tag
// appended; the receiver expects counters in order, so a replayed, reordered, dropped or
// truncated frame fails to open: the connection is then closed. Pure computation over
// bytes: no sockets here.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "net/identity.h"
#include "storage/base/bytes.h"
#include "storage/base/status.h"

namespace quid::net {

// 2: frames carry their encrypted length and leave a tail authenticated only (FrameCipher).
constexpr uint16_t kProtocolVersion = 2;
constexpr size_t kFrameTagBytes = 16;
// What sealing adds to a frame's plaintext: the encrypted head's length, and the tag.
constexpr size_t kFrameOverheadBytes = 4 + kFrameTagBytes;

// Who a side accepts as its peer. An initiator normally pins the host's key; with no
// pinned key it accepts any (trust on first use, for `quid init --peer`) and reports it.
// A responder decides through a callback (the host's tenant list); an empty one refuses all.
using PeerPolicy = std::function<Status(const PublicKey& peer)>;

struct SessionKeys {
  std::array<uint8_t, 32> send{};
  std::array<uint8_t, 32> receive{};
  // The same on both ends of this session and on no other: a value to bind a proof into
  // (an invitation's, net/invitation.h), so the proof is worthless on any other channel.
  // Not secret from the two ends, and no key: derived under its own label.
  std::array<uint8_t, 32> binding{};
};

class Handshake {
 public:
  static Handshake Initiator(const NodeIdentity& self, std::optional<PublicKey> pinned_peer);
  static Handshake Responder(const NodeIdentity& self, PeerPolicy accept);

  // Initiator only: message 1.
  Result<Bytes> Start();
  // Feeds the peer's next handshake message; returns the reply to send (empty when none
  // is due). kCorrupt on malformed input or a signature that does not verify,
  // kPermission when the peer is refused (pinned key mismatch, both fingerprints in the
  // message; or the PeerPolicy's own status), kInvalid on a version or order mismatch.
  // After an error the handshake is dead: every later call fails with kInvalid.
  Result<Bytes> Receive(ByteSpan message);

  bool done() const;
  // REQUIRES: done().
  const PublicKey& peer() const;
  const SessionKeys& keys() const;

  Handshake(Handshake&&) noexcept;
  Handshake& operator=(Handshake&&) noexcept;
  ~Handshake();

 private:
  struct State;
  explicit Handshake(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Seals outgoing frames and opens incoming ones for one established session.
// Not thread-safe: one sender and one receiver side each owned by one thread.
class FrameCipher {
 public:
  explicit FrameCipher(const SessionKeys& keys);
  ~FrameCipher();

  // Seals `plain` = head | tail into `frame` = encrypted head | tail | head length (4,
  // little endian) | tag: ChaCha20-Poly1305 encrypts the first `head_bytes` and
  // authenticates everything (the tail and the length as associated data). The tail is for
  // bytes that are ciphertext already: shard payloads, sealed by the chunk's own AEAD
  // (keyed by the volume, bound to the chunk id and segment), which the host stores and
  // serves as they are. Sending them encrypted again would hide nothing from an
  // eavesdropper that the host does not see anyway, and cost a cipher pass on both ends;
  // authenticating them keeps every frame tamper-evident. REQUIRES: frame.size() ==
  // plain.size() + kFrameOverheadBytes and head_bytes <= plain.size() (aborts otherwise).
  // `frame` may alias `plain` when it has room at the end.
  void Seal(ByteSpan plain, MutableByteSpan frame, size_t head_bytes);
  // All of `plain` encrypted.
  void Seal(ByteSpan plain, MutableByteSpan frame) { Seal(plain, frame, plain.size()); }
  // Opens `frame` into `plain` (frame.size() - kFrameOverheadBytes bytes): kCorrupt if the
  // frame was forged, altered, replayed, reordered or truncated, and then the receive
  // counter stays where it was and `plain` holds nothing of the frame. May alias. Sets
  // `head_bytes` (if given) to the length of the part that was encrypted.
  Status Open(ByteSpan frame, MutableByteSpan plain, size_t* head_bytes = nullptr);

 private:
  SessionKeys keys_;
  uint64_t send_counter_ = 0;
  uint64_t receive_counter_ = 0;
};

}  // namespace quid::net
