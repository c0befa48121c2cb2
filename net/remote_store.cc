#include "net/remote_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "net/host_client.h"
#include "storage/erasure/checksum.h"

namespace quid::net {

using host_client::CloseOnLoop;
using host_client::Core;
using host_client::IdBytes;
using host_client::kListPageEntries;
using host_client::MakeCore;
using host_client::Pending;
using host_client::Reply;
using host_client::SteadyClock;

struct RemoteStore::Impl {
  std::shared_ptr<Core> core;
};

Result<std::shared_ptr<RemoteStore>> RemoteStore::Create(RemoteStoreOptions options,
                                                         EventLoop* loop) {
  PublicKey pinned = options.host_key;
  QUID_ASSIGN_OR_RETURN(std::shared_ptr<Core> core, MakeCore(std::move(options), pinned, loop));
  std::shared_ptr<RemoteStore> store(new RemoteStore());
  store->impl_ = std::make_unique<Impl>();
  store->impl_->core = std::move(core);
  return store;
}

RemoteStore::~RemoteStore() {
  if (impl_ && impl_->core) CloseOnLoop(impl_->core);
}

std::string RemoteStore::name() const {
  return "host:" + impl_->core->where;
}

RemoteStoreStats RemoteStore::stats() const {
  Core& core = *impl_->core;
  std::lock_guard lock(core.budget_mu);
  RemoteStoreStats stats;
  stats.bytes_in_flight = core.in_flight;
  stats.peak_bytes_in_flight = core.peak;
  return stats;
}

Status RemoteStore::Put(const ShardId& id, ByteSpan data) {
  if (data.size() > kMaxPayloadBytes) {
    return Status::Invalid("shard of " + std::to_string(data.size()) + " bytes exceeds the " +
                           std::to_string(kMaxPayloadBytes) + "-byte frame limit");
  }
  wire::Request request;
  wire::PutShard* put = request.mutable_put();
  put->set_shard_id(IdBytes(id));
  put->set_crc32c(Crc32c(data));
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), data));
  return StatusFromResponse(reply.response);
}

Result<Bytes> RemoteStore::Get(const ShardId& id) {
  wire::Request request;
  wire::GetShard* get = request.mutable_get();
  get->set_shard_id(IdBytes(id));
  get->set_whole(true);
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  QUID_RETURN_IF_ERROR(StatusFromResponse(reply.response));
  ByteSpan payload = reply.payload();
  return Bytes(payload.begin(), payload.end());
}

Status RemoteStore::ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
  wire::Request request;
  wire::GetShard* get = request.mutable_get();
  get->set_shard_id(IdBytes(id));
  get->set_whole(false);
  get->set_offset(offset);
  get->set_length(out.size());
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  QUID_RETURN_IF_ERROR(StatusFromResponse(reply.response));
  ByteSpan payload = reply.payload();
  if (payload.size() != out.size()) {
    return Status::Corrupt("host " + impl_->core->where + " returned " +
                           std::to_string(payload.size()) + " bytes of shard " + id.hex() +
                           " for a read of " + std::to_string(out.size()));
  }
  std::copy(payload.begin(), payload.end(), out.begin());
  return Status::Ok();
}

Status RemoteStore::Remove(const ShardId& id) {
  wire::Request request;
  request.mutable_delete_()->set_shard_id(IdBytes(id));
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  return StatusFromResponse(reply.response);
}

Result<ShardInfo> RemoteStore::Stat(const ShardId& id) {
  wire::Request request;
  request.mutable_stat()->set_shard_id(IdBytes(id));
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  QUID_RETURN_IF_ERROR(StatusFromResponse(reply.response));
  if (!reply.response.has_info()) {
    return Status::Corrupt("host " + impl_->core->where + " answered a stat without info");
  }
  ShardInfo info;
  info.size = reply.response.info().size();
  info.mtime_ns = reply.response.info().mtime_ns();
  return info;
}

