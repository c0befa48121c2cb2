// Volume: one mounted namespace and its data, the only thing fs/ and cmd/ talk to.
//
// It knows nothing of FUSE: inode numbers are its own (kRootIno = 1), errors are Status
// values whose to_errno() is what a FUSE reply carries, and permission checks are left to
// the kernel (default_permissions). Every method is safe for concurrent use by multiple
// threads; a call that must reach the stores (a read of uncached data) blocks only its
// caller.
//
// Write path: Write() appends to the durable write-back journal and returns; a background
// flusher chunks, encrypts, encodes and stores the data, then commits extents in one
// RocksDB batch. Reads overlay those dirty ranges on the stored chunks.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/base/bytes.h"
#include "storage/base/clock.h"
#include "storage/base/env.h"
#include "storage/base/status.h"
#include "storage/crypto/keys.h"
#include "storage/repair/host_tracker.h"
#include "storage/repair/repair_policy.h"
#include "storage/repair/repair_progress.h"
#include "storage/stores/shard_store.h"

namespace quid {

using Ino = uint64_t;
constexpr Ino kRootIno = 1;
constexpr size_t kMaxNameBytes = 255;

struct Attr {
  Ino ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units actually stored (holes excluded)
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

// Who is asking: new inodes take this owner.
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// setattr: only the fields that are set change. Times: kTimeNow means "now".
struct SetAttrRequest {
  static constexpr int64_t kTimeNow = -1;
  std::optional<uint32_t> mode;  // permission bits only (07777)
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
};

enum class RenameFlags : unsigned { kNone = 0, kNoReplace = 1, kExchange = 2 };

enum class XattrMode { kAny, kCreateOnly, kReplaceOnly };

struct DirEntryInfo {
  std::string name;
  Attr attr;
};

struct VolumeStatus {
  struct Store {
    std::string name;
    bool reachable = false;
    uint64_t used_bytes = 0;
    uint64_t capacity_bytes = 0;
    uint64_t shard_count = 0;
    std::string problem;               // why it is not reachable (empty when it is)
    bool draining = false;             // its lease is ending: its shards are moving to other stores
    HostState state = HostState::kUp;  // as the repair engine sees it (lost: past the grace)
    // Caught failing audits (storage/repair/service_score.h): its shards count as lost.
    bool distrusted = false;
    uint64_t audits_ok = 0, audits_failed = 0;  // shards audited there since mount
    // Measured uptime in [0, 1]: the node daemon's heartbeats for a host, else the share of
    // this mount's probes it answered; -1 before any measurement.
    double uptime = -1;
  };
  std::vector<Store> stores;
  // Shards on stores whose leases end that found no other store with room at the last
  // pass: nothing is deleted, but they must move before the lease ends (get more leases).
  uint64_t stuck_shards = 0;
  int data_shards = 0;
  int parity_shards = 0;
  uint64_t files = 0;  // inodes
  uint64_t chunks = 0;
  uint64_t chunks_healthy = 0;   // k+m shards on distinct reachable stores
  uint64_t chunks_degraded = 0;  // not healthy, yet at least k shards exist
  uint64_t chunks_lost = 0;      // fewer than k shards exist (their hosts declared lost)
  // The share of time a chunk of this scheme is readable at the stores' measured uptimes
  // (storage/repair/availability.h); -1 before any store is measured.
  double scheme_availability = -1;
  // Shards a new chunk cannot put on distinct stores: k+m less the stores that can take
  // shards now (reachable, not draining, not distrusted). Above 0, new chunks double up.
  int placement_shortfall = 0;
  RepairProgress repair;
  uint64_t logical_bytes = 0;    // plaintext bytes in stored chunks
  uint64_t pending_bytes = 0;    // acknowledged, not yet stored on the stores
  uint64_t pending_deletes = 0;  // chunks whose shards await removal
  uint64_t degraded_reads = 0;
  uint64_t swept_shards = 0;    // unreferenced shards removed by the last sweep
  uint64_t cleanup_passes = 0;  // unreferenced-shard sweeps completed since mount
  uint64_t journal_used_bytes = 0;
  uint64_t journal_capacity_bytes = 0;
  // The journal is full and a writer waited in vain: writes fail with ENOSPC until the
  // stores take some of it (why: see the stores' reachability).
  bool journal_full = false;
  int writers_waiting = 0;  // writes waiting for journal room now
  // Journal records found unreadable at mount (damage, not a torn tail), one line each:
  // which segment, which bytes, which seqs, whether they had been synced.
  std::vector<std::string> journal_damage;
};

// `quid check`: what to check, and what it found.
struct CheckOptions {
  bool deep = false;    // fetch and verify every shard, not only that each is there
  bool repair = false;  // rebuild what is missing or bad, and wait until done
  int64_t repair_timeout_ns = 24ll * 3600 * 1'000'000'000;
  std::function<bool()> cancelled;  // polled between chunks: the check stops (kUnavailable)
};
struct CheckProgress {
  std::string phase;  // "listing", "checking", "verifying", "repairing"
  uint64_t done = 0;
  uint64_t total = 0;
};
struct CheckReport {
  uint64_t chunks = 0;
  uint64_t shards_checked = 0;    // found on their store (and, deep, verified)
  uint64_t shards_missing = 0;    // recorded, not on their store
  uint64_t shards_corrupt = 0;    // deep: present but wrong (rotted, or a store lying)
  uint64_t shards_unchecked = 0;  // on stores that did not answer
  uint64_t orphan_shards = 0;     // on a store, named by no record (the sweep removes them)
  uint64_t orphans_recent = 0;    // of those, younger than the sweep's grace (uploads in flight)
  uint64_t chunks_unrecoverable = 0;  // fewer than k good shards left anywhere
  uint64_t chunks_repaired = 0;
  std::vector<std::string> stores_unreachable;
  std::vector<std::string> problems;  // the first few, one line each
};

struct StatFs {
  uint64_t block_size = 4096;
  uint64_t total_blocks = 0;  // usable capacity after erasure-coding overhead
  uint64_t free_blocks = 0;
  uint64_t files = 0;
  uint64_t free_files = 0;
  uint32_t name_max = kMaxNameBytes;
};

// A store as the volume's configuration names it. The volume opens folder stores itself;
// other kinds (a host reached over the network) come from the caller's StoreFactory, so
// storage/ never learns about sockets.
struct StoreSpec {
  std::string kind;      // "folder" or "host"
  std::string location;  // a folder path, or HOST:PORT
  Bytes public_key;      // a host's pinned Ed25519 key (empty for folders)
};
using StoreFactory = std::function<Result<std::shared_ptr<ShardStore>>(const StoreSpec&)>;

// A host the node holds a lease on, as the node daemon reports it to the mount.
struct LeaseHost {
  StoreSpec spec;         // kind "host"; location empty while its address is not known
  bool draining = false;  // every lease with it is ending: move shards off it
  double uptime = -1;     // the node's measured uptime of the host, in [0, 1]; -1: unknown
  std::vector<std::string> labels;  // its failure domains (quid serve --label site=home)
};
// What a volume holds on one host, by its own count (the node daemon's ledger keeps it).
struct PlacedOnHost {
  Bytes public_key;
  uint64_t bytes = 0;  // raw shard bytes at the host's charge
  uint64_t puts_ok = 0, puts_failed = 0, reads_ok = 0, reads_failed = 0;
};
using LeaseHostsFn =
    std::function<Result<std::vector<LeaseHost>>(const std::vector<PlacedOnHost>& placed)>;

struct VolumeOpenOptions {
  std::string home;        // the node's home folder (metadata, journal)
  std::string passphrase;  // or key_file
  std::string key_file;
  // Plaintext read cache; 0 disables it. 96 MiB: with what a cold sequential read holds
  // in flight (twelve chunks ahead), the mount daemon stays near 200 MiB reading a 4 GiB
  // file, well under 256 (bench/demo_memory_bench.sh: 253 MiB with 128 MiB of cache, 526
  // with 256). It still holds twice the chunks a streaming reader has fetched ahead.
  uint64_t cache_bytes = 96ull << 20;
  uint64_t journal_bytes = 1ull << 30;  // journal capacity before writers wait
  // How long a writer waits for journal room before ENOSPC; once one has given up, later
  // writes that do not fit fail at once until the flusher frees room. Nothing but writes
  // (and truncates) ever waits for the journal.
  int64_t journal_wait_ns = 30'000'000'000;
  Clock* clock = nullptr;  // default RealClock
  Env* env = nullptr;      // the local disk; default Env::Default()
  // Shards younger than this are never swept as unreferenced (uploads may be in flight).
  int64_t cleanup_grace_ns = 600'000'000'000;
  // Opens stores of kinds other than "folder". A store it cannot open (or a kind with no
  // factory) is treated as offline: the volume still mounts.
  StoreFactory store_factory;
  // Extents per batch when an unlinked file is destroyed (a big file goes in several, so
  // no unlink holds the namespace lock for long). Tests set it small.
  size_t destroy_batch_extents = 1024;
  // For a volume on the node's leases: the hosts of the leases in force now (an error:
  // the node daemon does not answer, and the volume keeps the hosts it knows). Hosts not
  // yet in the volume are added, known ones (by key) take the address given (an empty
  // one: not known yet, the old one stays). A known host that is draining, or no longer
  // named at all, gets no new shards, and the volume moves its shards to other hosts.
  // `placed` is what the volume holds on each host, by its own count, for the ledger.
  LeaseHostsFn lease_hosts;
  // How often a mounted volume on leases asks lease_hosts again, to grow onto new leases
  // and follow hosts' new addresses while mounted; 0: only at open.
  int64_t lease_refresh_ns = 1'000'000'000;
  // The repair engine: grace before a host is lost, threshold, rate (repairer.h).
  RepairPolicy repair;
  bool repair_enabled = true;
  // Test seam: when set, used instead of opening the configured stores.
  std::vector<std::shared_ptr<ShardStore>> stores_override;
};

struct VolumeInitOptions {
  std::string home;
  int data_shards = 4;
  int parity_shards = 2;
  uint32_t chunk_size = 4u << 20;
  uint32_t inline_max = 4096;
  std::vector<std::string> store_folders;
  std::vector<StoreSpec> hosts;  // network hosts, keys already pinned by the caller
  // The hosts are the node's leases (VolumeConfig.on_leases): at each open and while
  // mounted, the hosts VolumeOpenOptions::lease_hosts names join the volume.
  bool on_leases = false;
  // Opens `hosts`, so that Init stamps them as it stamps folders. Without it, hosts are
  // stamped when the volume first reaches them.
  StoreFactory store_factory;
  std::string passphrase;  // or key_file
  std::string key_file;
  KdfStrength kdf = KdfStrength::kInteractive;
  Env* env = nullptr;  // the local disk; default Env::Default()
};

class Volume {
 public:
  // Creates a new volume in `options.home` (kExists if one is there). Every store gets the
  // new volume's stamp (storage/stores/stamped_store.h); kPermission, and nothing is
  // stamped, if any store belongs to another volume; kInvalid if one store is named twice.
  static Status Init(const VolumeInitOptions& options);
  // Opens (mounts) the volume: unwraps the key (kBadKey on a wrong passphrase), replays the
  // journal, starts the flusher and the cleanup pass. A store stamped by another volume
  // counts as down (OpenWarnings and the store's status say so); the volume still opens.
  static Result<std::unique_ptr<Volume>> Open(const VolumeOpenOptions& options);

