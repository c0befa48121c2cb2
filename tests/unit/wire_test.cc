// Message coding and framing: what the host and the tenant put on the wire, and how a
// byte stream from an untrusted peer is cut back into frames without unbounded memory.
#include "net/wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/erasure/checksum.h"

namespace quid::net {
namespace {

Bytes Pattern(size_t size, uint32_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 131 + seed * 7 + 3);
  return b;
}

wire::Request PutRequest(uint64_t id, ByteSpan payload) {
  wire::Request request;
  request.set_id(id);
  request.mutable_put()->set_shard_id(std::string(16, '\x5a'));
  request.mutable_put()->set_crc32c(Crc32c(payload));
  return request;
}

Bytes Frame(size_t body_size, uint32_t seed) {
  return WithLengthPrefix(Pattern(body_size, seed));
}

// Everything the reader hands out, in order.
std::vector<Bytes> Drain(FrameReader& reader) {
  std::vector<Bytes> out;
  while (std::optional<Bytes> frame = reader.Next()) out.push_back(std::move(*frame));
  return out;
}

TEST(WireMessage, RoundTripsHeaderAndPayload) {
  Bytes payload = Pattern(5000, 1);
  wire::Request request = PutRequest(42, payload);
  Result<Bytes> plain = EncodeMessage(request, payload, 16);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->size(), 4 + request.ByteSizeLong() + payload.size() + 16);

  wire::Request decoded;
  ByteSpan got;
  ByteSpan without_tail(plain->data(), plain->size() - 16);
  ASSERT_TRUE(DecodeMessage(without_tail, &decoded, &got).ok());
  EXPECT_EQ(decoded.id(), 42u);
  EXPECT_EQ(decoded.put().shard_id(), request.put().shard_id());
  EXPECT_EQ(decoded.put().crc32c(), Crc32c(payload));
  EXPECT_EQ(Bytes(got.begin(), got.end()), payload);
  // The payload is a view into the frame, not a copy.
  EXPECT_EQ(got.data(), without_tail.data() + 4 + request.ByteSizeLong());
}

TEST(WireMessage, RoundTripsHeaderWithoutPayload) {
  wire::Response response;
  response.set_id(7);
  response.mutable_usage()->set_used_bytes(123);
  Result<Bytes> plain = EncodeMessage(response, {}, 0);
  ASSERT_TRUE(plain.ok());
  wire::Response decoded;
  ByteSpan payload;
  ASSERT_TRUE(DecodeMessage(*plain, &decoded, &payload).ok());
  EXPECT_EQ(decoded.id(), 7u);
  EXPECT_EQ(decoded.usage().used_bytes(), 123u);
  EXPECT_TRUE(payload.empty());

  // An empty header is a valid (empty) message too.
  wire::Request empty;
  Result<Bytes> bare = EncodeMessage(empty, {}, 0);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->size(), 4u);
  wire::Request decoded_empty;
  ASSERT_TRUE(DecodeMessage(*bare, &decoded_empty, &payload).ok());
  EXPECT_EQ(decoded_empty.op_case(), wire::Request::OP_NOT_SET);
}

TEST(WireMessage, EncodeRefusesOversizedHeaderOrPayload) {
  wire::Response big_header;
  big_header.set_message(std::string(kMaxHeaderBytes + 1, 'x'));
  Result<Bytes> a = EncodeMessage(big_header, {}, 0);
  EXPECT_EQ(a.status().code(), Code::kInvalid);

  wire::Request small;
  Bytes huge(kMaxPayloadBytes + 1);
  Result<Bytes> b = EncodeMessage(small, huge, 0);
  EXPECT_EQ(b.status().code(), Code::kInvalid);

  Bytes max(kMaxPayloadBytes);
  EXPECT_TRUE(EncodeMessage(small, max, 16).ok());
}

