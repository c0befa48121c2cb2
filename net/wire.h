// Framing and message coding for the host protocol.
//
// On the socket, every frame is: length (4 bytes, big endian) | body. During the
// handshake the body is a raw handshake message (at most kMaxHandshakeBytes); after it,
// the body is a sealed frame (secure_channel.h) whose plaintext is
//   header length (4, little endian) | protobuf header | payload.
// Lengths are checked before any allocation: a frame over kMaxFrameBytes closes the
// connection, so a peer cannot make us buffer without limit.
#pragma once

#include <google/protobuf/message_lite.h>

#include <optional>

#include "net/wire.pb.h"
#include "storage/base/bytes.h"
#include "storage/base/status.h"

namespace quid::net {

constexpr size_t kFrameLengthBytes = 4;
constexpr size_t kMaxHandshakeBytes = 1024;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxPayloadBytes = 16u << 20;  // one shard (a 64 MiB chunk at k=4)
constexpr size_t kMaxFrameBytes = kMaxPayloadBytes + kMaxHeaderBytes + 64;

// Builds a frame plaintext: header length | header | payload, with `tail_room` spare
// bytes at the end so it can be sealed in place (the AEAD tag).
Result<Bytes> EncodeMessage(const google::protobuf::MessageLite& header, ByteSpan payload,
                            size_t tail_room);
// The bytes of a frame plaintext before its payload (header length and header): what the
// channel encrypts; the payload (shard bytes, ciphertext already) it only authenticates
// (FrameCipher::Seal). At most plain.size().
size_t MessageHeadBytes(ByteSpan plain);
// Splits a frame plaintext into its header (parsed into `header`) and payload (a view
// into `plain`). kCorrupt on a bad length or unparsable header.
Status DecodeMessage(ByteSpan plain, google::protobuf::MessageLite* header, ByteSpan* payload);

// Reassembles frames from a byte stream. Feed what the socket delivered; take complete
// frame bodies out. Memory held is at most one frame plus one read.
class FrameReader {
 public:
  explicit FrameReader(size_t max_frame_bytes) : max_frame_(max_frame_bytes) {}
  // Appends received bytes. kCorrupt (and the reader is dead) when a length prefix
  // exceeds the maximum or is zero. A frame that starts behind one not yet taken out is
  // judged when it reaches the front, under the maximum in force then (the handshake
  // and the session have different maxima and may share a read).
  Status Append(ByteSpan data);
  // The next complete frame body, if one is buffered. nullopt also when the front frame
  // turned out to be too large: check failed().
  std::optional<Bytes> Next();
  void set_max_frame_bytes(size_t n) { max_frame_ = n; }
  // True once a bad length prefix was seen; the connection should be closed.
  bool failed() const { return dead_; }
  // Bytes held and not yet taken out (what a peer currently makes us keep).
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  size_t max_frame_;
  Bytes buffer_;
  size_t consumed_ = 0;
  bool dead_ = false;
};

// Prepends the 4-byte big-endian length to a frame body.
Bytes WithLengthPrefix(ByteSpan body);

// quid::Code <-> wire code, and a Status from a Response.
Status StatusFromResponse(const wire::Response& response);
void SetStatus(wire::Response* response, const Status& status);

}  // namespace quid::net