  virtual ~Volume() = default;

  // Inode lifetime: the kernel's lookup count. Lookup()/Create()/Mkdir()... add one;
  // Forget() drops n. An unlinked inode is destroyed when its count and opens reach zero.
  virtual void Forget(Ino ino, uint64_t nlookup) = 0;

  virtual Result<Attr> Lookup(Ino parent, std::string_view name) = 0;
  virtual Result<Attr> GetAttr(Ino ino) = 0;
  virtual Result<Attr> SetAttr(Ino ino, const SetAttrRequest& request) = 0;
  virtual Result<std::string> ReadLink(Ino ino) = 0;

  // mode includes the file type (S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK).
  virtual Result<Attr> Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                             const Caller& caller) = 0;
  virtual Result<Attr> Mkdir(Ino parent, std::string_view name, uint32_t mode,
                             const Caller& caller) = 0;
  virtual Result<Attr> Symlink(Ino parent, std::string_view name, std::string_view target,
                               const Caller& caller) = 0;
  virtual Result<Attr> Link(Ino ino, Ino new_parent, std::string_view new_name) = 0;
  virtual Status Unlink(Ino parent, std::string_view name) = 0;
  virtual Status Rmdir(Ino parent, std::string_view name) = 0;
  virtual Status Rename(Ino parent, std::string_view name, Ino new_parent,
                        std::string_view new_name, RenameFlags flags) = 0;

