// Writing seed inputs for the corpus generators (corpus_gen, wire_corpus_gen).
#pragma once

#include <cstdio>
#include <fstream>
#include <string>

#include "storage/base/bytes.h"

namespace quid::net {

// Writes `bytes` to `path`, replacing it; says on stderr when it cannot.
inline bool WriteCorpusFile(const std::string& path, ByteSpan bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) std::fprintf(stderr, "cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}

}  // namespace quid::net
