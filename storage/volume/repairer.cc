#include "storage/volume/repairer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "storage/meta/metadata_keys.h"
#include "storage/repair/chunk_health.h"
#include "storage/repair/service_score.h"
#include "storage/volume/chunk_record.h"
#include "storage/volume/quota.h"
#include "storage/volume/store_probe.h"

namespace quid {
namespace {

// A full walk at least this often, even with no host changing state: chunks written onto
// doubled-up stores, or made while a host was already lost, get queued too.
constexpr int64_t kWalkIntervalNs = 60'000'000'000;
// Degraded reads remembered for checking; past this many the newest are dropped (the walk
// and later reads find them again).
constexpr size_t kMaxSuspects = 4096;

uint64_t Bit(size_t i) {
  return uint64_t{1} << i;
}

}  // namespace

Repairer::Repairer(RepairerParts parts)
    : p_(std::move(parts)),
      hosts_(p_.clock, p_.policy.host_grace_ns),
      limiter_(p_.clock, p_.policy.rate_bytes_per_s) {
  progress_.rate_limit_bytes_per_s = p_.policy.rate_bytes_per_s;
  progress_.host_grace_s = p_.policy.host_grace_ns / 1'000'000'000;
  progress_.audit_budget_bytes_per_host_hour = p_.policy.audit_bytes_per_host_hour;
  // Audit offsets need only be unpredictable to hosts, which never see them in advance.
  audit_rng_state_ = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  thread_ = std::thread([this] { Loop(); });
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
  if (suspects_.size() < kMaxSuspects)
    suspects_.insert(std::string(reinterpret_cast<const char*>(id.data()), id.size()));
}

void Repairer::ReportBad(const std::string& key, uint64_t bad_mask) {
  {
    std::lock_guard lock(mu_);
    reported_bad_[key] |= bad_mask;
  }
  cv_.notify_all();
}

RepairProgress Repairer::progress() const {
  std::lock_guard lock(mu_);
  RepairProgress out = progress_;
  // Chunks a degraded read made suspect are left to check: counted, so "nothing left" means
  // every hint has been followed too.
  out.chunks_left = queue_.size() + reported_bad_.size() + suspects_.size() +
                    (in_flight_bytes_ > 0 ? 1 : 0);
  out.bytes_left = queue_.bytes() + in_flight_bytes_;
  if (out.bytes_left > 0) {
    // The rate measured since the queue last filled, or the limit until there is one.
    const double elapsed_s = static_cast<double>(p_.clock->monotonic_ns() - busy_since_ns_) / 1e9;
    double rate = elapsed_s > 1 && bytes_since_busy_ > 0 ? bytes_since_busy_ / elapsed_s : 0;
    if (rate <= 0) rate = static_cast<double>(p_.policy.rate_bytes_per_s);
    out.eta_s =
        rate > 0 ? static_cast<int64_t>(static_cast<double>(out.bytes_left) / rate + 0.5) : -1;
  }
  return out;
}

std::vector<HostState> Repairer::host_states() const {
  std::lock_guard lock(mu_);
  std::vector<HostState> out;
  for (uint32_t s = 0; s < p_.chunks->store_count(); ++s) out.push_back(hosts_.State(s));
  return out;
}

Status Repairer::RepairNow(int64_t timeout_ns,
                           const std::function<void(const RepairProgress&)>& progress) {
  const int64_t deadline = p_.clock->monotonic_ns() + timeout_ns;
  uint64_t after;
  {
    std::lock_guard lock(mu_);
    walk_requested_ = true;
    after = walks_;
  }
  cv_.notify_all();
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return Status::Unavailable("the volume is closing");
      if (walks_ > after && queue_.empty() && in_flight_bytes_ == 0 && suspects_.empty() &&
          reported_bad_.empty())
        return Status::Ok();
    }
    if (progress) progress(this->progress());
    if (p_.clock->monotonic_ns() >= deadline)
      return Status::Unavailable("repair not finished in time");
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1));
  }
}

