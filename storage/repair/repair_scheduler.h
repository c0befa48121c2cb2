// RepairScheduler: every decision of the repair engine, with no I/O, no threads and no
// wall clock. Events go in (a host answered a probe or not, what audits found, a degraded
// read, a check's verdict, the chunks a walk saw, what a rebuild cost); actions come out
// (probe the hosts, walk the chunk records, rebuild this chunk, check that one, audit one,
// or wait until some time). The mount daemon's Repairer carries the actions out against
// real stores; the placement simulator carries them out against simulated hosts in
// simulated time. Both therefore grant the same grace, repair at the same threshold, in the
// same order, at the same rate, and distrust the same hosts.
//
// The loop of an executor:
//   for (;;) {
//     RepairAction a = scheduler.Next();
//     switch (a.kind) { ... do it, reporting back with the event methods ... }
//     scheduler.ActionDone();
//   }
// Not thread-safe: the owner serializes every call (the Repairer holds its mutex).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "storage/base/clock.h"
#include "storage/repair/chunk_health.h"
#include "storage/repair/host_tracker.h"
#include "storage/repair/rate_limiter.h"
#include "storage/repair/repair_policy.h"
#include "storage/repair/repair_progress.h"
#include "storage/repair/repair_queue.h"
#include "storage/repair/service_score.h"

namespace quid {

struct RepairAction {
  enum class Kind {
    kProbe,   // ask every host whether it answers (HostAnswered each, then ProbeRoundDone)
    kWalk,    // WalkBegin, WalkOffer for every chunk record, WalkEnd
    kRepair,  // rebuild chunk `key`: its shards on lost hosts, and those in `known_bad`
    kCheck,   // a degraded read hinted at chunk `key`: compare every shard, replace bad ones
    kAudit,   // sample the next chunk (AuditSkipped or AuditDone)
    kWait,    // nothing to do before `until_ns` (monotonic), or an event
  };
  Kind kind = Kind::kWait;
  std::string key;         // kRepair, kCheck: the chunk record's key (opaque here)
  uint64_t known_bad = 0;  // kRepair: shards found bad already (bit i: shard i)
  int64_t until_ns = 0;    // kWait
};

// What the scheduler knows of one host that should outlive it (a remount, a restart of the
// simulation): how long it has been away, and whether it was caught lying.
struct HostVerdict {
  int64_t away_for_ns = -1;  // -1: up
  bool distrusted = false;
  bool operator==(const HostVerdict&) const = default;
};

// What one rebuild did, for the progress counters.
struct RepairOutcome {
  bool decoded = false;    // false: fewer than k good shards could be read
  bool committed = false;  // the chunk's record now names the rebuilt shards
  uint64_t bytes_moved = 0;
  int bad_shards = 0;  // shards found missing, rotted or lying on live hosts
  int unplaced = 0;    // shards that found no host to go to
};

class RepairScheduler {
 public:
  // `clock` must outlive the scheduler; `audit_seed` seeds the audit offsets (random in a
  // daemon, fixed in a simulation).
  RepairScheduler(const Clock* clock, const RepairPolicy& policy, int64_t probe_interval_ns,
                  uint64_t audit_seed);

  // --- Hosts -------------------------------------------------------------------------
  // One host's answer to this round's probe.
  void HostAnswered(uint32_t host, bool answered);
  // Hosts that answered again after they were declared lost, since the last call, each
  // with how long it had been away: its copies were rebuilt elsewhere, so what it still
  // holds from before it left is stale (the executor has it deleted and the room freed).
  struct Returned {
    uint32_t host = 0;
    int64_t away_for_ns = 0;
  };
  std::vector<Returned> TakeReturnedHosts();
  // The round is over: the next probe is due one interval from now.
  void ProbeRoundDone();
  // Judges the hosts by what was seen of them (index: host). Returns the hosts distrusted
  // by this call (sticky: a distrusted host stays so). Trust is judged per pass over the
  // chunks, where every shard is audited once, so a host's old successes never hide new
  // losses; call it after every probe round.
  std::vector<uint32_t> JudgeHosts(const std::vector<ServiceRecord>& records);
  // Hosts a rebuild must not place on: lost, distrusted, or serving poorly now (a shard
  // moved onto a liar would be lost again).
  std::vector<uint32_t> RepairAvoid(const std::vector<ServiceRecord>& records) const;
  // What chunks are judged by: the tracker's states, with distrusted hosts lost.
  HostState JudgedState(uint32_t host) const;
  HostState State(uint32_t host) const { return hosts_.State(host); }
  bool IsDistrusted(uint32_t host) const { return host < distrusted_.size() && distrusted_[host]; }
  // Per host, for keeping across a restart, and back (before the first probe round).
  std::vector<HostVerdict> Verdicts() const;
  void RestoreVerdicts(const std::vector<HostVerdict>& verdicts);
  // Changes whenever a verdict may have (a host's state, a distrust).
  uint64_t VerdictGeneration() { return hosts_.Generation() + (distrust_generation_ << 32); }
  // The share of probes the host answered (-1: never probed).
  double ProbeUptime(uint32_t host) const;
  size_t hosts_seen() const { return probes_.size(); }

