#include "net/wire.h"
#include "storage/base/byte_order.h"

#include <string>
#include <string_view>

namespace quid::net {
namespace {

// Wire codes are quid::Code's numeric values; kLastCode (status.h) is the last one. A code beyond
// it comes from a newer or broken peer and is reported as a plain I/O error.
constexpr int32_t kLastWireCode = static_cast<int32_t>(kLastCode);

// A drained FrameReader keeps its buffer up to this size for the next reads (small
// requests come often) and gives larger ones back.
constexpr size_t kKeepCapacityBytes = 256 * 1024;

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0 if there is none.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  auto continuation = [&](size_t k) { return k < s.size() && (byte(k) & 0xc0) == 0x80; };
  uint8_t b = byte(i);
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return continuation(i + 1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    if (!continuation(i + 1) || !continuation(i + 2)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xe0 && b1 < 0xa0) return 0;  // overlong
    if (b == 0xed && b1 > 0x9f) return 0;  // surrogate
    return 3;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (!continuation(i + 1) || !continuation(i + 2) || !continuation(i + 3)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xf0 && b1 < 0x90) return 0;  // overlong
    if (b == 0xf4 && b1 > 0x8f) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

// Response.message is a proto3 string, which the receiving side refuses to parse unless
// it is UTF-8; a message quoting a file name or a peer's bytes must not turn an error
// reply into a corrupt frame that closes the connection.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out.push_back('?');
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace

Result<Bytes> EncodeMessage(const google::protobuf::MessageLite& header, ByteSpan payload,
                            size_t tail_room) {
  size_t header_size = header.ByteSizeLong();
  if (header_size > kMaxHeaderBytes) {
    return Status::Invalid("message header of " + std::to_string(header_size) +
                           " bytes exceeds the maximum of " + std::to_string(kMaxHeaderBytes));
  }
  if (payload.size() > kMaxPayloadBytes) {
    return Status::Invalid("message payload of " + std::to_string(payload.size()) +
                           " bytes exceeds the maximum of " + std::to_string(kMaxPayloadBytes));
  }
  // One allocation for everything, and no zero-fill of the payload region: the payload
  // (up to a whole shard) is copied exactly once, straight into the frame.
  Bytes out;
  out.reserve(kFrameLengthBytes + header_size + payload.size() + tail_room);
  out.resize(kFrameLengthBytes + header_size);
  PutLittleEndian32(static_cast<uint32_t>(header_size), out.data());
  if (!header.SerializeToArray(out.data() + kFrameLengthBytes, static_cast<int>(header_size))) {
    return Status::Invalid("message header cannot be serialized");
  }
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(out.size() + tail_room);
  return out;
}

size_t MessageHeadBytes(ByteSpan plain) {
  if (plain.size() < kFrameLengthBytes) return plain.size();
  return std::min<size_t>(plain.size(), kFrameLengthBytes + GetLittleEndian32(plain.data()));
}

Status DecodeMessage(ByteSpan plain, google::protobuf::MessageLite* header, ByteSpan* payload) {
  if (plain.size() < kFrameLengthBytes) {
    return Status::Corrupt("message of " + std::to_string(plain.size()) +
                           " bytes is too short for its header length");
  }
  uint32_t header_size = GetLittleEndian32(plain.data());
  size_t rest = plain.size() - kFrameLengthBytes;
  if (header_size > kMaxHeaderBytes || header_size > rest) {
    return Status::Corrupt("message header length " + std::to_string(header_size) +
                           " is beyond the message (" + std::to_string(rest) + " bytes)");
  }
  if (rest - header_size > kMaxPayloadBytes) {
    return Status::Corrupt("message payload of " + std::to_string(rest - header_size) +
                           " bytes exceeds the maximum");
  }
  if (!header->ParseFromArray(plain.data() + kFrameLengthBytes, static_cast<int>(header_size))) {
    return Status::Corrupt("message header does not parse");
  }
  *payload = plain.subspan(kFrameLengthBytes + header_size);
  return Status::Ok();
}

// The buffer holds unread bytes from consumed_ on. A length prefix is checked before the
// body it announces is buffered. One exception, and why: the maximum changes between
// the handshake and the session (set_max_frame_bytes), and the peer may send the last
// handshake message and its first request in one segment. A frame that starts inside
// the data being appended, behind a frame not yet taken out, is therefore judged when it
// reaches the front (in Next) or at the next Append, whichever comes first, under the
// maximum in force then. So a bad prefix can hold at most the bytes of the one append
// that carried it; everything else is refused before it is buffered.
Status FrameReader::Append(ByteSpan data) {
  if (dead_) return Status::Corrupt("frame stream already failed");
  const size_t held = buffer_.size() - consumed_;
  const size_t total = held + data.size();
  auto byte_at = [&](size_t i) { return i < held ? buffer_[consumed_ + i] : data[i - held]; };

  size_t pos = 0;
  while (total - pos >= kFrameLengthBytes) {
    uint32_t length = uint32_t{byte_at(pos)} << 24 | uint32_t{byte_at(pos + 1)} << 16 |
                      uint32_t{byte_at(pos + 2)} << 8 | uint32_t{byte_at(pos + 3)};
    bool judge_now = pos == 0 || pos < held;
    if (judge_now && (length == 0 || length > max_frame_)) {
      dead_ = true;
      Bytes().swap(buffer_);
      consumed_ = 0;
      if (length == 0) return Status::Corrupt("empty frame");
      return Status::Corrupt("frame of " + std::to_string(length) +
                             " bytes exceeds the maximum of " + std::to_string(max_frame_));
    }
    if (length > total - pos - kFrameLengthBytes) break;
    pos += kFrameLengthBytes + length;
  }

  // Compact before growing, so the buffer never holds frames already taken out.
  if (consumed_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), data.begin(), data.end());
  return Status::Ok();
}

std::optional<Bytes> FrameReader::Next() {
  if (dead_) return std::nullopt;
  const size_t held = buffer_.size() - consumed_;
  if (held < kFrameLengthBytes) return std::nullopt;
  const uint8_t* p = buffer_.data() + consumed_;
  uint32_t length =
      uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
  if (length == 0 || length > max_frame_) {
    // A frame judged late (see Append): drop everything now rather than at the next read.
    dead_ = true;
    Bytes().swap(buffer_);
    consumed_ = 0;
    return std::nullopt;
  }
  if (length > held - kFrameLengthBytes) return std::nullopt;

  Bytes body;
  if (consumed_ == 0 && held == kFrameLengthBytes + length) {
    // The common case for large frames: the buffer is exactly this frame. Hand the
    // buffer itself over (shifting out the prefix in place) instead of allocating and
    // copying a shard-sized body.
    body.swap(buffer_);
    body.erase(body.begin(), body.begin() + kFrameLengthBytes);
    return body;
  }
  auto begin = buffer_.begin() + static_cast<ptrdiff_t>(consumed_ + kFrameLengthBytes);
  body.assign(begin, begin + length);
  consumed_ += kFrameLengthBytes + length;
  if (consumed_ == buffer_.size()) {
    // Drained: an idle connection should not keep a shard-sized buffer alive.
    if (buffer_.capacity() > kKeepCapacityBytes) {
      Bytes().swap(buffer_);
    } else {
      buffer_.clear();
    }
    consumed_ = 0;
  }
  return body;
}

Bytes WithLengthPrefix(ByteSpan body) {
  Bytes out;
  out.reserve(kFrameLengthBytes + body.size());
  out.resize(kFrameLengthBytes);
  PutBigEndian32(static_cast<uint32_t>(body.size()), out.data());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Status StatusFromResponse(const wire::Response& response) {
  int32_t code = response.code();
  if (code == 0) return Status::Ok();
  if (code < 0 || code > kLastWireCode) {
    return Status::IoError("peer sent unknown status code " + std::to_string(code) + ": " +
                           response.message());
  }
  return Status(static_cast<Code>(code), response.message());
}

void SetStatus(wire::Response* response, const Status& status) {
  response->set_code(static_cast<int32_t>(status.code()));
  if (status.ok()) {
    response->clear_message();
  } else {
    response->set_message(ValidUtf8(status.message()));
  }
}

}  // namespace quid::net
