// Fuzz target: the handshake decoder. Each input goes
//   - as message 1 to a fresh responder,
//   - as message 2 to a fresh initiator after Start(),
//   - as message 3 to a responder that has accepted a real message 1.
// Every path must end in a Status, never a crash; and since no input can carry a valid
// signature for a session it has never seen, messages 2 and 3 must never be accepted.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/secure_channel.h"

namespace {

using quid::Bytes;
using quid::ByteSpan;
using quid::Result;
using quid::Status;
using quid::net::Handshake;
using quid::net::NodeIdentity;
using quid::net::PublicKey;

constexpr size_t kMessage2Bytes = 128;
constexpr size_t kMessage3Bytes = 96;

// Generated once: identities cost a key pair each, and the decoder never depends on them.
const NodeIdentity& Tenant() {
  static const NodeIdentity id = NodeIdentity::Generate();
  return id;
}
const NodeIdentity& Host() {
  static const NodeIdentity id = NodeIdentity::Generate();
  return id;
}
Status AcceptAll(const PublicKey&) {
  return Status::Ok();
}

void AsMessage1(ByteSpan input) {
  Handshake responder = Handshake::Responder(Host(), AcceptAll);
  Result<Bytes> reply = responder.Receive(input);
  if (reply.ok() && (reply->size() != kMessage2Bytes || responder.done())) std::abort();
  // Whatever happened, a second message 1 is out of order.
  if (responder.Receive(input).ok()) std::abort();
}

void AsMessage2(ByteSpan input) {
  Handshake initiator = Handshake::Initiator(Tenant(), std::nullopt);
  if (!initiator.Start().ok()) std::abort();
  if (initiator.Receive(input).ok() || initiator.done()) std::abort();
}

void AsMessage3(ByteSpan input) {
  Handshake initiator = Handshake::Initiator(Tenant(), Host().public_key());
  Handshake responder = Handshake::Responder(Host(), AcceptAll);
  Result<Bytes> m1 = initiator.Start();
  if (!m1.ok()) std::abort();
  if (!responder.Receive(*m1).ok()) std::abort();
  if (responder.Receive(input).ok() || responder.done()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteSpan input(data, size);
  AsMessage1(input);
  AsMessage2(input);
  // Reaching message 3 costs a real message 1 and 2 (key pairs, X25519, a signature);
  // any other length stops at the same length check the two paths above exercise.
  if (size == kMessage3Bytes) AsMessage3(input);
  return 0;
}