TEST(WireMessage, EveryTruncationFailsCleanly) {
  Bytes payload = Pattern(300, 2);
  wire::Request request = PutRequest(9, payload);
  Result<Bytes> plain = EncodeMessage(request, payload, 0);
  ASSERT_TRUE(plain.ok());
  const size_t header_end = 4 + request.ByteSizeLong();
  for (size_t n = 0; n < plain->size(); ++n) {
    // A copy of exactly n bytes, so AddressSanitizer sees any read past the end.
    Bytes cut(plain->begin(), plain->begin() + static_cast<ptrdiff_t>(n));
    wire::Request decoded;
    ByteSpan got;
    Status s = DecodeMessage(cut, &decoded, &got);
    if (n < header_end) {
      EXPECT_EQ(s.code(), Code::kCorrupt) << "cut at " << n;
    } else {
      // Only the frame length (and the AEAD) know where the payload ends; a cut payload
      // is a shorter payload here, never bytes from outside the buffer.
      ASSERT_TRUE(s.ok()) << "cut at " << n;
      EXPECT_EQ(got.size(), n - header_end);
    }
  }
}

TEST(WireMessage, DecodeRefusesBadHeaderLengthAndGarbage) {
  wire::Request decoded;
  ByteSpan payload;
  // Header length beyond the buffer.
  Bytes beyond = {10, 0, 0, 0, 1, 2, 3};
  EXPECT_EQ(DecodeMessage(beyond, &decoded, &payload).code(), Code::kCorrupt);
  // Header length beyond the maximum, even though the buffer would hold it.
  Bytes over(4 + kMaxHeaderBytes + 1, 0);
  uint32_t n = kMaxHeaderBytes + 1;
  over[0] = static_cast<uint8_t>(n);
  over[1] = static_cast<uint8_t>(n >> 8);
  over[2] = static_cast<uint8_t>(n >> 16);
  EXPECT_EQ(DecodeMessage(over, &decoded, &payload).code(), Code::kCorrupt);
  // A header that is not a protobuf message (a field with wire type 7).
  Bytes garbage = {3, 0, 0, 0, 0x0f, 0xff, 0xff};
  EXPECT_EQ(DecodeMessage(garbage, &decoded, &payload).code(), Code::kCorrupt);
  // Every length prefix of 0xffffffff style.
  Bytes all_ones = {0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(DecodeMessage(all_ones, &decoded, &payload).code(), Code::kCorrupt);
}

TEST(FrameReader, ReassemblesFramesSplitAtEveryByte) {
  std::vector<Bytes> bodies = {Pattern(1, 1), Pattern(300, 2), Pattern(17, 3)};
  Bytes stream;
  for (const Bytes& b : bodies) {
    Bytes f = WithLengthPrefix(b);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  for (size_t split = 0; split <= stream.size(); ++split) {
    FrameReader reader(1024);
    std::vector<Bytes> got;
    ASSERT_TRUE(reader.Append(ByteSpan(stream.data(), split)).ok());
    for (Bytes& b : Drain(reader)) got.push_back(std::move(b));
    ASSERT_TRUE(reader.Append(ByteSpan(stream.data() + split, stream.size() - split)).ok());
    for (Bytes& b : Drain(reader)) got.push_back(std::move(b));
    EXPECT_EQ(got, bodies) << "split at " << split;
    EXPECT_EQ(reader.buffered_bytes(), 0u);
  }

  // One byte at a time.
  FrameReader reader(1024);
  std::vector<Bytes> got;
  for (uint8_t byte : stream) {
    ASSERT_TRUE(reader.Append(ByteSpan(&byte, 1)).ok());
    for (Bytes& b : Drain(reader)) got.push_back(std::move(b));
  }
  EXPECT_EQ(got, bodies);
}

TEST(FrameReader, ReturnsSeveralFramesFromOneAppend) {
  Bytes stream;
  std::vector<Bytes> bodies;
  for (uint32_t i = 1; i <= 10; ++i) {
    bodies.push_back(Pattern(i * 10, i));
    Bytes f = WithLengthPrefix(bodies.back());
    stream.insert(stream.end(), f.begin(), f.end());
  }
  // Plus half of one more.
  Bytes tail = Frame(100, 99);
  stream.insert(stream.end(), tail.begin(), tail.begin() + 50);
  FrameReader reader(1024);
  ASSERT_TRUE(reader.Append(stream).ok());
  EXPECT_EQ(Drain(reader), bodies);
  EXPECT_EQ(reader.buffered_bytes(), 50u);
  ASSERT_TRUE(reader.Append(ByteSpan(tail.data() + 50, tail.size() - 50)).ok());
  std::vector<Bytes> last = Drain(reader);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0], Pattern(100, 99));
}

