// Flusher: the volume's one background thread. It turns dirty journal data into stored
// chunks, removes the shards of unreferenced chunks, spreads chunks written while stores
// were away, and sweeps shards no metadata references.
//
// A flush round has three steps (flush_plan.h): PlanRound snapshots the chosen files'
// dirty pieces under the namespace lock; BuildRound builds, names and uploads each
// changed chunk without locks, on the CPU pool; CommitRound applies every file's new
// extents, refcounts, size and flushed seq in one synced batch under the namespace lock,
// and only then releases the journal bytes.
//
// Locking: mu_ guards the thread's control state (stop, drain requests) and is a leaf:
// never held while taking the namespace lock or doing I/O.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/base/clock.h"
#include "storage/base/thread_pool.h"
#include "storage/chunks/chunk_store.h"
#include "storage/chunks/chunker.h"
#include "storage/crypto/keys.h"
#include "storage/journal/journal.h"
#include "storage/meta/metadata.h"
#include "storage/volume/chunk_reader.h"
#include "storage/volume/flush_plan.h"
#include "storage/volume/garbage_collector.h"
#include "storage/volume/namespace.h"

namespace quid {

class Quota;

// What the flusher works on; every pointer outlives it.
struct FlusherParts {
  Namespace* ns = nullptr;
  MetaDb* db = nullptr;
  Journal* journal = nullptr;
  ChunkStore* chunks = nullptr;
  ChunkReader* reader = nullptr;
  GarbageCollector* gc = nullptr;
  ThreadPool* cpu_pool = nullptr;  // builds chunks
  ThreadPool* io_pool = nullptr;   // asks stores for their usage
  const Chunker* chunker = nullptr;
  const VolumeKeys* keys = nullptr;
  uint64_t inline_max = 0;  // files up to this size are kept in their inode
  Clock* clock = nullptr;
  // The data path's write-order lock: taken to copy live journal records forward, so no
  // write to the same range can fall between the copy and the switch to it.
  std::mutex* write_order_mu = nullptr;
  // Held for each shard move (copy, commit, removal of the surplus copy), and by the
  // repairer for each rebuild: two movers of one chunk's shard at once could each put the
  // shard on the same new store and the one that lost the commit would remove the copy the
  // winner's record names. Taken before the namespace lock.
  std::mutex* shard_move_mu = nullptr;
  Quota* quota = nullptr;  // learns of every chunk record a commit adds
  // Called from the flusher's thread every few seconds (the volume refreshes its quota's
  // capacities from the stores).
  std::function<void()> periodic;
};

class Flusher {
 public:
  // Starts the thread.
  explicit Flusher(FlusherParts parts);
  // Stops the thread (see Stop).
  ~Flusher();

  // There is new work (a write, a delete): look now rather than at the next poll.
  void Wake();
  // A write or truncate was journaled: wakes the flusher only if the journal is past the
  // line where every file is flushed (a file being written is otherwise not due before it
  // has been quiet a second, which the idle poll notices; waking for each write made a
  // flusher rescan the dirty files under the namespace lock once per small file).
  void NoteWrite();
  // Shards on stores whose leases end that found no other store with room, over the last
  // whole walk of the chunks (VolumeStatus::stuck_shards).
  uint64_t stuck_shards() const { return stuck_shards_.load(); }
  // Flushes everything dirty, whatever its age, until nothing is dirty or `timeout_ns`
  // passes (kUnavailable: bytes stay in the journal). `progress` gets the bytes still
  // pending, about twice a second. Any thread.
  Status Drain(int64_t timeout_ns, const std::function<void(uint64_t)>& progress);
  // Ends the thread after its current step; idempotent.
  void Stop();

 private:
  void Loop();
  std::vector<Ino> PickCandidates(bool everything);
  // The journal is so full that every dirty file is due, written to or not.
  bool JournalPressed() const;
  // True if any file committed.
  bool FlushRound(const std::vector<Ino>& inodes);
  std::vector<FileJob> PlanRound(const std::vector<Ino>& inodes);
  void BuildRound(std::vector<FileJob>& files);
  Status BuildChunk(FileJob& file, ChunkJob& chunk);
  bool CommitRound(std::vector<FileJob>& files);
  // Moves the extra shards of chunks placed twice on one store (written while stores were
  // away), and every shard on a draining store (its lease ends), to reachable stores the
  // chunk does not use yet, a bounded amount per call. True if it moved anything
  // (redundancy.cc).
  bool RestoreRedundancy();
  // When the journal is at least half full and its oldest segment is held by a few live
  // pieces only (a file that cannot be flushed yet), copies those pieces to the head of
  // the journal, syncs, and switches the files to the copies, so the old segment (and
  // every flushed one behind it) can go. True if it freed a segment (relocate.cc).
  bool RelocatePinnedRecords();

  const FlusherParts p_;
  std::string redundancy_cursor_;          // chunk key to resume RestoreRedundancy from
  uint64_t stuck_this_cycle_ = 0;          // shards on draining stores with nowhere to go, so far
  std::atomic<uint64_t> stuck_shards_{0};  // the same, over the last whole walk

  std::mutex mu_;
  std::condition_variable wake_cv_;
  std::condition_variable flushed_cv_;  // signalled after every pass of the loop
  bool stopping_ = false;               // guarded by mu_
  int drain_requests_ = 0;              // guarded by mu_
  std::thread thread_;                  // last: starts once the rest is set up
};

}  // namespace quid
