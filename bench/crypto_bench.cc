// Micro benchmarks of the per-chunk crypto on a default-sized (4 MiB) chunk: naming it,
// sealing it with each cipher, and opening it.
#include <benchmark/benchmark.h>

#include <optional>

#include "storage/crypto/chunk_cipher.h"
#include "storage/crypto/chunk_id.h"
#include "storage/crypto/keys.h"

namespace quid {
namespace {

constexpr size_t kChunkBytes = 4 * 1024 * 1024;

Bytes ChunkData() {
  Bytes b(kChunkBytes);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 131 + (i >> 12));
  return b;
}

void BM_ChunkId(benchmark::State& state) {
  SecretKey key = SecretKey::Random();
  Bytes data = ChunkData();
  for (auto _ : state) benchmark::DoNotOptimize(ComputeChunkId(key, data));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_ChunkId);

// What both cipher benchmarks start from: one chunk of data, its id, and room for its blob.
// Empty (and the benchmark marked skipped) when this CPU cannot run the cipher.
struct CipherCase {
  Cipher cipher;
  SecretKey key = SecretKey::Random();
  Bytes data = ChunkData();
  ChunkId id{};
  Bytes blob;
};

std::optional<CipherCase> PrepareCipher(benchmark::State& state) {
  CipherCase c{static_cast<Cipher>(state.range(0))};
  state.SetLabel(CipherName(c.cipher));
  if (!CipherAvailable(c.cipher)) {
    state.SkipWithError("cipher not available on this CPU");
    return std::nullopt;
  }
  c.id = ComputeChunkId(c.key, c.data);
  c.blob.resize(EncryptedSize(c.data.size()));
  return c;
}

void BM_EncryptChunk(benchmark::State& state) {
  std::optional<CipherCase> c = PrepareCipher(state);
  if (!c) return;
  for (auto _ : state) {
    Result<ChunkHeader> header = EncryptChunk(c->key, c->cipher, c->id, c->data, c->blob);
    benchmark::DoNotOptimize(c->blob.data());
    if (!header.ok()) state.SkipWithError(header.status().ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_EncryptChunk)
    ->Arg(static_cast<int>(Cipher::kXChaCha20Poly1305))
    ->Arg(static_cast<int>(Cipher::kAes256Gcm));

void BM_DecryptChunk(benchmark::State& state) {
  std::optional<CipherCase> c = PrepareCipher(state);
  if (!c) return;
  if (!EncryptChunk(c->key, c->cipher, c->id, c->data, c->blob).ok()) {
    state.SkipWithError("encryption failed");
    return;
  }
  Bytes out(c->data.size());
  for (auto _ : state) {
    Status status = DecryptChunk(c->key, c->id, c->blob, out);
    benchmark::DoNotOptimize(out.data());
    if (!status.ok()) state.SkipWithError(status.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_DecryptChunk)
    ->Arg(static_cast<int>(Cipher::kXChaCha20Poly1305))
    ->Arg(static_cast<int>(Cipher::kAes256Gcm));

}  // namespace
}  // namespace quid
