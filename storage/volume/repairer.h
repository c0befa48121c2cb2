// Repairer: the mount daemon's repair engine, on its own thread. It watches every store
// (one probe a second), keeps the hosts' states in a HostTracker (up, away, lost after the
// grace period), and when some host's state changes (and once a minute regardless) walks
// the chunk records, queueing every chunk at or below its repair threshold (fewest intact
// shards first). Each queued chunk is rebuilt from any k shards onto new stores
// (ChunkStore::RepairShards), under the rate limit, and its record committed atomically:
//   rebuilt shards durable on their new stores -> record updated (synced batch).
// A crash between the two leaves spare shards the unreferenced-shard sweep removes; the
// stale copies on a host that comes back after it was declared lost are swept the same
// way (the record no longer names that host for them).
//
// Degraded reads are hints (SuspectChunk): a chunk read through parity while every host
// holding it is up has a shard missing, rotted or lying; the repairer checks the chunk
// against its rebuilt self and replaces what is bad.
//
// Every decision (host states, when to walk, what to rebuild in what order, the rate, audit
// pacing, whom to distrust) is the I/O-free RepairScheduler's (storage/repair/), which the
// simulator runs too; this class only carries its actions out against the stores.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/base/clock.h"
#include "storage/base/thread_pool.h"
#include "storage/chunks/chunk_store.h"
#include "storage/meta/metadata.h"
#include "storage/repair/repair_policy.h"
#include "storage/repair/repair_progress.h"
#include "storage/repair/repair_scheduler.h"
#include "storage/volume/namespace.h"

namespace quid {

class Quota;

struct RepairerParts {
  Namespace* ns = nullptr;  // its lock guards every chunk record change
  MetaDb* db = nullptr;
  ChunkStore* chunks = nullptr;
  ThreadPool* io_pool = nullptr;  // probes
  Quota* quota = nullptr;         // follows shards that move (may be null)
  Clock* clock = nullptr;
  RepairPolicy policy;
  int64_t probe_interval_ns = 1'000'000'000;
  std::mutex* shard_move_mu = nullptr;  // FlusherParts::shard_move_mu: one mover at a time
  // Called (on the repair thread) when a store answers again after it was declared lost,
  // with when it left (wall ns): its shards were rebuilt elsewhere, and the sweep frees
  // what it still holds from before then.
  std::function<void(uint32_t store, int64_t away_since_unix_ns)> on_store_returned;
};

class Repairer {
 public:
  explicit Repairer(RepairerParts parts);  // starts the thread
  ~Repairer();                             // Stop()
  void Stop();

  // A read of this chunk needed parity (or failed): check it soon.
  void SuspectChunk(const ChunkId& id);
  // A check found these shards of the chunk (record key) missing or bad: rebuild them.
  void ReportBad(const std::string& key, uint64_t bad_mask);
  RepairProgress progress() const;
  // Per store index, as the last probe left it (stores not yet probed: up).
  std::vector<HostState> host_states() const;
  // Per store index: caught failing audits (service_score.h); its shards count as lost.
  std::vector<bool> distrusted() const;
  // Per store index: the share of this mount's probes it answered (-1: none yet).
  std::vector<double> probe_uptimes() const;
  // Walks now and returns once the queue is empty after that walk (kUnavailable at the
  // timeout). `progress` is called about once a second. For `quid check --repair`.
  Status RepairNow(int64_t timeout_ns, const std::function<void(const RepairProgress&)>& progress);

 private:
  void Loop();
  // Asks every store for its usage: host states, then weights and trust (UpdateScores).
  void Probe();
  void UpdateScores(const std::vector<Result<StoreUsage>>& usages);
  std::vector<ServiceRecord> ServiceRecords() const;
  void Walk();
  // Rebuilds one chunk (or checks a suspect one); true if its record changed. `known_bad`:
  // shards an audit or check found bad; `check_all`: compare every shard (the audit could
  // not tell which one lies).
  bool RepairOne(const std::string& key, bool suspect, uint64_t known_bad = 0,
                 bool check_all = false);
  // Audits the next chunk in key order (audits.h's sample), and repairs what it finds bad.
  void AuditOne();
  // Records the rebuilt shards' new stores, if the record is still the one repaired; then
  // removes the old copies in `bad_mask` (known bad, so no reader can need them).
  bool Commit(const std::string& key, const StoredChunk& before, const ShardRepair& repair,
              uint64_t bad_mask);
  // Sleeps until `until_ns` (monotonic) or Stop (or, if `wakeable`, new work arriving).
  void SleepUntil(int64_t until_ns, bool wakeable);
  // The hosts' verdicts (away since, distrusted) kept in the metadata ("hosts" in config),
  // so a remount neither restarts a grace period nor trusts a liar again.
  void LoadVerdicts();
  void SaveVerdictsIfChanged();

  const RepairerParts p_;
  mutable std::mutex mu_;  // a leaf: never held across I/O or the namespace lock
  std::condition_variable cv_;
  bool stopping_ = false;                   // guarded by mu_
  bool wake_ = false;                       // guarded by mu_: work arrived for a sleeping loop
  RepairScheduler sched_;                   // guarded by mu_
  std::string audit_cursor_;                // repair thread's only: next chunk key to audit
  uint64_t saved_verdicts_ = ~uint64_t{0};  // repair thread's only: VerdictGeneration saved
  std::thread thread_;                      // last: starts once the rest is set up
};

}  // namespace quid
