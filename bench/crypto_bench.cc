// Micro benchmarks of the per-chunk crypto on a default-sized (4 MiB) chunk: naming it,
// sealing it with each cipher, and opening it.
#include <benchmark/benchmark.h>

#include "storage/chunk_cipher.h"
#include "storage/chunk_id.h"
#include "storage/keys.h"

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

void BM_EncryptChunk(benchmark::State& state) {
  const auto cipher = static_cast<Cipher>(state.range(0));
  state.SetLabel(CipherName(cipher));
  if (!CipherAvailable(cipher)) {
    state.SkipWithError("cipher not available on this CPU");
    return;
  }
  SecretKey key = SecretKey::Random();
  Bytes data = ChunkData();
  ChunkId id = ComputeChunkId(key, data);
  Bytes blob(EncryptedSize(data.size()));
  for (auto _ : state) {
    Result<ChunkHeader> header = EncryptChunk(key, cipher, id, data, blob);
    benchmark::DoNotOptimize(blob.data());
    if (!header.ok()) state.SkipWithError(header.status().ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_EncryptChunk)
    ->Arg(static_cast<int>(Cipher::kXChaCha20Poly1305))
    ->Arg(static_cast<int>(Cipher::kAes256Gcm));

void BM_DecryptChunk(benchmark::State& state) {
  const auto cipher = static_cast<Cipher>(state.range(0));
  state.SetLabel(CipherName(cipher));
  if (!CipherAvailable(cipher)) {
    state.SkipWithError("cipher not available on this CPU");
    return;
  }
  SecretKey key = SecretKey::Random();
  Bytes data = ChunkData();
  ChunkId id = ComputeChunkId(key, data);
  Bytes blob(EncryptedSize(data.size()));
  if (!EncryptChunk(key, cipher, id, data, blob).ok()) {
    state.SkipWithError("encryption failed");
    return;
  }
  Bytes out(data.size());
  for (auto _ : state) {
    Status status = DecryptChunk(key, id, blob, out);
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
