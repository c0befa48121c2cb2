#include "net/host_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "net/wire.h"
#include "storage/erasure/checksum.h"

namespace quid::net {
namespace {

// A List reply holds at most this many entries: about 40 bytes each on the wire, so a
// full page stays well inside kMaxHeaderBytes.
constexpr uint32_t kMaxListEntries = 1000;
static_assert(kMaxListEntries * 48 < kMaxHeaderBytes);

constexpr size_t kFingerprintChars = 32;

// Fingerprints name folders, so anything but 32 lower-case hex digits (a path
// separator, "..") must never get that far.
bool IsFingerprint(std::string_view s) {
  return s.size() == kFingerprintChars && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string TenantsDir(const std::string& data_dir) {
  return data_dir + "/tenants";
}

bool ParseShardId(const std::string& bytes, ShardId* id) {
  if (bytes.size() != kShardIdBytes) return false;
  std::memcpy(id->bytes.data(), bytes.data(), kShardIdBytes);
  return true;
}

Status BadShardId(const std::string& bytes) {
  return Status::Invalid("shard id must be " + std::to_string(kShardIdBytes) + " bytes, not " +
                         std::to_string(bytes.size()));
}

// The store names itself by its folder ("folder:/srv/quid/tenants/<fp>: ..."); a tenant
// has no business learning where on the host its shards live.
Status ForTenant(const Status& status, const FolderStore& store) {
  if (status.ok()) return status;
  std::string prefix = store.name() + ": ";
  const std::string& m = status.message();
  if (m.starts_with(prefix)) return Status(status.code(), m.substr(prefix.size()));
  return status;
}

// Payload bytes the store holds under `id`; nullopt when there is no such shard.
Result<std::optional<uint64_t>> StoredSize(FolderStore& store, const ShardId& id) {
  Result<ShardInfo> info = store.Stat(id);
  if (info.ok()) return std::optional<uint64_t>(info->size);
  if (info.status().code() == Code::kNotFound) return std::optional<uint64_t>();
  return info.status();
}

// What a shard of `size` payload bytes counts against the contribution; nothing when
// there is no shard.
uint64_t Charge(const std::optional<uint64_t>& size, uint64_t min_charge) {
  return size ? std::max(*size, min_charge) : 0;
}

}  // namespace

// One request of one tenant against its area. Lives only for the request.
class TenantRequest {
 public:
  using Area = HostService::TenantArea;
  TenantRequest(Area& area, std::atomic<uint64_t>& used, const HostServiceOptions& options,
                std::mutex& shard_lock, uint64_t tenant_capacity)
      : area_(area),
        tenant_capacity_(tenant_capacity),
        store_(*area.store),
        used_(used),
        contribution_(options.contribution_bytes),
        min_charge_(options.min_shard_charge_bytes),
        max_shards_(options.max_shards_per_tenant),
        shard_lock_(shard_lock) {}