  // --- Chunks ------------------------------------------------------------------------
  // A read of this chunk needed parity or failed: check it when nothing is queued.
  void ChunkSuspect(const std::string& key);
  // A check found these shards of the chunk bad: rebuild them before anything else.
  void ChunkReportedBad(const std::string& key, uint64_t bad_mask);
  // Asks for a walk at the next Next() (quid check --repair).
  void RequestWalk() { walk_requested_ = true; }
  // A walk: every chunk record offered between WalkBegin and WalkEnd; chunks at or below
  // their threshold are queued, fewest intact shards first. The queue is rebuilt from
  // scratch, so chunks that healed meanwhile (a host back in time) leave it.
  void WalkBegin();
  void WalkOffer(const std::string& key, std::span<const uint32_t> stores, int k, int m,
                 uint32_t shard_size);
  // Returns the number of chunks queued.
  size_t WalkEnd();
  uint64_t walks() const { return walks_; }
  // The chunk's health now, with `known_bad` shards counted as gone.
  ChunkHealth Assess(std::span<const uint32_t> stores, int k, int m, uint64_t known_bad) const;
  // Books a rebuild's traffic; returns the ns to wait before it starts (the rate limit).
  int64_t AdmitTraffic(uint64_t bytes);
  void RepairDone(const RepairOutcome& outcome);

  // --- Audits ------------------------------------------------------------------------
  // A fresh unpredictable offset per audit, so a host cannot keep only what it was asked.
  uint64_t NextAuditOffset();
  // The audit could not run now (no chunks, or a host of the chunk is away).
  void AuditSkipped(bool no_chunks);
  // An audit of a chunk on `hosts` hosts fetched `sample_bytes` from each and found
  // `bad_shards` bad; the next audit waits for the per-host budget to pay for this one.
  void AuditDone(int bad_shards, uint64_t bytes_fetched, uint64_t sample_bytes, size_t hosts,
                 size_t volume_hosts);
  // Every chunk has been audited once: JudgeHosts rolls the pass over.
  void AuditPassEnded();

  // --- The loop ----------------------------------------------------------------------
  RepairAction Next();
  void ActionDone();
  // Nothing queued, reported, suspect or under way, and a walk done after `walks_before`.
  bool IdleSince(uint64_t walks_before) const;
  RepairProgress progress() const;

 private:
  const Clock* clock_;
  RepairPolicy policy_;
  int64_t probe_interval_ns_;
  HostTracker hosts_;
  RateLimiter limiter_;
  RepairQueue queue_;
  std::vector<RepairItem> walk_found_;
  std::vector<Returned> returned_;
  std::set<std::string> suspects_;
  std::map<std::string, uint64_t> reported_bad_;
  RepairProgress progress_;
  uint64_t in_flight_bytes_ = 0;
  int64_t busy_since_ns_ = 0;  // when the queue last became non-empty
  uint64_t bytes_since_busy_ = 0;

  int64_t next_probe_ns_ = 0;
  int64_t next_audit_ns_ = 0;
  int64_t last_walk_ns_ = 0;
  bool walk_requested_ = false;
  bool walked_once_ = false;
  uint64_t walks_ = 0;
  uint64_t walked_generation_ = 0;
  uint64_t audit_rng_state_;

  std::vector<bool> distrusted_;
  uint64_t distrust_generation_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> probes_;  // per host: (answered, asked)
  // Per host: its (audits_ok, audits_failed) when the audit pass under way began, and what
  // the last whole pass added; pass_ended_ asks the next JudgeHosts to roll them over.
  std::vector<std::pair<uint64_t, uint64_t>> pass_start_, last_pass_;
  bool pass_ended_ = false;
};

}  // namespace quid
