// GarbageCollector: removes shards no file needs any more, in two ways.
//
//   Pending deletes: a commit that drops a chunk's last reference moves its record to the
//   durable to-delete list (`deletes`) in the same batch. ProcessPendingDeletes removes
//   those chunks' shards, then the rows (idempotent: a crash in between removes again).
//   Each step takes up to 256 rows from a cursor (so rows held up by a store that is
//   away never block the rows behind them), records in each row which shards are gone
//   (only the stores still holding shards are asked again; stores known down are not
//   asked at all), and backs off (1 s doubling to 60 s) while a step removes nothing.
//   Two rules make it safe:
//     - the WAL is synced before any shard goes, so a power loss cannot bring back the
//       reference (namespace operations commit without sync);
//     - the read gate is closed and drained first, so a read that still sees the chunk in
//       its snapshot finishes before the shards vanish (read_gate.h).
//   Sweep: shards that no chunk record or pending delete names (a crash between upload
//   and commit), older than the grace period, are removed; each store is listed against
//   the metadata, per store, so a copy on a store that should not hold it goes too.
//
// ProcessPendingDeletes runs on the flusher thread only, the sweep on a thread of its own
// (it touches only the metadata's snapshots, the stores and its counters); the counters
// may be read from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/base/clock.h"
#include "storage/chunks/chunk_store.h"
#include "storage/meta/meta.pb.h"
#include "storage/meta/metadata.h"
#include "storage/volume/read_gate.h"

namespace quid {

class GarbageCollector {
 public:
  // Shards younger than `grace_ns` are never swept (their upload may still be committing).
  GarbageCollector(MetaDb* db, ChunkStore* chunks, ReadGate* gate, Clock* clock, int64_t grace_ns);

  // One bounded step of pending-delete processing; returns at once while reads that may
  // need the collected chunks are in flight, or the WAL cannot be synced.
  void ProcessPendingDeletes();
  // Lists every store against the metadata and removes unreferenced shards.
  Status Sweep();
  // Runs Sweep on a thread of its own (it lists whole stores, which can take minutes), so
  // the flusher goes on flushing; does nothing while one still runs.
  void SweepInBackground();
  // A store is back after it was declared lost: its chunks were rebuilt elsewhere, so the
  // unreferenced shards it holds from before `stale_before_ns` (wall time; it could receive
  // nothing while away) are stale whatever their age. Sweeps it soon (after the sweep under
  // way, if one is), not at the next periodic sweep, and again, backing off, while its
  // listing fails (a store just back may answer a probe before it answers a listing).
  void SweepReturnedStore(uint32_t store, int64_t stale_before_ns);
  // Stops a sweep in progress and waits for it.
  ~GarbageCollector();

  // A commit put `n` rows on the to-delete list (for status; any thread).
  void NotePendingDeletes(uint64_t n) {
    pending_ += n;
    fresh_rows_ = true;  // worth a step even while backing off
  }
  uint64_t pending() const { return pending_.load(); }
  uint64_t last_sweep_removed() const { return last_sweep_removed_.load(); }
  uint64_t sweeps() const { return sweeps_.load(); }

 private:
  MetaDb* const db_;
  ChunkStore* const chunks_;
  ReadGate* const gate_;
  Clock* const clock_;
  const int64_t grace_ns_;
  struct Doomed {
    std::string key;
    StoredChunk chunk;
    meta::PendingDelete record;  // as stored, with the shards already removed
  };
  // Rows collected behind a closed gate, removed once it drains.
  std::vector<Doomed> doomed_;
  uint64_t doomed_gate_ = 0;
  std::string cursor_;           // the deletes key the next step starts at
  int64_t backoff_ns_ = 0;       // grows while steps make no progress
  int64_t next_attempt_ns_ = 0;  // monotonic; no step before this
  std::atomic<uint64_t> pending_{0};
  std::atomic<bool> fresh_rows_{false};
  std::atomic<uint64_t> last_sweep_removed_{0};
  std::atomic<uint64_t> sweeps_{0};
  std::atomic<bool> sweep_running_{false};
  std::atomic<bool> stop_sweep_{false};
  // A full pass (returned_only false) or a pass over the returned stores only.
  Status SweepStores(bool returned_only);

  std::mutex start_mu_;           // SweepInBackground's; guards stale_before_ and returned_news_
  std::condition_variable wake_;  // a store returned, or closing
  struct Returned {
    int64_t cutoff_ns = 0;  // its unreferenced shards from before this are stale
    int tries_left = 0;     // listings still to try before the periodic sweep takes over
  };
  // Per store index, from SweepReturnedStore: the next pass's cutoff for it (taken by that
  // pass; put back, one try less, if its listing fails).
  std::map<uint32_t, Returned> stale_before_;
  bool returned_news_ = false;  // a store returned since the sweeper last looked
  std::thread sweeper_;
};

}  // namespace quid
