// HostService: a host's handling of tenants' requests, apart from the network. Each
// tenant has its own namespace; all of them together stay inside the contribution.
#include "net/host_service.h"

#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/identity.h"
#include "net/wire.h"
#include "storage/erasure/checksum.h"

namespace quid::net {
namespace {

namespace fs = std::filesystem;

Bytes Pattern(size_t size, uint32_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(i * 131 + seed * 7 + 3);
  return b;
}

PublicKey Key(uint8_t seed) {
  PublicKey key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 37 + i);
  return key;
}

std::string RawId(uint32_t n) {
  std::string id(kShardIdBytes, '\0');
  uint32_t x = n * 2654435761u + 12345;
  for (char& c : id) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return id;
}

ShardId IdOf(const std::string& raw) {
  ShardId id;
  std::copy(raw.begin(), raw.end(), id.bytes.begin());
  return id;
}

struct Reply {
  wire::Response response;
  Bytes payload;
  Status status;
};

class TempDir {
 public:
  explicit TempDir(const std::string& base = "") {
    fs::path root = base.empty() ? fs::temp_directory_path() : fs::path(base);
    std::string tmpl = (root / "quid-host-service-XXXXXX").string();
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

class HostServiceTest : public ::testing::Test {
 protected:
  const PublicKey a_ = Key(1);
  const PublicKey b_ = Key(2);
  const PublicKey stranger_ = Key(3);

  // Most tests check byte-exact accounting, so they charge shards their size alone;
  // the minimum charge has tests of its own.
  std::unique_ptr<HostService> OpenService(uint64_t contribution = 1 << 20,
                                           uint64_t min_charge = 0) {
    HostServiceOptions options;
    options.data_dir = dir_.path();
    options.contribution_bytes = contribution;
    options.min_shard_charge_bytes = min_charge;
    options.tenant_fingerprints = {Fingerprint(a_), Fingerprint(b_)};
    Result<std::unique_ptr<HostService>> service = HostService::Open(options);
    EXPECT_TRUE(service.ok()) << service.status().ToString();
    return service.ok() ? std::move(service).value() : nullptr;
  }

  static Reply Call(HostService& service, const PublicKey& tenant, const wire::Request& request,
                    ByteSpan payload = {}) {
    Reply reply;
    service.Handle(tenant, request, payload, &reply.response, &reply.payload);
    reply.status = StatusFromResponse(reply.response);
    EXPECT_EQ(reply.response.id(), request.id());
    return reply;
  }

  static Reply Put(HostService& service, const PublicKey& tenant, const std::string& id,
                   ByteSpan data) {
    wire::Request r;
    r.set_id(1);
    r.mutable_put()->set_shard_id(id);
    r.mutable_put()->set_crc32c(Crc32c(data));
    return Call(service, tenant, r, data);
  }

  static Reply Get(HostService& service, const PublicKey& tenant, const std::string& id) {
    wire::Request r;
    r.set_id(2);
    r.mutable_get()->set_shard_id(id);
    r.mutable_get()->set_whole(true);
    return Call(service, tenant, r);
  }

  static Reply Range(HostService& service, const PublicKey& tenant, const std::string& id,
                     uint64_t offset, uint64_t length) {
    wire::Request r;
    r.set_id(3);
    r.mutable_get()->set_shard_id(id);
    r.mutable_get()->set_offset(offset);
    r.mutable_get()->set_length(length);
    return Call(service, tenant, r);
  }

  static Reply Delete(HostService& service, const PublicKey& tenant, const std::string& id) {
    wire::Request r;
    r.set_id(4);
    r.mutable_delete_()->set_shard_id(id);
    return Call(service, tenant, r);
  }

  static Reply Stat(HostService& service, const PublicKey& tenant, const std::string& id) {
    wire::Request r;
    r.set_id(5);
    r.mutable_stat()->set_shard_id(id);
    return Call(service, tenant, r);
  }

  static Reply List(HostService& service, const PublicKey& tenant, const std::string& after,
                    uint32_t limit) {
    wire::Request r;
    r.set_id(6);
    r.mutable_list()->set_after(after);
    r.mutable_list()->set_limit(limit);
    return Call(service, tenant, r);
  }

  static Reply Usage(HostService& service, const PublicKey& tenant) {
    wire::Request r;
    r.set_id(7);
    r.mutable_usage();
    return Call(service, tenant, r);
  }

  static Reply Stamp(HostService& service, const PublicKey& tenant, const StoreStamp* claim) {
    wire::Request r;
    r.set_id(8);
    r.mutable_stamp()->set_claim(claim != nullptr);
    if (claim) r.mutable_stamp()->set_stamp(claim->bytes.data(), claim->bytes.size());
    return Call(service, tenant, r);
  }

  // Every shard id a tenant sees, through pagination.
  static std::vector<std::string> ListAll(HostService& service, const PublicKey& tenant,
                                          uint32_t limit) {
    std::vector<std::string> ids;
    std::string after;
    for (;;) {
      Reply r = List(service, tenant, after, limit);
      EXPECT_TRUE(r.status.ok()) << r.status.ToString();
      if (!r.status.ok()) break;
      for (const wire::ListEntry& e : r.response.list().entries()) ids.push_back(e.shard_id());
      if (!r.response.list().more()) break;
      after = ids.back();
    }
    return ids;
  }

  std::string ShardFile(const PublicKey& tenant, const std::string& raw) const {
    std::string hex = IdOf(raw).hex();
    return dir_.path() + "/tenants/" + Fingerprint(tenant) + "/" + hex.substr(0, 2) + "/" + hex +
           ".shard";
  }

  TempDir dir_;
};

TEST_F(HostServiceTest, PutGetRangeStatDelete) {
  auto service = OpenService();
  Bytes data = Pattern(10000, 1);
  ASSERT_TRUE(Put(*service, a_, RawId(1), data).status.ok());

  Reply got = Get(*service, a_, RawId(1));
  ASSERT_TRUE(got.status.ok()) << got.status.ToString();
  EXPECT_EQ(got.payload, data);

  Reply range = Range(*service, a_, RawId(1), 1234, 500);
  ASSERT_TRUE(range.status.ok()) << range.status.ToString();
  EXPECT_EQ(range.payload, Bytes(data.begin() + 1234, data.begin() + 1734));

  Reply stat = Stat(*service, a_, RawId(1));
  ASSERT_TRUE(stat.status.ok());
  EXPECT_EQ(stat.response.info().size(), data.size());
  EXPECT_GT(stat.response.info().mtime_ns(), 0);

  ASSERT_TRUE(Delete(*service, a_, RawId(1)).status.ok());
  EXPECT_EQ(Get(*service, a_, RawId(1)).status.code(), Code::kNotFound);
  EXPECT_EQ(Stat(*service, a_, RawId(1)).status.code(), Code::kNotFound);
  // Deleting again is fine: deletion is idempotent.
  EXPECT_TRUE(Delete(*service, a_, RawId(1)).status.ok());
  EXPECT_EQ(service->used_bytes(), 0u);
}

TEST_F(HostServiceTest, RefusesRangesOutsideTheShardOrBeyondOneReply) {
  auto service = OpenService();
  Bytes data = Pattern(1000, 2);
  ASSERT_TRUE(Put(*service, a_, RawId(1), data).status.ok());
  EXPECT_EQ(Range(*service, a_, RawId(1), 999, 2).status.code(), Code::kInvalid);
  EXPECT_EQ(Range(*service, a_, RawId(1), 2000, 0).status.code(), Code::kInvalid);
  EXPECT_EQ(Range(*service, a_, RawId(1), ~uint64_t{0}, 10).status.code(), Code::kInvalid);
  EXPECT_EQ(Range(*service, a_, RawId(1), 0, kMaxPayloadBytes + 1).status.code(), Code::kInvalid);
  EXPECT_EQ(Range(*service, a_, RawId(2), 0, 1).status.code(), Code::kNotFound);
  Reply empty = Range(*service, a_, RawId(1), 1000, 0);
  EXPECT_TRUE(empty.status.ok());
  EXPECT_TRUE(empty.payload.empty());
}

TEST_F(HostServiceTest, ListPaginatesInIdOrder) {
  auto service = OpenService();
  std::set<std::string> expected;
  for (uint32_t i = 0; i < 25; ++i) {
    ASSERT_TRUE(Put(*service, a_, RawId(i), Pattern(10 + i, i)).status.ok());
    expected.insert(RawId(i));
  }
  Reply first = List(*service, a_, "", 10);
  ASSERT_TRUE(first.status.ok());
  EXPECT_EQ(first.response.list().entries_size(), 10);
  EXPECT_TRUE(first.response.list().more());

  std::vector<std::string> all = ListAll(*service, a_, 10);
  EXPECT_EQ(all, std::vector<std::string>(expected.begin(), expected.end()));
  EXPECT_EQ(ListAll(*service, a_, 1), all);
  EXPECT_EQ(ListAll(*service, a_, 0), all);  // 0: the host's page size

  Reply whole = List(*service, a_, "", 1000);
  ASSERT_TRUE(whole.status.ok());
  EXPECT_FALSE(whole.response.list().more());
  for (const wire::ListEntry& e : whole.response.list().entries()) {
    uint32_t i = 0;
    while (RawId(i) != e.shard_id()) ++i;
    EXPECT_EQ(e.size(), 10 + i);
  }
  // Past the last id: nothing, and no more.
  Reply past = List(*service, a_, all.back(), 10);
  ASSERT_TRUE(past.status.ok());
  EXPECT_EQ(past.response.list().entries_size(), 0);
  EXPECT_FALSE(past.response.list().more());
}

TEST_F(HostServiceTest, ListCapsThePageAtOneThousand) {
  {
    auto service = OpenService();
    ASSERT_TRUE(Put(*service, a_, RawId(0), Pattern(1, 0)).status.ok());
  }
  // A shard file does not name its id, so copies of one file under other names are
  // valid shards: 1001 of them without 1001 fsyncs.
  for (uint32_t i = 1; i <= 1000; ++i) {
    std::string path = ShardFile(a_, RawId(i));
    fs::create_directories(fs::path(path).parent_path());
    fs::copy_file(ShardFile(a_, RawId(0)), path);
  }
  auto service = OpenService();
  EXPECT_EQ(service->used_bytes(), 1001u);
  Reply r = List(*service, a_, "", 5000);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.response.list().entries_size(), 1000);
  EXPECT_TRUE(r.response.list().more());
  // A full page still fits in one message header.
  EXPECT_LE(r.response.ByteSizeLong(), kMaxHeaderBytes);
}

// Tenants under a lease (the node daemon's book): admitted while the lease is in force,
// held to its capacity with a distinct error (kQuota, not the host's kNoSpace), told their
// room by Usage; a lease that ends shuts the area without deleting anything.
// What a tenant left once its leases ended and their grace passed: every shard goes, the
// charge against the contribution with them, and other tenants keep theirs.
TEST_F(HostServiceTest, DroppingATenantDeletesItsShardsOnly) {
  auto service = OpenService(1 << 20);
  ASSERT_TRUE(service);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Put(*service, a_, RawId(i), Pattern(1000, i)).status.ok());
  ASSERT_TRUE(Put(*service, b_, RawId(9), Pattern(700, 9)).status.ok());
  EXPECT_EQ(service->used_bytes(), 5700u);
  Result<uint64_t> freed = service->DropTenant(a_);
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_EQ(*freed, 5000u);
  EXPECT_EQ(service->TenantBytes(a_), 0u);
  EXPECT_EQ(service->used_bytes(), 700u);
  EXPECT_EQ(Get(*service, a_, RawId(0)).status.code(), Code::kNotFound);
  EXPECT_EQ(Get(*service, b_, RawId(9)).payload, Pattern(700, 9));
  // Again, or for a tenant that never stored anything: nothing to free.
  EXPECT_EQ(*service->DropTenant(a_), 0u);
  EXPECT_EQ(*service->DropTenant(stranger_), 0u);
  // And the host reopened counts the same.
  service.reset();
  service = OpenService(1 << 20);
  EXPECT_EQ(service->used_bytes(), 700u);
}

TEST_F(HostServiceTest, ALeaseAdmitsATenantUpToItsCapacity) {
  std::mutex mu;
  std::map<PublicKey, uint64_t> leases = {{stranger_, 5000}};
  HostServiceOptions options;
  options.data_dir = dir_.path();
  options.contribution_bytes = 100000;
  options.min_shard_charge_bytes = 0;
  options.lease_capacity = [&](const PublicKey& tenant) -> std::optional<uint64_t> {
    std::lock_guard lock(mu);
    auto it = leases.find(tenant);
    if (it == leases.end()) return std::nullopt;
    return it->second;
  };
  auto service = HostService::Open(options);
  ASSERT_TRUE(service.ok());
  HostService& host = **service;
  EXPECT_TRUE(host.Admit(stranger_).ok());
  EXPECT_EQ(host.Admit(a_).code(), Code::kPermission);
  EXPECT_EQ(Put(host, a_, RawId(1), Pattern(100, 1)).status.code(), Code::kPermission);

  ASSERT_TRUE(Put(host, stranger_, RawId(1), Pattern(3000, 1)).status.ok());
  Reply u = Usage(host, stranger_);
  ASSERT_TRUE(u.status.ok());
  EXPECT_EQ(u.response.usage().capacity_bytes(), 5000u);  // the lease, not the contribution
  Reply over = Put(host, stranger_, RawId(2), Pattern(2001, 2));
  EXPECT_EQ(over.status.code(), Code::kQuota) << over.status.ToString();
  EXPECT_NE(over.status.message().find("lease full"), std::string::npos);
  EXPECT_EQ(host.used_bytes(), 3000u);
  ASSERT_TRUE(Put(host, stranger_, RawId(2), Pattern(2000, 2)).status.ok());
  // An overwrite that does not grow fits a full lease.
  ASSERT_TRUE(Put(host, stranger_, RawId(1), Pattern(3000, 3)).status.ok());

  // The lease ends: refused, and its shards are still there for when a lease returns.
  {
    std::lock_guard lock(mu);
    leases.clear();
  }
  EXPECT_EQ(Get(host, stranger_, RawId(1)).status.code(), Code::kPermission);
  EXPECT_EQ(host.used_bytes(), 5000u);
  {
    std::lock_guard lock(mu);
    leases[stranger_] = 10000;
  }
  Reply back = Get(host, stranger_, RawId(1));
  ASSERT_TRUE(back.status.ok());
  EXPECT_EQ(back.payload, Pattern(3000, 3));
}

TEST_F(HostServiceTest, ConcurrentPutsNeverPassALease) {
  constexpr uint64_t kShard = 1000;
  HostServiceOptions options;
  options.data_dir = dir_.path();
  options.contribution_bytes = 1 << 20;
  options.min_shard_charge_bytes = 0;
  options.lease_capacity = [](const PublicKey&) -> std::optional<uint64_t> { return 7 * kShard; };
  auto service = HostService::Open(options);
  ASSERT_TRUE(service.ok());
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < 8; ++i) {
        Reply r = Put(**service, a_, RawId(static_cast<uint32_t>(t) * 100 + i), Pattern(kShard, i));
        if (r.status.ok()) {
          ++stored;
        } else {
          EXPECT_EQ(r.status.code(), Code::kQuota);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(stored.load(), 7);
  EXPECT_EQ((*service)->used_bytes(), 7 * kShard);
}

TEST_F(HostServiceTest, UsageCountsThisTenantAndTheHostsFreeRoom) {
  auto service = OpenService(100000);
  ASSERT_TRUE(Put(*service, a_, RawId(1), Pattern(3000, 1)).status.ok());
  ASSERT_TRUE(Put(*service, a_, RawId(2), Pattern(2000, 2)).status.ok());
  ASSERT_TRUE(Put(*service, b_, RawId(1), Pattern(10000, 3)).status.ok());
  Reply u = Usage(*service, a_);
  ASSERT_TRUE(u.status.ok());
  EXPECT_EQ(u.response.usage().used_bytes(), 5000u);
  EXPECT_EQ(u.response.usage().shard_count(), 2u);
  EXPECT_EQ(u.response.usage().capacity_bytes(), 5000u + (100000 - 15000));
  EXPECT_EQ(service->used_bytes(), 15000u);

  // Overwrites count the difference.
  ASSERT_TRUE(Put(*service, a_, RawId(1), Pattern(1000, 4)).status.ok());
  EXPECT_EQ(service->used_bytes(), 13000u);
  ASSERT_TRUE(Put(*service, a_, RawId(1), Pattern(4000, 5)).status.ok());
  EXPECT_EQ(service->used_bytes(), 16000u);
}

TEST_F(HostServiceTest, PingAnswersWithTheRequestId) {
  auto service = OpenService();
  wire::Request r;
  r.set_id(987654321);
  r.mutable_ping();
  Reply reply = Call(*service, a_, r);
  EXPECT_TRUE(reply.status.ok());
  EXPECT_EQ(reply.response.id(), 987654321u);
}

TEST_F(HostServiceTest, RefusesWrongChecksumAndStoresNothing) {
  auto service = OpenService();
  Bytes data = Pattern(1000, 1);
  wire::Request r;
  r.mutable_put()->set_shard_id(RawId(1));
  r.mutable_put()->set_crc32c(Crc32c(data) ^ 1);
  EXPECT_EQ(Call(*service, a_, r, data).status.code(), Code::kCorrupt);
  EXPECT_EQ(Stat(*service, a_, RawId(1)).status.code(), Code::kNotFound);
  EXPECT_EQ(service->used_bytes(), 0u);
  EXPECT_FALSE(fs::exists(ShardFile(a_, RawId(1))));
}

TEST_F(HostServiceTest, RefusesShardIdsOfTheWrongLength) {
  auto service = OpenService();
  Bytes data = Pattern(10, 1);
  for (std::string bad : {std::string(), std::string(15, 'x'), std::string(17, 'x')}) {
    EXPECT_EQ(Put(*service, a_, bad, data).status.code(), Code::kInvalid);
    EXPECT_EQ(Get(*service, a_, bad).status.code(), Code::kInvalid);
    EXPECT_EQ(Range(*service, a_, bad, 0, 1).status.code(), Code::kInvalid);
    EXPECT_EQ(Delete(*service, a_, bad).status.code(), Code::kInvalid);
    EXPECT_EQ(Stat(*service, a_, bad).status.code(), Code::kInvalid);
  }
  EXPECT_EQ(List(*service, a_, std::string(5, 'x'), 10).status.code(), Code::kInvalid);
  EXPECT_EQ(service->used_bytes(), 0u);
}

TEST_F(HostServiceTest, RefusesUnknownRequestsAndStrayPayloads) {
  auto service = OpenService();
  wire::Request empty;
  empty.set_id(11);
  Reply r = Call(*service, a_, empty);
  EXPECT_EQ(r.status.code(), Code::kInvalid);
  EXPECT_EQ(r.status.message(), "unknown request");

  // A request from a newer protocol: an op this host does not know parses as an unknown
  // field, so the request has no op.
  wire::Request newer;
  const std::string bytes("\x08\x05\xfa\x06\x00", 5);  // id = 5; field 111, empty
  ASSERT_TRUE(newer.ParseFromString(bytes));
  EXPECT_EQ(Call(*service, a_, newer).status.code(), Code::kInvalid);

  Bytes stray = Pattern(10, 1);
  wire::Request ping;
  ping.mutable_ping();
  EXPECT_EQ(Call(*service, a_, ping, stray).status.code(), Code::kInvalid);
}

TEST_F(HostServiceTest, ContributionHoldsAcrossTenants) {
  auto service = OpenService(1000);
  Bytes a_data = Pattern(600, 1);
  ASSERT_TRUE(Put(*service, a_, RawId(1), a_data).status.ok());

  Reply refused = Put(*service, b_, RawId(2), Pattern(500, 2));
  EXPECT_EQ(refused.status.code(), Code::kNoSpace);
  EXPECT_EQ(refused.status.message().rfind("host full: 600 of 1000 bytes used", 0), 0u)
      << refused.status.message();
  EXPECT_EQ(Stat(*service, b_, RawId(2)).status.code(), Code::kNotFound);
  EXPECT_EQ(service->used_bytes(), 600u);
  // The other tenant's data is untouched.
  Reply a_got = Get(*service, a_, RawId(1));
  ASSERT_TRUE(a_got.status.ok());
  EXPECT_EQ(a_got.payload, a_data);

  // What fits still goes in, up to the byte.
  ASSERT_TRUE(Put(*service, b_, RawId(2), Pattern(400, 3)).status.ok());
  EXPECT_EQ(service->used_bytes(), 1000u);
  EXPECT_EQ(Put(*service, b_, RawId(3), Pattern(1, 4)).status.code(), Code::kNoSpace);
  // An overwrite that grows needs room too; one that shrinks always fits.
  EXPECT_EQ(Put(*service, a_, RawId(1), Pattern(601, 5)).status.code(), Code::kNoSpace);
  EXPECT_EQ(Get(*service, a_, RawId(1)).payload, a_data);
  ASSERT_TRUE(Put(*service, a_, RawId(1), Pattern(500, 6)).status.ok());
  EXPECT_EQ(service->used_bytes(), 900u);
  EXPECT_EQ(Usage(*service, b_).response.usage().capacity_bytes(), 400u + 100u);
  ASSERT_TRUE(Delete(*service, b_, RawId(2)).status.ok());
  EXPECT_EQ(service->used_bytes(), 500u);
}

TEST_F(HostServiceTest, ConcurrentPutsNeverPassTheContribution) {
  constexpr uint64_t kShard = 1000;
  auto service = OpenService(10 * kShard);
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < 8; ++i) {
        const PublicKey& who = t % 2 == 0 ? a_ : b_;
        Reply r = Put(*service, who, RawId(static_cast<uint32_t>(t) * 100 + i), Pattern(kShard, i));
        if (r.status.ok()) {
          ++stored;
        } else {
          EXPECT_EQ(r.status.code(), Code::kNoSpace);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(stored.load(), 10);
  EXPECT_EQ(service->used_bytes(), 10 * kShard);
  EXPECT_EQ(Usage(*service, a_).response.usage().used_bytes() +
                Usage(*service, b_).response.usage().used_bytes(),
            10 * kShard);
}

TEST_F(HostServiceTest, TenantsCannotReachEachOthersShards) {
  auto service = OpenService();
  const std::string id = RawId(7);
  Bytes a_data = Pattern(800, 1);
  ASSERT_TRUE(Put(*service, a_, id, a_data).status.ok());

  // Read, range, stat, list: B sees nothing of A's.
  EXPECT_EQ(Get(*service, b_, id).status.code(), Code::kNotFound);
  EXPECT_EQ(Range(*service, b_, id, 0, 10).status.code(), Code::kNotFound);
  EXPECT_EQ(Stat(*service, b_, id).status.code(), Code::kNotFound);
  EXPECT_TRUE(ListAll(*service, b_, 10).empty());
  EXPECT_EQ(Usage(*service, b_).response.usage().shard_count(), 0u);

  // Delete: B's delete of the same id leaves A's shard.
  EXPECT_TRUE(Delete(*service, b_, id).status.ok());
  EXPECT_EQ(Get(*service, a_, id).payload, a_data);

  // Overwrite: B's put of the same id makes B's own shard; A's is unchanged, and each
  // sees its own.
  Bytes b_data = Pattern(300, 2);
  ASSERT_TRUE(Put(*service, b_, id, b_data).status.ok());
  EXPECT_EQ(Get(*service, a_, id).payload, a_data);
  EXPECT_EQ(Get(*service, b_, id).payload, b_data);
  EXPECT_EQ(ListAll(*service, a_, 10), std::vector<std::string>{id});
  EXPECT_EQ(ListAll(*service, b_, 10), std::vector<std::string>{id});
  ASSERT_TRUE(Delete(*service, b_, id).status.ok());
  EXPECT_EQ(Get(*service, a_, id).payload, a_data);
  EXPECT_EQ(service->used_bytes(), a_data.size());

  // Error messages do not tell a tenant where on the host shards live.
  EXPECT_EQ(Get(*service, b_, id).status.message().find(dir_.path()), std::string::npos);
}

TEST_F(HostServiceTest, RefusesUnknownKeys) {
  auto service = OpenService();
  EXPECT_TRUE(service->Admit(a_).ok());
  EXPECT_TRUE(service->Admit(b_).ok());
  Status refused = service->Admit(stranger_);
  EXPECT_EQ(refused.code(), Code::kPermission);
  EXPECT_NE(refused.message().find(Fingerprint(stranger_)), std::string::npos);

  // Even if a request got as far as Handle, it is refused and leaves no folder behind.
  EXPECT_EQ(Put(*service, stranger_, RawId(1), Pattern(10, 1)).status.code(), Code::kPermission);
  EXPECT_EQ(Get(*service, stranger_, RawId(1)).status.code(), Code::kPermission);
  EXPECT_EQ(List(*service, stranger_, "", 10).status.code(), Code::kPermission);
  EXPECT_FALSE(fs::exists(dir_.path() + "/tenants/" + Fingerprint(stranger_)));
  EXPECT_EQ(service->used_bytes(), 0u);
}

TEST_F(HostServiceTest, OpenRefusesMalformedFingerprints) {
  for (std::string bad : {std::string("../../etc"), std::string(31, 'a'), std::string(32, 'g')}) {
    HostServiceOptions options;
    options.data_dir = dir_.path();
    options.contribution_bytes = 1000;
    options.tenant_fingerprints = {bad};
    EXPECT_EQ(HostService::Open(options).status().code(), Code::kInvalid) << bad;
  }
  // Upper case is how some people copy a fingerprint: accepted as the same tenant.
  HostServiceOptions options;
  options.data_dir = dir_.path();
  options.contribution_bytes = 1000;
  std::string upper = Fingerprint(a_);
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  options.tenant_fingerprints = {upper};
  Result<std::unique_ptr<HostService>> service = HostService::Open(options);
  ASSERT_TRUE(service.ok());
  EXPECT_TRUE((*service)->Admit(a_).ok());
}

TEST_F(HostServiceTest, ReopenCountsExistingUsage) {
  {
    auto service = OpenService(5000);
    ASSERT_TRUE(Put(*service, a_, RawId(1), Pattern(1500, 1)).status.ok());
    ASSERT_TRUE(Put(*service, b_, RawId(2), Pattern(2500, 2)).status.ok());
  }
  auto service = OpenService(5000);
  EXPECT_EQ(service->used_bytes(), 4000u);
  EXPECT_EQ(Put(*service, a_, RawId(3), Pattern(1001, 3)).status.code(), Code::kNoSpace);
  EXPECT_TRUE(Put(*service, a_, RawId(3), Pattern(1000, 3)).status.ok());
  EXPECT_EQ(Get(*service, b_, RawId(2)).payload, Pattern(2500, 2));

  // A second host on the same folder is refused while the first is open.
  HostServiceOptions options;
  options.data_dir = dir_.path();
  options.contribution_bytes = 5000;
  EXPECT_EQ(HostService::Open(options).status().code(), Code::kBusy);
}

TEST_F(HostServiceTest, ScrubFindsAFlippedByte) {
  auto service = OpenService();
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(Put(*service, a_, RawId(i), Pattern(4096, i)).status.ok());
  }
  ASSERT_TRUE(Put(*service, b_, RawId(0), Pattern(4096, 9)).status.ok());
  ScrubReport clean = service->Scrub();
  EXPECT_EQ(clean.shards_checked, 4u);
  EXPECT_EQ(clean.shards_corrupt, 0u);

  {
    // Flip one payload byte in place (the header is 24 bytes).
    std::fstream f(ShardFile(a_, RawId(1)), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekg(24 + 100);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(24 + 100);
    f.write(&c, 1);
  }
  ScrubReport report = service->Scrub();
  EXPECT_EQ(report.shards_checked, 4u);
  EXPECT_EQ(report.shards_corrupt, 1u);
  ASSERT_EQ(report.corrupt.size(), 1u);
  EXPECT_EQ(report.corrupt[0], Fingerprint(a_) + "/" + IdOf(RawId(1)).hex());
  // The tenant learns it too, rather than getting the rotten bytes: a range read (which has
  // no checksum of its own) answers kCorrupt once the scrub has found the shard rotted.
  EXPECT_EQ(Get(*service, a_, RawId(1)).status.code(), Code::kCorrupt);
  EXPECT_EQ(Range(*service, a_, RawId(1), 0, 16).status.code(), Code::kCorrupt);
  EXPECT_TRUE(Range(*service, a_, RawId(2), 0, 16).status.ok());
  // Rewritten by the tenant, it is good again.
  ASSERT_TRUE(Put(*service, a_, RawId(1), Pattern(4096, 1)).status.ok());
  EXPECT_TRUE(Range(*service, a_, RawId(1), 0, 16).status.ok());
}

// A tenant's area carries the stamp of the first volume that claimed it, kept across host
// restarts; a second volume of the same node (the same tenant key) learns that it is not
// its area. Each tenant's area has its own stamp.
TEST_F(HostServiceTest, TenantAreaKeepsTheFirstVolumesStamp) {
  const StoreStamp first = StoreStamp::ForVolume("first volume");
  const StoreStamp second = StoreStamp::ForVolume("second volume");
  {
    auto service = OpenService();
    Reply none = Stamp(*service, a_, nullptr);
    ASSERT_TRUE(none.status.ok()) << none.status.ToString();
    EXPECT_TRUE(none.response.has_stamp());
    EXPECT_TRUE(none.response.stamp().stamp().empty());

    Reply claimed = Stamp(*service, a_, &first);
    ASSERT_TRUE(claimed.status.ok()) << claimed.status.ToString();
    EXPECT_EQ(claimed.response.stamp().stamp(),
              std::string(first.bytes.begin(), first.bytes.end()));
    Reply again = Stamp(*service, a_, &second);
    ASSERT_TRUE(again.status.ok());
    EXPECT_EQ(again.response.stamp().stamp(), std::string(first.bytes.begin(), first.bytes.end()));
    // Tenant b's area is its own.
    Reply other = Stamp(*service, b_, &second);
    ASSERT_TRUE(other.status.ok());
    EXPECT_EQ(other.response.stamp().stamp(),
              std::string(second.bytes.begin(), second.bytes.end()));
    // The stamp is not a shard: it costs no quota and is never listed.
    EXPECT_EQ(service->used_bytes(), 0u);
    EXPECT_TRUE(ListAll(*service, a_, 1000).empty());
  }
  auto service = OpenService();
  Reply read = Stamp(*service, a_, nullptr);
  ASSERT_TRUE(read.status.ok());
  EXPECT_EQ(read.response.stamp().stamp(), std::string(first.bytes.begin(), first.bytes.end()));
  EXPECT_EQ(Stamp(*service, stranger_, &first).status.code(), Code::kPermission);
  wire::Request bad;
  bad.set_id(9);
  bad.mutable_stamp()->set_claim(true);
  bad.mutable_stamp()->set_stamp("short");
  EXPECT_EQ(Call(*service, a_, bad).status.code(), Code::kInvalid);
}

TEST_F(HostServiceTest, EveryShardIsChargedAtLeastTheMinimum) {
  constexpr uint64_t kMin = kDefaultMinShardChargeBytes;
  // Room for 100 minimum charges, less one byte: the hundredth empty shard does not fit.
  auto service = OpenService(100 * kMin - 1, kMin);
  for (uint32_t i = 0; i < 99; ++i) {
    ASSERT_TRUE(Put(*service, a_, RawId(i), {}).status.ok()) << i;
  }
  EXPECT_EQ(service->used_bytes(), 99 * kMin);
  Reply refused = Put(*service, b_, RawId(99), {});
  EXPECT_EQ(refused.status.code(), Code::kNoSpace) << refused.status.ToString();
  EXPECT_EQ(Stat(*service, b_, RawId(99)).status.code(), Code::kNotFound);
  // The tenant sees what it is charged, so used plus free is what it may still put.
  Reply u = Usage(*service, a_);
  ASSERT_TRUE(u.status.ok());
  EXPECT_EQ(u.response.usage().used_bytes(), 99 * kMin);
  EXPECT_EQ(u.response.usage().shard_count(), 99u);
  EXPECT_EQ(u.response.usage().capacity_bytes(), 100 * kMin - 1);
  // A shard above the minimum is charged its size; overwriting an empty shard with
  // one of the minimum's size costs nothing more.
  ASSERT_TRUE(Put(*service, a_, RawId(0), Pattern(kMin, 1)).status.ok());
  EXPECT_EQ(service->used_bytes(), 99 * kMin);
  EXPECT_EQ(Put(*service, a_, RawId(0), Pattern(2 * kMin, 1)).status.code(), Code::kNoSpace);
  ASSERT_TRUE(Delete(*service, a_, RawId(1)).status.ok());
  EXPECT_EQ(service->used_bytes(), 98 * kMin);
  ASSERT_TRUE(Put(*service, b_, RawId(99), {}).status.ok());

  // Reopened, the host charges the same.
  service.reset();
  service = OpenService(100 * kMin - 1, kMin);
  EXPECT_EQ(service->used_bytes(), 99 * kMin);
  EXPECT_EQ(Put(*service, a_, RawId(1), {}).status.code(), Code::kNoSpace);
}

TEST_F(HostServiceTest, ShardCountPerTenantIsLimited) {
  auto open = [&] {
    HostServiceOptions options;
    options.data_dir = dir_.path();
    options.contribution_bytes = 1 << 20;
    options.tenant_fingerprints = {Fingerprint(a_), Fingerprint(b_)};
    options.max_shards_per_tenant = 10;
    return std::move(HostService::Open(options)).value();
  };
  auto service = open();
  for (uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(Put(*service, a_, RawId(i), {}).status.ok());
  Reply refused = Put(*service, a_, RawId(10), Pattern(1, 1));
  EXPECT_EQ(refused.status.code(), Code::kNoSpace);
  EXPECT_NE(refused.status.message().find("10 shards"), std::string::npos)
      << refused.status.message();
  EXPECT_EQ(Stat(*service, a_, RawId(10)).status.code(), Code::kNotFound);
  // Overwrites are not new shards; another tenant has its own count.
  EXPECT_TRUE(Put(*service, a_, RawId(3), Pattern(100, 3)).status.ok());
  EXPECT_TRUE(Put(*service, b_, RawId(10), {}).status.ok());
  // A delete frees a slot.
  ASSERT_TRUE(Delete(*service, a_, RawId(0)).status.ok());
  EXPECT_TRUE(Put(*service, a_, RawId(10), {}).status.ok());
  EXPECT_EQ(Put(*service, a_, RawId(11), {}).status.code(), Code::kNoSpace);

  // Concurrent puts of new ids cannot together pass the limit.
  ASSERT_TRUE(Delete(*service, a_, RawId(1)).status.ok());
  ASSERT_TRUE(Delete(*service, a_, RawId(2)).status.ok());
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t i = 0; i < 4; ++i) {
        if (Put(*service, a_, RawId(100 + t * 10 + i), {}).status.ok()) ++stored;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(stored.load(), 2);
  EXPECT_EQ(Usage(*service, a_).response.usage().shard_count(), 10u);

  // The count survives a restart: it comes from the folder.
  service.reset();
  service = open();
  EXPECT_EQ(Put(*service, a_, RawId(12), {}).status.code(), Code::kNoSpace);
  EXPECT_EQ(ListAll(*service, a_, 3).size(), 10u);
}

TEST_F(HostServiceTest, ListSeesPutsAndDeletesSinceOpen) {
  auto service = OpenService();
  for (uint32_t i = 0; i < 30; ++i) ASSERT_TRUE(Put(*service, a_, RawId(i), {}).status.ok());
  std::vector<std::string> before = ListAll(*service, a_, 7);
  ASSERT_EQ(before.size(), 30u);
  for (uint32_t i = 0; i < 30; i += 3) ASSERT_TRUE(Delete(*service, a_, RawId(i)).status.ok());
  for (uint32_t i = 30; i < 35; ++i) ASSERT_TRUE(Put(*service, a_, RawId(i), {}).status.ok());
  std::set<std::string> expected;
  for (uint32_t i = 0; i < 35; ++i) {
    if (i >= 30 || i % 3 != 0) expected.insert(RawId(i));
  }
  EXPECT_EQ(ListAll(*service, a_, 7), std::vector<std::string>(expected.begin(), expected.end()));
  // A cursor that names a deleted shard still resumes after it.
  Reply r = List(*service, a_, RawId(0), 1000);
  ASSERT_TRUE(r.status.ok());
  for (const wire::ListEntry& e : r.response.list().entries()) EXPECT_GT(e.shard_id(), RawId(0));
}

// The real disk, counting the folder reads and stats that pass through.
class CountingEnv : public Env {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode open_mode,
                                     unsigned mode) override {
    return base_->Open(path, open_mode, mode);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  Status Remove(const std::string& path) override { return base_->Remove(path); }
  Status CreateDir(const std::string& path, unsigned mode) override {
    return base_->CreateDir(path, mode);
  }
  Status RemoveDir(const std::string& path) override { return base_->RemoveDir(path); }
  Status SyncDir(const std::string& path) override { return base_->SyncDir(path); }
  Status ListDir(const std::string& path,
                 const std::function<bool(const std::string&)>& fn) override {
    ++dir_reads;
    return base_->ListDir(path, fn);
  }
  Result<FileStat> Stat(const std::string& path) override {
    ++stats;
    return base_->Stat(path);
  }
  Status SetMtime(const std::string& path, int64_t mtime_ns) override {
    return base_->SetMtime(path, mtime_ns);
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }
  Result<uint64_t> FreeBytes(const std::string& path) override { return base_->FreeBytes(path); }

  std::atomic<uint64_t> dir_reads{0};
  std::atomic<uint64_t> stats{0};

 private:
  Env* base_ = Env::Default();
};

// A page costs O(page): no folder is read, and one Stat per entry listed. Before the
// index, every page walked all fan-out folders (257 ListDir calls) and stat'ed every
// shard of the tenant.
TEST_F(HostServiceTest, ListPageCostsThePageNotTheFolder) {
  constexpr uint32_t kShards = 20'000;
  constexpr uint32_t kPage = 1000;
  CountingEnv env;
  std::atomic<uint64_t>& dir_reads = env.dir_reads;
  std::atomic<uint64_t>& stats = env.stats;
  // On tmpfs when there is one: 20k puts fsync twice each.
  TempDir tmp(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "");
  HostServiceOptions options;
  options.data_dir = tmp.path();
  options.contribution_bytes = 1ull << 40;
  options.tenant_fingerprints = {Fingerprint(a_)};
  options.env = &env;
  auto service = std::move(HostService::Open(options)).value();
  for (uint32_t i = 0; i < kShards; ++i) {
    ASSERT_TRUE(Put(*service, a_, RawId(i), {}).status.ok());
  }

  std::string after;
  uint32_t pages = 0;
  size_t listed = 0;
  for (;;) {
    dir_reads = 0;
    stats = 0;
    Reply r = List(*service, a_, after, kPage);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    const auto& entries = r.response.list().entries();
    EXPECT_EQ(dir_reads.load(), 0u) << "page " << pages;
    EXPECT_LE(stats.load(), static_cast<uint64_t>(entries.size())) << "page " << pages;
    for (const wire::ListEntry& e : entries) {
      EXPECT_GT(e.shard_id(), after);
      after = e.shard_id();
    }
    listed += static_cast<size_t>(entries.size());
    ++pages;
    if (!r.response.list().more()) break;
  }
  EXPECT_EQ(listed, kShards);
  EXPECT_EQ(pages, kShards / kPage);
}

}  // namespace
}  // namespace quid::net
