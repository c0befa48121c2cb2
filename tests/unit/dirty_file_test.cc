#include "storage/journal/dirty_file.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>

namespace quid {
namespace {

class CountingRefs : public SegmentRefs {
 public:
  void AddRef(uint64_t segment, uint64_t count) override { refs[segment] += count; }
  void Release(uint64_t segment, uint64_t count) override {
    ASSERT_GE(refs[segment], count);
    refs[segment] -= count;
  }
  uint64_t total() const {
    uint64_t t = 0;
    for (auto& [s, n] : refs) t += n;
    return t;
  }
  std::map<uint64_t, uint64_t> refs;
};

JournalRecord Write(CountingRefs* refs, uint64_t seq, uint64_t offset, uint32_t length,
                    uint64_t segment = 1) {
  JournalRecord r;
  r.type = JournalRecordType::kWrite;
  r.seq = seq;
  r.offset = offset;
  r.length = length;
  r.segment = segment;
  r.data_offset = seq * 1000;
  refs->AddRef(segment, 1);  // the reference an append hands over
  return r;
}

JournalRecord Truncate(CountingRefs* refs, uint64_t seq, uint64_t size) {
  JournalRecord r;
  r.type = JournalRecordType::kTruncate;
  r.seq = seq;
  r.offset = size;
  r.segment = 9;
  refs->AddRef(9, 1);
  return r;
}

TEST(DirtyFileTest, OverlappingWriteSplitsOlderPieceAndKeepsRefsBalanced) {
  CountingRefs refs;
  DirtyFile f(0);
  f.ApplyWrite(Write(&refs, 1, 0, 100), &refs);
  f.ApplyWrite(Write(&refs, 2, 40, 20), &refs);  // splits [0,100) into [0,40) and [60,100)
  EXPECT_EQ(f.size(), 100u);
  EXPECT_EQ(f.dirty_bytes(), 100u);
  auto pieces = f.PiecesIn(0, 100, &refs);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].first, 0u);
  EXPECT_EQ(pieces[0].second.length, 40u);
  EXPECT_EQ(pieces[1].first, 40u);
  EXPECT_EQ(pieces[1].second.seq, 2u);
  EXPECT_EQ(pieces[2].first, 60u);
  // The right part reads the old record's bytes from 60 on.
  EXPECT_EQ(pieces[2].second.data_offset, 1000u + 60u);
  for (auto& p : pieces) refs.Release(p.second.segment, 1);
  EXPECT_EQ(refs.total(), 3u);  // three pieces, one reference each
}

// The volume's quota reads the shared total instead of walking every dirty file: it must
// follow every split, overwrite, truncate, flush and drop, and a destroyed file's bytes.
TEST(DirtyFileTest, TheSharedTotalFollowsEveryChange) {
  CountingRefs refs;
  std::atomic<uint64_t> total{0};
  {
    DirtyFile a(0, &total);
    DirtyFile b(0, &total);
    a.ApplyWrite(Write(&refs, 1, 0, 100), &refs);
    a.ApplyWrite(Write(&refs, 2, 40, 20), &refs);  // an overwrite inside: still 100
    b.ApplyWrite(Write(&refs, 3, 0, 50), &refs);
    EXPECT_EQ(total.load(), 150u);
    a.ApplyTruncate(Truncate(&refs, 4, 30), &refs);
    EXPECT_EQ(total.load(), 80u);
    b.BeginFlush();
    b.ApplyWrite(Write(&refs, 5, 100, 10), &refs);  // after the snapshot: kept
    b.FinishFlush(/*committed=*/true, &refs);
    EXPECT_EQ(total.load(), 40u);
    a.DropAll(&refs);
    EXPECT_EQ(total.load(), 10u);
    a.ApplyWrite(Write(&refs, 6, 0, 5), &refs);
    EXPECT_EQ(total.load(), 15u);
    for (DirtyFile* f : {&a, &b}) f->DropAll(&refs);
    b.ApplyWrite(Write(&refs, 7, 0, 7), &refs);
  }
  EXPECT_EQ(total.load(), 0u) << "a destroyed file left its bytes in the total";
}

TEST(DirtyFileTest, FullOverwriteReleasesTheOldRecord) {
  CountingRefs refs;
  DirtyFile f(0);
  f.ApplyWrite(Write(&refs, 1, 10, 10, 1), &refs);
  f.ApplyWrite(Write(&refs, 2, 0, 50, 2), &refs);
  EXPECT_EQ(refs.refs[1], 0u);
  EXPECT_EQ(refs.refs[2], 1u);
}