void Repairer::SleepUntil(int64_t until_ns, bool until_walk_requested) {
  std::unique_lock lock(mu_);
  while (!stopping_ && !(until_walk_requested && walk_requested_)) {
    const int64_t left = until_ns - p_.clock->monotonic_ns();
    if (left <= 0) return;
    cv_.wait_for(lock, std::chrono::nanoseconds(std::min<int64_t>(left, 100'000'000)));
  }
}

void Repairer::Probe() {
  const std::vector<Result<StoreUsage>> usages = ProbeStores(*p_.chunks, *p_.io_pool);
  {
    std::lock_guard lock(mu_);
    if (probes_.size() < usages.size()) probes_.resize(usages.size());
    for (uint32_t s = 0; s < usages.size(); ++s) {
      ++probes_[s].second;
      if (usages[s].ok()) ++probes_[s].first;
      if (usages[s].ok()) {
        hosts_.Seen(s);
      } else {
        hosts_.Missed(s);
      }
    }
  }
  UpdateScores(usages);
}

std::vector<bool> Repairer::distrusted() const {
  std::lock_guard lock(mu_);
  return distrusted_;
}

std::vector<double> Repairer::probe_uptimes() const {
  std::lock_guard lock(mu_);
  std::vector<double> out;
  for (const auto& [answered, asked] : probes_)
    out.push_back(asked == 0 ? -1.0 : static_cast<double>(answered) / static_cast<double>(asked));
  return out;
}

std::vector<HostState> Repairer::JudgedStates() const {
  std::vector<HostState> states = host_states();
  std::lock_guard lock(mu_);
  for (size_t s = 0; s < states.size() && s < distrusted_.size(); ++s)
    if (distrusted_[s]) states[s] = HostState::kLost;
  return states;
}

void Repairer::UpdateScores(const std::vector<Result<StoreUsage>>& usages) {
  const std::vector<StoreCalls> calls = p_.chunks->store_calls();
  // Clears pass_ended_ once every store has rolled its pass over (below).
  struct ClearPassEnded {
    Repairer* self;
    ~ClearPassEnded() {
      std::lock_guard lock(self->mu_);
      self->pass_ended_ = false;
    }
  } clear_pass_ended{this};
  for (uint32_t s = 0; s < calls.size(); ++s) {
    const StoreCalls& c = calls[s];
    const ServiceRecord record{c.puts_ok + c.reads_ok, c.puts_failed + c.reads_failed, c.audits_ok,
                               c.audits_failed};
    // Trust is judged per pass over the chunks, where every shard is audited once: the
    // share of the store's shards found bad in the pass under way, or the last whole one.
    // Over all time, a store audited a thousand times over before it started dropping
    // shards would hide any loss behind its old successes.
    ServiceRecord this_pass, last_pass;
    {
      std::lock_guard lock(mu_);
      if (pass_start_.size() <= s) pass_start_.resize(s + 1), last_pass_.resize(s + 1);
      this_pass.audits_ok = c.audits_ok - std::min(c.audits_ok, pass_start_[s].first);
      this_pass.audits_failed = c.audits_failed - std::min(c.audits_failed, pass_start_[s].second);
      last_pass.audits_ok = last_pass_[s].first;
      last_pass.audits_failed = last_pass_[s].second;
      if (pass_ended_) {
        last_pass_[s] = {this_pass.audits_ok, this_pass.audits_failed};
        pass_start_[s] = {c.audits_ok, c.audits_failed};
      }
    }
    // A pass under way is judged once it has seen 20 of the store's shards: three rotted
    // ones among its first few audits are bad luck, not a verdict.
    // Unless it fails most of them: five of five wrong is a liar, not luck.
    const uint64_t seen = this_pass.audits_ok + this_pass.audits_failed;
    const bool judged_now =
        Distrusted(this_pass) &&
        (seen >= 20 || (this_pass.audits_failed >= 5 && this_pass.audits_failed * 2 >= seen));
    if ((judged_now || Distrusted(last_pass)) && !c.distrusted) {
      p_.chunks->SetDistrusted(s, true);
      std::lock_guard lock(mu_);
      if (distrusted_.size() <= s) distrusted_.resize(s + 1, false);
      distrusted_[s] = true;
      ++distrust_generation_;
      spdlog::error(
          "store {} failed {} of {} audits: no longer trusted; its shards are rebuilt "
          "elsewhere and it gets no new ones",
          s, this_pass.audits_failed, this_pass.audits_ok + this_pass.audits_failed);
    }
    // Placement weighs a store by its free room times its service score (DESIGN.md).
    if (s < usages.size() && usages[s].ok()) {
      const StoreUsage& u = *usages[s];
      const double free_gib =
          static_cast<double>(u.capacity_bytes - std::min(u.used_bytes, u.capacity_bytes)) /
          static_cast<double>(1ull << 30);
      // A full store keeps a sliver of weight: the policy never places on weight 0, and a
      // store that frees room should come back without a special case.
      p_.chunks->SetStoreWeight(s, std::max(free_gib, 1e-3) * ServiceScore(record));
    }
  }
}