  // Open/Release bracket file handles, so an unlinked open file lives until released.
  // Open with O_TRUNC truncates.
  virtual Status Open(Ino ino, int flags) = 0;
  virtual void Release(Ino ino) = 0;
  virtual Result<size_t> Read(Ino ino, uint64_t offset, MutableByteSpan out) = 0;
  virtual Result<size_t> Write(Ino ino, uint64_t offset, ByteSpan data) = 0;
  // Returns when every acknowledged write to `ino` (and namespace change) is durable at
  // least locally.
  virtual Status Fsync(Ino ino, bool datasync) = 0;
  // Makes the whole namespace durable (fsyncdir, syncfs).
  virtual Status SyncAll() = 0;

  // Lists `dir` from position `cookie` (0 = start). `fn` gets each entry and the cookie of
  // the entry after it, and returns false to stop (buffer full). With `plus`, every entry
  // counts as looked up (as readdirplus does) once fn accepts it.
  virtual Status ReadDir(Ino dir, uint64_t cookie, bool plus,
                         const std::function<bool(const DirEntryInfo&, uint64_t next)>& fn) = 0;

  virtual Status SetXattr(Ino ino, std::string_view name, ByteSpan value, XattrMode mode) = 0;
  virtual Result<Bytes> GetXattr(Ino ino, std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListXattr(Ino ino) = 0;
  virtual Status RemoveXattr(Ino ino, std::string_view name) = 0;

  virtual Result<StatFs> StatFilesystem() = 0;
  // What Open found that the user must be told although the volume works: journal records
  // that could not be read (damage, as opposed to a torn tail), and stores that belong to
  // another volume, one line each.
  virtual std::vector<std::string> OpenWarnings() const = 0;
  virtual VolumeStatus GetStatus() = 0;
  // Checks metadata against the stores (every chunk's shards present; no orphans), with
  // `deep` every shard fetched and verified, with `repair` what is missing or bad rebuilt.
  // Runs beside normal use; `progress` is called now and then.
  virtual Result<CheckReport> Check(const CheckOptions& options,
                                    const std::function<void(const CheckProgress&)>& progress) = 0;

  // Stores everything pending (bounded wait); `progress` is called with bytes left.
  // kUnavailable with the pending byte count if the stores cannot take it all in time.
  virtual Status Drain(int64_t timeout_ns, const std::function<void(uint64_t)>& progress) = 0;
  // Stops the flusher and background work, syncs, closes the database. Idempotent.
  virtual Status Close() = 0;
};

}  // namespace quid
