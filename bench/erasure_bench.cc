// Encode, reconstruct and CRC-32C throughput over one default-sized (4 MiB) chunk.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "storage/erasure/checksum.h"
#include "storage/erasure/erasure.h"

namespace quid {
namespace {

constexpr size_t kChunkBytes = size_t{4} << 20;

struct Fixture {
  std::unique_ptr<ErasureCoder> coder;
  size_t shard_size = 0;
  std::vector<std::vector<uint8_t>> shards;
  std::vector<const uint8_t*> data;
  std::vector<uint8_t*> parity;
  std::vector<uint8_t*> all;

  Fixture(int k, int m) : coder(std::move(ErasureCoder::Create(k, m)).value()) {
    shard_size = coder->ShardSize(kChunkBytes);
    shards.assign(k + m, std::vector<uint8_t>(shard_size));
    std::mt19937_64 rng(k * 100 + m);
    for (int i = 0; i < k; ++i) {
      for (auto& b : shards[i]) b = static_cast<uint8_t>(rng());
    }
    for (int i = 0; i < k + m; ++i) {
      all.push_back(shards[i].data());
      if (i < k) {
        data.push_back(shards[i].data());
      } else {
        parity.push_back(shards[i].data());
      }
    }
    coder->Encode(data, parity, shard_size);
  }
};

void BM_Encode(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) {
    f.coder->Encode(f.data, f.parity, f.shard_size);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_Encode)->Args({4, 2})->Args({16, 16})->Args({10, 4})->Unit(benchmark::kMicrosecond);

// Loses the first `range(2)` data shards, the worst case for a systematic code.
void BM_Reconstruct(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const int m = static_cast<int>(state.range(1));
  const int lost = static_cast<int>(state.range(2));
  Fixture f(k, m);
  std::vector<bool> present(k + m, true);
  for (int i = 0; i < lost; ++i) present[i] = false;
  for (auto _ : state) {
    Status s = f.coder->Reconstruct(f.all, present, f.shard_size);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_Reconstruct)->Args({4, 2, 2})->Args({16, 16, 16})->Unit(benchmark::kMicrosecond);

void BM_Crc32c(benchmark::State& state) {
  std::vector<uint8_t> buf(kChunkBytes);
  std::mt19937_64 rng(1);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(buf));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunkBytes));
}
BENCHMARK(BM_Crc32c)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace quid
