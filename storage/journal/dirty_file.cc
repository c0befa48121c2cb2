#include "storage/journal/dirty_file.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace quid {

void DirtyFile::Punch(uint64_t offset, uint64_t length, SegmentRefs* refs) {
  if (length == 0 || pieces_.empty()) return;
  const uint64_t end = offset + length;
  auto it = pieces_.upper_bound(offset);
  if (it != pieces_.begin()) --it;
  while (it != pieces_.end() && it->first < end) {
    const uint64_t p_start = it->first;
    DirtyPiece p = it->second;
    const uint64_t p_end = p_start + p.length;
    if (p_end <= offset) {
      ++it;
      continue;
    }
    it = pieces_.erase(it);
    AddDirty(-static_cast<int64_t>(p.length));
    bool kept_left = false;
    if (p_start < offset) {
      DirtyPiece left = p;
      left.length = offset - p_start;
      pieces_[p_start] = left;
      AddDirty(static_cast<int64_t>(left.length));
      kept_left = true;
    }
    if (p_end > end) {
      DirtyPiece right = p;
      right.length = p_end - end;
      right.data_offset = p.data_offset + (end - p_start);
      it = pieces_.emplace(end, right).first;
      AddDirty(static_cast<int64_t>(right.length));
      // One reference per piece: a split in two needs one more.
      if (kept_left) refs->AddRef(p.segment, 1);
      ++it;
    } else if (!kept_left) {
      refs->Release(p.segment, 1);
    }
  }
}

void DirtyFile::ApplyWrite(const JournalRecord& record, SegmentRefs* refs) {
  last_seq_ = std::max(last_seq_, record.seq);
  mtime_ns_ = record.mtime_ns;
  if (record.length == 0) {
    refs->Release(record.segment, 1);
    return;
  }
  Punch(record.offset, record.length, refs);
  pieces_[record.offset] =
      DirtyPiece{record.length, record.seq, record.segment, record.data_offset};
  AddDirty(static_cast<int64_t>(record.length));
  size_ = std::max(size_, record.offset + record.length);
}

void DirtyFile::ApplyTruncate(const JournalRecord& record, SegmentRefs* refs) {
  last_seq_ = std::max(last_seq_, record.seq);
  mtime_ns_ = record.mtime_ns;
  const uint64_t new_size = record.offset;
  if (new_size < size_) Punch(new_size, size_ - new_size, refs);
  // Pieces may reach past size_ only transiently; cut anything at or beyond new_size.
  if (!pieces_.empty()) {
    auto last = pieces_.rbegin();
    if (last->first + last->second.length > new_size)
      Punch(new_size, last->first + last->second.length - new_size, refs);
  }
  size_ = new_size;
  min_size_ = std::min(min_size_, new_size);
  truncates_.emplace_back(record.seq, record.segment);
}

std::vector<std::pair<uint64_t, DirtyPiece>> DirtyFile::PiecesIn(uint64_t offset, uint64_t length,
                                                                 SegmentRefs* refs) const {
  std::vector<std::pair<uint64_t, DirtyPiece>> out;
  const uint64_t end = offset + length;
  auto it = pieces_.upper_bound(offset);
  if (it != pieces_.begin()) --it;
  for (; it != pieces_.end() && it->first < end; ++it) {
    uint64_t p_start = it->first;
    DirtyPiece p = it->second;
    uint64_t p_end = p_start + p.length;
    if (p_end <= offset) continue;
    uint64_t from = std::max(p_start, offset);
    uint64_t to = std::min(p_end, end);
    p.data_offset += from - p_start;
    p.length = to - from;
    refs->AddRef(p.segment, 1);
    out.emplace_back(from, p);
  }
  return out;
}

uint64_t DirtyFile::base_limit() const {
  return flushing_ ? std::min(min_size_, inflight_base_limit_) : min_size_;
}

DirtySnapshot DirtyFile::BeginFlush() {
  DirtySnapshot snap;
  snap.pieces = pieces_;
  snap.size = size_;
  snap.base_limit = min_size_;
  snap.seq = last_seq_;
  flushing_ = true;
  inflight_base_limit_ = min_size_;
  inflight_seq_ = last_seq_;
  // After this flush commits, the committed data is cut at the snapshot's size; later
  // truncates lower the limit again.
  min_size_ = size_;
  return snap;
}

void DirtyFile::NoteWrite(int64_t mono_ns) {
  last_write_mono_ns_ = mono_ns;
  int64_t& since = flushing_ ? dirty_since_next_ : dirty_since_mono_ns_;
  if (since == 0) since = mono_ns;
}

void DirtyFile::FinishFlush(bool committed, SegmentRefs* refs) {
  if (!flushing_) return;
  flushing_ = false;
  const int64_t next = std::exchange(dirty_since_next_, 0);
  if (!committed) {
    min_size_ = std::min(min_size_, inflight_base_limit_);
    if (dirty_since_mono_ns_ == 0) dirty_since_mono_ns_ = next;
    return;
  }
  dirty_since_mono_ns_ = next;  // what was older is committed now
  for (auto it = pieces_.begin(); it != pieces_.end();) {
    if (it->second.seq <= inflight_seq_) {
      refs->Release(it->second.segment, 1);
      AddDirty(-static_cast<int64_t>(it->second.length));
      it = pieces_.erase(it);
    } else {
      ++it;
    }
  }
  auto keep = std::remove_if(truncates_.begin(), truncates_.end(), [&](const auto& t) {
    if (t.first > inflight_seq_) return false;
    refs->Release(t.second, 1);
    return true;
  });
  truncates_.erase(keep, truncates_.end());
}

void DirtyFile::DropAll(SegmentRefs* refs) {
  for (auto& [offset, p] : pieces_) refs->Release(p.segment, 1);
  for (auto& t : truncates_) refs->Release(t.second, 1);
  pieces_.clear();
  truncates_.clear();
  AddDirty(-static_cast<int64_t>(dirty_bytes_));
  flushing_ = false;
}

std::vector<std::pair<uint64_t, DirtyPiece>> DirtyFile::PiecesInSegment(uint64_t segment) const {
  std::vector<std::pair<uint64_t, DirtyPiece>> out;
  for (const auto& [offset, piece] : pieces_) {
    if (piece.segment == segment) out.emplace_back(offset, piece);
  }
  return out;
}

bool DirtyFile::HasTruncateIn(uint64_t segment) const {
  for (const auto& [seq, seg] : truncates_) {
    if (seg == segment) return true;
  }
  return false;
}

bool DirtyFile::HasPiece(uint64_t offset, const DirtyPiece& expected) const {
  auto it = pieces_.find(offset);
  return it != pieces_.end() && it->second.length == expected.length &&
         it->second.seq == expected.seq && it->second.segment == expected.segment &&
         it->second.data_offset == expected.data_offset;
}

bool DirtyFile::MovePiece(uint64_t offset, const DirtyPiece& expected, const JournalRecord& moved,
                          SegmentRefs* refs) {
  if (!HasPiece(offset, expected) || moved.offset != offset || moved.length != expected.length)
    return false;
  pieces_[offset] = DirtyPiece{moved.length, moved.seq, moved.segment, moved.data_offset};
  last_seq_ = std::max(last_seq_, moved.seq);
  refs->Release(expected.segment, 1);
  return true;
}

}  // namespace quid