void Repairer::Walk() {
  std::vector<HostState> states = JudgedStates();
  const auto state = [&](uint32_t s) { return s < states.size() ? states[s] : HostState::kLost; };
  std::vector<RepairItem> found;
  auto it = p_.db->NewIterator(Cf::kChunks);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    meta::Chunk chunk;
    if (!chunk.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) continue;
    const int k = static_cast<int>(chunk.k()), m = static_cast<int>(chunk.m());
    const std::span<const uint32_t> stores(chunk.stores().data(),
                                           static_cast<size_t>(chunk.stores_size()));
    const ChunkHealth health = AssessChunk(stores, k, 0, p_.policy.Threshold(k, m), state);
    if (!health.needs_repair) continue;
    found.push_back(
        {it->key().ToString(), health.intact_shards,
         uint64_t{chunk.shard_size()} * static_cast<uint64_t>(k + health.replace_count)});
  }
  std::lock_guard lock(mu_);
  // A fresh list: chunks healed meanwhile (a host back in time) leave the queue.
  const bool was_empty = queue_.empty() && in_flight_bytes_ == 0;
  queue_.Clear();
  for (const RepairItem& item : found) queue_.Offer(item);
  if (was_empty && !queue_.empty()) {
    busy_since_ns_ = p_.clock->monotonic_ns();
    bytes_since_busy_ = 0;
  }
  ++walks_;
  if (!found.empty())
    spdlog::info("repair: {} chunks at or below their repair threshold, {} MiB of traffic",
                 found.size(), queue_.bytes() >> 20);
}

