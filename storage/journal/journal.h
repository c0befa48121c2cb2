// Journal: the durable local write-back area. File contents written through the mount
// land here first and are acknowledged; the flusher later turns them into stored chunks.
//
// The journal is a sequence of segment files (journal/<number>.seg), each a run of
// records: a 48-byte header (magic, type, sync lag, length, CRC-32C over header and
// payload, seq, inode, offset, mtime) followed by the payload. Records carry a global,
// increasing seq. All file access goes through the Env seam.
//
// Replay tells a torn tail from damage. A segment is synced before the next one is
// started, so only the last segment can hold unsynced bytes. Replay reads every intact
// record in seq order; at a record that fails its checksum it searches on for the next
// intact one:
//   - none follows, in the last segment: the torn tail of a crash (unsynced writes). It is
//     cut off, and replay ends there.
//   - one follows, or the bad bytes sit in an earlier (synced) segment: damage. It is
//     logged and reported by damage() (which seqs and bytes are unreadable), and every
//     intact record after it is still replayed: synced records are never dropped because
//     an earlier one rotted. Each header records how far the journal was synced when it
//     was appended, so damage() can say whether the lost records were certainly synced.
//
// Sync failures are final: after an fdatasync error the kernel may have dropped the pages
// it could not write, so retrying on the same descriptor proves nothing. The segment is
// marked failed, appends move to a fresh segment, and every later Sync() fails with
// kIoError while the failed segment still holds records (until the flusher has stored and
// released them), so no fsync caller is told that data which may be gone is durable.
//
// Lifetime: whoever still needs a record (the dirty map, for a write that is not yet
// stored) holds a reference on its segment. Segments are deleted strictly in order, once
// unreferenced and no longer the one being appended to. The caller must make the metadata
// that supersedes a record durable before releasing its last reference.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/base/bytes.h"
#include "storage/base/clock.h"
#include "storage/base/env.h"
#include "storage/base/status.h"

namespace quid {

// References on journal segments, taken and dropped by whoever needs a record's bytes.
// Journal implements it; tests substitute a counter.
class SegmentRefs {
 public:
  virtual ~SegmentRefs() = default;
  virtual void AddRef(uint64_t segment, uint64_t count) = 0;
  virtual void Release(uint64_t segment, uint64_t count) = 0;
};

enum class JournalRecordType : uint8_t { kWrite = 1, kTruncate = 2 };

struct JournalRecord {
  JournalRecordType type = JournalRecordType::kWrite;
  uint64_t seq = 0;
  uint64_t ino = 0;
  uint64_t offset = 0;  // write: file offset; truncate: the new size
  uint32_t length = 0;  // write: payload bytes; truncate: 0
  int64_t mtime_ns = 0;
  uint64_t segment = 0;  // where the payload lives
  uint64_t data_offset = 0;
};

// A run of unreadable bytes found at replay, and the records it swallowed.
struct JournalDamage {
  uint64_t segment = 0;
  uint64_t offset = 0;  // first bad byte in the segment file
  uint64_t length = 0;  // bad bytes
  // Seqs of the records lost: after the last intact record before the damage, before the
  // first intact one after it (last_seq = 0: up to the end of the journal).
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  // True if a later record proves these bytes had been synced (acknowledged to fsync).
  bool synced = false;
  std::string ToString() const;
};

struct JournalOptions {
  std::string dir;
  Env* env = nullptr;  // default: the real disk
  uint64_t segment_bytes = 64ull << 20;
  // Appends wait while live segments hold this many bytes (back-pressure on writers).
  uint64_t capacity_bytes = 1ull << 30;
  // How long an append waits for room before giving up with kNoSpace. Once one append
  // has given up, the journal is out of space: later appends that do not fit fail at
  // once, as on a full disk, until the flusher frees room. Otherwise every writer (and
  // each of the kernel's writeback requests) would wait the whole time anew.
  int64_t full_wait_ns = 30'000'000'000;
  Clock* clock = nullptr;
  // Appended bytes are handed to the disk's writeback in runs of this size, so that no
  // sync has much to write when it comes.
  uint64_t writeback_chunk_bytes = 4ull << 20;
  // Seqs continue above this even when no segment survives (inodes remember seqs).
  uint64_t min_seq = 0;
};

constexpr size_t kJournalHeaderBytes = 48;
constexpr uint32_t kMaxJournalPayload = 16u << 20;

class Journal : public SegmentRefs {
 public:
  // Opens or creates the journal in options.dir and calls `replay` for every intact
  // record in seq order. Records start unreferenced: `replay` calls AddRef for those it
  // keeps (on the journal it is handed). Appends go to a fresh segment.
  using ReplayFn = std::function<void(Journal*, const JournalRecord&)>;
  static Result<std::unique_ptr<Journal>> Open(const JournalOptions& options,
                                               const ReplayFn& replay);
  ~Journal() override;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends a record; the returned record holds one reference on its segment.
  // Blocks while the journal is full (kNoSpace after options.full_wait_ns, or at once
  // while the journal is out of space; see JournalOptions).
  Result<JournalRecord> AppendWrite(uint64_t ino, uint64_t offset, ByteSpan data, int64_t mtime_ns);
  Result<JournalRecord> AppendTruncate(uint64_t ino, uint64_t size, int64_t mtime_ns);
  // Waits until a record of `payload_bytes` fits, until the monotonic `deadline_ns` at
  // most (kNoSpace then, and the journal is out of space; see JournalOptions). Lets a
  // caller wait without holding its own locks, then append with TryAppendWrite.
  Status WaitForRoom(uint64_t payload_bytes, int64_t deadline_ns);
  // The monotonic deadline for a wait that starts now.
  int64_t RoomDeadline() const;
  // AppendWrite that never waits: kNoSpace at once when the record does not fit (the
  // flusher copying live records forward must not sleep on the room it is making).
  Result<JournalRecord> TryAppendWrite(uint64_t ino, uint64_t offset, ByteSpan data,
                                       int64_t mtime_ns);
  Result<JournalRecord> TryAppendTruncate(uint64_t ino, uint64_t size, int64_t mtime_ns);

