// File contents: writes go to the journal and the dirty map; reads overlay dirty pieces
// on committed chunks.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "storage/meta/metadata_keys.h"
#include "storage/volume/volume_impl.h"

namespace quid {

Result<size_t> VolumeImpl::Read(Ino ino, uint64_t offset, MutableByteSpan out) {
  meta::Inode inode;
  uint64_t size = 0, limit = 0;
  std::vector<std::pair<uint64_t, DirtyPiece>> pieces;
  // One version of the file for the whole read: the inode, its dirty pieces and a snapshot
  // of its extents and chunks, all taken under the namespace lock (which orders every
  // commit). The ticket
  // keeps the shards of chunks this version uses from being deleted until the read ends.
  // An inline file's version is its inode alone: no snapshot, no ticket.
  std::unique_ptr<MetaSnapshot> snapshot;
  ReadGate::Ticket ticket;
  {
    auto lock = ns_->Lock();
    QUID_RETURN_IF_ERROR(ns_->LoadInode(ino, &inode));
    if (S_ISDIR(inode.mode())) return Status(Code::kIsDir, "is a directory");
    if (!inode.is_inline()) {
      ticket = read_gate_.Enter();
      snapshot = db_->Snapshot();
    }
    size = inode.size();
    limit = size;
    if (const DirtyFile* dirty = ns_->FindDirty(ino)) {
      size = dirty->size();
      limit = std::min(dirty->base_limit(), inode.size());
      if (offset < size) {
        pieces =
            dirty->PiecesIn(offset, std::min<uint64_t>(out.size(), size - offset), journal_.get());
      }
    }
  }
  if (offset >= size) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), size - offset));
  const ChunkFetch fetch = reader_->NoteRead(ino, offset, n, std::min(limit, size));
  MutableByteSpan dest = out.first(n);
  std::memset(dest.data(), 0, n);
  Status s = reader_->ReadCommitted(ino, inode, offset, limit, dest, snapshot.get(), fetch);
  for (const auto& [at, piece] : pieces) {
    if (s.ok()) {
      s = journal_->ReadData(piece.segment, piece.data_offset,
                             dest.subspan(at - offset, piece.length));
    }
    journal_->Release(piece.segment, 1);
  }
  if (!s.ok()) return s;
  return n;
}

Result<size_t> VolumeImpl::Write(Ino ino, uint64_t offset, ByteSpan data) {
  if (data.empty()) return size_t{0};
  {
    auto lock = ns_->Lock();
    meta::Inode inode;
    QUID_RETURN_IF_ERROR(ns_->LoadInode(ino, &inode));
    if (!S_ISREG(inode.mode())) return Status::Invalid("not a regular file");
  }
  // Past the stores' usable capacity a write fails now, before the journal takes it: bytes
  // no store would take must not be acknowledged.
  QUID_RETURN_IF_ERROR(quota_->Admit(ns_->dirty_total(), data.size()));
  size_t done = 0;
  while (done < data.size()) {
    const size_t n = std::min<size_t>(data.size() - done, kMaxJournalPayload);
    std::unique_lock order(write_order_mu_, std::defer_lock);
    QUID_ASSIGN_OR_RETURN(JournalRecord record, AppendInOrder(n, order, [&] {
                            return journal_->TryAppendWrite(ino, offset + done,
                                                            data.subspan(done, n), Now());
                          }));
    auto lock = ns_->Lock();
    meta::Inode inode;
    Status s = ns_->LoadInode(ino, &inode);
    if (!s.ok()) {
      // Destroyed while we appended; the record is dead.
      journal_->Release(record.segment, 1);
      return s;
    }
    DirtyFile* dirty = ns_->DirtyFor(ino, inode.size());
    dirty->ApplyWrite(record, journal_.get());
    dirty->NoteWrite(clock_->monotonic_ns());
    done += n;
  }
  NoteWriteToFlusher();
  return done;
}

Result<JournalRecord> VolumeImpl::AppendInOrder(
    uint64_t payload_bytes, std::unique_lock<std::mutex>& order,
    const std::function<Result<JournalRecord>()>& try_append) {
  const int64_t deadline = journal_->RoomDeadline();
  for (;;) {
    QUID_RETURN_IF_ERROR(journal_->WaitForRoom(payload_bytes, deadline));
    order.lock();
    Result<JournalRecord> record = try_append();
    if (record.ok()) return record;
    order.unlock();
    if (record.status().code() != Code::kNoSpace) return record;
    // Another writer took the room between the wait and the append: wait again (until
    // the same deadline, after which WaitForRoom refuses).
  }
}

Status VolumeImpl::Truncate(Ino ino, uint64_t size) {
  std::unique_lock order(write_order_mu_, std::defer_lock);
  QUID_ASSIGN_OR_RETURN(JournalRecord record, AppendInOrder(0, order, [&] {
                          return journal_->TryAppendTruncate(ino, size, Now());
                        }));
  auto lock = ns_->Lock();
  meta::Inode inode;
  Status s = ns_->LoadInode(ino, &inode);
  if (!s.ok()) {
    journal_->Release(record.segment, 1);
    return s;
  }
  DirtyFile* dirty = ns_->DirtyFor(ino, inode.size());
  dirty->ApplyTruncate(record, journal_.get());
  dirty->NoteWrite(clock_->monotonic_ns());
  NoteWriteToFlusher();
  return Status::Ok();
}

Status VolumeImpl::Fsync(Ino ino, bool datasync) {
  (void)ino;
  (void)datasync;
  // One journal for all files: syncing it covers this file's writes (and others').
  QUID_RETURN_IF_ERROR(journal_->Sync());
  return db_->SyncWal();
}

Status VolumeImpl::SyncAll() {
  return Fsync(kRootIno, false);
}

Status VolumeImpl::Drain(int64_t timeout_ns, const std::function<void(uint64_t)>& progress) {
  Status drained = flusher_->Drain(timeout_ns, progress);
  QUID_RETURN_IF_ERROR(Fsync(kRootIno, false));
  return drained;
}

}  // namespace quid