bool Repairer::RepairOne(const std::string& key, bool suspect, uint64_t known_bad, bool check_all) {
  meta::Chunk record;
  if (!p_.db->GetProto(Cf::kChunks, key, &record).ok()) return false;  // dropped meanwhile
  Result<StoredChunk> chunk = FromRecord(ChunkIdOf(key), record);
  if (!chunk.ok()) return false;
  const std::vector<HostState> states = JudgedStates();
  const auto state = [&](uint32_t s) { return s < states.size() ? states[s] : HostState::kLost; };
  const int k = chunk->k, m = chunk->m;
  const ChunkHealth health =
      AssessChunk(chunk->stores, k, known_bad, p_.policy.Threshold(k, m), state);
  if (suspect) {
    // A degraded read explained by a host being away is no sign of a bad shard.
    if (health.healthy_shards != k + m && !health.needs_repair) return false;
    check_all = true;
  } else if (!health.needs_repair && (health.replace_mask & known_bad) == 0 && !check_all) {
    return false;  // healed meanwhile; a shard known bad is replaced whatever the threshold
  }
  // Rebuilt shards go neither to lost stores nor to ones whose service is poor (failing
  // audits now, not yet distrusted): a shard moved onto a liar would be lost again.
  std::vector<uint32_t> avoid;
  const std::vector<StoreCalls> calls = p_.chunks->store_calls();
  for (uint32_t s = 0; s < states.size(); ++s) {
    const bool poor =
        s < calls.size() && ServiceScore({calls[s].puts_ok + calls[s].reads_ok,
                                          calls[s].puts_failed + calls[s].reads_failed,
                                          calls[s].audits_ok, calls[s].audits_failed}) < 0.5;
    if (states[s] == HostState::kLost || poor) avoid.push_back(s);
  }

  const uint64_t traffic =
      uint64_t{chunk->shard_size} * static_cast<uint64_t>(k + health.replace_count);
  {
    std::lock_guard lock(mu_);
    in_flight_bytes_ = std::max<uint64_t>(traffic, 1);
  }
  SleepUntil(p_.clock->monotonic_ns() + limiter_.Reserve(traffic), /*until_walk_requested=*/false);
  // From the rebuild to the removal of bad copies, no other mover touches shards.
  std::unique_lock<std::mutex> moving;
  if (p_.shard_move_mu != nullptr) moving = std::unique_lock(*p_.shard_move_mu);
  Result<ShardRepair> repair =
      p_.chunks->RepairShards(*chunk, health.replace_mask, avoid, check_all);
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    in_flight_bytes_ = 0;
    if (!repair.ok()) {
      ++progress_.chunks_failed;
    } else {
      progress_.shards_unplaced += static_cast<uint64_t>(repair->unplaced);
      progress_.bad_shards += static_cast<uint64_t>(__builtin_popcountll(repair->bad_mask));
      bytes_since_busy_ += repair->bytes_read + repair->bytes_written;
    }
  }
  if (!repair.ok()) {
    spdlog::warn("repair: {}", repair.status().message());
    return false;
  }
  if (repair->bad_mask != 0)
    spdlog::warn("repair: chunk {}: {} shard(s) missing, rotted or wrong on their stores",
                 ToHex(ByteSpan(chunk->id.data(), 8)), __builtin_popcountll(repair->bad_mask));
  if (repair->rebuilt_mask != 0)
    changed = Commit(key, *chunk, *repair, known_bad | repair->bad_mask);
  std::lock_guard lock(mu_);
  if (changed) {
    ++progress_.chunks_done;
    progress_.bytes_done += repair->bytes_read + repair->bytes_written;
  }
  return changed;
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
  const int64_t now = p_.clock->monotonic_ns();
  std::string key;
  meta::Chunk record;
  {
    auto it = p_.db->NewIterator(Cf::kChunks);
    it->Seek(audit_cursor_);
    if (!it->Valid()) {
      // A whole pass over the chunks is done (or there are none yet).
      if (!audit_cursor_.empty()) {
        std::lock_guard lock(mu_);
        ++progress_.audit_cycles;
        pass_ended_ = true;
      }
      audit_cursor_.clear();
      it->SeekToFirst();
      if (!it->Valid()) {
        next_audit_ns_ = now + p_.probe_interval_ns;
        return;
      }
    }
    key = it->key().ToString();
    audit_cursor_ = key + '\0';
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) return;
  }
  Result<StoredChunk> chunk = FromRecord(ChunkIdOf(key), record);
  if (!chunk.ok()) return;
  {
    // A store that is away answers nothing about its shards, and asking it only costs a
    // timeout (and keeps its connection's breaker open for the reads that come when it is
    // back): such a chunk waits for the next pass.
    const std::vector<HostState> states = host_states();
    for (uint32_t s : chunk->stores) {
      if (s >= states.size() || states[s] != HostState::kUp) {
        next_audit_ns_ = std::max(next_audit_ns_, now) + 1'000'000;  // paced: no busy walk
        return;
      }
    }
  }
  // splitmix64: a fresh offset per audit, so a host cannot keep just the bytes it was asked
  // for last time.
  uint64_t z = (audit_rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  const uint64_t offset = z ^ (z >> 31);
  const ShardAudit audit = p_.chunks->AuditChunk(*chunk, offset, p_.policy.audit_sample_bytes);

  // The budget is per host: all hosts together may be sent budget x hosts per hour, and an
  // audit asks each of the chunk's k+m hosts for one sample.
  const uint64_t per_hour =
      p_.policy.audit_bytes_per_host_hour * std::max<uint64_t>(p_.chunks->store_count(), 1);
  const uint64_t sample = std::min<uint64_t>(p_.policy.audit_sample_bytes, chunk->shard_size);
  const uint64_t cost = sample * chunk->stores.size();
  if (per_hour == 0) {
    next_audit_ns_ = INT64_MAX;  // audits off
  } else {
    const auto cost_ns = static_cast<int64_t>(static_cast<long double>(cost) * 3.6e12L /
                                              static_cast<long double>(per_hour));
    next_audit_ns_ = std::max(next_audit_ns_, now) + cost_ns;
  }
  const int bad = __builtin_popcountll(audit.bad_mask);
  {
    std::lock_guard lock(mu_);
    ++progress_.audited_chunks;
    progress_.audit_failures += static_cast<uint64_t>(bad);
    progress_.audit_bytes += audit.bytes;
  }
  if (bad == 0 && !audit.inconsistent) return;
  spdlog::warn("audit: chunk {}: {}", ToHex(ByteSpan(chunk->id.data(), 8)),
               audit.inconsistent ? std::string("the shards disagree; checking every one")
                                  : std::to_string(bad) + " shard(s) missing or wrong");
  RepairOne(key, /*suspect=*/false, audit.bad_mask, audit.inconsistent);
}

