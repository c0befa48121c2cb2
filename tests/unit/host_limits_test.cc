// Host limits: no client can exhaust a host. One test per limit of HostServer (each fails
// without its limit), and hostile clients together (hundreds of connections that never
// authenticate, oversized frames, a tenant that never reads its answers, 100k empty
// puts) while the host's peak RSS stays bounded and another tenant is served throughout.
// Its own binary, so that the peak RSS it reads is this test's alone.
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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
#include "net/wire.h"
#include "storage/base/mem_env.h"
#include "storage/erasure/checksum.h"
#include "tests/unit/raw_client.h"

namespace quid::net {
namespace {

namespace fs = std::filesystem;
using raw_client::ClosedByPeer;
using raw_client::ConnectRaw;
using raw_client::MsSince;
using raw_client::PingRequest;
using raw_client::RawSession;
using raw_client::SendAll;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1024 * 1024;

// Peak resident set of this process so far, in bytes (VmHWM).
uint64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// AddressSanitizer keeps freed memory in quarantine and shadows all of it: RSS says
// nothing about the host's own bounds there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

ShardId Id(uint32_t n) {
  ShardId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) {
    id.bytes[i] =
        static_cast<uint8_t>((n * 2654435761u) >> ((i % 4) * 8)) ^ static_cast<uint8_t>(i * 31);
  }
  return id;
}

std::string Raw(const ShardId& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

Bytes Pattern(size_t size, uint32_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 131 + seed * 7 + 3);
  return b;
}

// On tmpfs when there is one: these tests are about the host's limits, not the disk.
class TempDir {
 public:
  TempDir() {
    std::error_code ec;
    fs::path base =
        ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm") : fs::temp_directory_path(ec);
    std::string tmpl = (base / "quid-limits-XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

template <typename F>
bool WaitFor(F done, int timeout_ms) {
  auto start = SteadyClock::now();
  while (!done()) {
    if (MsSince(start) > timeout_ms) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

class HostLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Start("limits-client");
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop).value();
  }
  void TearDown() override {
    stores_.clear();
    loop_.reset();
    server_.reset();
    service_.reset();
  }

  HostServiceOptions ServiceOptions() {
    HostServiceOptions options;
    options.data_dir = tmp_.path() + "/host";
    options.contribution_bytes = 1ull << 30;
    options.tenant_fingerprints = {a_.fingerprint(), b_.fingerprint(), c_.fingerprint()};
    return options;
  }
  HostServerOptions ServerOptions() {
    HostServerOptions options;
    options.identity = host_;
    options.handshake_timeout_ms = 10'000;
    return options;
  }
  void Start(const HostServiceOptions& service_options, HostServerOptions server_options) {
    auto service = HostService::Open(service_options);
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(service).value();
    server_options.service = service_.get();
    auto server = HostServer::Start(std::move(server_options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }
  std::shared_ptr<RemoteStore> Store(const NodeIdentity& tenant) {
    RemoteStoreOptions options;
    options.port = server_->port();
    options.identity = tenant;
    options.host_key = host_.public_key();
    options.connect_timeout_ms = 2000;
    options.request_timeout_ms = 10'000;
    auto store = RemoteStore::Create(std::move(options), loop_.get());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    stores_.push_back(store.value());
    return store.value();
  }
  std::unique_ptr<RawSession> Session(const NodeIdentity& tenant) {
    return RawSession::Open(server_->port(), tenant, host_.public_key());
  }

  TempDir tmp_;
  MemEnv mem_env_;  // for the tests that need a slow disk; outlives the service
  NodeIdentity host_ = NodeIdentity::Generate();
  NodeIdentity a_ = NodeIdentity::Generate();
  NodeIdentity b_ = NodeIdentity::Generate();
  NodeIdentity c_ = NodeIdentity::Generate();
  std::unique_ptr<HostService> service_;
  std::unique_ptr<HostServer> server_;
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::shared_ptr<RemoteStore>> stores_;
};

TEST_F(HostLimitsTest, HandshakesBeyondTheCapDisplaceTheOldest) {
  HostServerOptions options = ServerOptions();
  options.max_handshaking_connections = 8;
  Start(ServiceOptions(), options);
  std::vector<int> silent;
  for (int i = 0; i < 40; ++i) {
    int fd = ConnectRaw(server_->port());
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().connections_accepted >= 40; }, 3000));
  HostServerStats stats = server_->stats();
  EXPECT_LE(stats.handshaking, 8u);
  EXPECT_EQ(stats.connections_shed, 32u);
  // The oldest went at once, long before the 10 s handshake timeout; the newest wait.
  EXPECT_TRUE(ClosedByPeer(silent.front(), 1000));
  EXPECT_FALSE(ClosedByPeer(silent.back(), 200));
  // A tenant still gets in: its connection displaces a silent one.
  auto store = Store(b_);
  EXPECT_TRUE(store->Ping().ok());
  for (int fd : silent) ::close(fd);
}

TEST_F(HostLimitsTest, TenantConnectionsBeyondTheCapAreClosed) {
  HostServerOptions options = ServerOptions();
  options.max_connections_per_tenant = 2;
  Start(ServiceOptions(), options);
  auto first = Session(a_);
  auto second = Session(a_);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  for (RawSession* s : {first.get(), second.get()}) {
    ASSERT_TRUE(SendAll(s->fd, s->Seal(PingRequest(1))));
    ASSERT_TRUE(s->Receive().has_value());
  }
  uint64_t refused_before = server_->stats().connections_refused;
  auto third = Session(a_);  // the handshake completes; then the host hangs up
  ASSERT_NE(third, nullptr);
  EXPECT_TRUE(ClosedByPeer(third->fd, 2000));
  EXPECT_EQ(server_->stats().connections_refused, refused_before + 1);
  // The tenant's first two connections and another tenant are untouched.
  ASSERT_TRUE(SendAll(first->fd, first->Seal(PingRequest(2))));
  EXPECT_TRUE(first->Receive().has_value());
  auto other = Session(b_);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(SendAll(other->fd, other->Seal(PingRequest(3))));
  EXPECT_TRUE(other->Receive().has_value());
  // A slot freed is a slot the tenant may use again.
  first.reset();
  std::unique_ptr<RawSession> again;
  ASSERT_TRUE(WaitFor(
      [&] {
        again = Session(a_);
        if (!again || !SendAll(again->fd, again->Seal(PingRequest(4)))) return false;
        return again->Receive().has_value();
      },
      3000));
}

TEST_F(HostLimitsTest, TenantBytesInFlightStayUnderTheCap) {
  constexpr uint64_t kShard = 2 * kMiB;
  constexpr uint64_t kCap = 8 * kMiB;
  HostServerOptions options = ServerOptions();
  options.max_tenant_bytes_in_flight = kCap;
  Start(ServiceOptions(), options);
  ASSERT_TRUE(Store(a_)->Put(Id(1), Pattern(kShard, 1)).ok());

  // 32 reads of the shard in one burst, and no reading of the answers: without the cap
  // the host would hold 32 answers (64 MiB) for this tenant.
  auto session = Session(a_);
  ASSERT_NE(session, nullptr);
  Bytes burst;
  for (uint64_t n = 1; n <= 32; ++n) {
    wire::Request get;
    get.set_id(n);
    get.mutable_get()->set_shard_id(Raw(Id(1)));
    get.mutable_get()->set_length(kShard);
    Bytes frame = session->Seal(get);
    burst.insert(burst.end(), frame.begin(), frame.end());
  }
  ASSERT_TRUE(SendAll(session->fd, burst));
  std::this_thread::sleep_for(milliseconds(1000));
  uint64_t peak = server_->stats().peak_tenant_bytes_in_flight;
  RecordProperty("peak_tenant_bytes_in_flight", std::to_string(peak));
  // The cap, plus the one read whose reservation took the tenant over it.
  EXPECT_LE(peak, kCap + kShard + 4096);
  EXPECT_GE(peak, kShard);
  // Backpressure, not refusal: every answer arrives once the tenant reads.
  for (int i = 0; i < 32; ++i) {
    std::optional<wire::Response> response = session->Receive();
    ASSERT_TRUE(response.has_value()) << "after " << i << " answers";
    EXPECT_EQ(response->code(), 0) << response->message();
  }
}

TEST_F(HostLimitsTest, FullQueueAnswersBusyAtOnce) {
  // One worker and a disk whose syncs take 100 ms: the queue fills.
  MemEnv& env = mem_env_;
  env.SetHook([](EnvOp op, const std::string&) {
    if (op == EnvOp::kSync) std::this_thread::sleep_for(milliseconds(100));
    return Status::Ok();
  });
  HostServiceOptions service_options = ServiceOptions();
  service_options.env = &env;
  service_options.data_dir = "/host";
  HostServerOptions options = ServerOptions();
  options.workers = 1;
  options.max_queued_requests = 4;
  Start(service_options, options);

  auto session = Session(a_);
  ASSERT_NE(session, nullptr);
  Bytes burst;
  Bytes data = Pattern(100, 1);
  for (uint32_t n = 1; n <= 12; ++n) {
    wire::Request put;
    put.set_id(n);
    put.mutable_put()->set_shard_id(Raw(Id(n)));
    put.mutable_put()->set_crc32c(Crc32c(data));
    Bytes frame = session->Seal(put, data);
    burst.insert(burst.end(), frame.begin(), frame.end());
  }
  auto start = SteadyClock::now();
  ASSERT_TRUE(SendAll(session->fd, burst));
  int ok = 0;
  int busy = 0;
  int64_t last_busy_ms = 0;
  for (int i = 0; i < 12; ++i) {
    std::optional<wire::Response> response = session->Receive();
    ASSERT_TRUE(response.has_value());
    if (response->code() == 0) {
      ++ok;
    } else {
      EXPECT_EQ(response->code(), static_cast<int32_t>(Code::kBusy));
      EXPECT_NE(response->message().find("busy"), std::string::npos);
      ++busy;
      last_busy_ms = MsSince(start);
    }
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(busy, 8);
  EXPECT_EQ(server_->stats().requests_busy, 8u);
  EXPECT_LE(server_->stats().peak_queued_requests, 4u);
  // Refused from the loop, without waiting for the disk (a queued put takes 200 ms).
  EXPECT_LT(last_busy_ms, 150);
  // The tenant's own store rides it out: kBusy is retried within the deadline.
  EXPECT_TRUE(Store(a_)->Put(Id(100), data).ok());
}

TEST_F(HostLimitsTest, HostileClientsLeaveTheHostBoundedAndOtherTenantsServed) {
  constexpr uint32_t kEmptyPuts = 100'000;
  constexpr uint64_t kShardLimit = 50'000;
  HostServiceOptions service_options = ServiceOptions();
  service_options.max_shards_per_tenant = kShardLimit;
  HostServerOptions options = ServerOptions();
  options.handshake_timeout_ms = 2000;
  Start(service_options, options);

  // Tenant B works throughout; every call must succeed.
  auto b = Store(b_);
  ASSERT_TRUE(b->Ping().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> b_failures{0};
  std::atomic<int> b_rounds{0};
  std::atomic<int64_t> b_slowest_ms{0};
  std::thread legit([&] {
    for (uint32_t i = 0; !stop; ++i) {
      auto call = SteadyClock::now();
      Bytes data = Pattern(64 * 1024, i);
      if (!b->Put(Id(i % 32), data).ok()) ++b_failures;
      Result<Bytes> got = b->Get(Id(i % 32));
      if (!got.ok() || *got != data) ++b_failures;
      b_slowest_ms = std::max<int64_t>(b_slowest_ms.load(), MsSince(call));
      ++b_rounds;
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  auto a = Store(a_);
  ASSERT_TRUE(a->Ping().ok());
  ASSERT_TRUE(Store(c_)->Put(Id(0), Pattern(4 * kMiB, 0)).ok());
  const uint64_t rss_before = PeakRssBytes();

  // 1. Hundreds of connections that never authenticate, some sending garbage or a
  // length prefix far over any limit.
  std::vector<int> silent;
  for (int i = 0; i < 400; ++i) {
    int fd = ConnectRaw(server_->port());
    if (fd < 0) continue;
    if (i % 4 == 1) {
      uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
      SendAll(fd, ByteSpan(huge, 4));
    } else if (i % 4 == 2) {
      SendAll(fd, WithLengthPrefix(Pattern(40, 9)));
    }
    silent.push_back(fd);
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().connections_accepted >= 400; }, 5000));
  EXPECT_LE(server_->stats().handshaking, options.max_handshaking_connections);

  // 2. An authenticated tenant that sends a frame over the limit is cut off.
  {
    auto session = Session(a_);
    ASSERT_NE(session, nullptr);
    uint32_t n = kMaxFrameBytes + 1;
    uint8_t prefix[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                         static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
    ASSERT_TRUE(SendAll(session->fd, ByteSpan(prefix, 4)));
    EXPECT_TRUE(ClosedByPeer(session->fd, 3000));
  }

  // 3. Tenant C opens more connections than it may and asks for its 4 MiB shard 32
  // times on each, never reading an answer: unbounded, that is a GiB of answers.
  std::vector<std::unique_ptr<RawSession>> greedy;
  for (int c = 0; c < 10; ++c) {
    auto session = Session(c_);
    if (!session) continue;
    Bytes burst;
    for (uint64_t n = 1; n <= 32; ++n) {
      wire::Request get;
      get.set_id(n);
      get.mutable_get()->set_shard_id(Raw(Id(0)));
      get.mutable_get()->set_whole(true);
      Bytes frame = session->Seal(get);
      burst.insert(burst.end(), frame.begin(), frame.end());
    }
    SendAll(session->fd, burst);  // the host may have hung up (over the tenant's cap)
    greedy.push_back(std::move(session));
  }

  // 4. Tenant A: 100k empty puts; half fit under the shard limit, the rest are kNoSpace.
  std::atomic<uint32_t> next{1};
  std::atomic<int> stored{0};
  std::atomic<int> no_space{0};
  std::atomic<int> other{0};
  auto start = SteadyClock::now();
  std::vector<std::thread> putters;
  for (int t = 0; t < 16; ++t) {
    putters.emplace_back([&] {
      for (uint32_t n = next++; n <= kEmptyPuts; n = next++) {  // ids 1 to 100k
        Status s = a->Put(Id(n), {});
        if (s.ok()) {
          ++stored;
        } else if (s.code() == Code::kNoSpace) {
          ++no_space;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : putters) t.join();
  RecordProperty("empty_puts_ms", std::to_string(MsSince(start)));
  EXPECT_EQ(stored.load(), static_cast<int>(kShardLimit));
  EXPECT_EQ(no_space.load(), static_cast<int>(kEmptyPuts - kShardLimit));
  EXPECT_EQ(other.load(), 0);

  const uint64_t rss_after = PeakRssBytes();
  HostServerStats stats = server_->stats();
  stop = true;
  legit.join();
  for (int fd : silent) ::close(fd);
  greedy.clear();

  RecordProperty("peak_rss_growth_mib", std::to_string((rss_after - rss_before) / kMiB));
  RecordProperty("peak_tenant_bytes_in_flight", std::to_string(stats.peak_tenant_bytes_in_flight));
  RecordProperty("b_slowest_ms", std::to_string(b_slowest_ms.load()));
  EXPECT_GE(stats.connections_shed + stats.connections_refused, 400u - 64u);
  // A whole-shard read reserves the largest shard: the cap plus one such reservation.
  EXPECT_LE(stats.peak_tenant_bytes_in_flight,
            options.max_tenant_bytes_in_flight + kMaxPayloadBytes + 64 * 1024);
  if (kRssIsMeaningful) {
    // The tenant's cap (64 MiB) and a few shard-sized buffers on the workers; the index
    // of 50k ids is under a MiB. Unbounded, the answers alone would be a GiB.
    EXPECT_LT(rss_after - rss_before, 160 * kMiB)
        << "peak RSS grew by " << (rss_after - rss_before) / kMiB << " MiB";
  }
  EXPECT_EQ(b_failures.load(), 0);
  EXPECT_GE(b_rounds.load(), 10);
  // B's shards are all there; A's count stopped at the limit.
  Result<StoreUsage> a_usage = a->Usage();
  ASSERT_TRUE(a_usage.ok()) << a_usage.status().ToString();
  EXPECT_EQ(a_usage->shard_count, kShardLimit);
  Result<StoreUsage> b_usage = b->Usage();
  ASSERT_TRUE(b_usage.ok());
  EXPECT_EQ(b_usage->shard_count, 32u);
}

}  // namespace
}  // namespace quid::net
