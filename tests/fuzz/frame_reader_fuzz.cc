// Fuzz target: FrameReader, the first code that touches a peer's bytes. The input is a
// script of appends: a control byte, then that many bytes of stream (see below). After
// each append the reader is drained, and checked against what it promises:
//   - it never invents, drops or reorders bytes: the frames it returns, with their
//     prefixes, are exactly the start of the stream;
//   - no frame is empty or larger than the maximum in force when it is taken out;
//   - once drained it holds less than one frame of the maximum (memory is bounded);
//   - once failed, it takes nothing more.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/wire.h"

namespace {

using quid::Bytes;
using quid::ByteSpan;
using quid::net::FrameReader;
using quid::net::kFrameLengthBytes;

// Two maxima, like the handshake and the session; small so that inputs reach them.
constexpr size_t kSmallMax = 64;
constexpr size_t kLargeMax = 4096;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

// Control byte: low 7 bits + 1 = bytes appended next; the high bit switches the maximum
// before the append (the handshake -> session switch, or back).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FrameReader reader(kSmallMax);
  size_t max = kSmallMax;
  Bytes stream;       // every byte appended, in order
  size_t framed = 0;  // how much of `stream` the returned frames account for
  size_t at = 0;
  while (at < size) {
    uint8_t control = data[at++];
    if (control & 0x80) {
      max = max == kSmallMax ? kLargeMax : kSmallMax;
      reader.set_max_frame_bytes(max);
    }
    size_t n = std::min<size_t>((control & 0x7f) + 1, size - at);
    ByteSpan chunk(data + at, n);
    at += n;

    bool was_failed = reader.failed();
    quid::Status appended = reader.Append(chunk);
    if (was_failed) Check(!appended.ok());
    if (!appended.ok()) {
      Check(reader.failed() && reader.buffered_bytes() == 0 && !reader.Next().has_value());
      continue;
    }
    stream.insert(stream.end(), chunk.begin(), chunk.end());

    while (std::optional<Bytes> frame = reader.Next()) {
      Check(!frame->empty() && frame->size() <= max);
      Bytes expected = quid::net::WithLengthPrefix(*frame);
      Check(framed + expected.size() <= stream.size());
      Check(std::equal(expected.begin(), expected.end(),
                       stream.begin() + static_cast<ptrdiff_t>(framed)));
      framed += expected.size();
    }
    if (reader.failed()) {
      Check(reader.buffered_bytes() == 0);
    } else {
      Check(reader.buffered_bytes() == stream.size() - framed);
      Check(reader.buffered_bytes() < kFrameLengthBytes + max);
    }
  }
  return 0;
}
