// ChunkStore over six in-memory stores, (4, 2): what the data path costs without disks or
// network (encrypt + encode + placement + fan-out, and back), healthy and degraded.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "storage/chunks/chunk_store.h"
#include "storage/stores/memory_store.h"

namespace quid {
namespace {

constexpr size_t kChunkBytes = 4u << 20;
constexpr int kStores = 6;

struct Fixture {
  Fixture() : pool(kStores) {
    for (int i = 0; i < kStores; ++i) {
      memory.push_back(std::make_shared<MemoryStore>(0, "mem" + std::to_string(i)));
    }
    std::vector<std::shared_ptr<ShardStore>> stores(memory.begin(), memory.end());
    ChunkStoreOptions options;
    options.cipher = DefaultCipher();
    auto made = ChunkStore::Create(keys, options, std::move(stores),
                                   std::make_shared<RendezvousPlacement>(), &pool);
    if (made.ok()) cs = std::move(made).value();
    plain.resize(kChunkBytes);
    std::mt19937 rng(42);
    for (auto& b : plain) b = static_cast<uint8_t>(rng());
    id = ComputeChunkId(keys.chunk_id, plain);
  }

  VolumeKeys keys = VolumeKeys::Derive(SecretKey::Random());
  ThreadPool pool;
  std::vector<std::shared_ptr<MemoryStore>> memory;
  std::unique_ptr<ChunkStore> cs;
  Bytes plain;
  ChunkId id{};
};

void BM_Put4MiB(benchmark::State& state) {
  Fixture f;
  if (!f.cs) {
    state.SkipWithError("ChunkStore::Create failed");
    return;
  }
  for (auto _ : state) {
    auto put = f.cs->Put(f.id, f.plain);
    if (!put.ok()) {
      state.SkipWithError(put.status().ToString().c_str());
      return;
    }
    // Keep the stores from growing without bound across iterations.
    state.PauseTiming();
    (void)f.cs->Remove(*put);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kChunkBytes);
  state.SetLabel(CipherName(DefaultCipher()));
}
BENCHMARK(BM_Put4MiB)->Unit(benchmark::kMillisecond)->UseRealTime();

// state.range(0): shards lost before reading (0: the healthy path).
void BM_Read4MiB(benchmark::State& state) {
  Fixture f;
  if (!f.cs) {
    state.SkipWithError("ChunkStore::Create failed");
    return;
  }
  auto put = f.cs->Put(f.id, f.plain);
  if (!put.ok()) {
    state.SkipWithError(put.status().ToString().c_str());
    return;
  }
  const StoredChunk& chunk = put.value();
  // Lose data shards: the worst case, every read reconstructs.
  for (int i = 0; i < state.range(0); ++i) {
    f.memory[chunk.stores[i]]->Drop(f.cs->ShardIdFor(chunk.id, chunk.generation, i));
  }
  Bytes out(kChunkBytes);
  for (auto _ : state) {
    bool degraded = false;
    Status s = f.cs->Read(chunk, 0, out, &degraded);
    if (!s.ok() || degraded != (state.range(0) > 0)) {
      state.SkipWithError(s.ok() ? "unexpected degraded flag" : s.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kChunkBytes);
  state.SetLabel(state.range(0) == 0 ? "healthy" : "2 shards lost");
}
BENCHMARK(BM_Read4MiB)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace quid
