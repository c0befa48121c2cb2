// DirtyFile: what a file's acknowledged-but-unstored writes look like, for one inode.
//
// Pieces map file ranges onto journal payload bytes; they never overlap, newer writes
// split or replace older pieces. Each piece holds one reference on its journal segment,
// so a segment lives while any of its bytes are still the latest data of some file.
// Truncate records hold a reference until they are flushed: replay needs them to cut
// older data.
//
// Not thread-safe: the volume guards every DirtyFile with its metadata mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "storage/journal/journal.h"

namespace quid {

struct DirtyPiece {
  uint64_t length = 0;
  uint64_t seq = 0;
  uint64_t segment = 0;
  uint64_t data_offset = 0;  // in the segment, of the piece's first byte
};

// A consistent copy of a DirtyFile taken when a flush starts.
struct DirtySnapshot {
  std::map<uint64_t, DirtyPiece> pieces;
  uint64_t size = 0;
  // Committed bytes at or beyond this offset were truncated away and must not be kept.
  uint64_t base_limit = 0;
  uint64_t seq = 0;  // every record <= seq is in this snapshot
};

class DirtyFile {
 public:
  // A file whose committed size is `committed_size`. `total` (optional; must outlive this
  // object) follows the sum of dirty_bytes() over every file that shares it, so the volume's
  // quota can read what is acknowledged but unstored without walking the dirty map.
  explicit DirtyFile(uint64_t committed_size, std::atomic<uint64_t>* total = nullptr)
      : size_(committed_size), min_size_(committed_size), total_(total) {}
  ~DirtyFile() { AddDirty(-static_cast<int64_t>(dirty_bytes_)); }
  DirtyFile(const DirtyFile&) = delete;
  DirtyFile& operator=(const DirtyFile&) = delete;

  // Applies a write record; takes over the reference the record holds.
  void ApplyWrite(const JournalRecord& record, SegmentRefs* refs);
  // Applies a truncate record; takes over its reference.
  void ApplyTruncate(const JournalRecord& record, SegmentRefs* refs);

  // Pieces overlapping [offset, offset + length), each clipped to that range, with one
  // extra reference taken on each segment (the caller releases them after reading).
  std::vector<std::pair<uint64_t, DirtyPiece>> PiecesIn(uint64_t offset, uint64_t length,
                                                        SegmentRefs* refs) const;

  // Starts a flush: returns the snapshot and remembers its limits until FinishFlush.
  DirtySnapshot BeginFlush();
  // Ends the flush begun last. On success, drops every piece and truncate up to the
  // snapshot's seq (their data is now committed); on failure keeps them.
  void FinishFlush(bool committed, SegmentRefs* refs);
  // Drops everything (the file was destroyed).
  void DropAll(SegmentRefs* refs);

  // --- relocation of live records out of an old journal segment ---
  // Pieces whose bytes lie in journal segment `segment`, by file offset.
  std::vector<std::pair<uint64_t, DirtyPiece>> PiecesInSegment(uint64_t segment) const;
  // Whether a truncate record this file still needs lies in `segment` (such a record cannot
  // be copied forward: replayed after later writes, it would cut them).
  bool HasTruncateIn(uint64_t segment) const;
  // Whether the piece at `offset` is still exactly `expected`.
  bool HasPiece(uint64_t offset, const DirtyPiece& expected) const;
  // Points the piece at `offset` (still exactly `expected`) at `moved`, a copy of its bytes
  // appended later; takes over `moved`'s reference and drops the old one. False, with
  // nothing changed, if the piece is no longer there as it was.
  bool MovePiece(uint64_t offset, const DirtyPiece& expected, const JournalRecord& moved,
                 SegmentRefs* refs);

  uint64_t size() const { return size_; }
  // Committed bytes at or beyond this offset are stale (a truncate cut them).
  uint64_t base_limit() const;
  bool flushing() const { return flushing_; }
  bool clean() const { return pieces_.empty() && truncates_.empty() && !flushing_; }
  uint64_t dirty_bytes() const { return dirty_bytes_; }
  uint64_t last_seq() const { return last_seq_; }
  int64_t mtime_ns() const { return mtime_ns_; }
  void clear_mtime() { mtime_ns_ = 0; }
  int64_t last_write_mono_ns() const { return last_write_mono_ns_; }
  // When the oldest write not yet committed was applied (monotonic; 0 for none, or for
  // pieces replayed from the journal at mount, which are due at once anyway).
  int64_t dirty_since_mono_ns() const { return dirty_since_mono_ns_; }
  // A write or truncate was applied at `mono_ns`.
  void NoteWrite(int64_t mono_ns);

 private:
  // Changes dirty_bytes_ (and the shared total) by `delta`.
  void AddDirty(int64_t delta) {
    dirty_bytes_ = static_cast<uint64_t>(static_cast<int64_t>(dirty_bytes_) + delta);
    if (total_ != nullptr)
      total_->fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed);
  }
  // Removes [offset, offset+length) from the piece map, splitting pieces at the edges.
  void Punch(uint64_t offset, uint64_t length, SegmentRefs* refs);

  std::map<uint64_t, DirtyPiece> pieces_;
  std::vector<std::pair<uint64_t, uint64_t>> truncates_;  // (seq, segment)
  uint64_t size_;
  uint64_t min_size_;
  uint64_t inflight_base_limit_ = 0;
  uint64_t inflight_seq_ = 0;
  bool flushing_ = false;
  uint64_t dirty_bytes_ = 0;
  std::atomic<uint64_t>* const total_;
  uint64_t last_seq_ = 0;
  int64_t mtime_ns_ = 0;
  int64_t last_write_mono_ns_ = 0;
  int64_t dirty_since_mono_ns_ = 0;
  int64_t dirty_since_next_ = 0;  // the first write applied during the flush under way
};

}  // namespace quid
