// The host server and the remote store over loopback TCP: every ShardStore operation,
// concurrency, refused keys and tenants, a full host, a host that stops and comes back
// (retries, circuit breaker), clients that send garbage, and hosts that never answer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/event_loop.h"
#include "net/host_server.h"
#include "net/host_service.h"
#include "net/identity.h"
#include "net/remote_store.h"
#include "net/secure_channel.h"
#include "net/wire.h"
#include "storage/stores/stamped_store.h"
#include "tests/unit/raw_client.h"
#include "tests/unit/shard_store_contract.h"

namespace quid::net {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1024 * 1024;

int64_t MsSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start).count();
}

using raw_client::ClosedByPeer;
using raw_client::ConnectRaw;
using raw_client::PingRequest;
using raw_client::RawSession;
using raw_client::RecvFrame;
using raw_client::SendAll;

using contract::Id;
using contract::Pattern;
using contract::ShardStoreContractTest;

// On tmpfs when there is one: the host fsyncs every shard, and these tests are about the
// network, not the disk (thousands of fsyncs would dominate their time).
class TempDir {
 public:
  TempDir() {
    std::error_code ec;
    fs::path base =
        ::access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm") : fs::temp_directory_path(ec);
    std::string tmpl = (base / "quid-net-XXXXXX").string();
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

// A listening socket on loopback with a free port.
int ListenRaw(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A host that accepts connections and then does nothing at all, or (with `identity`)
// completes the handshake and then never reads or answers again: a stuck host.
class StuckHost {
 public:
  explicit StuckHost(const NodeIdentity* identity) : identity_(identity) {
    listen_fd_ = ListenRaw(&port_);
    thread_ = std::thread([this] { Run(); });
  }
  ~StuckHost() {
    stop_ = true;
    thread_.join();
    for (int fd : accepted_) ::close(fd);
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      accepted_.push_back(fd);
      ++connections_;
      if (identity_ != nullptr) Handshake(fd);
    }
  }
  void Handshake(int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto hs = Handshake::Responder(*identity_, [](const PublicKey&) { return Status::Ok(); });
    for (int message = 0; message < 2 && !hs.done(); ++message) {
      std::optional<Bytes> frame = RecvFrame(fd);
      if (!frame) return;
      Result<Bytes> reply = hs.Receive(*frame);
      if (!reply.ok()) return;
      if (!reply->empty()) SendAll(fd, WithLengthPrefix(*reply));
    }
  }

  const NodeIdentity* identity_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::vector<int> accepted_;
  std::thread thread_;
};

// --- the fixture: one host (service + server) and one tenant's store ---

struct Host {
  std::unique_ptr<HostService> service;
  std::unique_ptr<HostServer> server;
};

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = StartHost(tmp_.path() + "/host", 64 * kMiB, {tenant_.fingerprint()}, 0);
    ASSERT_NE(host_.server, nullptr);
    auto loop = EventLoop::Start("test-client");
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop.value());
    store_ = MakeStore(tenant_, host_identity_.public_key(), host_.server->port());
    ASSERT_NE(store_, nullptr);
  }

  Host StartHost(const std::string& dir, uint64_t contribution, std::vector<std::string> tenants,
                 uint16_t port, HostService* existing = nullptr) {
    Host host;
    HostService* service = existing;
    if (service == nullptr) {
      auto opened = HostService::Open({dir, contribution, std::move(tenants)});
      EXPECT_TRUE(opened.ok()) << opened.status().ToString();
      if (!opened.ok()) return host;
      host.service = std::move(opened.value());
      service = host.service.get();
    }
    HostServerOptions options;
    options.port = port;
    options.identity = host_identity_;
    options.service = service;
    options.workers = 4;
    options.handshake_timeout_ms = 500;
    options.max_requests_in_flight = 8;
    auto server = HostServer::Start(std::move(options));
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    if (server.ok()) host.server = std::move(server.value());
    return host;
  }

  RemoteStoreOptions StoreOptions(const NodeIdentity& tenant, const PublicKey& host_key,
                                  uint16_t port) {
    RemoteStoreOptions options;
    options.port = port;
    options.identity = tenant;
    options.host_key = host_key;
    options.connect_timeout_ms = 1000;
    options.request_timeout_ms = 3000;
    options.breaker_cooldown_ms = 300;
    return options;
  }

  std::shared_ptr<RemoteStore> MakeStore(const NodeIdentity& tenant, const PublicKey& host_key,
                                         uint16_t port) {
    return MakeStore(StoreOptions(tenant, host_key, port));
  }
  std::shared_ptr<RemoteStore> MakeStore(RemoteStoreOptions options) {
    auto store = RemoteStore::Create(std::move(options), loop_.get());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? store.value() : nullptr;
  }

  std::set<ShardId> Listed(ShardStore& store) {
    std::set<ShardId> ids;
    Status s = store.List([&](const ShardId& id, const ShardInfo&) {
      EXPECT_TRUE(ids.insert(id).second) << "listed twice: " << id.hex();
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ids;
  }

  // Declaration order is teardown order reversed: stores go before the loop, servers
  // before their services.
  TempDir tmp_;
  NodeIdentity tenant_ = NodeIdentity::Generate();
  NodeIdentity host_identity_ = NodeIdentity::Generate();
  Host host_;
  std::unique_ptr<EventLoop> loop_;
  std::shared_ptr<RemoteStore> store_;
};

TEST_F(NetTest, EveryOperationRoundTrips) {
  EXPECT_EQ(store_->name(), "host:127.0.0.1:" + std::to_string(host_.server->port()));
  ASSERT_TRUE(store_->Ping().ok());

  Bytes data = Pattern(100'000, 1);
  ASSERT_TRUE(store_->Put(Id(1), data).ok());
  Result<Bytes> got = store_->Get(Id(1));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data);

  Bytes range(4096);
  ASSERT_TRUE(store_->ReadRange(Id(1), 65'536, range).ok());
  EXPECT_TRUE(std::equal(range.begin(), range.end(), data.begin() + 65'536));

  Result<ShardInfo> info = store_->Stat(Id(1));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, data.size());
  EXPECT_GT(info->mtime_ns, 0);

  ASSERT_TRUE(store_->Put(Id(2), Pattern(10, 2)).ok());
  EXPECT_EQ(Listed(*store_), (std::set<ShardId>{Id(1), Id(2)}));

  Result<StoreUsage> usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  // The 10-byte shard is charged the host's minimum.
  EXPECT_EQ(usage->used_bytes, 100'000u + kDefaultMinShardChargeBytes);
  EXPECT_EQ(usage->shard_count, 2u);
  EXPECT_GE(usage->capacity_bytes, usage->used_bytes);
  EXPECT_LE(usage->capacity_bytes, 64 * kMiB);

  ASSERT_TRUE(store_->Remove(Id(1)).ok());
  EXPECT_EQ(store_->Get(Id(1)).status().code(), Code::kNotFound);
  EXPECT_EQ(Listed(*store_), std::set<ShardId>{Id(2)});
  EXPECT_GT(host_.server->stats().requests_served, 8u);
  EXPECT_EQ(host_.server->stats().connections_dropped, 0u);
}

// The stamp over the network: a re-run `quid init` in the same home (the same node key,
// a new volume) is told that its area on the host is the first volume's, so nothing of
// that volume's is ever listed for a sweep.
TEST_F(NetTest, ASecondVolumeOfTheSameNodeIsRefusedTheFirstOnesArea) {
  const StoreStamp first = StoreStamp::ForVolume("first volume");
  const StoreStamp second = StoreStamp::ForVolume("second volume");
  Result<std::optional<StoreStamp>> none = store_->ReadStamp();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(*none, std::nullopt);
  ASSERT_TRUE(CheckStoreIsFree(*store_, first).ok());
  ASSERT_TRUE(ClaimForVolume(*store_, first).ok());
  ASSERT_TRUE(store_->Put(Id(1), Pattern(1000, 1)).ok());

  auto again = MakeStore(tenant_, host_identity_.public_key(), host_.server->port());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(CheckStoreIsFree(*again, second).code(), Code::kPermission);
  StampedStore stamped(again, second);
  EXPECT_EQ(stamped.List([](const ShardId&, const ShardInfo&) { return true; }).code(),
            Code::kUnavailable);
  EXPECT_TRUE(stamped.foreign());
  EXPECT_EQ(stamped.Remove(Id(1)).code(), Code::kUnavailable);
  EXPECT_EQ(Listed(*store_), std::set<ShardId>{Id(1)});
  EXPECT_TRUE(ClaimForVolume(*again, first).ok());  // the first volume, reconnected
}

TEST_F(NetTest, ListPaginatesOverManyShards) {
  constexpr uint32_t kShards = 2500;  // more than two pages of the host's 1000
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t n = t; n < kShards; n += 8) {
        if (!store_->Put(Id(n), Pattern(n % 64, n)).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  std::set<ShardId> expected;
  for (uint32_t n = 0; n < kShards; ++n) expected.insert(Id(n));
  EXPECT_EQ(Listed(*store_), expected);

  int calls = 0;
  EXPECT_TRUE(store_->List([&](const ShardId&, const ShardInfo&) { return ++calls < 1500; }).ok());
  EXPECT_EQ(calls, 1500);
}

TEST_F(NetTest, SixtyFourConcurrentPutsAndGetsFromEightThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < 8; ++i) {
        uint32_t n = t * 100 + i;
        Bytes data = Pattern(50'000 + n, n);
        if (!store_->Put(Id(n), data).ok()) ++failures;
        Result<Bytes> got = store_->Get(Id(n));
        if (!got.ok() || *got != data) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  Result<StoreUsage> usage = store_->Usage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->shard_count, 64u);
}

TEST_F(NetTest, HostWithAnotherKeyIsRefused) {
  NodeIdentity impostor = NodeIdentity::Generate();
  auto store = MakeStore(tenant_, impostor.public_key(), host_.server->port());
  Status s = store->Ping();
  EXPECT_EQ(s.code(), Code::kPermission) << s.ToString();
  EXPECT_EQ(store->Put(Id(1), Pattern(10, 1)).code(), Code::kPermission);
  EXPECT_EQ(store->Get(Id(1)).status().code(), Code::kPermission);
  // A store always pins: left unset, the key is all zeros and matches no host.
  RemoteStoreOptions unpinned = StoreOptions(tenant_, PublicKey{}, host_.server->port());
  EXPECT_EQ(MakeStore(std::move(unpinned))->Ping().code(), Code::kPermission);
  // A refused key is an answer, not an outage: the breaker stays closed.
  EXPECT_EQ(store->Ping().code(), Code::kPermission);
  EXPECT_EQ(store->Ping().message().find("circuit"), std::string::npos);
}

TEST_F(NetTest, ProbeLearnsTheHostKey) {
  Result<PublicKey> key = ProbeHostKey("127.0.0.1", host_.server->port(), tenant_, 2000);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, host_identity_.public_key());

  StuckHost silent(nullptr);
  auto start = SteadyClock::now();
  EXPECT_EQ(ProbeHostKey("127.0.0.1", silent.port(), tenant_, 300).status().code(),
            Code::kUnavailable);
  EXPECT_LT(MsSince(start), 2000);
}

TEST_F(NetTest, TenantTheHostDoesNotAdmitIsRefused) {
  NodeIdentity stranger = NodeIdentity::Generate();
  RemoteStoreOptions options =
      StoreOptions(stranger, host_identity_.public_key(), host_.server->port());
  options.retries = 0;
  auto store = MakeStore(std::move(options));
  Status s = store->Put(Id(1), Pattern(10, 1));
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(store->Get(Id(1)).ok());
  EXPECT_GE(host_.server->stats().connections_refused, 1u);
  // Nothing landed: the admitted tenant's view is unchanged, and no stranger folder holds it.
  EXPECT_TRUE(Listed(*store_).empty());
  EXPECT_EQ(host_.service->used_bytes(), 0u);
}

TEST_F(NetTest, FullHostAnswersNoSpace) {
  Host small = StartHost(tmp_.path() + "/small", 1 * kMiB, {tenant_.fingerprint()}, 0);
  ASSERT_NE(small.server, nullptr);
  auto store = MakeStore(tenant_, host_identity_.public_key(), small.server->port());
  ASSERT_TRUE(store->Put(Id(1), Pattern(600 * 1024, 1)).ok());
  Status s = store->Put(Id(2), Pattern(600 * 1024, 2));
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  // A host's answer is not a transport failure: no retry storm, no open breaker.
  EXPECT_TRUE(store->Ping().ok());
  EXPECT_EQ(store->Get(Id(2)).status().code(), Code::kNotFound);
  store.reset();
}

TEST_F(NetTest, StoppedHostOpensTheBreakerAndARestartedOneIsUsedAgain) {
  ASSERT_TRUE(store_->Put(Id(1), Pattern(1000, 1)).ok());
  uint16_t port = host_.server->port();
  host_.server.reset();

  auto start = SteadyClock::now();
  Status s = store_->Ping();
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_LT(MsSince(start), 3000);  // refused connects, two retries with backoff

  // Three transport failures in a row: the breaker is open and calls fail at once.
  start = SteadyClock::now();
  s = store_->Get(Id(1)).status();
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("circuit open"), std::string::npos) << s.message();
  EXPECT_LT(MsSince(start), 50);

  host_.server = StartHost("", 0, {}, port, host_.service.get()).server;
  ASSERT_NE(host_.server, nullptr);
  EXPECT_EQ(host_.server->port(), port);
  // After the cooldown (300 ms), the next call starts a background probe and still fails
  // fast; once the probe has its answer the breaker closes. No call waits on the probe.
  start = SteadyClock::now();
  int64_t slowest_ms = 0;
  Result<Bytes> got = Status::Unavailable("not tried");
  while (MsSince(start) < 5000) {
    auto call = SteadyClock::now();
    got = store_->Get(Id(1));
    slowest_ms = std::max<int64_t>(slowest_ms, MsSince(call));
    if (got.ok()) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, Pattern(1000, 1));
  EXPECT_LT(MsSince(start), 2000) << "a restarted host is used again within a cooldown or two";
  EXPECT_LT(slowest_ms, 200) << "a call waited on the probe";
  EXPECT_TRUE(store_->Ping().ok());
}

TEST_F(NetTest, VanishedHostCostsOneTimeoutThenFailsFastWhileProbedInTheBackground) {
  StuckHost stuck(&host_identity_);  // handshakes, then never reads or answers
  RemoteStoreOptions options = StoreOptions(tenant_, host_identity_.public_key(), stuck.port());
  options.connect_timeout_ms = 400;
  options.request_timeout_ms = 600;
  options.breaker_cooldown_ms = 100;
  auto store = MakeStore(std::move(options));

  auto start = SteadyClock::now();
  Status s = store->Ping();
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  // One deadline for the call: the timed-out request is not retried.
  EXPECT_GE(MsSince(start), 550);
  EXPECT_LT(MsSince(start), 1100);
  // From then on every call fails at once, though probes keep going out (each waits its
  // 400 ms in the background and fails).
  const int connections_before = stuck.connections();
  start = SteadyClock::now();
  int64_t slowest_ms = 0;
  while (MsSince(start) < 1500) {
    auto call = SteadyClock::now();
    s = store->Ping();
    slowest_ms = std::max<int64_t>(slowest_ms, MsSince(call));
    EXPECT_EQ(s.code(), Code::kUnavailable);
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_LT(slowest_ms, 100);
  EXPECT_GE(stuck.connections(), connections_before + 1) << "no probe reached the host";
  store.reset();
}

TEST_F(NetTest, MisbehavingClientsAreDisconnectedWhileOthersAreServed) {
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> rounds{0};
  std::thread legit([&] {
    for (uint32_t i = 0; !stop && i < 10'000; ++i) {
      Bytes data = Pattern(5000, i);
      if (!store_->Put(Id(i % 16), data).ok()) ++failures;
      Result<Bytes> got = store_->Get(Id(i % 16));
      if (!got.ok() || *got != data) ++failures;
      ++rounds;
    }
  });
  uint16_t port = host_.server->port();
  HostServerStats before = host_.server->stats();

  {  // garbage where the handshake should be
    int fd = ConnectRaw(port);
    Bytes junk = WithLengthPrefix(Pattern(40, 9));
    ASSERT_TRUE(SendAll(fd, junk));
    EXPECT_TRUE(ClosedByPeer(fd, 3000)) << "garbage handshake";
    ::close(fd);
  }
  {  // a length prefix far over any limit
    int fd = ConnectRaw(port);
    uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
    ASSERT_TRUE(SendAll(fd, ByteSpan(huge, 4)));
    EXPECT_TRUE(ClosedByPeer(fd, 3000)) << "oversized prefix";
    ::close(fd);
  }
  {  // connects and says nothing: closed after the handshake timeout (500 ms)
    int fd = ConnectRaw(port);
    auto start = SteadyClock::now();
    EXPECT_TRUE(ClosedByPeer(fd, 3000)) << "silent client";
    EXPECT_GE(MsSince(start), 400);
    ::close(fd);
  }
  {  // a valid frame, answered, then the same bytes again: a replay
    auto session = RawSession::Open(port, tenant_, host_identity_.public_key());
    ASSERT_NE(session, nullptr);
    Bytes frame = session->Seal(PingRequest(7));
    ASSERT_TRUE(SendAll(session->fd, frame));
    std::optional<wire::Response> response = session->Receive();
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->id(), 7u);
    EXPECT_EQ(response->code(), 0);
    ASSERT_TRUE(SendAll(session->fd, frame));
    EXPECT_TRUE(ClosedByPeer(session->fd, 3000)) << "replayed frame";
  }
  {  // one flipped bit in a sealed frame
    auto session = RawSession::Open(port, tenant_, host_identity_.public_key());
    ASSERT_NE(session, nullptr);
    Bytes frame = session->Seal(PingRequest(8));
    frame[kFrameLengthBytes + 3] ^= 0x04;
    ASSERT_TRUE(SendAll(session->fd, frame));
    EXPECT_TRUE(ClosedByPeer(session->fd, 3000)) << "bit-flipped frame";
  }
  {  // well sealed, but a request of no known type
    auto session = RawSession::Open(port, tenant_, host_identity_.public_key());
    ASSERT_NE(session, nullptr);
    wire::Request empty;
    empty.set_id(9);
    ASSERT_TRUE(SendAll(session->fd, session->Seal(empty)));
    EXPECT_TRUE(ClosedByPeer(session->fd, 3000)) << "unknown request type";
  }
  {  // a sealed frame whose length is over the session's limit
    auto session = RawSession::Open(port, tenant_, host_identity_.public_key());
    ASSERT_NE(session, nullptr);
    uint32_t n = kMaxFrameBytes + 1;
    uint8_t prefix[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                         static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
    ASSERT_TRUE(SendAll(session->fd, ByteSpan(prefix, 4)));
    EXPECT_TRUE(ClosedByPeer(session->fd, 3000)) << "oversized sealed frame";
  }

  // Let the legitimate client run a while alongside, then stop it.
  for (int i = 0; i < 100 && rounds.load() < 20; ++i) std::this_thread::sleep_for(milliseconds(20));
  stop = true;
  legit.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(rounds.load(), 20);
  HostServerStats after = host_.server->stats();
  EXPECT_GE(after.connections_refused - before.connections_refused, 3u);
  EXPECT_GE(after.connections_dropped - before.connections_dropped, 4u);
  EXPECT_TRUE(store_->Ping().ok());
}

TEST_F(NetTest, PipelinedRequestsBeyondTheCapAreAllAnswered) {
  // The server takes 8 requests at a time from a connection (the fixture's cap) and
  // reads on once answers have gone out: 40 sent in one burst all come back.
  auto session = RawSession::Open(host_.server->port(), tenant_, host_identity_.public_key());
  ASSERT_NE(session, nullptr);
  Bytes burst;
  for (uint64_t id = 1; id <= 40; ++id) {
    Bytes frame = session->Seal(PingRequest(id));
    burst.insert(burst.end(), frame.begin(), frame.end());
  }
  ASSERT_TRUE(SendAll(session->fd, burst));
  std::set<uint64_t> answered;
  for (int i = 0; i < 40; ++i) {
    std::optional<wire::Response> response = session->Receive();
    ASSERT_TRUE(response.has_value()) << "after " << i << " answers";
    EXPECT_EQ(response->code(), 0);
    answered.insert(response->id());
  }
  EXPECT_EQ(answered.size(), 40u);
  EXPECT_EQ(*answered.begin(), 1u);
  EXPECT_EQ(*answered.rbegin(), 40u);
}

TEST_F(NetTest, HostThatNeverAnswersTimesOut) {
  StuckHost silent(nullptr);  // accepts, never says a word
  RemoteStoreOptions options = StoreOptions(tenant_, host_identity_.public_key(), silent.port());
  options.connect_timeout_ms = 300;
  options.retries = 1;
  auto store = MakeStore(std::move(options));
  auto start = SteadyClock::now();
  Status s = store->Ping();
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_GE(MsSince(start), 300);
  EXPECT_LT(MsSince(start), 2000);
  EXPECT_GE(silent.connections(), 2);  // the retry opened a fresh connection
}

TEST_F(NetTest, StuckHostCannotMakeTheTenantBufferWithoutLimit) {
  StuckHost stuck(&host_identity_);  // handshakes, then never reads or answers
  RemoteStoreOptions options = StoreOptions(tenant_, host_identity_.public_key(), stuck.port());
  options.request_timeout_ms = 400;
  options.retries = 0;
  options.connections = 1;
  options.breaker_failures = 1000;  // keep every call going to the socket
  options.breaker_opens_on_timeout = false;
  options.max_bytes_in_flight = 4 * kMiB;
  auto store = MakeStore(std::move(options));

  constexpr uint64_t kShard = 1 * kMiB;
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  auto start = SteadyClock::now();
  for (uint32_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Bytes data = Pattern(kShard, t);
      for (uint32_t i = 0; i < 4; ++i) {
        Status s = store->Put(Id(t * 10 + i), data);
        (s.code() == Code::kUnavailable ? unavailable : other)++;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(unavailable.load(), 32);
  EXPECT_EQ(other.load(), 0);
  // Each call waits at most its timeout (for room, then for the answer).
  EXPECT_LT(MsSince(start), 8 * 4 * 400 + 2000);
  RemoteStoreStats stats = store->stats();
  RecordProperty("peak_bytes_in_flight", std::to_string(stats.peak_bytes_in_flight));
  RecordProperty("stuck_host_connections", std::to_string(stuck.connections()));
  // Frames are a little larger than their payloads (header, length, tag).
  EXPECT_LE(stats.peak_bytes_in_flight, 4 * kMiB + 4096) << stats.peak_bytes_in_flight;
  EXPECT_GE(stats.peak_bytes_in_flight, kShard);
  // Stuck connections are closed, so nothing stays parked in their queues.
  for (int i = 0; i < 100 && store->stats().bytes_in_flight > 0; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(store->stats().bytes_in_flight, 0u);
  store.reset();
}

// --- the ShardStore contract (shard_store_contract.cc), against a host over the network ---

// A host (service + server) and a tenant's store of it; the returned pointer owns them all,
// torn down store first, then the loop, the server and the service.
std::shared_ptr<ShardStore> MakeRemoteContractStore(const std::string& dir, uint64_t capacity) {
  struct Remote {
    NodeIdentity tenant = NodeIdentity::Generate();
    NodeIdentity host = NodeIdentity::Generate();
    std::unique_ptr<HostService> service;
    std::unique_ptr<HostServer> server;
    std::unique_ptr<EventLoop> loop;
    std::shared_ptr<RemoteStore> store;
  };
  auto r = std::make_shared<Remote>();
  // The contract counts payload bytes; a host charges a small shard its minimum, so the
  // minimum is off here (host_service_test covers it).
  HostServiceOptions service_options{
      dir, capacity == 0 ? 1ull << 30 : capacity, {r->tenant.fingerprint()}};
  service_options.min_shard_charge_bytes = 0;
  auto service = HostService::Open(service_options);
  EXPECT_TRUE(service.ok()) << service.status().ToString();
  if (!service.ok()) return nullptr;
  r->service = std::move(service).value();
  HostServerOptions options;
  options.identity = r->host;
  options.service = r->service.get();
  auto server = HostServer::Start(std::move(options));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return nullptr;
  r->server = std::move(server).value();
  auto loop = EventLoop::Start("contract-client");
  if (!loop.ok()) return nullptr;
  r->loop = std::move(loop).value();
  RemoteStoreOptions store_options;
  store_options.port = r->server->port();
  store_options.identity = r->tenant;
  store_options.host_key = r->host.public_key();
  auto store = RemoteStore::Create(std::move(store_options), r->loop.get());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  r->store = std::move(store).value();
  return std::shared_ptr<ShardStore>(r->store.get(), [r](ShardStore*) mutable {
    r->store.reset();
    r->loop.reset();
    r->server.reset();
    r->service.reset();
  });
}

INSTANTIATE_TEST_SUITE_P(RemoteHost, ShardStoreContractTest,
                         ::testing::Values(contract::ContractStore{"Remote",
                                                                   MakeRemoteContractStore}),
                         contract::ContractStoreName);

TEST_F(NetTest, OversizedShardIsRefusedBeforeSending) {
  Bytes big(kMaxPayloadBytes + 1);
  EXPECT_EQ(store_->Put(Id(1), big).code(), Code::kInvalid);
  EXPECT_TRUE(store_->Ping().ok());
}

TEST(EventLoopTest, PostRunsOnTheLoopThreadInOrder) {
  auto loop = EventLoop::Start("test-loop");
  ASSERT_TRUE(loop.ok());
  EXPECT_FALSE((*loop)->InLoopThread());
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> on_loop{0};
  for (int i = 0; i < 100; ++i) {
    (*loop)->Post([&, i] {
      if ((*loop)->InLoopThread()) ++on_loop;
      std::lock_guard lock(mu);
      order.push_back(i);
    });
  }
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mu);
      if (order.size() == 100) break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 100u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(on_loop.load(), 100);
}

}  // namespace
}  // namespace quid::net
