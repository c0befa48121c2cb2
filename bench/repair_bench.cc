// The repair engine's costs, without disks or network (in-memory stores), so what bounds
// them is this machine's CPU:
//   BM_RepairOneShard      rebuild one lost shard of a 4 MiB (4, 2) chunk: fetch k,
//                          decode, authenticate every segment, re-encode, put one
//   BM_AuditChunk          one audit: a 4 KiB sample from each of the six shards, checked
//   BM_VolumeLosesOneOf8   a volume over 8 stores loses one (its grace 0): wall time until
//                          every chunk is back at k+m, as MB/s of chunk data made whole
//   BM_PlacementMovement   shards that move when 1 of N stores leaves or joins
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "storage/chunks/chunk_store.h"
#include "storage/stores/memory_store.h"
#include "storage/volume/volume.h"
#include "tests/support/faulty_store.h"

namespace quid {
namespace {

constexpr size_t kChunkBytes = 4u << 20;

Bytes Random(size_t n, uint32_t seed) {
  Bytes out(n);
  std::mt19937 rng(seed);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

struct Stores {
  explicit Stores(int n) : pool(8) {
    for (int i = 0; i < n; ++i)
      memory.push_back(std::make_shared<MemoryStore>(0, "mem" + std::to_string(i)));
    std::vector<std::shared_ptr<ShardStore>> stores(memory.begin(), memory.end());
    ChunkStoreOptions options;
    options.cipher = DefaultCipher();
    auto made = ChunkStore::Create(keys, options, std::move(stores),
                                   std::make_shared<RendezvousPlacement>(2), &pool);
    if (made.ok()) cs = std::move(made).value();
  }
  VolumeKeys keys = VolumeKeys::Derive(SecretKey::Random());
  ThreadPool pool;
  std::vector<std::shared_ptr<MemoryStore>> memory;
  std::unique_ptr<ChunkStore> cs;
};

void BM_RepairOneShard(benchmark::State& state) {
  Stores f(8);
  const Bytes plain = Random(kChunkBytes, 1);
  auto put = f.cs->Put(ComputeChunkId(f.keys.chunk_id, plain), plain);
  if (!put.ok()) return state.SkipWithError(put.status().ToString().c_str());
  for (auto _ : state) {
    auto repaired = f.cs->RepairShards(*put, 1);  // shard 0 onto another store
    if (!repaired.ok() || repaired->rebuilt_mask != 1) return state.SkipWithError("repair failed");
    state.PauseTiming();
    (void)f.memory[repaired->stores[0]]->Remove(f.cs->ShardIdFor(put->id, put->generation, 0));
    state.ResumeTiming();
  }
  // Chunk bytes made whole per second; each also read k shards and wrote one.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kChunkBytes);
}
BENCHMARK(BM_RepairOneShard)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AuditChunk(benchmark::State& state) {
  Stores f(8);
  const Bytes plain = Random(kChunkBytes, 2);
  auto put = f.cs->Put(ComputeChunkId(f.keys.chunk_id, plain), plain);
  if (!put.ok()) return state.SkipWithError(put.status().ToString().c_str());
  uint64_t offset = 0;
  for (auto _ : state) {
    const ShardAudit a = f.cs->AuditChunk(*put, offset += 7919, 4096);
    if (a.ok_mask != 0b111111) return state.SkipWithError("audit failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 6 * 4096);
}
BENCHMARK(BM_AuditChunk)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_VolumeLosesOneOf8(benchmark::State& state) {
  const size_t mib = static_cast<size_t>(state.range(0));
  uint64_t made_whole = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::string home =
        (std::filesystem::temp_directory_path() / ("repair_bench_" + std::to_string(::getpid())))
            .string();
    std::filesystem::remove_all(home);
    VolumeInitOptions init;
    init.home = home;
    init.passphrase = "bench";
    init.kdf = KdfStrength::kFastForTests;
    for (int i = 0; i < 8; ++i) init.store_folders.push_back(home + "/unused" + std::to_string(i));
    if (!Volume::Init(init).ok()) return state.SkipWithError("init failed");
    std::vector<std::shared_ptr<MemoryStore>> memory;
    std::vector<std::shared_ptr<FaultyStore>> faulty;
    VolumeOpenOptions open;
    open.home = home;
    open.passphrase = "bench";
    open.cache_bytes = 0;
    open.repair.host_grace_ns = 0;
    open.repair.rate_bytes_per_s = 0;
    open.repair.audit_bytes_per_host_hour = 0;
    for (int i = 0; i < 8; ++i) {
      memory.push_back(std::make_shared<MemoryStore>(0, "mem" + std::to_string(i)));
      faulty.push_back(std::make_shared<FaultyStore>(memory.back()));
      open.stores_override.push_back(faulty.back());
    }
    auto volume = Volume::Open(open);
    if (!volume.ok()) return state.SkipWithError(volume.status().ToString().c_str());
    auto attr = (*volume)->Mknod(kRootIno, "f", S_IFREG | 0644, 0, Caller{0, 0});
    Bytes block = Random(1u << 20, 3);
    for (size_t i = 0; i < mib; ++i) {
      // Chunks are named by their content: every block differs, or they would dedupe.
      std::memcpy(block.data(), &i, sizeof(i));
      auto wrote = (*volume)->Write(attr->ino, i << 20, block);
      if (!wrote.ok()) return state.SkipWithError(wrote.status().ToString().c_str());
    }
    if (Status drained = (*volume)->Drain(600'000'000'000, nullptr); !drained.ok())
      return state.SkipWithError(drained.ToString().c_str());
    state.counters["chunks"] = static_cast<double>((*volume)->GetStatus().chunks);
    const uint64_t on_lost = memory[0]->shard_count();
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    faulty[0]->SetDown(true);
    for (;;) {
      const VolumeStatus s = (*volume)->GetStatus();
      if (s.repair.chunks_done > 0 && s.chunks_healthy == s.chunks && s.repair.chunks_left == 0)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(seconds);
    state.PauseTiming();
    state.counters["shards_rebuilt"] = static_cast<double>(on_lost);
    made_whole += on_lost * kChunkBytes;
    state.counters["seconds_to_full"] = seconds;
    faulty[0]->SetDown(false);
    (void)(*volume)->Close();
    volume->reset();
    std::filesystem::remove_all(home);
    state.ResumeTiming();
  }
  // Chunk data made whole: a 4 MiB chunk for each shard the lost store held. The time
  // includes noticing the loss (the next probe, up to a second).
  state.SetBytesProcessed(static_cast<int64_t>(made_whole));
}
BENCHMARK(BM_VolumeLosesOneOf8)
    ->Arg(256)
    ->Arg(1024)
    ->Unit(benchmark::kSecond)
    ->UseManualTime()
    ->Iterations(1);

void BM_PlacementMovement(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  RendezvousPlacement policy;
  std::vector<PlacementCandidate> all(static_cast<size_t>(n + 1));
  for (int i = 0; i <= n; ++i) all[i] = {static_cast<uint32_t>(i), "host" + std::to_string(i)};
  std::vector<PlacementCandidate> before(all.begin(), all.end() - 1);
  std::mt19937_64 rng(5);
  uint64_t moved = 0, placed = 0;
  for (auto _ : state) {
    ChunkId id;
    for (auto& b : id) b = static_cast<uint8_t>(rng());
    const auto was = policy.Place(id, 6, before);
    const auto now = policy.Place(id, 6, all);
    for (uint32_t s : now) moved += std::find(was.begin(), was.end(), s) == was.end();
    placed += 6;
  }
  state.counters["moved_fraction"] = static_cast<double>(moved) / static_cast<double>(placed);
  state.counters["ideal_1_over_n1"] = 1.0 / (n + 1);
}
BENCHMARK(BM_PlacementMovement)->Arg(8)->Arg(100)->Arg(1000);

}  // namespace
}  // namespace quid
