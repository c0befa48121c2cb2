// Volume creation, opening (key unwrap, journal replay, background start) and closing.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "storage/base/env.h"
#include "storage/meta/metadata_keys.h"
#include "storage/stores/distinct_stores.h"
#include "storage/stores/folder_store.h"
#include "storage/stores/stamped_store.h"
#include "storage/volume/volume_impl.h"

namespace quid {
namespace {

constexpr uint32_t kFormatVersion = 1;
constexpr size_t kIoThreads = 16;
constexpr size_t kCpuThreads = 2;

std::string MetaDir(const std::string& home) {
  return home + "/meta";
}
std::string JournalDir(const std::string& home) {
  return home + "/journal";
}

// Stands in for a store that could not be opened (a missing disk): every call fails with
// kUnavailable, so the volume still mounts and serves what the other stores hold.
class OfflineStore : public ShardStore {
 public:
  OfflineStore(std::string name, std::string reason)
      : name_(std::move(name)), reason_(std::move(reason)) {}
  std::string name() const override { return name_; }
  Status Put(const ShardId&, ByteSpan) override { return Down(); }
  Result<Bytes> Get(const ShardId&) override { return Down(); }
  Status ReadRange(const ShardId&, uint64_t, MutableByteSpan) override { return Down(); }
  Status Remove(const ShardId&) override { return Down(); }
  Result<ShardInfo> Stat(const ShardId&) override { return Down(); }
  Status List(const std::function<bool(const ShardId&, const ShardInfo&)>&) override {
    return Down();
  }
  Result<StoreUsage> Usage() override { return Down(); }
  Result<std::optional<StoreStamp>> ReadStamp() override { return Down(); }
  Result<StoreStamp> ClaimStamp(const StoreStamp&) override { return Down(); }

