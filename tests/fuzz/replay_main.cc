// Replays a fuzz target's corpus as a plain test, in any build (g++ has no libFuzzer):
//   <target>_replay CORPUS_DIR
// runs LLVMFuzzerTestOneInput once on every regular file of CORPUS_DIR, in name order so
// runs repeat. A crash or sanitizer report in the target fails the test by itself; this
// exits non-zero if the folder cannot be read or holds no inputs (a corpus that vanished
// must not pass silently).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  std::error_code ec;
  std::vector<std::filesystem::path> inputs;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1], ec)) {
    if (entry.is_regular_file()) inputs.push_back(entry.path());
  }
  if (ec) {
    std::fprintf(stderr, "cannot list %s: %s\n", argv[1], ec.message().c_str());
    return 1;
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "no inputs in %s\n", argv[1]);
    return 1;
  }
  std::sort(inputs.begin(), inputs.end());
  for (const auto& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "cannot read %s\n", path.c_str());
      return 1;
    }
    // libFuzzer never passes a null pointer, even for an empty input.
    uint8_t empty = 0;
    LLVMFuzzerTestOneInput(bytes.empty() ? &empty : bytes.data(), bytes.size());
  }
  std::printf("replayed %zu inputs from %s\n", inputs.size(), argv[1]);
  return 0;
}
