// HostService: what a host does with a tenant's requests, apart from the network. Each
// admitted tenant has its own namespace (a FolderStore in data_dir/tenants/<fingerprint>),
// so one tenant can never name another's shards; all tenants together never exceed the
// contribution (a clear kNoSpace, not a full disk).
//
// Limits, so that no tenant can exhaust the host (see docs/architecture.md, "Host
// limits"): every shard is charged at least min_shard_charge_bytes against the
// contribution, and one tenant keeps at most max_shards_per_tenant shards; both refusals
// are kNoSpace. Each tenant's shard ids are kept in order (ShardIndex), so a listing page
// costs O(page), not a walk of the whole tenant folder.
//
// Thread-safe: the server calls Handle from worker threads.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "net/identity.h"
#include "net/request_handler.h"
#include "net/shard_index.h"
#include "net/wire.pb.h"
#include "storage/base/env.h"
#include "storage/base/status.h"
#include "storage/stores/folder_store.h"

namespace quid::net {

// A shard file costs the host at least one filesystem block (4 KiB on ext4, xfs and
// tmpfs pages) and an inode however few bytes it holds; charging that much keeps 100k
// empty puts from filling the disk's inodes and blocks while the quota reads zero.
constexpr uint64_t kDefaultMinShardChargeBytes = 4096;
// 2 Mi shards per tenant: 2 TiB of 1 MiB shards (4 MiB chunks at k=4), or 8 GiB of
// minimum-charge ones. Bounds the tenant's index in the host's memory (about 16 bytes
// a shard, so some 32 to 48 MiB) and the files in its folder.
constexpr uint64_t kDefaultMaxShardsPerTenant = uint64_t{1} << 21;

struct HostServiceOptions {
  std::string data_dir;
  uint64_t contribution_bytes = 0;
  // Tenants with a standing admission (`quid serve --tenant`): each may use the whole
  // contribution.
  std::vector<std::string> tenant_fingerprints;
  // Tenants admitted under a lease (the node daemon's book): the raw shard bytes the host
  // keeps for the tenant, or nothing if no lease in force admits it. Called on every
  // request, from worker threads; must be cheap and thread-safe. Unset: no leases.
  std::function<std::optional<uint64_t>(const PublicKey& tenant)> lease_capacity;
  Env* env = nullptr;  // the disk; default Env::Default()
  // Bytes a shard counts against the contribution at the least (0: its size alone).
  uint64_t min_shard_charge_bytes = kDefaultMinShardChargeBytes;
  // Shards one tenant may keep; a put of a new shard beyond it is kNoSpace (overwrites
  // and deletes still work).
  uint64_t max_shards_per_tenant = kDefaultMaxShardsPerTenant;
};

struct ScrubReport {
  uint64_t shards_checked = 0;
  uint64_t shards_corrupt = 0;
  std::vector<std::string> corrupt;  // "tenant/shard id"
};

class TenantRequest;

class HostService : public RequestHandler {
 public:
  static Result<std::unique_ptr<HostService>> Open(const HostServiceOptions& options);

  // OK if `tenant` may use this host; kPermission otherwise.
  Status Admit(const PublicKey& tenant) const override;
  // The bytes `tenant` may keep here (its lease's capacity, or the whole contribution for
  // a standing tenant); nothing if it is not admitted.
  std::optional<uint64_t> TenantCapacity(const PublicKey& tenant) const;
  // A `--tenant` key: admitted up to the contribution, whatever its leases say.
  bool IsStandingTenant(const PublicKey& tenant) const {
    return tenants_.count(Fingerprint(tenant)) != 0;
  }

  // Serves one request of an admitted tenant. `payload` is the request's payload (a
  // PutShard's bytes). The response's payload (a GetShard's bytes) goes to `reply_payload`.
  void Handle(const PublicKey& tenant, const wire::Request& request, ByteSpan payload,
              wire::Response* response, Bytes* reply_payload);

  // RequestHandler: Handle for the context's peer.
  void Serve(const RequestContext& context, const wire::Request& request, ByteSpan payload,
             wire::Response* response, Bytes* reply_payload) override {
    Handle(context.peer, request, payload, response, reply_payload);
  }

  // Re-reads every stored shard and verifies its checksum.
  ScrubReport Scrub();

  // Bytes charged to one tenant (0 if it keeps nothing here).
  uint64_t TenantBytes(const PublicKey& tenant);
  // Deletes every shard `tenant` keeps here (its leases ended and their grace passed: the
  // caller decides that). Returns the bytes of charge freed.
  Result<uint64_t> DropTenant(const PublicKey& tenant);

  // Bytes charged against the contribution, all tenants together.
  uint64_t used_bytes() const { return used_.load(); }
  uint64_t contribution_bytes() const { return options_.contribution_bytes; }

 private:
  friend class TenantRequest;
  // One tenant's folder and what the host keeps in memory about it.
  struct TenantArea {
    std::shared_ptr<FolderStore> store;
    std::mutex mu;  // guards the fields below
    ShardIndex index;
    uint64_t charged_bytes = 0;
    uint64_t new_shards_in_progress = 0;  // puts of new ids holding a slot under the limit
    uint64_t lease_bytes_reserved = 0;    // growth of puts in progress, held under the lease
    // Shards the scrub found failing their checksum: every read of them answers kCorrupt
    // (a range read has no checksum of its own to fail), so the tenant's next audit or read
    // learns at once and rebuilds them elsewhere. Cleared when the shard is rewritten or
    // removed; found again by the next scrub after a restart.
    std::set<ShardId> rotted;
  };

  explicit HostService(HostServiceOptions options) : options_(std::move(options)) {}
  // Opens the folder and builds its index (one walk of the folder).
  Result<std::shared_ptr<TenantArea>> OpenArea(const std::string& dir);
  Result<std::shared_ptr<TenantArea>> Area(const std::string& fingerprint);

  HostServiceOptions options_;
  std::set<std::string> tenants_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<TenantArea>> areas_;
  std::atomic<uint64_t> used_{0};
  // Serialise the changes to one shard of one tenant (striped by id), so a Put or
  // Delete knows exactly the size it replaces and used_ stays true under concurrency;
  // changes to different shards still run in parallel.
  static constexpr size_t kShardLockStripes = 64;
  std::array<std::mutex, kShardLockStripes> shard_locks_;
};

}  // namespace quid::net
