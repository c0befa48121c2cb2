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
// The policy parts (host states, chunk health, queue order, rate) are the I/O-free ones in
// storage/repair/, which the simulator runs too; this class only does their I/O.
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
#include "storage/repair/host_tracker.h"
#include "storage/repair/rate_limiter.h"
#include "storage/repair/repair_policy.h"
#include "storage/repair/repair_progress.h"
#include "storage/repair/repair_queue.h"
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
  void Walk();
  // The states chunk health is judged by: the tracker's, with distrusted stores lost.
  std::vector<HostState> JudgedStates() const;
  // Rebuilds one chunk (or checks a suspect one); true if its record changed. `known_bad`:
  // shards an audit found bad; `check_all`: compare every shard (the audit could not tell
  // which one lies).
  bool RepairOne(const std::string& key, bool suspect, uint64_t known_bad = 0,
                 bool check_all = false);
  // Audits the next chunk in key order (audits.h's sample), and repairs what it finds bad.
  void AuditOne();
  // Records the rebuilt shards' new stores, if the record is still the one repaired; then
  // removes the old copies in `bad_mask` (known bad, so no reader can need them).
  bool Commit(const std::string& key, const StoredChunk& before, const ShardRepair& repair,
              uint64_t bad_mask);
  // Sleeps until `until_ns` (monotonic) or Stop (or, if asked, a RepairNow).
  void SleepUntil(int64_t until_ns, bool until_walk_requested);

  const RepairerParts p_;
  mutable std::mutex mu_;  // a leaf: never held across I/O or the namespace lock
  std::condition_variable cv_;
  bool stopping_ = false;                         // guarded by mu_
  bool walk_requested_ = false;                   // guarded by mu_
  uint64_t walks_ = 0;                            // guarded by mu_
  HostTracker hosts_;                             // guarded by mu_
  RepairQueue queue_;                             // guarded by mu_
  std::set<std::string> suspects_;                // guarded by mu_
  std::map<std::string, uint64_t> reported_bad_;  // guarded by mu_: ReportBad's, by key
  RepairProgress progress_;                       // guarded by mu_ (counters)
  uint64_t in_flight_bytes_ = 0;                  // guarded by mu_
  int64_t busy_since_ns_ = 0;      // guarded by mu_: when the queue last became non-empty
  uint64_t bytes_since_busy_ = 0;  // guarded by mu_
  RateLimiter limiter_;            // the repair thread's only
  std::vector<bool> distrusted_;   // guarded by mu_; per store index, sticky
  std::vector<std::pair<uint64_t, uint64_t>> probes_;  // guarded by mu_: (answered, asked)
  uint64_t distrust_generation_ = 0;  // guarded by mu_: bumped when a store is distrusted
  // Per store index, guarded by mu_: its (audits_ok, audits_failed) counts when the audit
  // pass under way began, and what the last whole pass added; pass_ended_ asks the next
  // UpdateScores to roll them over.
  std::vector<std::pair<uint64_t, uint64_t>> pass_start_, last_pass_;
  bool pass_ended_ = false;
  uint64_t walked_generation_ = ~uint64_t{0};  // repair thread's only
  std::string audit_cursor_;                   // repair thread's only: next chunk key to audit
  int64_t next_audit_ns_ = 0;                  // repair thread's only
  uint64_t audit_rng_state_ = 0;               // repair thread's only
  int64_t last_walk_ns_ = 0;                   // repair thread's only
  std::thread thread_;                         // last: starts once the rest is set up
};

}  // namespace quid