Status RemoteStore::List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) {
  std::string after;
  for (;;) {
    wire::Request request;
    wire::ListShards* list = request.mutable_list();
    list->set_after(after);
    list->set_limit(kListPageEntries);
    QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
    QUID_RETURN_IF_ERROR(StatusFromResponse(reply.response));
    const wire::ListResult& page = reply.response.list();
    for (const wire::ListEntry& entry : page.entries()) {
      ShardId id;
      if (entry.shard_id().size() != id.bytes.size() || entry.shard_id() <= after) {
        // Pages must advance, or a lying host could keep us here forever.
        return Status::Corrupt("host " + impl_->core->where + " listed a bad shard id");
      }
      std::memcpy(id.bytes.data(), entry.shard_id().data(), id.bytes.size());
      ShardInfo info;
      info.size = entry.size();
      info.mtime_ns = entry.mtime_ns();
      if (!fn(id, info)) return Status::Ok();
      after = entry.shard_id();
    }
    if (!page.more()) return Status::Ok();
    if (page.entries().empty()) {
      return Status::Corrupt("host " + impl_->core->where + " sent an empty page with more");
    }
  }
}

Result<StoreUsage> RemoteStore::Usage() {
  wire::Request request;
  request.mutable_usage();
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  QUID_RETURN_IF_ERROR(StatusFromResponse(reply.response));
  const wire::Usage& usage = reply.response.usage();
  StoreUsage out;
  out.used_bytes = usage.used_bytes();
  out.capacity_bytes = usage.capacity_bytes();
  out.shard_count = usage.shard_count();
  return out;
}

namespace {

// The stamp a VolumeStamp reply names: nullopt for none, kCorrupt for a malformed one.
Result<std::optional<StoreStamp>> StampOfReply(const Reply& reply, const std::string& where) {
  QUID_RETURN_IF_ERROR(StatusFromResponse(reply.response));
  if (!reply.response.has_stamp()) {
    return Status::Corrupt("host " + where + " answered a stamp request without a stamp");
  }
  const std::string& raw = reply.response.stamp().stamp();
  if (raw.empty()) return std::optional<StoreStamp>();
  Result<StoreStamp> stamp = StoreStamp::FromBytes(raw);
  if (!stamp.ok()) return Status::Corrupt("host " + where + ": " + stamp.status().message());
  return std::optional<StoreStamp>(*stamp);
}

}  // namespace

Result<std::optional<StoreStamp>> RemoteStore::ReadStamp() {
  wire::Request request;
  request.mutable_stamp()->set_claim(false);
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  return StampOfReply(reply, impl_->core->where);
}

Result<StoreStamp> RemoteStore::ClaimStamp(const StoreStamp& stamp) {
  wire::Request request;
  wire::VolumeStamp* ask = request.mutable_stamp();
  ask->set_stamp(stamp.bytes.data(), stamp.bytes.size());
  ask->set_claim(true);
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  QUID_ASSIGN_OR_RETURN(std::optional<StoreStamp> held, StampOfReply(reply, impl_->core->where));
  if (!held) return Status::Corrupt("host " + impl_->core->where + " kept no stamp after a claim");
  return *held;
}

Status RemoteStore::Ping() {
  wire::Request request;
  request.mutable_ping();
  QUID_ASSIGN_OR_RETURN(Reply reply, impl_->core->Call(std::move(request), {}));
  return StatusFromResponse(reply.response);
}

Result<PublicKey> ProbeHostKey(const std::string& host, uint16_t port, const NodeIdentity& identity,
                               int64_t timeout_ms) {
  QUID_ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Start("quid-probe"));
  RemoteStoreOptions options;
  options.host = host;
  options.port = port;
  options.identity = identity;
  options.connect_timeout_ms = timeout_ms;
  options.request_timeout_ms = timeout_ms;
  options.connections = 1;
  QUID_ASSIGN_OR_RETURN(std::shared_ptr<Core> core,
                        MakeCore(std::move(options), std::nullopt, loop.get()));
  auto pending = std::make_shared<Pending>();
  loop->Post([core, pending] { core->Send(pending, nullptr); });
  // The connect timer fires first; the extra second only covers a stalled loop.
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms + 1000);
  Result<Reply> reply = core->Wait(pending, deadline);
  CloseOnLoop(core);
  if (!reply.ok()) return reply.status();
  return reply->peer;
}

}  // namespace quid::net