  // Reads payload bytes of a referenced record: out.size() bytes at `data_offset`.
  Status ReadData(uint64_t segment, uint64_t data_offset, MutableByteSpan out) const;

  // Makes every record appended so far durable (fdatasync of each unsynced segment).
  // kIoError if a sync has ever failed on a segment that still holds records (see above).
  Status Sync();

  void AddRef(uint64_t segment, uint64_t count) override;
  // Drops references; deletes the segments that became unreferenced, in order.
  void Release(uint64_t segment, uint64_t count) override;

  // Bytes in live segments (what counts against capacity).
  uint64_t used_bytes() const;
  uint64_t capacity_bytes() const { return options_.capacity_bytes; }
  uint64_t last_seq() const;
  size_t segment_count() const;
  // Appends waiting for room now, and whether the journal is out of space (an append
  // gave up and no room has been freed since).
  int waiting_appends() const;
  bool out_of_space() const;
  // The oldest segment that no longer takes appends; nullopt when only the current
  // segment is live. `freed_with_it`: its bytes plus those of the unreferenced sealed
  // segments right behind it, which are deleted as soon as it is.
  struct SegmentInfo {
    uint64_t number = 0;
    uint64_t bytes = 0;
    uint64_t freed_with_it = 0;
  };
  std::optional<SegmentInfo> OldestSealedSegment() const;
  // Damage found at replay (empty for a healthy journal). Fixed after Open.
  const std::vector<JournalDamage>& damage() const { return damage_; }
  // Bytes cut off as the torn tail at replay.
  uint64_t torn_bytes() const { return torn_bytes_; }

 private:
  struct Segment;
  explicit Journal(const JournalOptions& options);
  Status Replay(const ReplayFn& replay);
  Result<JournalRecord> Append(JournalRecordType type, uint64_t ino, uint64_t offset, ByteSpan data,
                               int64_t mtime_ns, bool wait_for_room = true);
  // Replays one segment file; `last` says whether it is the newest one.
  Status ReplaySegment(uint64_t number, bool last, uint64_t* last_seq, const ReplayFn& replay);
  Status StartSegmentLocked();
  // REQUIRES: lock holds mu_. Waits while a record of `record_bytes` does not fit.
  Status WaitForRoomLocked(std::unique_lock<std::mutex>& lock, uint64_t record_bytes,
                           int64_t deadline_ns);
  bool FullLocked(uint64_t record_bytes) const;
  // Marks a segment whose sync failed: later Syncs fail while it holds records.
  void MarkSyncFailedLocked(Segment& seg, const Status& failure);
  // Syncs `seg` (REQUIRES: mu_ not held, seg pinned). Marks it failed on error.
  Status SyncSegment(const std::shared_ptr<Segment>& seg, uint64_t size);
  void CollectLocked();
  std::string SegmentPath(uint64_t number) const;

  JournalOptions options_;
  mutable std::mutex mu_;
  std::condition_variable room_cv_;
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;  // by number, oldest first
  std::shared_ptr<Segment> current_;
  uint64_t next_seq_ = 1;
  uint64_t used_bytes_ = 0;
  uint64_t synced_seq_ = 0;  // every record with seq <= this is durable
  int waiting_ = 0;          // appends waiting for room
  bool out_of_space_ = false;
  std::vector<JournalDamage> damage_;
  uint64_t torn_bytes_ = 0;
};

}  // namespace quid