TEST(FrameReader, RefusesOversizedLengthBeforeBuffering) {
  constexpr size_t kMax = 4096;
  FrameReader reader(kMax);
  // A prefix just over the maximum, with a body's worth of bytes behind it.
  Bytes stream = {0, 0, 0x10, 0x01};
  stream.resize(stream.size() + 10000, 0xab);
  Status s = reader.Append(stream);
  EXPECT_EQ(s.code(), Code::kCorrupt);
  EXPECT_TRUE(reader.failed());
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  EXPECT_FALSE(reader.Next().has_value());
  // The reader stays dead: nothing more is taken in.
  Bytes good = Frame(10, 1);
  EXPECT_EQ(reader.Append(good).code(), Code::kCorrupt);
  EXPECT_EQ(reader.buffered_bytes(), 0u);

  // The largest prefix a 32-bit field can carry, arriving alone.
  FrameReader huge(kMaxFrameBytes);
  Bytes ones = {0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(huge.Append(ones).code(), Code::kCorrupt);
  EXPECT_EQ(huge.buffered_bytes(), 0u);

  // A frame of exactly the maximum is fine.
  FrameReader exact(kMax);
  ASSERT_TRUE(exact.Append(Frame(kMax, 5)).ok());
  std::optional<Bytes> frame = exact.Next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(*frame, Pattern(kMax, 5));
}

TEST(FrameReader, RefusesEmptyFrame) {
  FrameReader reader(1024);
  Bytes zero = {0, 0, 0, 0};
  EXPECT_EQ(reader.Append(zero).code(), Code::kCorrupt);
  EXPECT_TRUE(reader.failed());
}

TEST(FrameReader, BuffersNoMoreThanTheFrameBeingRead) {
  constexpr size_t kBody = 1 << 20;
  FrameReader reader(kMaxFrameBytes);
  Bytes frame = Frame(kBody, 7);
  constexpr size_t kRead = 64 * 1024;
  for (size_t at = 0; at < frame.size(); at += kRead) {
    size_t n = std::min(kRead, frame.size() - at);
    ASSERT_TRUE(reader.Append(ByteSpan(frame.data() + at, n)).ok());
    EXPECT_LE(reader.buffered_bytes(), frame.size());
    if (at + n < frame.size()) {
      EXPECT_FALSE(reader.Next().has_value());
    }
  }
  std::optional<Bytes> body = reader.Next();
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(*body, Pattern(kBody, 7));
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

// The handshake and the session have different maxima, and the initiator's last
// handshake message and first request may arrive in one read: a frame behind one not
// yet taken out is judged under the maximum in force when it reaches the front.
TEST(FrameReader, JudgesAFrameUnderTheMaximumInForceWhenItIsReached) {
  Bytes handshake = Frame(100, 1);
  Bytes request = Frame(5000, 2);
  Bytes stream = handshake;
  stream.insert(stream.end(), request.begin(), request.begin() + 1000);

  FrameReader reader(kMaxHandshakeBytes);
  ASSERT_TRUE(reader.Append(stream).ok());
  std::optional<Bytes> first = reader.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, Pattern(100, 1));
  reader.set_max_frame_bytes(kMaxFrameBytes);
  ASSERT_TRUE(reader.Append(ByteSpan(request.data() + 1000, request.size() - 1000)).ok());
  std::optional<Bytes> second = reader.Next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, Pattern(5000, 2));

  // Without the raise, the same frame is refused as soon as it is reached, holding no
  // more than the one read that carried it.
  FrameReader strict(kMaxHandshakeBytes);
  ASSERT_TRUE(strict.Append(stream).ok());
  EXPECT_LE(strict.buffered_bytes(), stream.size());
  ASSERT_TRUE(strict.Next().has_value());
  EXPECT_FALSE(strict.Next().has_value());
  EXPECT_TRUE(strict.failed());
  EXPECT_EQ(strict.buffered_bytes(), 0u);

  // And if the caller appends again without reading, the next Append judges it.
  FrameReader lazy(kMaxHandshakeBytes);
  ASSERT_TRUE(lazy.Append(stream).ok());
  EXPECT_EQ(lazy.Append(ByteSpan(request.data() + 1000, 10)).code(), Code::kCorrupt);
  EXPECT_EQ(lazy.buffered_bytes(), 0u);
}

