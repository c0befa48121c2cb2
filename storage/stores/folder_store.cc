#include "storage/stores/folder_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/base/byte_order.h"
#include "storage/erasure/checksum.h"

namespace quid {
namespace {

constexpr char kMagic[4] = {'Q', 'S', 'H', 'D'};
constexpr uint32_t kFormatVersion = 1;
constexpr std::string_view kShardSuffix = ".shard";
// Temp files are "<hex>.shard.tmp.<pid>.<counter>": never a valid shard name, so List
// skips them, and recognisable, so Open removes them.
constexpr std::string_view kTempMarker = ".tmp.";
constexpr size_t kShardNameLength = kShardIdBytes * 2 + kShardSuffix.size();

std::array<uint8_t, FolderStore::kHeaderBytes> EncodeHeader(ByteSpan payload) {
  std::array<uint8_t, FolderStore::kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, sizeof(kMagic));
  PutBigEndian32(kFormatVersion, h.data() + 4);
  PutBigEndian64(payload.size(), h.data() + 8);
  PutBigEndian32(Crc32c(payload), h.data() + 16);
  PutBigEndian32(Crc32c(ByteSpan(h.data(), 20)), h.data() + 20);
  return h;
}

using Header = FolderStore::ShardHeader;

// Checks magic, version and header CRC, and that the file holds exactly the payload the
// header announces. Returns a reason for the caller's kCorrupt message, or empty.
std::string DecodeHeader(const uint8_t* h, uint64_t file_size, Header* out) {
  if (std::memcmp(h, kMagic, sizeof(kMagic)) != 0) return "bad magic";
  if (GetBigEndian32(h + 20) != Crc32c(ByteSpan(h, 20))) return "header checksum mismatch";
  uint32_t version = GetBigEndian32(h + 4);
  if (version != kFormatVersion) return "unknown format version " + std::to_string(version);
  out->payload_length = GetBigEndian64(h + 8);
  out->payload_crc = GetBigEndian32(h + 16);
  if (file_size - FolderStore::kHeaderBytes != out->payload_length) {
    return "file holds " + std::to_string(file_size - FolderStore::kHeaderBytes) +
           " payload bytes, header says " + std::to_string(out->payload_length);
  }
  return {};
}

// Payload bytes a shard file of `file_size` bytes accounts for. Used for every counter
// update, so the counters stay consistent even for a truncated file.
uint64_t PayloadBytes(uint64_t file_size) {
  return file_size > FolderStore::kHeaderBytes ? file_size - FolderStore::kHeaderBytes : 0;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A fan-out folder name: two lower-case hex digits.
bool IsFanoutName(std::string_view name) {
  return name.size() == 2 && IsLowerHex(name);
}

// True if `name` is a shard file that belongs in fan-out folder `fanout`.
bool ParseShardName(std::string_view name, std::string_view fanout, ShardId* id) {
  if (name.size() != kShardNameLength || !name.ends_with(kShardSuffix)) return false;
  std::string_view hex = name.substr(0, kShardIdBytes * 2);
  if (!IsLowerHex(hex) || hex.substr(0, 2) != fanout) return false;
  return ShardId::FromHexString(hex, id);
}

bool IsTempName(std::string_view name) {
  return name.find(kShardSuffix) != std::string_view::npos &&
         name.find(kTempMarker) != std::string_view::npos;
}

// The fan-out folders under `dir`; entries with a fan-out name that are not folders are
// garbage and skipped.
Status ListFanouts(Env* env, const std::string& dir, std::vector<std::string>* out) {
  return env->ListDir(dir, [&](const std::string& name) {
    if (!IsFanoutName(name)) return true;
    auto st = env->Stat(dir + "/" + name);
    if (st.ok() && st->is_dir) out->push_back(name);
    return true;
  });
}

// The reason an Env call failed ("No such file or directory"), without the path it names:
// errors of a host's store reach tenants, who have no business learning the host's layout.
std::string Because(const Status& s) {
  const std::string& m = s.message();
  const size_t colon = m.rfind(": ");
  return colon == std::string::npos ? m : m.substr(colon + 2);
}

// Prefixes a store's name to an Env error, keeping its code.
Status In(const std::string& store, const Status& s) {
  return s.ok() ? s : Status(s.code(), store + ": " + Because(s));
}

}  // namespace

FolderStore::FolderStore(Env* env, std::string dir, uint64_t capacity_bytes,
                         std::unique_ptr<FileLock> lock)
    : env_(env), dir_(std::move(dir)), capacity_bytes_(capacity_bytes), lock_(std::move(lock)) {}

FolderStore::~FolderStore() = default;

Result<std::shared_ptr<FolderStore>> FolderStore::Open(const std::string& dir,
                                                       uint64_t capacity_bytes, Env* env) {
  if (dir.empty()) return Status::Invalid("folder store: empty path");
  if (!env) env = Env::Default();
  std::string path = dir;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  // CreateDirs makes new folders' entries durable, like the shards that will be in them.
  QUID_RETURN_IF_ERROR(In("folder:" + path, env->CreateDirs(path, 0700)));
  auto lock = env->LockFile(path + "/LOCK");
  if (!lock.ok()) {
    if (lock.status().code() == Code::kBusy)
      return Status(Code::kBusy, "folder:" + path + ": in use by another store");
    return In("folder:" + path, lock.status());
  }
  std::shared_ptr<FolderStore> store(
      new FolderStore(env, std::move(path), capacity_bytes, std::move(lock).value()));
  QUID_RETURN_IF_ERROR(store->Scan());
  return store;
}

Status FolderStore::Scan() {
  std::vector<std::string> fanouts;
  QUID_RETURN_IF_ERROR(In(name(), ListFanouts(env_, dir_, &fanouts)));

  uint64_t used = 0;
  uint64_t count = 0;
  for (const std::string& fanout : fanouts) {
    std::string fanout_path = dir_ + "/" + fanout;
    bool removed_temp = false;
    Status failed;
    QUID_RETURN_IF_ERROR(In(name(), env_->ListDir(fanout_path, [&](const std::string& entry) {
      std::string file = fanout_path + "/" + entry;
      ShardId id;
      if (ParseShardName(entry, fanout, &id)) {
        auto st = env_->Stat(file);
        if (st.ok() && !st->is_dir) {
          used += PayloadBytes(st->size);
          ++count;
        }
      } else if (IsTempName(entry)) {
        // An upload cut short by a crash: never acknowledged, so safe to drop.
        Status s = env_->Remove(file);
        if (!s.ok() && s.code() != Code::kNotFound) {
          failed = In(name(), s);
          return false;
        }
        removed_temp = true;
      }
      return true;
    })));
    QUID_RETURN_IF_ERROR(failed);
    if (removed_temp) QUID_RETURN_IF_ERROR(In(name(), env_->SyncDir(fanout_path)));
    uint8_t index = 0;
    if (FromHex(fanout, MutableByteSpan(&index, 1))) fanout_durable_[index].store(true);
  }
  // Makes every fan-out folder seen above durable, so Put can trust fanout_durable_.
  QUID_RETURN_IF_ERROR(In(name(), env_->SyncDir(dir_)));
  used_bytes_.store(used);
  shard_count_.store(count);
  return Status::Ok();
}

std::string FolderStore::name() const {
  return "folder:" + dir_;
}

std::string FolderStore::FanoutDir(const ShardId& id) const {
  return dir_ + "/" + ToHex(ByteSpan(id.bytes.data(), 1));
}

std::string FolderStore::ShardPath(const ShardId& id) const {
  return FanoutDir(id) + "/" + id.hex() + std::string(kShardSuffix);
}

std::string FolderStore::Describe(const std::string& what, const ShardId& id) const {
  return name() + ": " + what + " shard " + id.hex();
}

Status FolderStore::EnsureFanoutDir(const ShardId& id) {
  std::atomic<bool>& durable = fanout_durable_[id.bytes[0]];
  if (durable.load(std::memory_order_acquire)) return Status::Ok();
  // Under the mutex so that a second Put into a folder being created waits for the
  // first one's fsync of <dir> instead of acknowledging before it.
  std::lock_guard<std::mutex> lock(fanout_mu_);
  if (durable.load(std::memory_order_acquire)) return Status::Ok();
  Status made = env_->CreateDir(FanoutDir(id), 0700);
  if (!made.ok() && made.code() != Code::kExists) return In(name(), made);
  QUID_RETURN_IF_ERROR(In(name(), env_->SyncDir(dir_)));
  durable.store(true, std::memory_order_release);
  return Status::Ok();
}

Result<uint64_t> FolderStore::FilesystemFreeBytes() const {
  auto free = env_->FreeBytes(dir_);
  if (!free.ok()) return In(name(), free.status());
  return free;
}

Status FolderStore::CheckSpace(const ShardId& id, uint64_t size, uint64_t old_size) const {
  if (capacity_bytes_ != 0) {
    uint64_t used = used_bytes_.load();
    uint64_t after = used - std::min(old_size, used) + size;
    if (after > capacity_bytes_) {
      uint64_t free = capacity_bytes_ > used ? capacity_bytes_ - used : 0;
      return Status::NoSpace(Describe("put", id) + ": " + std::to_string(size) +
                             " bytes do not fit, " + std::to_string(free) + " of " +
                             std::to_string(capacity_bytes_) + " bytes free");
    }
    return Status::Ok();
  }
  // The old file stays until the rename, so the whole new file must fit beside it.
  QUID_ASSIGN_OR_RETURN(uint64_t free, FilesystemFreeBytes());
  if (size + kHeaderBytes > free) {
    return Status::NoSpace(Describe("put", id) + ": " + std::to_string(size) +
                           " bytes do not fit, " + std::to_string(free) +
                           " bytes free on the filesystem");
  }
  return Status::Ok();
}

uint64_t FolderStore::PayloadOf(const std::string& path) const {
  auto st = env_->Stat(path);
  return st.ok() ? PayloadBytes(st->size) : 0;
}

Status FolderStore::Put(const ShardId& id, ByteSpan data) {
  const std::string final_path = ShardPath(id);
  // Early refusal so a full store does not write a file only to throw it away; the check
  // that counts is repeated under mutate_mu_ below.
  QUID_RETURN_IF_ERROR(CheckSpace(id, data.size(), PayloadOf(final_path)));
  QUID_RETURN_IF_ERROR(EnsureFanoutDir(id));

  const std::string temp_path = final_path + std::string(kTempMarker) + std::to_string(::getpid()) +
                                "." + std::to_string(temp_counter_.fetch_add(1));
  auto fail = [&](const std::string& what, const Status& s) {
    (void)env_->Remove(temp_path);
    return Status(s.code(), Describe(what, id) + ": " + Because(s));
  };
  {
    auto file = env_->Open(temp_path, OpenMode::kCreateExclusive, 0600);
    if (!file.ok()) return fail("create temp file for", file.status());
    std::array<uint8_t, kHeaderBytes> header = EncodeHeader(data);
    const ByteSpan parts[2] = {ByteSpan(header.data(), header.size()), data};
    Status s = (*file)->WriteAt(0, parts);
    if (!s.ok()) return fail("write", s);
    s = (*file)->Sync();
    if (!s.ok()) return fail("fsync", s);
  }
  {
    std::lock_guard<std::mutex> lock(mutate_mu_);
    auto st = env_->Stat(final_path);
    const bool existed = st.ok();
    const uint64_t old_size = existed ? PayloadBytes(st->size) : 0;
    // Only a configured capacity is checked again: against the filesystem's free space
    // the temp file already has its room.
    if (capacity_bytes_ != 0) {
      Status space = CheckSpace(id, data.size(), old_size);
      if (!space.ok()) {
        (void)env_->Remove(temp_path);
        return space;
      }
    }
    Status renamed = env_->Rename(temp_path, final_path);
    if (!renamed.ok()) return fail("rename", renamed);
    used_bytes_.fetch_add(data.size());
    used_bytes_.fetch_sub(old_size);
    if (!existed) shard_count_.fetch_add(1);
  }
  Status synced = env_->SyncDir(FanoutDir(id));
  if (!synced.ok())
    return Status(synced.code(), Describe("fsync folder of", id) + ": " + Because(synced));
  return Status::Ok();
}

Result<FolderStore::ShardHeader> FolderStore::OpenShard(const ShardId& id, const std::string& what,
                                                        std::unique_ptr<File>* out) const {
  auto file = env_->Open(ShardPath(id), OpenMode::kRead);
  if (!file.ok())
    return Status(file.status().code(), Describe(what, id) + ": " + Because(file.status()));
  auto size = (*file)->Size();
  if (!size.ok())
    return Status(size.status().code(), Describe("stat", id) + ": " + Because(size.status()));
  const uint64_t file_size = *size;
  if (file_size < kHeaderBytes) {
    return Status::Corrupt(Describe(what, id) + ": truncated header (" + std::to_string(file_size) +
                           " bytes)");
  }
  std::array<uint8_t, kHeaderBytes> header;
  auto n = (*file)->ReadAt(0, header);
  if (!n.ok()) return Status(n.status().code(), Describe("read", id) + ": " + Because(n.status()));
  if (*n != header.size()) return Status::Corrupt(Describe(what, id) + ": truncated header");
  Header h;
  std::string bad = DecodeHeader(header.data(), file_size, &h);
  if (!bad.empty()) return Status::Corrupt(Describe(what, id) + ": " + bad);
  *out = std::move(file).value();
  return h;
}

Result<Bytes> FolderStore::Get(const ShardId& id) {
  std::unique_ptr<File> file;
  QUID_ASSIGN_OR_RETURN(Header h, OpenShard(id, "get", &file));
  Bytes payload(h.payload_length);
  auto n = file->ReadAt(kHeaderBytes, payload);
  if (!n.ok()) return Status(n.status().code(), Describe("read", id) + ": " + Because(n.status()));
  if (*n != h.payload_length) {
    return Status::Corrupt(Describe("get", id) + ": file shrank while reading");
  }
  if (Crc32c(payload) != h.payload_crc) {
    return Status::Corrupt(Describe("get", id) + ": payload checksum mismatch");
  }
  return payload;
}

Status FolderStore::ReadRange(const ShardId& id, uint64_t offset, MutableByteSpan out) {
  std::unique_ptr<File> file;
  QUID_ASSIGN_OR_RETURN(Header h, OpenShard(id, "read", &file));
  if (offset > h.payload_length || out.size() > h.payload_length - offset) {
    return Status::Invalid(Describe("read", id) + ": range " + std::to_string(offset) + "+" +
                           std::to_string(out.size()) + " past the end (" +
                           std::to_string(h.payload_length) + " bytes)");
  }
  auto n = file->ReadAt(kHeaderBytes + offset, out);
  if (!n.ok()) return Status(n.status().code(), Describe("read", id) + ": " + Because(n.status()));
  if (*n != out.size()) {
    return Status::Corrupt(Describe("read", id) + ": file shrank while reading");
  }
  return Status::Ok();
}

Status FolderStore::Remove(const ShardId& id) {
  const std::string path = ShardPath(id);
  {
    std::lock_guard<std::mutex> lock(mutate_mu_);
    auto st = env_->Stat(path);
    if (!st.ok()) {
      if (st.status().code() == Code::kNotFound) return Status::Ok();
      return Status(st.status().code(), Describe("remove", id) + ": " + Because(st.status()));
    }
    Status removed = env_->Remove(path);
    if (removed.code() == Code::kNotFound) return Status::Ok();
    if (!removed.ok())
      return Status(removed.code(), Describe("remove", id) + ": " + Because(removed));
    used_bytes_.fetch_sub(PayloadBytes(st->size));
    shard_count_.fetch_sub(1);
  }
  Status synced = env_->SyncDir(FanoutDir(id));
  if (!synced.ok())
    return Status(synced.code(), Describe("fsync folder of", id) + ": " + Because(synced));
  return Status::Ok();
}

Result<ShardInfo> FolderStore::Stat(const ShardId& id) {
  auto st = env_->Stat(ShardPath(id));
  if (!st.ok())
    return Status(st.status().code(), Describe("stat", id) + ": " + Because(st.status()));
  return ShardInfo{PayloadBytes(st->size), st->mtime_ns};
}

Status FolderStore::List(const std::function<bool(const ShardId&, const ShardInfo&)>& fn) {
  std::vector<std::string> fanouts;
  Status listed = ListFanouts(env_, dir_, &fanouts);
  if (!listed.ok()) return Status(listed.code(), name() + ": list: " + Because(listed));
  bool stopped = false;
  for (const std::string& fanout : fanouts) {
    const std::string fanout_path = dir_ + "/" + fanout;
    Status s = env_->ListDir(fanout_path, [&](const std::string& entry) {
      ShardId id;
      if (!ParseShardName(entry, fanout, &id)) return true;
      // A shard removed since the listing saw it is simply not listed.
      auto st = env_->Stat(fanout_path + "/" + entry);
      if (!st.ok() || st->is_dir) return true;
      if (!fn(id, ShardInfo{PayloadBytes(st->size), st->mtime_ns})) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (!s.ok()) return Status(s.code(), name() + ": list: " + Because(s));
    if (stopped) break;
  }
  return Status::Ok();
}

Result<std::optional<StoreStamp>> FolderStore::ReadStamp() {
  Result<std::optional<StoreStamp>> held = ReadStampFile(env_, dir_);
  if (!held.ok()) return In(name(), held.status());
  return held;
}

Result<StoreStamp> FolderStore::ClaimStamp(const StoreStamp& stamp) {
  std::lock_guard<std::mutex> lock(stamp_mu_);
  QUID_ASSIGN_OR_RETURN(std::optional<StoreStamp> held, ReadStamp());
  if (held) return *held;
  QUID_RETURN_IF_ERROR(In(name(), WriteStampFile(env_, dir_, stamp)));
  return stamp;
}

Result<StoreUsage> FolderStore::Usage() {
  StoreUsage usage;
  usage.used_bytes = used_bytes_.load();
  usage.shard_count = shard_count_.load();
  if (capacity_bytes_ != 0) {
    usage.capacity_bytes = capacity_bytes_;
  } else {
    QUID_ASSIGN_OR_RETURN(uint64_t free, FilesystemFreeBytes());
    usage.capacity_bytes = free + usage.used_bytes;
  }
  return usage;
}

}  // namespace quid
