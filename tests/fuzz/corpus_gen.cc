// Writes the seed corpora of the fuzz targets: real handshake messages and frames sealed
// under the frame target's fixed keys, so fuzzing starts from inputs that pass the length
// and tag checks. Run by hand when a format changes, then commit the files:
//   fuzz_corpus_gen tests/fuzz/corpus
// Inputs found by fuzzing (crash regressions) live beside these and are never rewritten.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include "net/secure_channel.h"
#include "tests/fuzz/corpus_file.h"
#include "tests/fuzz/fuzz_keys.h"

namespace quid::net {
namespace {

bool Write(const std::string& path, ByteSpan bytes) {
  return WriteCorpusFile(path, bytes);
}

// Appends one frame in the frame target's input format.
void AppendFrame(Bytes& input, ByteSpan frame) {
  input.push_back(static_cast<uint8_t>(frame.size() & 0xff));
  input.push_back(static_cast<uint8_t>(frame.size() >> 8));
  input.insert(input.end(), frame.begin(), frame.end());
}

// `head` bytes encrypted, the rest of the text only authenticated (all of it by default).
Bytes SealText(FrameCipher& sender, std::string_view text, size_t head = SIZE_MAX) {
  Bytes frame(text.size() + kFrameOverheadBytes);
  sender.Seal(AsBytes(text), frame, std::min(head, text.size()));
  return frame;
}

bool WriteHandshakeSeeds(const std::string& dir) {
  NodeIdentity tenant = NodeIdentity::Generate();
  NodeIdentity host = NodeIdentity::Generate();
  Handshake initiator = Handshake::Initiator(tenant, host.public_key());
  Handshake responder = Handshake::Responder(host, [](const PublicKey&) { return Status::Ok(); });
  Result<Bytes> m1 = initiator.Start();
  if (!m1.ok()) return false;
  Result<Bytes> m2 = responder.Receive(*m1);
  if (!m2.ok()) return false;
  Result<Bytes> m3 = initiator.Receive(*m2);
  if (!m3.ok()) return false;
  Bytes other_version = *m1;
  other_version[1] ^= 0x7f;
  return Write(dir + "/message1", *m1) && Write(dir + "/message2", *m2) &&
         Write(dir + "/message3", *m3) && Write(dir + "/message1_other_version", other_version) &&
         Write(dir + "/message1_truncated", ByteSpan(*m1).first(40)) && Write(dir + "/empty", {});
}

bool WriteFrameSeeds(const std::string& dir) {
  FrameCipher sender(FuzzFrameKeys());
  Bytes one;
  AppendFrame(one, SealText(sender, "hello, host"));
  Bytes three = one;
  AppendFrame(three, SealText(sender, ""));
  AppendFrame(three, SealText(sender, std::string(300, 'z'), 20));  // a clear tail
  Bytes flipped = three;
  flipped[flipped.size() - 1] ^= 1;
  Bytes replayed = one;
  replayed.insert(replayed.end(), one.begin(), one.end());
  Bytes short_tail = one;
  short_tail.push_back(3);
  return Write(dir + "/one_frame", one) && Write(dir + "/three_frames", three) &&
         Write(dir + "/last_frame_flipped", flipped) && Write(dir + "/replayed", replayed) &&
         Write(dir + "/short_tail", short_tail);
}

}  // namespace
}  // namespace quid::net

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
    return 2;
  }
  std::string root = argv[1];
  bool ok = quid::net::WriteHandshakeSeeds(root + "/handshake_fuzz") &&
            quid::net::WriteFrameSeeds(root + "/frame_open_fuzz");
  return ok ? 0 : 1;
}
