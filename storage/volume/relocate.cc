// Copying live journal records forward. Segments are deleted strictly in order, so one
// piece that cannot be flushed (its old chunk unreadable, say) would otherwise pin its
// segment and every later one, until the journal is full for everybody.
//
// Why a copy is safe to replay: only live pieces are copied (no later record overwrote
// them), under the write-order lock (no write can come between the copy and the switch),
// and the copies are synced before the old references go. A copy replays after every
// record older than it, with the same bytes the live piece had; anything written later
// has a higher seq still. Truncate records are never copied: replayed after later writes
// they would cut them, so a file with a truncate in the old segment keeps it pinned until
// that file is flushed.
#include <spdlog/spdlog.h>

#include "storage/volume/flusher.h"

namespace quid {
namespace {

// Relocate only when the journal is this full ...
constexpr uint64_t kUsedFractionDenominator = 2;
// ... and the oldest segment's live bytes are at most this fraction of what its going
// would free (itself and the flushed segments behind it). Otherwise it is a backlog the
// stores have yet to take, not a stuck piece, and copying would free nothing.
constexpr uint64_t kLiveFractionDenominator = 4;

struct Move {
  Ino ino = 0;
  uint64_t offset = 0;
  DirtyPiece piece;
};

}  // namespace

bool Flusher::RelocatePinnedRecords() {
  Journal& journal = *p_.journal;
  if (journal.used_bytes() < journal.capacity_bytes() / kUsedFractionDenominator) return false;
  std::optional<Journal::SegmentInfo> oldest = journal.OldestSealedSegment();
  if (!oldest) return false;

  std::vector<Move> moves;
  uint64_t live = 0;
  {
    auto lock = p_.ns->Lock();
    for (const auto& [ino, dirty] : p_.ns->dirty()) {
      std::vector<std::pair<uint64_t, DirtyPiece>> pieces = dirty->PiecesInSegment(oldest->number);
      const bool truncate = dirty->HasTruncateIn(oldest->number);
      if (pieces.empty() && !truncate) continue;
      // A flush in flight holds its own references; a truncate cannot be copied.
      if (dirty->flushing() || truncate) return false;
      for (const auto& [offset, piece] : pieces) {
        moves.push_back({ino, offset, piece});
        live += piece.length;
      }
    }
  }
  if (moves.empty() || live > oldest->freed_with_it / kLiveFractionDenominator) return false;

  std::lock_guard order(*p_.write_order_mu);
  std::vector<std::pair<const Move*, JournalRecord>> copies;
  bool ok = true;
  for (const Move& m : moves) {
    int64_t mtime = 0;
    {
      auto lock = p_.ns->Lock();
      DirtyFile* dirty = p_.ns->FindDirty(m.ino);
      if (dirty == nullptr || !dirty->HasPiece(m.offset, m.piece)) continue;  // gone since
      mtime = dirty->mtime_ns();
    }
    // The piece is live, so its segment is referenced and still there.
    Bytes data(m.piece.length);
    Result<JournalRecord> copy = Status::Ok();
    Status read = journal.ReadData(m.piece.segment, m.piece.data_offset, data);
    if (read.ok()) copy = journal.TryAppendWrite(m.ino, m.offset, data, mtime);
    if (!read.ok() || !copy.ok()) {
      spdlog::warn("journal: cannot copy a live record of inode {} forward: {}", m.ino,
                   (read.ok() ? copy.status() : read).message());
      ok = false;
      break;
    }
    copies.emplace_back(&m, *copy);
  }
  // The copies are durable before the originals may go.
  if (ok && !copies.empty()) ok = journal.Sync().ok();
  size_t moved = 0;
  {
    auto lock = p_.ns->Lock();
    for (const auto& [m, copy] : copies) {
      DirtyFile* dirty = p_.ns->FindDirty(m->ino);
      // A copy that is not switched to stays in the journal, unreferenced: replayed, it
      // rewrites the bytes the file had at this moment, before every later write.
      if (ok && dirty != nullptr && dirty->MovePiece(m->offset, m->piece, copy, p_.journal)) {
        ++moved;
      } else {
        p_.journal->Release(copy.segment, 1);
      }
    }
  }
  if (moved > 0) {
    spdlog::info("journal: copied {} live records ({} bytes) out of segment {} so it can go", moved,
                 live, oldest->number);
  }
  std::optional<Journal::SegmentInfo> now = journal.OldestSealedSegment();
  return !now || now->number != oldest->number;
}

}  // namespace quid
