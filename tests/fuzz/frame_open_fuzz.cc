// Fuzz target: FrameCipher::Open on arbitrary bytes. The input is a sequence of frames
// (fuzz_keys.h: 2-byte length, then the frame; a short last piece is taken as it is),
// opened in order by one receiver under fixed keys, alternately into a separate buffer and
// in place, until one fails, as a connection would close there. Checked besides "no
// crash": a frame that opens is exactly what an honest sender would have sealed at that
// counter (no malleability), and a frame that fails leaves the counter where it was.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/secure_channel.h"
#include "tests/fuzz/fuzz_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using quid::Bytes;
  using quid::MutableByteSpan;
  using quid::Status;
  using quid::net::FrameCipher;
  using quid::net::kFrameOverheadBytes;
  using quid::net::kFuzzFrameLengthBytes;

  FrameCipher receiver(quid::net::FuzzFrameKeys());
  // Seals each plaintext the receiver accepts, so it stays at the receiver's counter.
  FrameCipher sender(quid::net::FuzzFrameKeys());
  size_t offset = 0;
  for (int index = 0; offset < size; ++index) {
    size_t length = size - offset;
    if (length >= kFuzzFrameLengthBytes) {
      size_t declared = data[offset] | static_cast<size_t>(data[offset + 1]) << 8;
      offset += kFuzzFrameLengthBytes;
      length = std::min(declared, size - offset);
    }
    const Bytes frame(data + offset, data + offset + length);
    offset += length;

    if (frame.size() < kFrameOverheadBytes) {
      if (receiver.Open(frame, {}).ok()) std::abort();  // too short for its length and tag
      break;
    }
    // Even frames open into a separate buffer, odd ones in place, as a connection that
    // reuses its receive buffer does.
    Bytes buffer = frame;
    Bytes separate(index % 2 == 0 ? frame.size() - kFrameOverheadBytes : 0);
    MutableByteSpan plain =
        index % 2 == 0 ? MutableByteSpan(separate)
                       : MutableByteSpan(buffer.data(), frame.size() - kFrameOverheadBytes);
    size_t head_bytes = 0;
    Status status = receiver.Open(buffer, plain, &head_bytes);
    if (!status.ok()) {
      // The counter did not move: the frame an honest sender seals next still opens.
      Bytes probe(kFrameOverheadBytes + 1);
      sender.Seal(Bytes{0x5a}, probe);
      Bytes probe_plain(1);
      if (!receiver.Open(probe, probe_plain).ok() || probe_plain[0] != 0x5a) std::abort();
      break;
    }
    Bytes resealed(frame.size());
    sender.Seal(plain, resealed, head_bytes);
    if (resealed != frame) std::abort();
  }
  return 0;
}