TEST(FrameReader, WithLengthPrefixWritesBigEndianLength) {
  Bytes f = WithLengthPrefix(Pattern(0x010203, 1));
  ASSERT_EQ(f.size(), 4u + 0x010203);
  EXPECT_EQ(f[0], 0x00);
  EXPECT_EQ(f[1], 0x01);
  EXPECT_EQ(f[2], 0x02);
  EXPECT_EQ(f[3], 0x03);
}

TEST(WireStatus, EveryCodeRoundTrips) {
  for (int c = 0; c <= static_cast<int>(kLastCode); ++c) {
    Code code = static_cast<Code>(c);
    Status original =
        code == Code::kOk ? Status::Ok() : Status(code, "reason " + std::to_string(c));
    wire::Response response;
    SetStatus(&response, original);
    Result<Bytes> plain = EncodeMessage(response, {}, 0);
    ASSERT_TRUE(plain.ok());
    wire::Response decoded;
    ByteSpan payload;
    ASSERT_TRUE(DecodeMessage(*plain, &decoded, &payload).ok());
    Status back = StatusFromResponse(decoded);
    EXPECT_EQ(back.code(), original.code());
    EXPECT_EQ(back.message(), original.message());
  }
}

// The receiver refuses a proto3 string that is not UTF-8, so an error message quoting
// odd bytes (a file name, a peer's input) must still make a frame the peer can read.
TEST(WireStatus, MessagesThatAreNotUtf8StillDecode) {
  const std::string bad[] = {std::string("name \xff\xfe here"), std::string("\xc0\xaf"),
                             std::string("\xed\xa0\x80"), std::string("cut \xe2\x82"),
                             std::string("\xf4\x90\x80\x80")};
  for (const std::string& message : bad) {
    wire::Response response;
    SetStatus(&response, Status::IoError(message));
    Result<Bytes> plain = EncodeMessage(response, {}, 0);
    ASSERT_TRUE(plain.ok());
    wire::Response decoded;
    ByteSpan payload;
    ASSERT_TRUE(DecodeMessage(*plain, &decoded, &payload).ok());
    Status back = StatusFromResponse(decoded);
    EXPECT_EQ(back.code(), Code::kIoError);
    EXPECT_EQ(back.message().size(), message.size());
  }
  // Well-formed UTF-8 passes unchanged.
  wire::Response response;
  const std::string good = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  SetStatus(&response, Status::IoError(good));
  EXPECT_EQ(response.message(), good);
}

TEST(WireStatus, UnknownCodeIsAnIoErrorThatKeepsTheMessage) {
  for (int32_t code : {-1, static_cast<int32_t>(kLastCode) + 1, 1 << 30}) {
    wire::Response response;
    response.set_code(code);
    response.set_message("from the future");
    Status s = StatusFromResponse(response);
    EXPECT_EQ(s.code(), Code::kIoError);
    EXPECT_NE(s.message().find("from the future"), std::string::npos);
    EXPECT_NE(s.message().find(std::to_string(code)), std::string::npos);
  }
}

}  // namespace
}  // namespace quid::net
