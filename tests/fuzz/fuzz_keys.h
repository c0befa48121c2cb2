// The fixed session keys frame_open_fuzz opens frames under, shared with the corpus
// generator so its seed frames authenticate and the fuzzer starts past the tag check.
#pragma once

#include "net/secure_channel.h"

namespace quid::net {

// Both directions under one key, so a single FrameCipher can seal what it later opens.
inline SessionKeys FuzzFrameKeys() {
  SessionKeys keys;
  for (size_t i = 0; i < keys.send.size(); ++i) {
    keys.send[i] = static_cast<uint8_t>(0xa0 + i);
    keys.receive[i] = static_cast<uint8_t>(0xa0 + i);
  }
  return keys;
}

// frame_open_fuzz input: frames one after another, each a 2-byte little-endian length
// then that many bytes; a last piece too short for its length is taken as it is.
constexpr size_t kFuzzFrameLengthBytes = 2;

}  // namespace quid::net
