// A host under a million empty puts from one tenant: what the host's memory costs per
// shard held (its ordered index, the connections, the queue), how fast it takes them, and
// what a full listing costs once they are there (pages resume from a cursor in O(page),
// so the first and the last page cost the same).
//
// Host (HostService + HostServer, default limits but a contribution large enough for a
// million minimum charges) and tenant (RemoteStore, 16 calling threads) share this
// process over loopback; the tenant's side is bounded (64 MiB in flight at most, in
// practice a few hundred KiB for empty puts), so the peak RSS growth is the host's to
// within that. Fixed iterations (one): a million fsynced files cannot be made twice per
// case. Shards go to tmpfs (/dev/shm, or QUID_BENCH_DIR): about 4 GiB of page cache for
// a million one-page files, which is not this process's RSS.
//   build/release/bench/host_limits_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/event_loop.h"
#include "net/host_server.h"
#include "net/host_service.h"
#include "net/identity.h"
#include "net/remote_store.h"

namespace quid::net {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr int kThreads = 16;

// VmRSS or VmHWM of this process, in bytes.
uint64_t StatusBytes(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;
  }
  return 0;
}

ShardId Id(uint32_t n) {
  ShardId id;
  uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < id.bytes.size(); ++i) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    id.bytes[i] = static_cast<uint8_t>(x >> 56);
  }
  return id;
}

double Seconds(SteadyClock::time_point since) {
  return std::chrono::duration<double>(SteadyClock::now() - since).count();
}

void BM_HostEmptyPuts(benchmark::State& state) {
  const auto puts = static_cast<uint32_t>(state.range(0));
  const char* base = std::getenv("QUID_BENCH_DIR");
  std::string tmpl = std::string(base ? base : "/dev/shm") + "/quid-host-limits-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    state.SkipWithError("cannot make a temp folder");
    return;
  }
  const std::string dir = tmpl;

  for (auto _ : state) {
    NodeIdentity host = NodeIdentity::Generate();
    NodeIdentity tenant = NodeIdentity::Generate();
    HostServiceOptions service_options;
    service_options.data_dir = dir + "/host";
    service_options.contribution_bytes = uint64_t{64} << 30;
    service_options.tenant_fingerprints = {tenant.fingerprint()};
    auto service = HostService::Open(service_options);
    if (!service.ok()) {
      state.SkipWithError(service.status().ToString().c_str());
      break;
    }
    HostServerOptions server_options;
    server_options.identity = host;
    server_options.service = service->get();
    auto server = HostServer::Start(std::move(server_options));
    auto loop = EventLoop::Start("bench-client");
    if (!server.ok() || !loop.ok()) {
      state.SkipWithError("cannot start the host");
      break;
    }
    RemoteStoreOptions store_options;
    store_options.port = (*server)->port();
    store_options.identity = tenant;
    store_options.host_key = host.public_key();
    auto store = RemoteStore::Create(std::move(store_options), loop->get());
    if (!store.ok() || !(*store)->Ping().ok()) {
      state.SkipWithError("cannot reach the host");
      break;
    }
    const uint64_t rss_before = StatusBytes("VmRSS");

    auto start = SteadyClock::now();
    std::atomic<uint32_t> next{0};
    std::atomic<uint64_t> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (uint32_t n = next++; n < puts; n = next++) {
          if (!(*store)->Put(Id(n), {}).ok()) ++failed;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const double put_seconds = Seconds(start);
    const uint64_t peak_after_puts = StatusBytes("VmHWM");

    // A full listing, page by page; the first and the last page are timed on their own.
    start = SteadyClock::now();
    uint64_t listed = 0;
    auto page_start = start;
    double first_page_ms = 0;
    double last_page_ms = 0;
    Status s = (*store)->List([&](const ShardId&, const ShardInfo&) {
      ++listed;
      if (listed % 1000 == 0) {
        double ms = Seconds(page_start) * 1000;
        if (listed == 1000) first_page_ms = ms;
        last_page_ms = ms;
        page_start = SteadyClock::now();
      }
      return true;
    });
    const double list_seconds = Seconds(start);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());

    state.counters["puts"] = puts;
    state.counters["failed"] = static_cast<double>(failed.load());
    state.counters["puts_per_s"] = puts / put_seconds;
    state.counters["rss_before_MiB"] = static_cast<double>(rss_before) / kMiB;
    state.counters["peak_rss_MiB"] = static_cast<double>(StatusBytes("VmHWM")) / kMiB;
    state.counters["peak_growth_MiB"] = static_cast<double>(peak_after_puts - rss_before) / kMiB;
    state.counters["charged_GiB"] =
        static_cast<double>((*service)->used_bytes()) / (1024.0 * 1024 * 1024);
    state.counters["listed"] = static_cast<double>(listed);
    state.counters["list_s"] = list_seconds;
    state.counters["first_page_ms"] = first_page_ms;
    state.counters["last_page_ms"] = last_page_ms;
    store->reset();
    loop->reset();
    server->reset();
    service->reset();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
BENCHMARK(BM_HostEmptyPuts)->Arg(1'000'000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace quid::net
