// The flusher's thread: when to flush what, draining, and the periodic garbage
// collection, redundancy and sweep passes. The flush round itself is in flush_round.cc.
#include "storage/volume/flusher.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace quid {
namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(200);
// A file is flushed once it has been quiet this long (its writer is done, for now) ...
constexpr int64_t kQuietNs = 1'000'000'000;
// ... or once its oldest unstored write is this old (a file appended to without pause, a
// log, still reaches the stores; the Linux page cache's dirty_expire is 30 s too) ...
constexpr int64_t kExpireNs = 30'000'000'000;
// ... or, for every file, oldest writes first, once the journal is this full. Below it a
// writer has the cores and the disk to itself: a burst up to half the journal is taken at
// the journal's speed, not the flush's (the flush then runs behind it, or as soon as the
// writer pauses); past it the flush keeps room ahead of the writer.
constexpr uint64_t kPressureShare = 2;          // 1/2
constexpr uint64_t kRoundBytes = 256ull << 20;  // dirty bytes planned into one round
constexpr size_t kRoundFiles = 512;
constexpr int64_t kSweepIntervalNs = 600'000'000'000;   // unreferenced-shard sweep period
constexpr int64_t kRestoreIntervalNs = 5'000'000'000;   // redundancy check period when idle
constexpr int64_t kPeriodicIntervalNs = 2'000'000'000;  // FlusherParts::periodic

}  // namespace

Flusher::Flusher(FlusherParts parts) : p_(parts), thread_([this] { Loop(); }) {}

Flusher::~Flusher() {
  Stop();
}

void Flusher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Flusher::Wake() {
  wake_cv_.notify_all();
}

bool Flusher::JournalPressed() const {
  return p_.journal->used_bytes() > p_.journal->capacity_bytes() / kPressureShare;
}

void Flusher::NoteWrite() {
  if (JournalPressed()) Wake();
}

std::vector<Ino> Flusher::PickCandidates(bool everything) {
  auto lock = p_.ns->Lock();
  const bool pressure = JournalPressed();
  const int64_t now = p_.clock->monotonic_ns();
  std::vector<std::pair<int64_t, Ino>> ready;
  for (const auto& [ino, dirty] : p_.ns->dirty()) {
    if (dirty->flushing() || dirty->clean()) continue;
    const int64_t since = dirty->dirty_since_mono_ns();
    if (everything || pressure || now - dirty->last_write_mono_ns() >= kQuietNs ||
        (since != 0 && now - since >= kExpireNs))
      ready.emplace_back(since, ino);
  }
  std::sort(ready.begin(), ready.end());
  std::vector<Ino> out;
  uint64_t bytes = 0;
  for (const auto& [t, ino] : ready) {
    if (out.size() >= kRoundFiles || (bytes >= kRoundBytes && !out.empty())) break;
    out.push_back(ino);
    bytes += p_.ns->dirty()[ino]->dirty_bytes();
  }
  return out;
}

void Flusher::Loop() {
  int64_t next_sweep = p_.clock->monotonic_ns();
  int64_t next_restore = p_.clock->monotonic_ns();
  int64_t next_periodic = p_.clock->monotonic_ns();
  bool more = false;
  for (;;) {
    bool everything = false;
    {
      std::unique_lock lock(mu_);
      if (!more && !stopping_) wake_cv_.wait_for(lock, kIdlePoll);
      if (stopping_) break;
      everything = drain_requests_ > 0;
    }
    std::vector<Ino> candidates = PickCandidates(everything);
    more = false;
    if (!candidates.empty()) {
      more = FlushRound(candidates);
      if (!more) {
        // Stores refused: back off rather than spin, but stay responsive to Stop().
        std::unique_lock lock(mu_);
        wake_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      }
    }
    if (p_.periodic && p_.clock->monotonic_ns() >= next_periodic) {
      p_.periodic();
      next_periodic = p_.clock->monotonic_ns() + kPeriodicIntervalNs;
    }
    // Big unlinked files, a bounded batch per pass; come back at once while any remain.
    if (p_.ns->DestroyDoomedStep()) more = true;
    // Before the journal fills behind a piece that cannot be flushed yet.
    while (RelocatePinnedRecords()) {
    }
    p_.gc->ProcessPendingDeletes();
    if (candidates.empty() && p_.clock->monotonic_ns() >= next_restore) {
      // Idle: spread chunks that were written while stores were away. Keep going while
      // there is work; otherwise look again later.
      const bool moved = RestoreRedundancy();
      next_restore = p_.clock->monotonic_ns() + (moved ? 0 : kRestoreIntervalNs);
    }
    if (p_.clock->monotonic_ns() >= next_sweep) {
      p_.gc->SweepInBackground();
      next_sweep = p_.clock->monotonic_ns() + kSweepIntervalNs;
    }
    flushed_cv_.notify_all();
  }
  flushed_cv_.notify_all();
}

Status Flusher::Drain(int64_t timeout_ns, const std::function<void(uint64_t)>& progress) {
  const int64_t deadline = p_.clock->monotonic_ns() + timeout_ns;
  {
    std::lock_guard lock(mu_);
    drain_requests_++;
  }
  auto pending = [this] {
    auto lock = p_.ns->Lock();
    uint64_t bytes = 0;
    bool any = false;
    for (const auto& [ino, dirty] : p_.ns->dirty()) {
      bytes += dirty->dirty_bytes();
      any = any || !dirty->clean();
    }
    return std::make_pair(any, bytes);
  };
  Status result = Status::Ok();
  for (;;) {
    Wake();
    auto [any, bytes] = pending();
    if (progress) progress(bytes);
    if (!any) break;
    if (p_.clock->monotonic_ns() >= deadline) {
      result = Status::Unavailable(std::to_string(bytes) +
                                   " bytes are not stored yet; they stay in the journal");
      break;
    }
    std::unique_lock lock(mu_);
    flushed_cv_.wait_for(lock, std::chrono::milliseconds(500));
  }
  std::lock_guard lock(mu_);
  drain_requests_--;
  return result;
}

}  // namespace quid
