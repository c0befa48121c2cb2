#include "storage/volume/repairer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/chunk_record.h"
#include "storage/volume/quota.h"
#include "storage/volume/store_probe.h"

namespace quid {
namespace {

uint64_t Bit(size_t i) {
  return uint64_t{1} << i;
}

uint64_t RandomSeed() {
  // Audit offsets need only be unpredictable to hosts, which never see them in advance.
  return (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
}

}  // namespace

Repairer::Repairer(RepairerParts parts)
    : p_(std::move(parts)), sched_(p_.clock, p_.policy, p_.probe_interval_ns, RandomSeed()) {
  LoadVerdicts();
  thread_ = std::thread([this] { Loop(); });
}

void Repairer::LoadVerdicts() {
  meta::HostVerdicts saved;
  if (!p_.db->GetProto(Cf::kConfig, std::string(kHostVerdictsKey), &saved).ok()) return;
  const int64_t now = p_.clock->now_ns();
  std::vector<HostVerdict> verdicts;
  for (const meta::HostVerdict& v : saved.hosts()) {
    HostVerdict verdict;
    if (v.away_since_unix_ns() != 0)
      verdict.away_for_ns = std::max<int64_t>(now - v.away_since_unix_ns(), 0);
    verdict.distrusted = v.distrusted();
    verdicts.push_back(verdict);
  }
  for (uint32_t s = 0; s < verdicts.size() && s < p_.chunks->store_count(); ++s)
    if (verdicts[s].distrusted) p_.chunks->SetDistrusted(s, true);
  std::lock_guard lock(mu_);
  sched_.RestoreVerdicts(verdicts);
  saved_verdicts_ = sched_.VerdictGeneration();
}

void Repairer::SaveVerdictsIfChanged() {
  std::vector<HostVerdict> verdicts;
  {
    std::lock_guard lock(mu_);
    const uint64_t generation = sched_.VerdictGeneration();
    if (generation == saved_verdicts_) return;
    saved_verdicts_ = generation;
    verdicts = sched_.Verdicts();
  }
  const int64_t now = p_.clock->now_ns();
  meta::HostVerdicts saved;
  for (const HostVerdict& v : verdicts) {
    meta::HostVerdict* out = saved.add_hosts();
    if (v.away_for_ns >= 0) out->set_away_since_unix_ns(std::max<int64_t>(now - v.away_for_ns, 1));
    out->set_distrusted(v.distrusted);
  }
  // Not synced: a verdict lost with a power cut only means a grace period starts again.
  rocksdb::WriteBatch batch;
  p_.db->PutProto(&batch, Cf::kConfig, std::string(kHostVerdictsKey), saved);
  if (Status s = p_.db->Write(&batch, /*sync=*/false); !s.ok())
    spdlog::warn("repair: keeping the hosts' states: {}", s.message());
}

Repairer::~Repairer() {
  Stop();
}

void Repairer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Repairer::SuspectChunk(const ChunkId& id) {
  std::lock_guard lock(mu_);
  sched_.ChunkSuspect(std::string(reinterpret_cast<const char*>(id.data()), id.size()));
}

void Repairer::ReportBad(const std::string& key, uint64_t bad_mask) {
  {
    std::lock_guard lock(mu_);
    sched_.ChunkReportedBad(key, bad_mask);
    wake_ = true;
  }
  cv_.notify_all();
}

RepairProgress Repairer::progress() const {
  std::lock_guard lock(mu_);
  return sched_.progress();
}

std::vector<HostState> Repairer::host_states() const {
  std::lock_guard lock(mu_);
  std::vector<HostState> out;
  for (uint32_t s = 0; s < p_.chunks->store_count(); ++s) out.push_back(sched_.State(s));
  return out;
}

std::vector<bool> Repairer::distrusted() const {
  std::lock_guard lock(mu_);
  std::vector<bool> out;
  for (uint32_t s = 0; s < p_.chunks->store_count(); ++s) out.push_back(sched_.IsDistrusted(s));
  return out;
}

std::vector<double> Repairer::probe_uptimes() const {
  std::lock_guard lock(mu_);
  std::vector<double> out;
  for (uint32_t s = 0; s < sched_.hosts_seen(); ++s) out.push_back(sched_.ProbeUptime(s));
  return out;
}

Status Repairer::RepairNow(int64_t timeout_ns,
                           const std::function<void(const RepairProgress&)>& progress) {
  const int64_t deadline = p_.clock->monotonic_ns() + timeout_ns;
  uint64_t after;
  {
    std::lock_guard lock(mu_);
    sched_.RequestWalk();
    wake_ = true;
    after = sched_.walks();
  }
  cv_.notify_all();
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return Status::Unavailable("the volume is closing");
      if (sched_.IdleSince(after)) return Status::Ok();
    }
    if (progress) progress(this->progress());
    if (p_.clock->monotonic_ns() >= deadline)
      return Status::Unavailable("repair not finished in time");
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1));
  }
}

