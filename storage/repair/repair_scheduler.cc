#include "storage/repair/repair_scheduler.h"

#include <algorithm>
#include <utility>

namespace quid {
namespace {

// A full walk at least this often, even with no host changing state: chunks written onto
// doubled-up hosts, or made while a host was already lost, get queued too.
constexpr int64_t kWalkIntervalNs = 60'000'000'000;
// Degraded reads remembered for checking; past this many the newest are dropped (the walk
// and later reads find them again).
constexpr size_t kMaxSuspects = 4096;
// A chunk that cannot be audited now (a host of it away) is passed over this long, so
// walking past many of them is paced rather than a busy loop.
constexpr int64_t kAuditSkipNs = 1'000'000;

}  // namespace

RepairScheduler::RepairScheduler(const Clock* clock, const RepairPolicy& policy,
                                 int64_t probe_interval_ns, uint64_t audit_seed)
    : clock_(clock),
      policy_(policy),
      probe_interval_ns_(probe_interval_ns),
      hosts_(clock, policy.host_grace_ns),
      limiter_(clock, policy.rate_bytes_per_s),
      audit_rng_state_(audit_seed) {
  progress_.rate_limit_bytes_per_s = policy_.rate_bytes_per_s;
  progress_.host_grace_s = policy_.host_grace_ns / 1'000'000'000;
  progress_.audit_budget_bytes_per_host_hour = policy_.audit_bytes_per_host_hour;
  if (policy_.audit_bytes_per_host_hour == 0) next_audit_ns_ = INT64_MAX;  // audits off
}

void RepairScheduler::HostAnswered(uint32_t host, bool answered) {
  if (probes_.size() <= host) probes_.resize(host + 1);
  ++probes_[host].second;
  if (answered) {
    ++probes_[host].first;
    if (hosts_.State(host) == HostState::kLost)
      returned_.push_back({host, clock_->monotonic_ns() - hosts_.AwaySince(host)});
    hosts_.Seen(host);
  } else {
    hosts_.Missed(host);
  }
}

std::vector<RepairScheduler::Returned> RepairScheduler::TakeReturnedHosts() {
  return std::exchange(returned_, {});
}

void RepairScheduler::ProbeRoundDone() {
  next_probe_ns_ = clock_->monotonic_ns() + probe_interval_ns_;
}

std::vector<uint32_t> RepairScheduler::JudgeHosts(const std::vector<ServiceRecord>& records) {
  std::vector<uint32_t> newly;
  if (pass_start_.size() < records.size()) {
    pass_start_.resize(records.size());
    last_pass_.resize(records.size());
  }
  if (distrusted_.size() < records.size()) distrusted_.resize(records.size(), false);
  for (uint32_t s = 0; s < records.size(); ++s) {
    const ServiceRecord& r = records[s];
    ServiceRecord this_pass, last_pass;
    this_pass.audits_ok = r.audits_ok - std::min(r.audits_ok, pass_start_[s].first);
    this_pass.audits_failed = r.audits_failed - std::min(r.audits_failed, pass_start_[s].second);
    last_pass.audits_ok = last_pass_[s].first;
    last_pass.audits_failed = last_pass_[s].second;
    if (pass_ended_) {
      last_pass_[s] = {this_pass.audits_ok, this_pass.audits_failed};
      pass_start_[s] = {r.audits_ok, r.audits_failed};
    }
    // A pass under way is judged once it has seen 20 of the host's shards: three rotted
    // ones among its first few audits are bad luck, not a verdict. Unless it fails most of
    // them: five of five wrong is a liar, not luck.
    const uint64_t seen = this_pass.audits_ok + this_pass.audits_failed;
    const bool judged_now =
        Distrusted(this_pass) &&
        (seen >= 20 || (this_pass.audits_failed >= 5 && this_pass.audits_failed * 2 >= seen));
    if ((judged_now || Distrusted(last_pass)) && !distrusted_[s]) {
      distrusted_[s] = true;
      ++distrust_generation_;
      newly.push_back(s);
    }
  }
  pass_ended_ = false;
  return newly;
}

std::vector<uint32_t> RepairScheduler::RepairAvoid(
    const std::vector<ServiceRecord>& records) const {
  std::vector<uint32_t> avoid;
  const size_t hosts = std::max(records.size(), probes_.size());
  for (uint32_t s = 0; s < hosts; ++s) {
    const bool poor = s < records.size() && ServiceScore(records[s]) < 0.5;
    if (JudgedState(s) == HostState::kLost || poor) avoid.push_back(s);
  }
  return avoid;
}

HostState RepairScheduler::JudgedState(uint32_t host) const {
  return IsDistrusted(host) ? HostState::kLost : hosts_.State(host);
}

std::vector<HostVerdict> RepairScheduler::Verdicts() const {
  const int64_t now = clock_->monotonic_ns();
  std::vector<HostVerdict> out(std::max(probes_.size(), distrusted_.size()));
  for (uint32_t h = 0; h < out.size(); ++h) {
    const int64_t since = hosts_.AwaySince(h);
    out[h].away_for_ns = since == 0 ? -1 : std::max<int64_t>(now - since, 0);
    out[h].distrusted = IsDistrusted(h);
  }
  return out;
}

void RepairScheduler::RestoreVerdicts(const std::vector<HostVerdict>& verdicts) {
  const int64_t now = clock_->monotonic_ns();
  for (uint32_t h = 0; h < verdicts.size(); ++h) {
    if (verdicts[h].away_for_ns >= 0) hosts_.MarkAwaySince(h, now - verdicts[h].away_for_ns);
    if (verdicts[h].distrusted) {
      if (distrusted_.size() <= h) distrusted_.resize(h + 1, false);
      distrusted_[h] = true;
      ++distrust_generation_;
    }
  }
}

double RepairScheduler::ProbeUptime(uint32_t host) const {
  if (host >= probes_.size() || probes_[host].second == 0) return -1.0;
  return static_cast<double>(probes_[host].first) / static_cast<double>(probes_[host].second);
}

void RepairScheduler::ChunkSuspect(const std::string& key) {
  if (suspects_.size() < kMaxSuspects) suspects_.insert(key);
}

void RepairScheduler::ChunkReportedBad(const std::string& key, uint64_t bad_mask) {
  reported_bad_[key] |= bad_mask;
}

void RepairScheduler::WalkBegin() {
  walk_found_.clear();
}

void RepairScheduler::WalkOffer(const std::string& key, std::span<const uint32_t> stores, int k,
                                int m, uint32_t shard_size) {
  const ChunkHealth health = Assess(stores, k, m, 0);
  if (!health.needs_repair) return;
  walk_found_.push_back({key, health.intact_shards,
                         uint64_t{shard_size} * static_cast<uint64_t>(k + health.replace_count)});
}

size_t RepairScheduler::WalkEnd() {
  const bool was_empty = queue_.empty() && in_flight_bytes_ == 0;
  queue_.Clear();
  for (const RepairItem& item : walk_found_) queue_.Offer(item);
  walk_found_.clear();
  walk_found_.shrink_to_fit();
  if (was_empty && !queue_.empty()) {
    busy_since_ns_ = clock_->monotonic_ns();
    bytes_since_busy_ = 0;
  }
  ++walks_;
  last_walk_ns_ = clock_->monotonic_ns();
  return queue_.size();
}

ChunkHealth RepairScheduler::Assess(std::span<const uint32_t> stores, int k, int m,
                                    uint64_t known_bad) const {
  return AssessChunk(stores, k, known_bad, policy_.Threshold(k, m),
                     [this](uint32_t s) { return JudgedState(s); });
}

int64_t RepairScheduler::AdmitTraffic(uint64_t bytes) {
  in_flight_bytes_ = std::max<uint64_t>(bytes, 1);
  return limiter_.Reserve(bytes);
}

void RepairScheduler::RepairDone(const RepairOutcome& outcome) {
  in_flight_bytes_ = 0;
  if (!outcome.decoded) {
    ++progress_.chunks_failed;
    return;
  }
  progress_.shards_unplaced += static_cast<uint64_t>(outcome.unplaced);
  progress_.bad_shards += static_cast<uint64_t>(outcome.bad_shards);
  bytes_since_busy_ += outcome.bytes_moved;
  if (outcome.committed) {
    ++progress_.chunks_done;
    progress_.bytes_done += outcome.bytes_moved;
  }
}

uint64_t RepairScheduler::NextAuditOffset() {
  // splitmix64.
  uint64_t z = (audit_rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void RepairScheduler::AuditSkipped(bool no_chunks) {
  const int64_t now = clock_->monotonic_ns();
  if (next_audit_ns_ == INT64_MAX) return;
  next_audit_ns_ =
      no_chunks ? now + probe_interval_ns_ : std::max(next_audit_ns_, now) + kAuditSkipNs;
}

void RepairScheduler::AuditDone(int bad_shards, uint64_t bytes_fetched, uint64_t sample_bytes,
                                size_t hosts, size_t volume_hosts) {
  ++progress_.audited_chunks;
  progress_.audit_failures += static_cast<uint64_t>(bad_shards);
  progress_.audit_bytes += bytes_fetched;
  // The budget is per host: all hosts together may be sent budget x hosts per hour, and an
  // audit asks each of the chunk's hosts for one sample.
  const uint64_t per_hour = policy_.audit_bytes_per_host_hour * std::max<uint64_t>(volume_hosts, 1);
  if (per_hour == 0) {
    next_audit_ns_ = INT64_MAX;
    return;
  }
  const uint64_t cost = sample_bytes * hosts;
  const auto cost_ns = static_cast<int64_t>(static_cast<long double>(cost) * 3.6e12L /
                                            static_cast<long double>(per_hour));
  next_audit_ns_ = std::max(next_audit_ns_, clock_->monotonic_ns()) + cost_ns;
}

void RepairScheduler::AuditPassEnded() {
  ++progress_.audit_cycles;
  pass_ended_ = true;
}

RepairAction RepairScheduler::Next() {
  const int64_t now = clock_->monotonic_ns();
  RepairAction action;
  if (now >= next_probe_ns_) {
    action.kind = RepairAction::Kind::kProbe;
    return action;
  }
  // Distrust changes chunk health as much as a host turning lost does.
  const uint64_t generation = hosts_.Generation() + (distrust_generation_ << 32);
  if (walk_requested_ || !walked_once_ || generation != walked_generation_ ||
      now - last_walk_ns_ >= kWalkIntervalNs) {
    walk_requested_ = false;
    walked_once_ = true;
    walked_generation_ = generation;
    action.kind = RepairAction::Kind::kWalk;
    return action;
  }
  // What a check found bad first (someone waits on it), then the queue, then read hints.
  if (!reported_bad_.empty()) {
    action.kind = RepairAction::Kind::kRepair;
    action.key = reported_bad_.begin()->first;
    action.known_bad = reported_bad_.begin()->second;
    reported_bad_.erase(reported_bad_.begin());
    in_flight_bytes_ = 1;
    return action;
  }
  if (std::optional<RepairItem> item = queue_.Pop()) {
    action.kind = RepairAction::Kind::kRepair;
    action.key = std::move(item->key);
    in_flight_bytes_ = std::max<uint64_t>(item->bytes, 1);
    return action;
  }
  if (!suspects_.empty()) {
    action.kind = RepairAction::Kind::kCheck;
    action.key = *suspects_.begin();
    suspects_.erase(suspects_.begin());
    in_flight_bytes_ = 1;
    return action;
  }
  if (now >= next_audit_ns_) {
    action.kind = RepairAction::Kind::kAudit;  // nothing to repair: spend the audit budget
    return action;
  }
  action.until_ns = std::min(next_probe_ns_, next_audit_ns_);
  return action;
}

void RepairScheduler::ActionDone() {
  in_flight_bytes_ = 0;
}

bool RepairScheduler::IdleSince(uint64_t walks_before) const {
  return walks_ > walks_before && queue_.empty() && in_flight_bytes_ == 0 && suspects_.empty() &&
         reported_bad_.empty();
}

RepairProgress RepairScheduler::progress() const {
  RepairProgress out = progress_;
  // Chunks a degraded read made suspect are left to check: counted, so "nothing left" means
  // every hint has been followed too.
  out.chunks_left =
      queue_.size() + reported_bad_.size() + suspects_.size() + (in_flight_bytes_ > 0 ? 1 : 0);
  out.bytes_left = queue_.bytes() + (in_flight_bytes_ > 1 ? in_flight_bytes_ : 0);
  if (out.chunks_left > 0 && out.bytes_left > 0) {
    // The rate measured since the queue last filled, or the limit until there is one.
    const double elapsed_s = static_cast<double>(clock_->monotonic_ns() - busy_since_ns_) / 1e9;
    double rate = elapsed_s > 1 && bytes_since_busy_ > 0
                      ? static_cast<double>(bytes_since_busy_) / elapsed_s
                      : 0;
    if (rate <= 0) rate = static_cast<double>(policy_.rate_bytes_per_s);
    out.eta_s =
        rate > 0 ? static_cast<int64_t>(static_cast<double>(out.bytes_left) / rate + 0.5) : -1;
  }
  return out;
}

}  // namespace quid
