// shard_forge: turns a host into one that answers reads with garbage, for audit_test.sh.
// Rewrites each named shard file (FolderStore's format, folder_store.h) with random payload
// bytes of the same length under valid CRCs, so the host's own scrub finds nothing wrong
// and serves the bytes as good: only the tenant can tell, by its audits and reads.
//   shard_forge FILE...
#include <sodium.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "storage/erasure/checksum.h"

namespace {

constexpr size_t kHeader = 24;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

bool Forge(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && in.fail()) return false;
  if (file.size() < kHeader || file[0] != 'Q' || file[1] != 'S' || file[2] != 'H' || file[3] != 'D')
    return false;
  uint8_t* payload = file.data() + kHeader;
  const size_t length = file.size() - kHeader;
  randombytes_buf(payload, length);
  PutU32(file.data() + 16, quid::Crc32c(quid::ByteSpan(payload, length)));
  PutU32(file.data() + 20, quid::Crc32c(quid::ByteSpan(file.data(), 20)));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  return static_cast<bool>(out.flush());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || sodium_init() < 0) {
    std::fprintf(stderr, "usage: shard_forge FILE...\n");
    return 2;
  }
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    if (!Forge(argv[i])) {
      std::fprintf(stderr, "shard_forge: %s: not a readable shard file\n", argv[i]);
      status = 1;
    }
  }
  return status;
}