  Status Put(const ShardId& id, uint32_t crc, ByteSpan payload) {
    if (payload.size() > kMaxPayloadBytes) {
      return Status::Invalid("shard of " + std::to_string(payload.size()) +
                             " bytes exceeds the maximum of " + std::to_string(kMaxPayloadBytes));
    }
    if (Crc32c(payload) != crc) {
      return Status::Corrupt("shard " + id.hex() + ": payload does not match its checksum");
    }
    std::lock_guard<std::mutex> lock(shard_lock_);
    QUID_ASSIGN_OR_RETURN(std::optional<uint64_t> old_size, StoredSize(store_, id));
    const bool is_new = !old_size.has_value();
    if (is_new) QUID_RETURN_IF_ERROR(TakeShardSlot());
    const uint64_t old_charge = Charge(old_size, min_charge_);
    const uint64_t new_charge = Charge(payload.size(), min_charge_);
    uint64_t grow = new_charge > old_charge ? new_charge - old_charge : 0;
    // The tenant's lease first (its own limit, a distinct error), then the host's room.
    Status room = TakeLeaseRoom(grow);
    if (!room.ok()) {
      if (is_new) ReturnShardSlot();
      return room;
    }
    // Reserve the growth before writing, so concurrent Puts cannot together pass the
    // contribution; an overwrite that does not grow always fits.
    uint64_t used = used_.load();
    do {
      if (grow > 0 && (used > contribution_ || grow > contribution_ - used)) {
        if (is_new) ReturnShardSlot();
        ReturnLeaseRoom(grow);
        const uint64_t free = used > contribution_ ? 0 : contribution_ - used;
        return Status::NoSpace("host full: " + std::to_string(used) + " of " +
                               std::to_string(contribution_) + " bytes used (" +
                               std::to_string(free) + " free), " + std::to_string(grow) +
                               " more do not fit");
      }
    } while (!used_.compare_exchange_weak(used, used + grow));

    Status put = ForTenant(store_.Put(id, payload), store_);
    if (put.ok()) {
      std::lock_guard<std::mutex> area_lock(area_.mu);
      area_.rotted.erase(id);
    }
    // Settle on what the folder really holds now, whatever Put did: the reservation
    // comes back and the true change goes in. Adding first keeps the counter from
    // dipping below the truth, where a concurrent Put could slip past the limit.
    Result<std::optional<uint64_t>> now = StoredSize(store_, id);
    std::optional<uint64_t> new_size =
        now.ok() ? *now : (put.ok() ? std::optional<uint64_t>(payload.size()) : old_size);
    used_.fetch_add(Charge(new_size, min_charge_));
    used_.fetch_sub(old_charge + grow);
    Settle(id, old_charge, new_size);
    ReturnLeaseRoom(grow);
    if (is_new) ReturnShardSlot();
    return put;
  }

  Status Delete(const ShardId& id) {
    std::lock_guard<std::mutex> lock(shard_lock_);
    QUID_ASSIGN_OR_RETURN(std::optional<uint64_t> old_size, StoredSize(store_, id));
    Status removed = ForTenant(store_.Remove(id), store_);
    if (removed.ok()) {
      std::lock_guard<std::mutex> area_lock(area_.mu);
      area_.rotted.erase(id);
    }
    Result<std::optional<uint64_t>> now = StoredSize(store_, id);
    std::optional<uint64_t> new_size = now.ok() ? *now : (removed.ok() ? std::nullopt : old_size);
    const uint64_t old_charge = Charge(old_size, min_charge_);
    used_.fetch_add(Charge(new_size, min_charge_));
    used_.fetch_sub(old_charge);
    Settle(id, old_charge, new_size);
    return removed;
  }

  Status Get(const wire::GetShard& get, const ShardId& id, Bytes* reply) {
    {
      std::lock_guard<std::mutex> area_lock(area_.mu);
      if (area_.rotted.contains(id))
        return Status::Corrupt("shard " + id.hex() + " failed the host's scrub (rotted on disk)");
    }
    // The size comes first, so a request never makes the host allocate more than the
    // shard holds (or than one reply can carry).
    Result<ShardInfo> info = store_.Stat(id);
    if (!info.ok()) return ForTenant(info.status(), store_);
    if (get.whole()) {
      if (info->size > kMaxPayloadBytes) {
        return Status::Invalid("shard " + id.hex() + " is too large for one reply");
      }
      Result<Bytes> bytes = store_.Get(id);
      if (!bytes.ok()) return ForTenant(bytes.status(), store_);
      *reply = std::move(bytes).value();
      return Status::Ok();
    }
    if (get.length() > kMaxPayloadBytes) {
      return Status::Invalid("range of " + std::to_string(get.length()) +
                             " bytes exceeds the maximum reply of " +
                             std::to_string(kMaxPayloadBytes));
    }
    if (get.offset() > info->size || get.length() > info->size - get.offset()) {
      return Status::Invalid("shard " + id.hex() + ": range " + std::to_string(get.offset()) + "+" +
                             std::to_string(get.length()) + " past the end (" +
                             std::to_string(info->size) + " bytes)");
    }
    Bytes out(get.length());
    Status read = store_.ReadRange(id, get.offset(), out);
    if (!read.ok()) return ForTenant(read, store_);
    *reply = std::move(out);
    return Status::Ok();
  }