void Repairer::SleepUntil(int64_t until_ns, bool wakeable) {
  std::unique_lock lock(mu_);
  while (!stopping_ && !(wakeable && wake_)) {
    const int64_t left = until_ns - p_.clock->monotonic_ns();
    if (left <= 0) return;
    cv_.wait_for(lock, std::chrono::nanoseconds(std::min<int64_t>(left, 100'000'000)));
  }
}

void Repairer::Probe() {
  const std::vector<Result<StoreUsage>> usages = ProbeStores(*p_.chunks, *p_.io_pool);
  std::vector<RepairScheduler::Returned> returned;
  {
    std::lock_guard lock(mu_);
    for (uint32_t s = 0; s < usages.size(); ++s) sched_.HostAnswered(s, usages[s].ok());
    sched_.ProbeRoundDone();
    returned = sched_.TakeReturnedHosts();
  }
  for (const RepairScheduler::Returned& r : returned) {
    spdlog::info("store {} is back after {} s away (declared lost): its stale shards are swept",
                 r.host, r.away_for_ns / 1'000'000'000);
    if (p_.on_store_returned) p_.on_store_returned(r.host, p_.clock->now_ns() - r.away_for_ns);
  }
  UpdateScores(usages);
}

std::vector<ServiceRecord> Repairer::ServiceRecords() const {
  std::vector<ServiceRecord> out;
  for (const StoreCalls& c : p_.chunks->store_calls())
    out.push_back(
        {c.puts_ok + c.reads_ok, c.puts_failed + c.reads_failed, c.audits_ok, c.audits_failed});
  return out;
}

void Repairer::UpdateScores(const std::vector<Result<StoreUsage>>& usages) {
  const std::vector<ServiceRecord> records = ServiceRecords();
  std::vector<uint32_t> newly;
  {
    std::lock_guard lock(mu_);
    newly = sched_.JudgeHosts(records);
  }
  for (uint32_t s : newly) {
    p_.chunks->SetDistrusted(s, true);
    spdlog::error(
        "store {} failed {} of {} audits: no longer trusted; its shards are rebuilt "
        "elsewhere and it gets no new ones",
        s, records[s].audits_failed, records[s].audits_ok + records[s].audits_failed);
  }
  for (uint32_t s = 0; s < records.size() && s < usages.size(); ++s)
    if (usages[s].ok())
      p_.chunks->SetStoreWeight(
          s, PlacementWeight(usages[s]->capacity_bytes, usages[s]->used_bytes, records[s]));
}

void Repairer::Walk() {
  {
    std::lock_guard lock(mu_);
    sched_.WalkBegin();
  }
  auto it = p_.db->NewIterator(Cf::kChunks);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    meta::Chunk chunk;
    if (!chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
    const std::span<const uint32_t> stores(chunk.stores().data(),
                                           static_cast<size_t>(chunk.stores_size()));
    std::lock_guard lock(mu_);
    sched_.WalkOffer(it->key().ToString(), stores, static_cast<int>(chunk.k()),
                     static_cast<int>(chunk.m()), chunk.shard_size());
  }
  size_t queued;
  uint64_t bytes;
  {
    std::lock_guard lock(mu_);
    queued = sched_.WalkEnd();
    bytes = sched_.progress().bytes_left;
  }
  if (queued > 0)
    spdlog::info("repair: {} chunks at or below their repair threshold, {} MiB of traffic", queued,
                 bytes >> 20);
}

bool Repairer::RepairOne(const std::string& key, bool suspect, uint64_t known_bad, bool check_all) {
  meta::Chunk record;
  if (!p_.db->GetProto(Cf::kChunks, key, &record).ok()) return false;  // dropped meanwhile
  Result<StoredChunk> chunk = FromRecord(ChunkIdOf(key), record);
  if (!chunk.ok()) return false;
  const int k = chunk->k, m = chunk->m;
  const std::vector<ServiceRecord> records = ServiceRecords();
  ChunkHealth health;
  std::vector<uint32_t> avoid;
  {
    std::lock_guard lock(mu_);
    health = sched_.Assess(chunk->stores, k, m, known_bad);
    avoid = sched_.RepairAvoid(records);
  }
  if (suspect) {
    // A degraded read explained by a host being away is no sign of a bad shard.
    if (health.healthy_shards != k + m && !health.needs_repair) return false;
    check_all = true;
  } else if (!health.needs_repair && (health.replace_mask & known_bad) == 0 && !check_all) {
    return false;  // healed meanwhile; a shard known bad is replaced whatever the threshold
  }

  const uint64_t traffic =
      uint64_t{chunk->shard_size} * static_cast<uint64_t>(k + health.replace_count);
  int64_t wait_ns;
  {
    std::lock_guard lock(mu_);
    wait_ns = sched_.AdmitTraffic(traffic);
  }
  SleepUntil(p_.clock->monotonic_ns() + wait_ns, /*wakeable=*/false);
  // From the rebuild to the removal of bad copies, no other mover touches shards.
  std::unique_lock<std::mutex> moving;
  if (p_.shard_move_mu != nullptr) moving = std::unique_lock(*p_.shard_move_mu);
  // The record again, now that no other mover can change it: RestoreRedundancy may have
  // moved a shard while this one waited for the lock or the rate limit. Rebuilt from the
  // old record, that shard would look lost where it no longer is, and the spare copies a
  // failed commit removes could be the very ones the other mover committed.
  {
    meta::Chunk now;
    if (!p_.db->GetProto(Cf::kChunks, key, &now).ok()) return false;  // dropped meanwhile
    // Re-uploaded: other shards altogether, which the next walk judges afresh.
    if (now.generation() != record.generation()) return false;
    if (!std::equal(now.stores().begin(), now.stores().end(), record.stores().begin(),
                    record.stores().end())) {
      Result<StoredChunk> moved = FromRecord(ChunkIdOf(key), now);
      if (!moved.ok()) return false;
      chunk = std::move(moved);
      {
        std::lock_guard lock(mu_);
        health = sched_.Assess(chunk->stores, k, m, known_bad);
      }
      if (!health.needs_repair && (health.replace_mask & known_bad) == 0 && !check_all)
        return false;  // the other mover healed it
    }
  }
  Result<ShardRepair> repair =
      p_.chunks->RepairShards(*chunk, health.replace_mask, avoid, check_all);
  RepairOutcome outcome;
  if (!repair.ok()) {
    spdlog::warn("repair: {}", repair.status().message());
  } else {
    outcome.decoded = true;
    outcome.bytes_moved = repair->bytes_read + repair->bytes_written;
    outcome.bad_shards = __builtin_popcountll(repair->bad_mask);
    outcome.unplaced = repair->unplaced;
    if (repair->bad_mask != 0)
      spdlog::warn("repair: chunk {}: {} shard(s) missing, rotted or wrong on their stores",
                   ToHex(ByteSpan(chunk->id.data(), 8)), outcome.bad_shards);
    if (repair->rebuilt_mask != 0)
      outcome.committed = Commit(key, *chunk, *repair, known_bad | repair->bad_mask);
  }
  std::lock_guard lock(mu_);
  sched_.RepairDone(outcome);
  return outcome.committed;
}

bool Repairer::Commit(const std::string& key, const StoredChunk& before, const ShardRepair& repair,
                      uint64_t bad_mask) {
  bool committed = false;
  {
    auto lock = p_.ns->Lock();
    meta::Chunk record;
    // Dropped or re-uploaded meanwhile, or a shard moved by someone else: leave it be.
    bool same = p_.db->GetProto(Cf::kChunks, key, &record).ok() &&
                record.generation() == before.generation &&
                record.stores_size() == static_cast<int>(before.stores.size());
    for (size_t i = 0; same && i < before.stores.size(); ++i)
      same = record.stores(static_cast<int>(i)) == before.stores[i];
    if (same) {
      for (size_t i = 0; i < repair.stores.size(); ++i)
        if (repair.rebuilt_mask & Bit(i)) record.set_stores(static_cast<int>(i), repair.stores[i]);
      rocksdb::WriteBatch batch;
      p_.db->PutProto(&batch, Cf::kChunks, key, record);
      committed = p_.db->Write(&batch, /*sync=*/true).ok();
    }
  }
  const std::vector<std::shared_ptr<ShardStore>> stores = p_.chunks->stores();
  for (size_t i = 0; i < repair.stores.size(); ++i) {
    if ((repair.rebuilt_mask & Bit(i)) == 0) continue;
    if (committed) {
      if (p_.quota != nullptr)
        p_.quota->MoveShard(before.shard_size, before.stores[i], repair.stores[i]);
      // A copy known bad goes at once (its host answers, and no read can use it): the host
      // gets its room back and its scrub stops finding it. Good copies left behind (on a lost
      // host, or doubled up) wait for the sweep, which runs behind the read gate.
      if ((bad_mask & Bit(i)) != 0 && before.stores[i] != repair.stores[i])
        (void)stores[before.stores[i]]->Remove(
            p_.chunks->ShardIdFor(before.id, before.generation, static_cast<int>(i)));
    } else if (repair.stores[i] != before.stores[i]) {
      // Not recorded anywhere: a spare copy (the sweep would find it too, hours later).
      (void)stores[repair.stores[i]]->Remove(
          p_.chunks->ShardIdFor(before.id, before.generation, static_cast<int>(i)));
    }
  }
  return committed;
}

void Repairer::AuditOne() {
  std::string key;
  meta::Chunk record;
  {
    auto it = p_.db->NewIterator(Cf::kChunks);
    it->Seek(audit_cursor_);
    if (!it->Valid()) {
      // A whole pass over the chunks is done (or there are none yet).
      if (!audit_cursor_.empty()) {
        std::lock_guard lock(mu_);
        sched_.AuditPassEnded();
      }
      audit_cursor_.clear();
      it->SeekToFirst();
      if (!it->Valid()) {
        std::lock_guard lock(mu_);
        sched_.AuditSkipped(/*no_chunks=*/true);
        return;
      }
    }
    key = it->key().ToString();
    audit_cursor_ = key + '\0';
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) return;
  }
  Result<StoredChunk> chunk = FromRecord(ChunkIdOf(key), record);
  if (!chunk.ok()) return;
  uint64_t offset;
  {
    // A store that is away answers nothing about its shards, and asking it only costs a
    // timeout (and keeps its connection's breaker open for the reads that come when it is
    // back): such a chunk waits for the next pass.
    std::lock_guard lock(mu_);
    for (uint32_t s : chunk->stores) {
      if (sched_.State(s) != HostState::kUp) {
        sched_.AuditSkipped(/*no_chunks=*/false);
        return;
      }
    }
    offset = sched_.NextAuditOffset();
  }
  const ShardAudit audit = p_.chunks->AuditChunk(*chunk, offset, p_.policy.audit_sample_bytes);
  const int bad = __builtin_popcountll(audit.bad_mask);
  {
    std::lock_guard lock(mu_);
    sched_.AuditDone(bad, audit.bytes,
                     std::min<uint64_t>(p_.policy.audit_sample_bytes, chunk->shard_size),
                     chunk->stores.size(), p_.chunks->store_count());
  }
  if (bad == 0 && !audit.inconsistent) return;
  spdlog::warn("audit: chunk {}: {}", ToHex(ByteSpan(chunk->id.data(), 8)),
               audit.inconsistent ? std::string("the shards disagree; checking every one")
                                  : std::to_string(bad) + " shard(s) missing or wrong");
  RepairOne(key, /*suspect=*/false, audit.bad_mask, audit.inconsistent);
}

void Repairer::Loop() {
  for (;;) {
    RepairAction action;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      wake_ = false;
      action = sched_.Next();
    }
    switch (action.kind) {
      case RepairAction::Kind::kProbe:
        Probe();
        SaveVerdictsIfChanged();
        break;
      case RepairAction::Kind::kWalk:
        Walk();
        break;
      case RepairAction::Kind::kRepair:
        RepairOne(action.key, /*suspect=*/false, action.known_bad);
        break;
      case RepairAction::Kind::kCheck:
        RepairOne(action.key, /*suspect=*/true);
        break;
      case RepairAction::Kind::kAudit:
        AuditOne();
        break;
      case RepairAction::Kind::kWait:
        cv_.notify_all();  // RepairNow waits for an empty queue
        SleepUntil(action.until_ns, /*wakeable=*/true);
        break;
    }
    {
      std::lock_guard lock(mu_);
      sched_.ActionDone();
    }
    cv_.notify_all();
  }
}

}  // namespace quid