 private:
  Status Down() const { return Status::Unavailable(name_ + " is offline: " + reason_); }
  std::string name_;
  std::string reason_;
};

Result<SecretKey> UnwrapMasterKey(const meta::VolumeConfig& config, const std::string& passphrase,
                                  const std::string& key_file, Env* env) {
  const std::string& wrapped = config.wrapped_master_key();
  if (IsKeyFileWrapped(wrapped)) {
    if (key_file.empty())
      return Status::BadKey("this volume is opened with its key file (--key-file)");
    QUID_ASSIGN_OR_RETURN(SecretKey file_key, ReadKeyFile(key_file, env));
    return UnwrapWithKeyFile(wrapped, file_key);
  }
  if (passphrase.empty()) return Status::BadKey("a passphrase is needed to open this volume");
  return Unwrap(wrapped, passphrase);
}

// Opens the stores a new volume is given, each named once, and stamps them for it: first
// every store is checked (none may be another volume's), then every one is claimed, so a
// refused init leaves no store stamped for a volume that never came to be.
Status StampNewStores(const VolumeInitOptions& options, Env* env, const StoreStamp& mine,
                      std::vector<std::string>* locations) {
  for (const std::string& folder : options.store_folders)
    QUID_RETURN_IF_ERROR(env->CreateDirs(folder, 0700));
  QUID_RETURN_IF_ERROR(CheckDistinctFolders(env, options.store_folders));
  std::vector<HostEntry> hosts;
  for (const StoreSpec& host : options.hosts) {
    if (host.public_key.empty())
      return Status::Invalid("host " + host.location + " has no pinned key");
    hosts.push_back(HostEntry{host.location, host.public_key});
  }
  QUID_RETURN_IF_ERROR(CheckDistinctHosts(hosts));

  std::vector<std::shared_ptr<ShardStore>> stores;
  for (const std::string& folder : options.store_folders) {
    QUID_ASSIGN_OR_RETURN(auto store, FolderStore::Open(folder, 0, env));
    stores.push_back(store);
    char resolved[PATH_MAX];
    // Only the real disk has a current directory to resolve against.
    const bool real = env == Env::Default() && ::realpath(folder.c_str(), resolved);
    locations->push_back(real ? resolved : folder);
  }
  if (options.store_factory) {
    for (const StoreSpec& host : options.hosts) {
      Result<std::shared_ptr<ShardStore>> store = options.store_factory(host);
      if (!store.ok())
        return Status(store.status().code(), host.location + ": " + store.status().message());
      stores.push_back(store.value());
    }
  }
  for (const auto& store : stores) QUID_RETURN_IF_ERROR(CheckStoreIsFree(*store, mine));
  for (const auto& store : stores) QUID_RETURN_IF_ERROR(ClaimForVolume(*store, mine));
  return Status::Ok();
}

}  // namespace

Status Volume::Init(const VolumeInitOptions& options) {
  if (options.home.empty()) return Status::Invalid("no home folder given");
  if (options.data_shards < 1 || options.data_shards > kMaxDataShards ||
      options.parity_shards < 0 || options.parity_shards > kMaxParityShards)
    return Status::Invalid("data shards must be 1.." + std::to_string(kMaxDataShards) +
                           " and parity shards 0.." + std::to_string(kMaxParityShards));
  if (options.store_folders.empty() && options.hosts.empty() && !options.on_leases)
    return Status::Invalid("a volume needs at least one store (--store DIR or --peer HOST:PORT)");
  if (options.chunk_size < 64 * 1024 || options.chunk_size > (64u << 20))
    return Status::Invalid("chunk size must be between 64K and 64M");
  Env* env = options.env ? options.env : Env::Default();
  if (env->Exists(MetaDir(options.home)))
    return Status::Exists("a volume already exists in " + options.home);
  QUID_RETURN_IF_ERROR(env->CreateDirs(options.home, 0700));

  SecretKey master = SecretKey::Random();
  std::string wrapped;
  if (!options.key_file.empty()) {
    QUID_ASSIGN_OR_RETURN(SecretKey file_key, ReadKeyFile(options.key_file, env));
    QUID_ASSIGN_OR_RETURN(wrapped, WrapWithKeyFile(master, file_key));
  } else {
    if (options.passphrase.empty()) return Status::Invalid("a passphrase is needed");
    QUID_ASSIGN_OR_RETURN(wrapped, WrapWithPassphrase(master, options.passphrase, options.kdf));
  }

  meta::VolumeConfig config;
  config.set_format_version(kFormatVersion);
  config.set_data_shards(static_cast<uint32_t>(options.data_shards));
  config.set_parity_shards(static_cast<uint32_t>(options.parity_shards));
  config.set_chunk_size(options.chunk_size);
  config.set_cipher(static_cast<uint32_t>(DefaultCipher()));
  config.set_inline_max(options.inline_max);
  config.set_wrapped_master_key(wrapped);
  SecretKey volume_id = SecretKey::Random();
  config.set_volume_id(std::string(reinterpret_cast<const char*>(volume_id.data()), 16));
  config.set_created_ns(RealClock::Get()->now_ns());
  std::vector<std::string> locations;
  QUID_RETURN_IF_ERROR(
      StampNewStores(options, env, StoreStamp::ForVolume(config.volume_id()), &locations));
  for (const std::string& location : locations) {
    auto* entry = config.add_stores();
    entry->set_kind("folder");
    entry->set_location(location);
  }
  config.set_on_leases(options.on_leases);
  for (const StoreSpec& host : options.hosts) {
    auto* entry = config.add_stores();
    entry->set_kind(host.kind);
    entry->set_location(host.location);
    entry->set_public_key(std::string(host.public_key.begin(), host.public_key.end()));
  }

  QUID_ASSIGN_OR_RETURN(auto db, MetaDb::Open(MetaDir(options.home), /*create=*/true, env));
  rocksdb::WriteBatch batch;
  db->PutProto(&batch, Cf::kConfig, std::string(kVolumeConfigKey), config);
  meta::Counters counters;
  counters.set_next_ino(kRootIno + 1);
  db->PutProto(&batch, Cf::kConfig, std::string(kCountersKey), counters);
  meta::Inode root;
  const int64_t now = RealClock::Get()->now_ns();
  root.set_mode(S_IFDIR | 0755);
  root.set_uid(::getuid());
  root.set_gid(::getgid());
  root.set_nlink(2);
  root.set_atime_ns(now);
  root.set_mtime_ns(now);
  root.set_ctime_ns(now);
  root.set_btime_ns(now);
  db->PutProto(&batch, Cf::kInodes, InodeKey(kRootIno), root);
  return db->Write(&batch, /*sync=*/true);
}

std::shared_ptr<ShardStore> VolumeImpl::StampForVolume(std::shared_ptr<ShardStore> store,
                                                       bool claim_now) {
  // Every store is used only once it carries this volume's stamp (stamped_store.h), so no
  // sweep ever lists another volume's store. Folders and test stores answer at once and
  // are claimed now, so the mount can say which belong to another volume; a host is
  // claimed on first use (it may be away now).
  auto stamped =
      std::make_shared<StampedStore>(std::move(store), StoreStamp::ForVolume(config_.volume_id()));
  if (claim_now) {
    const Status claimed = stamped->Verify();
    if (stamped->foreign()) {
      spdlog::warn("{}; it counts as down", claimed.message());
      store_warnings_.push_back(claimed.message() + "; it counts as down");
    }
  }
  return stamped;
}

std::shared_ptr<ShardStore> VolumeImpl::OpenConfiguredStore(const meta::StoreConfig& entry) {
  StoreSpec spec{entry.kind(), entry.location(),
                 Bytes(entry.public_key().begin(), entry.public_key().end())};
  Result<std::shared_ptr<ShardStore>> opened = Status(Code::kNotSupported, "");
  if (spec.kind == "folder") {
    auto folder = FolderStore::Open(spec.location, 0, env_);
    opened = folder.ok() ? Result<std::shared_ptr<ShardStore>>(folder.value())
                         : Result<std::shared_ptr<ShardStore>>(folder.status());
  } else if (options_.store_factory) {
    opened = options_.store_factory(spec);
  } else {
    opened = Status(Code::kNotSupported, "no way to open a store of kind " + spec.kind);
  }
  if (!opened.ok()) {
    spdlog::warn("store {} is offline: {}", spec.location, opened.status().message());
    return std::make_shared<OfflineStore>(spec.kind + ":" + spec.location,
                                          opened.status().message());
  }
  return StampForVolume(opened.value(), /*claim_now=*/spec.kind == "folder");
}

Result<std::unique_ptr<Volume>> Volume::Open(const VolumeOpenOptions& options) {
  auto volume = std::make_unique<VolumeImpl>();
  QUID_RETURN_IF_ERROR(volume->Start(options));
  return std::unique_ptr<Volume>(std::move(volume));
}

Status VolumeImpl::Start(const VolumeOpenOptions& options) {
  options_ = options;
  clock_ = options.clock ? options.clock : RealClock::Get();
  env_ = options.env ? options.env : Env::Default();
  if (!env_->Exists(MetaDir(options.home)))
    return Status::NotFound("no volume in " + options.home + " (run quid init first)");
  QUID_ASSIGN_OR_RETURN(db_, MetaDb::Open(MetaDir(options.home), /*create=*/false, env_));
  QUID_RETURN_IF_ERROR(db_->GetProto(Cf::kConfig, std::string(kVolumeConfigKey), &config_));
  if (config_.format_version() != kFormatVersion)
    return Status::Corrupt("unknown volume format " + std::to_string(config_.format_version()));

  QUID_ASSIGN_OR_RETURN(SecretKey master,
                        UnwrapMasterKey(config_, options.passphrase, options.key_file, env_));
  if (config_.on_leases() && options.lease_hosts) QUID_RETURN_IF_ERROR(FollowLeases());
  keys_ = VolumeKeys::Derive(master);
  chunker_ = std::make_unique<FixedSizeChunker>(config_.chunk_size());

  std::vector<std::shared_ptr<ShardStore>> stores;
  if (!options.stores_override.empty()) {
    // Test stores answer at once: claimed now, like folders.
    for (const auto& store : options.stores_override)
      stores.push_back(StampForVolume(store, /*claim_now=*/true));
  } else {
    for (const auto& entry : config_.stores()) stores.push_back(OpenConfiguredStore(entry));
  }
  io_pool_ = std::make_unique<ThreadPool>(kIoThreads);
  cpu_pool_ = std::make_unique<ThreadPool>(kCpuThreads);
  ChunkStoreOptions chunk_options;
  chunk_options.data_shards = static_cast<int>(config_.data_shards());
  chunk_options.parity_shards = static_cast<int>(config_.parity_shards());
  chunk_options.cipher = static_cast<Cipher>(config_.cipher());
  if (!CipherAvailable(chunk_options.cipher)) chunk_options.cipher = Cipher::kXChaCha20Poly1305;
  QUID_ASSIGN_OR_RETURN(chunks_, ChunkStore::Create(keys_, chunk_options, std::move(stores),
                                                    std::make_shared<RendezvousPlacement>(
                                                        static_cast<int>(config_.parity_shards())),
                                                    io_pool_.get(), clock_));
  {
    // Hosts' failure domains as the node reported them at open (lease_hosts.cc).
    std::lock_guard lock(leases_mu_);
    for (size_t i = 0; i < labels_.size() && i < chunks_->store_count(); ++i)
      chunks_->SetStoreDomains(static_cast<uint32_t>(i), labels_[i]);
  }
  reader_ =
      std::make_unique<ChunkReader>(db_.get(), chunks_.get(), chunker_.get(), options.cache_bytes);
  gc_ = std::make_unique<GarbageCollector>(db_.get(), chunks_.get(), &read_gate_, clock_,
                                           options.cleanup_grace_ns);

  meta::Counters counters;
  QUID_RETURN_IF_ERROR(db_->GetProto(Cf::kConfig, std::string(kCountersKey), &counters));
  ns_ = std::make_unique<Namespace>(
      db_.get(), gc_.get(), clock_, config_.volume_id(), counters.next_ino(),
      [this] { WakeFlusher(); }, options.destroy_batch_extents);
  // The quota counts every chunk record once here (one pass over the chunk records), then
  // follows commits and drops.
  quota_ = std::make_unique<Quota>(
      static_cast<int>(config_.data_shards()), static_cast<int>(config_.parity_shards()),
      ShardSizeForChunk(config_.chunk_size(), static_cast<int>(config_.data_shards())));
  {
    auto it = db_->NewIterator(Cf::kChunks);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      meta::Chunk chunk;
      if (chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        quota_->AddChunk(chunk.shard_size(),
                         {chunk.stores().data(), static_cast<size_t>(chunk.stores_size())});
    }
  }
  ns_->AttachQuota(quota_.get());
  RefreshQuota();

  JournalOptions journal_options;
  journal_options.dir = JournalDir(options.home);
  journal_options.capacity_bytes = options.journal_bytes;
  // At least eight segments: room comes back a segment at a time, so a small journal
  // must not be one segment that only frees when everything in it is stored.
  journal_options.segment_bytes =
      std::clamp<uint64_t>(options.journal_bytes / 8, 1ull << 20, 64ull << 20);
  journal_options.full_wait_ns = options.journal_wait_ns;
  journal_options.clock = clock_;
  journal_options.env = env_;
  journal_options.min_seq = counters.journal_seq();
  Status replayed;
  {
    auto lock = ns_->Lock();
    auto journal = Journal::Open(journal_options, [&](Journal* j, const JournalRecord& record) {
      Status s = ns_->ApplyRecord(record, j);
      if (!s.ok() && replayed.ok()) replayed = s;
    });
    if (!journal.ok()) return journal.status();
    journal_ = std::move(journal).value();
    ns_->AttachJournal(journal_.get());
  }
  QUID_RETURN_IF_ERROR(replayed);
  {
    auto lock = ns_->Lock();
    QUID_RETURN_IF_ERROR(ns_->RemoveOrphans());
  }
  FlusherParts parts;
  parts.ns = ns_.get();
  parts.db = db_.get();
  parts.journal = journal_.get();
  parts.chunks = chunks_.get();
  parts.reader = reader_.get();
  parts.gc = gc_.get();
  parts.cpu_pool = cpu_pool_.get();
  parts.io_pool = io_pool_.get();
  parts.chunker = chunker_.get();
  parts.keys = &keys_;
  parts.inline_max = config_.inline_max();
  parts.clock = clock_;
  parts.write_order_mu = &write_order_mu_;
  parts.shard_move_mu = &shard_move_mu_;
  parts.quota = quota_.get();
  parts.periodic = [this] { RefreshQuota(); };
  flusher_ = std::make_unique<Flusher>(parts);
  if (options.repair_enabled) {
    RepairerParts repair;
    repair.ns = ns_.get();
    repair.db = db_.get();
    repair.chunks = chunks_.get();
    repair.io_pool = io_pool_.get();
    repair.quota = quota_.get();
    repair.clock = clock_;
    repair.policy = options.repair;
    repair.shard_move_mu = &shard_move_mu_;
    // The host's clock stamps its files: allow it to run a little behind ours (a minute,
    // or half the grace when that is shorter) before a file from before it left is stale.
    const int64_t skew = std::min<int64_t>(60'000'000'000, options.repair.host_grace_ns / 2);
    repair.on_store_returned = [this, skew](uint32_t store, int64_t away_since) {
      gc_->SweepReturnedStore(store, away_since - skew);
    };
    repairer_ = std::make_unique<Repairer>(repair);
    reader_->SetDegradedHook([this](const ChunkId& id) { repairer_->SuspectChunk(id); });
  }
  if (config_.on_leases() && options.lease_hosts && options.lease_refresh_ns > 0)
    lease_watch_ = std::thread([this] { WatchLeases(); });
  return Status::Ok();
}

VolumeImpl::~VolumeImpl() {
  (void)Close();
}

Status VolumeImpl::Close() {
  {
    std::lock_guard lock(close_mu_);
    if (closed_) return Status::Ok();
    closed_ = true;
  }
  {
    std::lock_guard lock(lease_watch_mu_);
    lease_watch_stop_ = true;
  }
  lease_watch_cv_.notify_all();
  if (lease_watch_.joinable()) lease_watch_.join();
  if (repairer_) repairer_->Stop();
  if (flusher_) flusher_->Stop();
  Status synced = Status::Ok();
  if (journal_) synced = journal_->Sync();
  if (db_) {
    Status s = db_->SyncWal();
    if (synced.ok()) synced = s;
  }
  // Journal references in the dirty map die with the journal; the files stay on disk.
  ns_.reset();
  reader_.reset();  // finishes queued prefetches while the stores still exist
  gc_.reset();
  chunks_.reset();
  io_pool_.reset();
  cpu_pool_.reset();
  journal_.reset();
  db_.reset();
  return synced;
}

}  // namespace quid