  Status List(const wire::ListShards& list, wire::ListResult* result) {
    ShardId after;
    bool has_after = !list.after().empty();
    if (has_after && !ParseShardId(list.after(), &after)) return BadShardId(list.after());
    uint32_t limit = list.limit() == 0 ? kMaxListEntries : std::min(list.limit(), kMaxListEntries);
    // The page's ids come from the index, in order, from the cursor on; only they are
    // looked at on disk (one Stat each, without the index lock). An id whose shard was
    // deleted in between is skipped and the next ones are taken instead.
    const ShardId* cursor = has_after ? &after : nullptr;
    ShardId last;
    std::vector<ShardId> ids;
    while (static_cast<uint32_t>(result->entries_size()) < limit) {
      ids.clear();
      {
        std::lock_guard<std::mutex> lock(area_.mu);
        area_.index.After(cursor, limit - static_cast<uint32_t>(result->entries_size()), &ids);
      }
      if (ids.empty()) break;
      for (const ShardId& id : ids) {
        Result<ShardInfo> info = store_.Stat(id);
        if (info.status().code() == Code::kNotFound) continue;
        if (!info.ok()) return ForTenant(info.status(), store_);
        wire::ListEntry* entry = result->add_entries();
        entry->set_shard_id(id.bytes.data(), id.bytes.size());
        entry->set_size(info->size);
        entry->set_mtime_ns(info->mtime_ns);
      }
      last = ids.back();
      cursor = &last;
    }
    ids.clear();
    {
      std::lock_guard<std::mutex> lock(area_.mu);
      area_.index.After(cursor, 1, &ids);
    }
    result->set_more(!ids.empty());
    return Status::Ok();
  }

  Status Usage(wire::Usage* usage) {
    Result<StoreUsage> mine = store_.Usage();
    if (!mine.ok()) return ForTenant(mine.status(), store_);
    uint64_t charged = 0;
    uint64_t shards = 0;
    {
      std::lock_guard<std::mutex> lock(area_.mu);
      charged = area_.charged_bytes;
      shards = area_.index.size();
    }
    uint64_t used = used_.load();
    uint64_t host_free = contribution_ > used ? contribution_ - used : 0;
    // The store's capacity is the filesystem's free space plus its own bytes: a host
    // whose disk filled up by other means must not promise room it no longer has.
    uint64_t disk_free =
        mine->capacity_bytes > mine->used_bytes ? mine->capacity_bytes - mine->used_bytes : 0;
    // What the tenant is charged, so that used plus free is what it may still put.
    usage->set_used_bytes(charged);
    usage->set_shard_count(shards);
    uint64_t lease_free = tenant_capacity_ > charged ? tenant_capacity_ - charged : 0;
    usage->set_capacity_bytes(charged + std::min({host_free, disk_free, lease_free}));
    return Status::Ok();
  }

 private:
  // Holds one of the tenant's shard slots for a put of a new id (so concurrent puts
  // cannot together pass the limit); kNoSpace when none is left.
  Status TakeShardSlot() {
    std::lock_guard<std::mutex> lock(area_.mu);
    uint64_t held = area_.index.size() + area_.new_shards_in_progress;
    if (held >= max_shards_) {
      return Status::NoSpace("tenant holds " + std::to_string(area_.index.size()) +
                             " shards, the most this host keeps for one tenant (" +
                             std::to_string(max_shards_) + ")");
    }
    ++area_.new_shards_in_progress;
    return Status::Ok();
  }
  void ReturnShardSlot() {
    std::lock_guard<std::mutex> lock(area_.mu);
    --area_.new_shards_in_progress;
  }
  // Holds `grow` bytes of the tenant's lease for a put in progress; kQuota when the lease
  // has no such room (what it holds plus what puts in progress hold).
  Status TakeLeaseRoom(uint64_t grow) {
    if (grow == 0) return Status::Ok();
    std::lock_guard<std::mutex> lock(area_.mu);
    const uint64_t held = area_.charged_bytes + area_.lease_bytes_reserved;
    if (held > tenant_capacity_ || grow > tenant_capacity_ - held) {
      return Status(Code::kQuota, "lease full: the tenant holds " + std::to_string(held) +
                                      " of the " + std::to_string(tenant_capacity_) +
                                      " bytes its lease gives, " + std::to_string(grow) +
                                      " more do not fit");
    }
    area_.lease_bytes_reserved += grow;
    return Status::Ok();
  }
  void ReturnLeaseRoom(uint64_t grow) {
    if (grow == 0) return;
    std::lock_guard<std::mutex> lock(area_.mu);
    area_.lease_bytes_reserved -= grow;
  }
  // The index and the tenant's charge follow what the folder now holds under `id`.
  void Settle(const ShardId& id, uint64_t old_charge, const std::optional<uint64_t>& new_size) {
    std::lock_guard<std::mutex> lock(area_.mu);
    area_.charged_bytes += Charge(new_size, min_charge_);
    area_.charged_bytes -= std::min(old_charge, area_.charged_bytes);
    if (new_size) {
      area_.index.Insert(id);
    } else {
      area_.index.Erase(id);
    }
  }