void Repairer::Loop() {
  int64_t next_probe = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const int64_t now = p_.clock->monotonic_ns();
    if (now >= next_probe) {
      Probe();
      next_probe = p_.clock->monotonic_ns() + p_.probe_interval_ns;
    }
    bool walk;
    uint64_t generation;
    {
      std::lock_guard lock(mu_);
      generation = hosts_.Generation() + (distrust_generation_ << 32);
      walk = walk_requested_ || generation != walked_generation_ ||
             p_.clock->monotonic_ns() - last_walk_ns_ >= kWalkIntervalNs;
      walk_requested_ = false;
    }
    if (walk) {
      Walk();
      walked_generation_ = generation;
      last_walk_ns_ = p_.clock->monotonic_ns();
    }
    // Rebuild until the next probe is due, so host changes are seen within a second.
    while (p_.clock->monotonic_ns() < next_probe) {
      std::optional<RepairItem> item;
      std::string suspect;
      std::pair<std::string, uint64_t> reported;
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        if (!reported_bad_.empty()) {
          reported = *reported_bad_.begin();
          reported_bad_.erase(reported_bad_.begin());
          in_flight_bytes_ = 1;
        }
        if (reported.first.empty()) item = queue_.Pop();
        if (!item && reported.first.empty() && !suspects_.empty()) {
          suspect = *suspects_.begin();
          suspects_.erase(suspects_.begin());
        }
        if (item) in_flight_bytes_ = std::max<uint64_t>(item->bytes, 1);
      }
      if (!reported.first.empty()) {
        RepairOne(reported.first, /*suspect=*/false, reported.second);
      } else if (item) {
        RepairOne(item->key, /*suspect=*/false);
      } else if (!suspect.empty()) {
        RepairOne(suspect, /*suspect=*/true);
      } else if (p_.clock->monotonic_ns() >= next_audit_ns_) {
        AuditOne();  // nothing to repair: spend the audit budget
      } else {
        cv_.notify_all();  // RepairNow waits for an empty queue
        SleepUntil(std::min(next_probe, next_audit_ns_), /*until_walk_requested=*/true);
        if (p_.clock->monotonic_ns() >= next_probe) break;
        continue;
      }
      {
        std::lock_guard lock(mu_);
        in_flight_bytes_ = 0;
      }
      cv_.notify_all();
    }
  }
}

}  // namespace quid
