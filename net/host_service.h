// HostService: what a host does with a tenant's requests, apart from the network. Each
// admitted tenant has its own namespace (a FolderStore in data_dir/tenants/<fingerprint>),
// so one tenant can never name another's shards; all tenants together never exceed the
// contribution (a clear kNoSpace, not a full disk).
//
// Thread-safe: the server calls Handle from worker threads.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "net/identity.h"
#include "net/wire.pb.h"
#include "storage/base/env.h"
#include "storage/base/status.h"
#include "storage/stores/folder_store.h"

namespace quid::net {

struct HostServiceOptions {
  std::string data_dir;
  uint64_t contribution_bytes = 0;
  std::vector<std::string> tenant_fingerprints;  // admitted tenants
  Env* env = nullptr;                            // the disk; default Env::Default()
};

struct ScrubReport {
  uint64_t shards_checked = 0;
  uint64_t shards_corrupt = 0;
  std::vector<std::string> corrupt;  // "tenant/shard id"
};

class HostService {
 public:
  static Result<std::unique_ptr<HostService>> Open(const HostServiceOptions& options);

  // OK if `tenant` may use this host; kPermission otherwise.
  Status Admit(const PublicKey& tenant) const;

  // Serves one request of an admitted tenant. `payload` is the request's payload (a
  // PutShard's bytes). The response's payload (a GetShard's bytes) goes to `reply_payload`.
  void Handle(const PublicKey& tenant, const wire::Request& request, ByteSpan payload,
              wire::Response* response, Bytes* reply_payload);

  // Re-reads every stored shard and verifies its checksum.
  ScrubReport Scrub();

  uint64_t used_bytes() const { return used_.load(); }
  uint64_t contribution_bytes() const { return options_.contribution_bytes; }

 private:
  explicit HostService(HostServiceOptions options) : options_(std::move(options)) {}
  Result<std::shared_ptr<FolderStore>> TenantStore(const std::string& fingerprint);

  HostServiceOptions options_;
  std::set<std::string> tenants_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<FolderStore>> stores_;
  std::atomic<uint64_t> used_{0};
  // Serialise the changes to one shard of one tenant (striped by id), so a Put or
  // Delete knows exactly the size it replaces and used_ stays true under concurrency;
  // changes to different shards still run in parallel.
  static constexpr size_t kShardLockStripes = 64;
  std::array<std::mutex, kShardLockStripes> shard_locks_;
};

}  // namespace quid::net