TEST(DirtyFileTest, TruncateCutsPiecesAndLowersTheBaseLimit) {
  CountingRefs refs;
  DirtyFile f(1000);  // 1000 committed bytes
  f.ApplyWrite(Write(&refs, 1, 900, 200), &refs);
  EXPECT_EQ(f.size(), 1100u);
  f.ApplyTruncate(Truncate(&refs, 2, 950), &refs);
  EXPECT_EQ(f.size(), 950u);
  EXPECT_EQ(f.base_limit(), 950u);
  auto pieces = f.PiecesIn(0, 2000, &refs);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].second.length, 50u);
  for (auto& p : pieces) refs.Release(p.second.segment, 1);
  f.ApplyTruncate(Truncate(&refs, 3, 2000), &refs);  // extend: a hole, limit unchanged
  EXPECT_EQ(f.size(), 2000u);
  EXPECT_EQ(f.base_limit(), 950u);
}

TEST(DirtyFileTest, FlushDropsOnlyWhatTheSnapshotCovered) {
  CountingRefs refs;
  DirtyFile f(0);
  f.ApplyWrite(Write(&refs, 1, 0, 100), &refs);
  f.ApplyTruncate(Truncate(&refs, 2, 80), &refs);
  DirtySnapshot snap = f.BeginFlush();
  EXPECT_EQ(snap.seq, 2u);
  EXPECT_EQ(snap.size, 80u);
  EXPECT_TRUE(f.flushing());
  f.ApplyWrite(Write(&refs, 3, 200, 10), &refs);  // arrives during the flush
  f.FinishFlush(true, &refs);
  EXPECT_FALSE(f.clean());
  auto pieces = f.PiecesIn(0, 1000, &refs);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].second.seq, 3u);
  for (auto& p : pieces) refs.Release(p.second.segment, 1);
  EXPECT_EQ(refs.total(), 1u);
  f.BeginFlush();
  f.FinishFlush(true, &refs);
  EXPECT_TRUE(f.clean());
  EXPECT_EQ(refs.total(), 0u);
}

TEST(DirtyFileTest, FailedFlushKeepsEverythingAndTheOldLimit) {
  CountingRefs refs;
  DirtyFile f(500);
  f.ApplyTruncate(Truncate(&refs, 1, 100), &refs);
  f.BeginFlush();
  EXPECT_EQ(f.base_limit(), 100u);  // still cut while the flush is in flight
  f.FinishFlush(false, &refs);
  EXPECT_EQ(f.base_limit(), 100u);
  EXPECT_FALSE(f.clean());
  EXPECT_EQ(refs.total(), 1u);
}

TEST(DirtyFileTest, AMovedPiecePointsAtItsCopyAndHandsItsReferenceOver) {
  CountingRefs refs;
  DirtyFile f(0);
  f.ApplyWrite(Write(&refs, 1, 0, 100, /*segment=*/1), &refs);
  f.ApplyWrite(Write(&refs, 2, 200, 50, /*segment=*/2), &refs);
  auto in_one = f.PiecesInSegment(1);
  ASSERT_EQ(in_one.size(), 1u);
  EXPECT_EQ(in_one[0].first, 0u);
  EXPECT_FALSE(f.HasTruncateIn(1));

  const JournalRecord copy = Write(&refs, 3, 0, 100, /*segment=*/5);
  ASSERT_TRUE(f.MovePiece(0, in_one[0].second, copy, &refs));
  EXPECT_EQ(refs.refs[1], 0u) << "the old segment is free to go";
  EXPECT_EQ(refs.refs[5], 1u);
  EXPECT_TRUE(f.PiecesInSegment(1).empty());
  auto moved = f.PiecesIn(0, 100, &refs);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].second.segment, 5u);
  EXPECT_EQ(moved[0].second.data_offset, copy.data_offset);
  refs.Release(5, 1);  // PiecesIn's extra reference
  EXPECT_EQ(f.dirty_bytes(), 150u);
  EXPECT_EQ(f.size(), 250u);
}

TEST(DirtyFileTest, APieceChangedSinceItWasPickedIsNotMoved) {
  CountingRefs refs;
  DirtyFile f(0);
  f.ApplyWrite(Write(&refs, 1, 0, 100, 1), &refs);
  const DirtyPiece picked = f.PiecesInSegment(1)[0].second;
  f.ApplyWrite(Write(&refs, 2, 50, 10, 2), &refs);  // splits it: the picked piece is gone
  EXPECT_FALSE(f.HasPiece(0, picked));
  const JournalRecord copy = Write(&refs, 3, 0, 100, 5);
  EXPECT_FALSE(f.MovePiece(0, picked, copy, &refs));
  EXPECT_EQ(refs.refs[5], 1u) << "the caller still owns the copy's reference";
  EXPECT_EQ(refs.refs[1], 2u) << "both halves still hold the old segment";
}

TEST(DirtyFileTest, ATruncateRecordIsFoundInItsSegment) {
  CountingRefs refs;
  DirtyFile f(1000);
  f.ApplyTruncate(Truncate(&refs, 1, 10), &refs);
  EXPECT_TRUE(f.HasTruncateIn(9));
  EXPECT_FALSE(f.HasTruncateIn(1));
}

}  // namespace
}  // namespace quid