  Area& area_;
  const uint64_t tenant_capacity_;
  FolderStore& store_;
  std::atomic<uint64_t>& used_;
  const uint64_t contribution_;
  const uint64_t min_charge_;
  const uint64_t max_shards_;
  std::mutex& shard_lock_;
};

namespace {

// The stamp of a tenant's area (its FolderStore's VOLUME file): read, or claimed if the
// area has none yet. The reply carries the stamp the area holds afterwards.
Status AnswerStamp(FolderStore& store, const wire::VolumeStamp& asked, wire::VolumeStamp* reply) {
  std::optional<StoreStamp> held;
  if (asked.claim()) {
    QUID_ASSIGN_OR_RETURN(StoreStamp mine, StoreStamp::FromBytes(asked.stamp()));
    Result<StoreStamp> claimed = store.ClaimStamp(mine);
    if (!claimed.ok()) return ForTenant(claimed.status(), store);
    held = *claimed;
  } else {
    Result<std::optional<StoreStamp>> read = store.ReadStamp();
    if (!read.ok()) return ForTenant(read.status(), store);
    held = *read;
  }
  if (held) reply->set_stamp(held->bytes.data(), held->bytes.size());
  return Status::Ok();
}

size_t StripeOf(const std::string& fingerprint, const ShardId& id, size_t stripes) {
  uint64_t h = std::hash<std::string>{}(fingerprint);
  for (uint8_t b : id.bytes) h = h * 1099511628211ull ^ b;
  return static_cast<size_t>(h % stripes);
}

}  // namespace

Result<std::unique_ptr<HostService>> HostService::Open(const HostServiceOptions& options) {
  if (options.data_dir.empty()) return Status::Invalid("host: empty data folder");
  std::unique_ptr<HostService> service(new HostService(options));
  for (const std::string& given : options.tenant_fingerprints) {
    std::string fp = given;
    std::transform(fp.begin(), fp.end(), fp.begin(), [](char c) {
      return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    if (!IsFingerprint(fp)) {
      return Status::Invalid("host: tenant fingerprint '" + given + "' is not " +
                             std::to_string(kFingerprintChars) + " hex digits");
    }
    service->tenants_.insert(fp);
  }

  Env* env = options.env ? options.env : Env::Default();
  service->options_.env = env;
  const std::string dir = TenantsDir(options.data_dir);
  QUID_RETURN_IF_ERROR(env->CreateDirs(dir, 0700));

  // Every tenant folder present counts against the contribution, admitted or not (a
  // tenant dropped from the list still occupies its bytes), and is scrubbed.
  uint64_t used = 0;
  std::vector<std::string> names;
  QUID_RETURN_IF_ERROR(env->ListDir(dir, [&](const std::string& name) {
    names.push_back(name);
    return true;
  }));
  for (const std::string& name : names) {
    auto st = env->Stat(dir + "/" + name);
    if (!IsFingerprint(name) || !st.ok() || !st->is_dir) continue;
    QUID_ASSIGN_OR_RETURN(std::shared_ptr<TenantArea> area, service->OpenArea(dir + "/" + name));
    used += area->charged_bytes;
    if (area->index.size() > options.max_shards_per_tenant) {
      spdlog::warn(
          "host: tenant {} holds {} shards, more than the limit of {}: its new shards "
          "are refused until it deletes",
          name, area->index.size(), options.max_shards_per_tenant);
    }
    service->areas_.emplace(name, std::move(area));
  }
  service->used_.store(used);
  if (used > options.contribution_bytes) {
    spdlog::warn(
        "host: {} bytes stored, more than the contribution of {}: new shards are "
        "refused until tenants delete",
        used, options.contribution_bytes);
  }
  return service;
}

uint64_t HostService::TenantBytes(const PublicKey& tenant) {
  std::shared_ptr<TenantArea> area;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = areas_.find(Fingerprint(tenant));
    if (it == areas_.end()) return 0;
    area = it->second;
  }
  std::lock_guard<std::mutex> lock(area->mu);
  return area->charged_bytes;
}

std::optional<uint64_t> HostService::TenantCapacity(const PublicKey& tenant) const {
  if (!tenants_.empty() && tenants_.count(Fingerprint(tenant)) != 0)
    return options_.contribution_bytes;
  if (options_.lease_capacity) return options_.lease_capacity(tenant);
  return std::nullopt;
}

Status HostService::Admit(const PublicKey& tenant) const {
  if (!TenantCapacity(tenant)) {
    return Status(Code::kPermission, "tenant " + Fingerprint(tenant) +
                                         " is not admitted by this host (no lease in force)");
  }
  return Status::Ok();
}

Result<std::shared_ptr<HostService::TenantArea>> HostService::OpenArea(const std::string& dir) {
  auto area = std::make_shared<TenantArea>();
  QUID_ASSIGN_OR_RETURN(area->store, FolderStore::Open(dir, 0, options_.env));
  // The one walk of the folder: from here on the index answers listings and the
  // charge is kept up to date by puts and deletes.
  QUID_RETURN_IF_ERROR(area->store->List([&](const ShardId& id, const ShardInfo& info) {
    area->index.Insert(id);
    area->charged_bytes += Charge(info.size, options_.min_shard_charge_bytes);
    return true;
  }));
  return area;
}

Result<std::shared_ptr<HostService::TenantArea>> HostService::Area(const std::string& fingerprint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = areas_.find(fingerprint);
  if (it != areas_.end()) return it->second;
  // Opened (and created) on the tenant's first request, so an admitted tenant that never
  // connects leaves no folder behind.
  QUID_ASSIGN_OR_RETURN(std::shared_ptr<TenantArea> area,
                        OpenArea(TenantsDir(options_.data_dir) + "/" + fingerprint));
  areas_.emplace(fingerprint, area);
  return area;
}

void HostService::Handle(const PublicKey& tenant, const wire::Request& request, ByteSpan payload,
                         wire::Response* response, Bytes* reply_payload) {
  response->Clear();
  response->set_id(request.id());
  reply_payload->clear();

  auto serve = [&]() -> Status {
    // The server admits before it serves; checked again here so that no path to a
    // tenant folder exists for a key that is not on the list.
    std::string fp = Fingerprint(tenant);
    std::optional<uint64_t> capacity = TenantCapacity(tenant);
    // A standing tenant's limit is the contribution itself, checked across tenants below;
    // its lease room is unbounded so that the host's own error is the one it gets.
    if (capacity && tenants_.count(fp) != 0) capacity = std::numeric_limits<uint64_t>::max();
    if (!capacity) {
      return Status(Code::kPermission,
                    "tenant " + fp + " is not admitted by this host (no lease in force)");
    }
    if (request.op_case() == wire::Request::OP_NOT_SET) {
      return Status::Invalid("unknown request");
    }
    if (request.op_case() != wire::Request::kPut && !payload.empty()) {
      return Status::Invalid("unexpected payload of " + std::to_string(payload.size()) + " bytes");
    }
    if (request.op_case() == wire::Request::kPing) return Status::Ok();

    QUID_ASSIGN_OR_RETURN(std::shared_ptr<TenantArea> area, Area(fp));
    FolderStore* store = area->store.get();
    auto ops = [&](const ShardId& id) {
      return TenantRequest(*area, used_, options_,
                           shard_locks_[StripeOf(fp, id, kShardLockStripes)], *capacity);
    };
    ShardId id;
    switch (request.op_case()) {
      case wire::Request::kPut:
        if (!ParseShardId(request.put().shard_id(), &id)) {
          return BadShardId(request.put().shard_id());
        }
        return ops(id).Put(id, request.put().crc32c(), payload);
      case wire::Request::kGet:
        if (!ParseShardId(request.get().shard_id(), &id)) {
          return BadShardId(request.get().shard_id());
        }
        return ops(id).Get(request.get(), id, reply_payload);
      case wire::Request::kDelete:
        if (!ParseShardId(request.delete_().shard_id(), &id)) {
          return BadShardId(request.delete_().shard_id());
        }
        return ops(id).Delete(id);
      case wire::Request::kStat: {
        if (!ParseShardId(request.stat().shard_id(), &id)) {
          return BadShardId(request.stat().shard_id());
        }
        Result<ShardInfo> info = store->Stat(id);
        if (!info.ok()) return ForTenant(info.status(), *store);
        response->mutable_info()->set_size(info->size);
        response->mutable_info()->set_mtime_ns(info->mtime_ns);
        return Status::Ok();
      }
      case wire::Request::kList:
        return ops(id).List(request.list(), response->mutable_list());
      case wire::Request::kUsage:
        return ops(id).Usage(response->mutable_usage());
      case wire::Request::kStamp:
        return AnswerStamp(*store, request.stamp(), response->mutable_stamp());
      default:
        return Status::Invalid("unknown request");
    }
  };

  Status status = serve();
  if (!status.ok()) {
    // A failed request carries no result: the tenant must not act on half an answer.
    response->clear_result();
    reply_payload->clear();
  }
  SetStatus(response, status);
}

Result<uint64_t> HostService::DropTenant(const PublicKey& tenant) {
  std::shared_ptr<TenantArea> area;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = areas_.find(Fingerprint(tenant));
    if (it == areas_.end()) return uint64_t{0};
    area = it->second;
  }
  // Listed first, removed after: the folder is not changed under its own listing.
  std::vector<std::pair<ShardId, uint64_t>> shards;
  QUID_RETURN_IF_ERROR(area->store->List([&](const ShardId& id, const ShardInfo& info) {
    shards.emplace_back(id, info.size);
    return true;
  }));
  uint64_t freed = 0;
  for (const auto& [id, size] : shards) {
    Status removed = area->store->Remove(id);
    if (!removed.ok() && removed.code() != Code::kNotFound) return removed;
    const uint64_t charge = Charge(size, options_.min_shard_charge_bytes);
    std::lock_guard<std::mutex> lock(area->mu);
    if (area->index.Erase(id)) {
      area->charged_bytes -= std::min(area->charged_bytes, charge);
      used_.fetch_sub(std::min(used_.load(), charge));
      freed += charge;
    }
  }
  return freed;
}

ScrubReport HostService::Scrub() {
  std::vector<std::pair<std::string, std::shared_ptr<TenantArea>>> areas;
  {
    std::lock_guard<std::mutex> lock(mu_);
    areas.assign(areas_.begin(), areas_.end());
  }
  ScrubReport report;
  for (const auto& entry : areas) {
    const std::string& fp = entry.first;
    FolderStore* store = entry.second->store.get();
    Status listed = store->List([&](const ShardId& id, const ShardInfo&) {
      Result<Bytes> bytes = store->Get(id);
      // Deleted since the listing saw it: nothing to check.
      if (bytes.status().code() == Code::kNotFound) return true;
      ++report.shards_checked;
      if (!bytes.ok()) {
        if (bytes.status().code() == Code::kCorrupt) {
          std::lock_guard<std::mutex> lock(entry.second->mu);
          entry.second->rotted.insert(id);
        }
        ++report.shards_corrupt;
        report.corrupt.push_back(fp + "/" + id.hex());
        spdlog::error("scrub: tenant {} shard {}: {}", fp, id.hex(), bytes.status().ToString());
      }
      return true;
    });
    if (!listed.ok()) spdlog::error("scrub: tenant {}: {}", fp, listed.ToString());
  }
  if (report.shards_corrupt > 0) {
    spdlog::warn("scrub: {} of {} shards failed their checksum", report.shards_corrupt,
                 report.shards_checked);
  }
  return report;
}

}  // namespace quid::net
