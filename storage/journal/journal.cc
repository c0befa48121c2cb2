#include "storage/journal/journal.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "storage/base/byte_order.h"
#include "storage/erasure/checksum.h"

namespace quid {
namespace {

constexpr uint32_t kRecordMagic = 0x3152'4a51;  // "QJR1" little endian
constexpr uint8_t kMagicBytes[4] = {'Q', 'J', 'R', '1'};
constexpr size_t kLagOffset = 5;  // 3 bytes, little endian
constexpr size_t kCrcOffset = 12;
// seq - (highest seq known durable at append); 0 means unknown (too far behind, or a
// record from before the field existed).
constexpr uint32_t kMaxLag = 0xff'ffff;
constexpr size_t kScanWindow = 1 << 20;

// Header layout: magic(4) type(1) sync lag(3) length(4) crc(4) seq(8) ino(8) offset(8)
// mtime(8). The CRC covers the header with its crc field zeroed, then the payload.
void EncodeHeader(const JournalRecord& r, uint32_t lag, uint8_t* h) {
  std::memset(h, 0, kJournalHeaderBytes);
  PutLittleEndian32(kRecordMagic, h);
  h[4] = static_cast<uint8_t>(r.type);
  h[kLagOffset] = static_cast<uint8_t>(lag);
  h[kLagOffset + 1] = static_cast<uint8_t>(lag >> 8);
  h[kLagOffset + 2] = static_cast<uint8_t>(lag >> 16);
  PutLittleEndian32(r.length, h + 8);
  PutLittleEndian64(r.seq, h + 16);
  PutLittleEndian64(r.ino, h + 24);
  PutLittleEndian64(r.offset, h + 32);
  PutLittleEndian64(static_cast<uint64_t>(r.mtime_ns), h + 40);
}

uint32_t RecordCrc(const uint8_t* header, ByteSpan payload) {
  uint8_t copy[kJournalHeaderBytes];
  std::memcpy(copy, header, kJournalHeaderBytes);
  PutLittleEndian32(0, copy + kCrcOffset);
  return Crc32c(payload, Crc32c({copy, kJournalHeaderBytes}));
}

// An intact record read back from a segment.
struct ReadRecord {
  JournalRecord record;
  uint64_t synced_seq = 0;  // what its writer knew durable; 0: unknown
  uint64_t end = 0;         // offset just past it
};

// Reads the record at `pos` of a file of `file_size` bytes; false unless it is intact
// (plausible header, whole payload present, checksum holds) and its seq is above
// `last_seq`. I/O errors are returned.
Result<bool> TryRecord(File* file, uint64_t pos, uint64_t file_size, uint64_t last_seq,
                       Bytes* payload, ReadRecord* out) {
  if (pos + kJournalHeaderBytes > file_size) return false;
  uint8_t header[kJournalHeaderBytes];
  QUID_RETURN_IF_ERROR(file->ReadExact(pos, {header, sizeof(header)}));
  JournalRecord& r = out->record;
  r.type = static_cast<JournalRecordType>(header[4]);
  r.length = GetLittleEndian32(header + 8);
  r.seq = GetLittleEndian64(header + 16);
  r.ino = GetLittleEndian64(header + 24);
  r.offset = GetLittleEndian64(header + 32);
  r.mtime_ns = static_cast<int64_t>(GetLittleEndian64(header + 40));
  const bool plausible =
      GetLittleEndian32(header) == kRecordMagic &&
      (r.type == JournalRecordType::kWrite || r.type == JournalRecordType::kTruncate) &&
      r.length <= kMaxJournalPayload && pos + kJournalHeaderBytes + r.length <= file_size &&
      r.seq > last_seq;
  if (!plausible) return false;
  payload->resize(r.length);
  QUID_RETURN_IF_ERROR(file->ReadExact(pos + kJournalHeaderBytes, *payload));
  if (RecordCrc(header, *payload) != GetLittleEndian32(header + kCrcOffset)) return false;
  const uint32_t lag = uint32_t{header[kLagOffset]} | uint32_t{header[kLagOffset + 1]} << 8 |
                       uint32_t{header[kLagOffset + 2]} << 16;
  out->synced_seq = lag == 0 || lag > r.seq ? 0 : r.seq - lag;
  r.data_offset = pos + kJournalHeaderBytes;
  out->end = r.data_offset + r.length;
  return true;
}

// The first intact record at or after `from`, searched for by its magic; false if none.
Result<bool> FindNextRecord(File* file, uint64_t from, uint64_t file_size, uint64_t last_seq,
                            Bytes* payload, ReadRecord* out, uint64_t* at) {
  Bytes window(kScanWindow);
  for (uint64_t base = from; base < file_size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kScanWindow, file_size - base));
    QUID_RETURN_IF_ERROR(file->ReadExact(base, MutableByteSpan(window).first(n)));
    for (size_t i = 0; i + sizeof(kMagicBytes) <= n; ++i) {
      if (std::memcmp(window.data() + i, kMagicBytes, sizeof(kMagicBytes)) != 0) continue;
      QUID_ASSIGN_OR_RETURN(bool ok, TryRecord(file, base + i, file_size, last_seq, payload, out));
      if (ok) {
        *at = base + i;
        return true;
      }
    }
    if (base + n >= file_size) break;
    base += n - (sizeof(kMagicBytes) - 1);  // a magic may straddle two windows
  }
  return false;
}

}  // namespace

std::string JournalDamage::ToString() const {
  std::string seqs = last_seq == 0
                         ? "from seq " + std::to_string(first_seq) + " on"
                         : "seqs " + std::to_string(first_seq) + ".." + std::to_string(last_seq);
  return "journal segment " + std::to_string(segment) + ": " + std::to_string(length) +
         " unreadable bytes at offset " + std::to_string(offset) + " (records " + seqs +
         (synced ? ", which had been synced" : ", possibly never synced") + ")";
}

struct Journal::Segment {
  uint64_t number = 0;
  std::string path;
  std::unique_ptr<File> file;
  uint64_t size = 0;            // bytes written
  uint64_t synced = 0;          // bytes known durable
  uint64_t last_seq = 0;        // seq of the last record in it
  uint64_t writeback_from = 0;  // bytes before this have been handed to writeback
  uint64_t refs = 0;
  bool sync_failed = false;  // a sync failed: its unsynced records may be gone
};

Journal::Journal(const JournalOptions& options) : options_(options) {
  if (!options_.clock) options_.clock = RealClock::Get();
  if (!options_.env) options_.env = Env::Default();
}

Journal::~Journal() = default;

std::string Journal::SegmentPath(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(number));
  return options_.dir + "/" + name;
}

Result<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options,
                                               const ReplayFn& replay) {
  std::unique_ptr<Journal> journal(new Journal(options));
  QUID_RETURN_IF_ERROR(journal->options_.env->CreateDirs(options.dir, 0700));
  QUID_RETURN_IF_ERROR(journal->Replay(replay));
  std::lock_guard lock(journal->mu_);
  QUID_RETURN_IF_ERROR(journal->StartSegmentLocked());
  journal->CollectLocked();
  return journal;
}

Status Journal::Replay(const ReplayFn& replay) {
  std::vector<uint64_t> numbers;
  QUID_RETURN_IF_ERROR(options_.env->ListDir(options_.dir, [&](const std::string& name) {
    unsigned long long n = 0;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "%20llu.%3s", &n, tail) == 2 && std::strcmp(tail, "seg") == 0)
      numbers.push_back(n);
    return true;
  }));
  std::sort(numbers.begin(), numbers.end());
  uint64_t last_seq = 0;
  for (size_t i = 0; i < numbers.size(); ++i)
    QUID_RETURN_IF_ERROR(ReplaySegment(numbers[i], i + 1 == numbers.size(), &last_seq, replay));
  std::lock_guard lock(mu_);
  next_seq_ = std::max(last_seq, options_.min_seq) + 1;
  // Whatever survived is made durable now: a process crash leaves unsynced bytes in the
  // page cache, and new segments must not become durable before them.
  synced_seq_ = next_seq_ - 1;
  return Status::Ok();
}

Status Journal::ReplaySegment(uint64_t number, bool last, uint64_t* last_seq,
                              const ReplayFn& replay) {
  auto segment = std::make_shared<Segment>();
  segment->number = number;
  segment->path = SegmentPath(number);
  QUID_ASSIGN_OR_RETURN(segment->file, options_.env->Open(segment->path, OpenMode::kReadWrite));
  QUID_ASSIGN_OR_RETURN(const uint64_t file_size, segment->file->Size());
  {
    std::lock_guard lock(mu_);
    segments_[number] = segment;
  }
  File* file = segment->file.get();
  Bytes payload;
  uint64_t pos = 0;
  uint64_t end = file_size;  // what stays of the file
  while (pos < file_size) {
    ReadRecord read;
    QUID_ASSIGN_OR_RETURN(bool intact, TryRecord(file, pos, file_size, *last_seq, &payload, &read));
    if (!intact) {
      uint64_t at = 0;
      QUID_ASSIGN_OR_RETURN(
          bool found, FindNextRecord(file, pos + 1, file_size, *last_seq, &payload, &read, &at));
      if (!found && last) {
        // The torn tail: unsynced bytes of the crash. Cut off, so the file holds whole
        // records only.
        torn_bytes_ += file_size - pos;
        spdlog::info("journal: dropped a torn tail of {} bytes in segment {} (unsynced writes)",
                     file_size - pos, number);
        end = pos;
        break;
      }
      JournalDamage damage;
      damage.segment = number;
      damage.offset = pos;
      damage.length = (found ? at : file_size) - pos;
      damage.first_seq = *last_seq + 1;
      damage.last_seq = found ? read.record.seq - 1 : 0;
      // A sealed segment was synced before the next one began; otherwise a later record
      // that was appended after these seqs were synced proves it.
      damage.synced = !last || (found && read.synced_seq >= damage.first_seq);
      spdlog::error("{}", damage.ToString());
      damage_.push_back(damage);
      if (!found) break;
    }
    // Damage that ran to the end of an earlier segment ends just before this record.
    if (!damage_.empty() && damage_.back().last_seq == 0)
      damage_.back().last_seq = read.record.seq - 1;
    JournalRecord r = read.record;
    r.segment = number;
    *last_seq = r.seq;
    pos = read.end;
    {
      std::lock_guard lock(mu_);
      segment->last_seq = r.seq;
    }
    replay(this, r);
  }
  if (end < file_size) {
    QUID_RETURN_IF_ERROR(file->Truncate(end));
  }
  QUID_RETURN_IF_ERROR(file->Sync());
  std::lock_guard lock(mu_);
  segment->size = end;
  segment->synced = end;
  used_bytes_ += end;
  return Status::Ok();
}

Status Journal::StartSegmentLocked() {
  uint64_t number = segments_.empty() ? 1 : segments_.rbegin()->first + 1;
  if (current_ && !current_->sync_failed && current_->synced < current_->size) {
    // Sealed segments are synced before the next one takes records: then only the newest
    // segment can end in unsynced bytes, which is how replay tells a torn tail from damage.
    Status synced = current_->file->Sync();
    if (synced.ok()) {
      current_->synced = current_->size;
      synced_seq_ = std::max(synced_seq_, current_->last_seq);
    } else {
      MarkSyncFailedLocked(*current_, synced);
    }
  }
  auto segment = std::make_shared<Segment>();
  segment->number = number;
  segment->path = SegmentPath(number);
  QUID_ASSIGN_OR_RETURN(segment->file,
                        options_.env->Open(segment->path, OpenMode::kCreateExclusive, 0600));
  QUID_RETURN_IF_ERROR(options_.env->SyncDir(options_.dir));
  current_ = segment;
  segments_[number] = segment;
  return Status::Ok();
}

Result<JournalRecord> Journal::AppendWrite(uint64_t ino, uint64_t offset, ByteSpan data,
                                           int64_t mtime_ns) {
  if (data.size() > kMaxJournalPayload) return Status::Invalid("journal record too large");
  return Append(JournalRecordType::kWrite, ino, offset, data, mtime_ns);
}

Result<JournalRecord> Journal::AppendTruncate(uint64_t ino, uint64_t size, int64_t mtime_ns) {
  return Append(JournalRecordType::kTruncate, ino, size, {}, mtime_ns);
}

Result<JournalRecord> Journal::TryAppendWrite(uint64_t ino, uint64_t offset, ByteSpan data,
                                              int64_t mtime_ns) {
  if (data.size() > kMaxJournalPayload) return Status::Invalid("journal record too large");
  return Append(JournalRecordType::kWrite, ino, offset, data, mtime_ns, /*wait_for_room=*/false);
}

Result<JournalRecord> Journal::TryAppendTruncate(uint64_t ino, uint64_t size, int64_t mtime_ns) {
  return Append(JournalRecordType::kTruncate, ino, size, {}, mtime_ns, /*wait_for_room=*/false);
}

Result<JournalRecord> Journal::Append(JournalRecordType type, uint64_t ino, uint64_t offset,
                                      ByteSpan data, int64_t mtime_ns, bool wait_for_room) {
  const uint64_t record_bytes = kJournalHeaderBytes + data.size();
  std::unique_lock lock(mu_);
  if (wait_for_room) {
    QUID_RETURN_IF_ERROR(WaitForRoomLocked(lock, record_bytes, RoomDeadline()));
  } else if (FullLocked(record_bytes)) {
    return Status::NoSpace("the journal is full (" + std::to_string(used_bytes_ >> 20) +
                           " MiB of acknowledged writes wait for the stores)");
  }
  if ((current_->size + record_bytes > options_.segment_bytes && current_->size > 0) ||
      current_->sync_failed) {
    QUID_RETURN_IF_ERROR(StartSegmentLocked());
    CollectLocked();
  }
  JournalRecord r;
  r.type = type;
  r.seq = next_seq_;
  r.ino = ino;
  r.offset = offset;
  r.length = static_cast<uint32_t>(data.size());
  r.mtime_ns = mtime_ns;
  r.segment = current_->number;
  r.data_offset = current_->size + kJournalHeaderBytes;

  const uint64_t lag = r.seq - synced_seq_;
  uint8_t header[kJournalHeaderBytes];
  EncodeHeader(r, lag <= kMaxLag ? static_cast<uint32_t>(lag) : 0, header);
  PutLittleEndian32(RecordCrc(header, data), header + kCrcOffset);
  const ByteSpan parts[2] = {ByteSpan(header, sizeof(header)), data};
  Status written = current_->file->WriteAt(current_->size, parts);
  if (!written.ok()) {
    // Leave no partial record behind: later appends start where this one started.
    (void)current_->file->Truncate(current_->size);
    return written;
  }
  ++next_seq_;
  current_->size += record_bytes;
  current_->last_seq = r.seq;
  current_->refs += 1;
  used_bytes_ += record_bytes;
  // Start writing back what has piled up, so the sync at the next seal (which holds this
  // lock) and the fsyncs of writers find little left to do. A hint: it promises nothing.
  if (current_->size - current_->writeback_from >= options_.writeback_chunk_bytes) {
    std::shared_ptr<Segment> seg = current_;
    const uint64_t from = seg->writeback_from;
    const uint64_t to = seg->size;
    seg->writeback_from = to;
    lock.unlock();
    seg->file->StartWriteback(from, to - from);
  }
  return r;
}

Status Journal::ReadData(uint64_t segment, uint64_t data_offset, MutableByteSpan out) const {
  std::shared_ptr<Segment> seg;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(segment);
    if (it == segments_.end()) return Status::NotFound("journal segment gone");
    seg = it->second;
  }
  Status s = seg->file->ReadExact(data_offset, out);
  if (!s.ok()) return Status(s.code(), "journal segment " + seg->path + ": " + s.message());
  return s;
}

Status Journal::SyncSegment(const std::shared_ptr<Segment>& seg, uint64_t size) {
  Status s = seg->file->Sync();
  std::lock_guard lock(mu_);
  if (!s.ok()) {
    MarkSyncFailedLocked(*seg, s);
    if (seg == current_) {
      // Appends move on now, so that once the failed segment's records are stored and
      // released it can be collected (the current segment never is).
      Status started = StartSegmentLocked();
      if (!started.ok()) spdlog::error("journal: {}", started.message());
      CollectLocked();
    }
    return s;
  }
  seg->synced = std::max(seg->synced, size);
  return Status::Ok();
}

void Journal::MarkSyncFailedLocked(Segment& seg, const Status& failure) {
  if (!seg.sync_failed)
    spdlog::error("journal: {}; its unsynced writes may be lost", failure.message());
  seg.sync_failed = true;  // never retried: the kernel may have dropped those pages
}

Status Journal::Sync() {
  std::vector<std::pair<std::shared_ptr<Segment>, uint64_t>> dirty;
  uint64_t covered_seq = 0;
  {
    std::lock_guard lock(mu_);
    covered_seq = next_seq_ - 1;
    for (auto& [number, seg] : segments_) {
      if (seg->sync_failed) continue;
      if (seg->synced < seg->size) dirty.emplace_back(seg, seg->size);
    }
  }
  Status result = Status::Ok();
  for (const auto& [seg, size] : dirty) {
    Status s = SyncSegment(seg, size);
    if (!s.ok() && result.ok()) result = s;
  }
  std::lock_guard lock(mu_);
  for (const auto& [number, seg] : segments_) {
    if (seg->sync_failed && result.ok()) {
      result = Status::IoError("journal segment " + std::to_string(number) +
                               " failed to sync earlier; writes it held may be lost");
    }
  }
  if (result.ok()) synced_seq_ = std::max(synced_seq_, covered_seq);
  return result;
}

void Journal::AddRef(uint64_t segment, uint64_t count) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(segment);
  if (it != segments_.end()) it->second->refs += count;
}

void Journal::Release(uint64_t segment, uint64_t count) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(segment);
  if (it == segments_.end()) return;
  it->second->refs -= std::min(it->second->refs, count);
  CollectLocked();
}

void Journal::CollectLocked() {
  bool freed = false;
  while (!segments_.empty()) {
    auto it = segments_.begin();
    Segment& seg = *it->second;
    if (it->second == current_ || seg.refs > 0) break;
    // Not made durable: a segment that comes back after a crash replays records that
    // committed metadata already covers (flushed_seq), which replay skips.
    Status removed = options_.env->Remove(seg.path);
    if (!removed.ok() && removed.code() != Code::kNotFound)
      spdlog::warn("journal: {}", removed.message());
    used_bytes_ -= std::min(used_bytes_, seg.size);
    segments_.erase(it);  // readers holding the shared_ptr keep the file until done
    freed = true;
  }
  if (freed) {
    out_of_space_ = false;
    room_cv_.notify_all();
  }
}

int64_t Journal::RoomDeadline() const {
  return options_.clock->monotonic_ns() + options_.full_wait_ns;
}

bool Journal::FullLocked(uint64_t record_bytes) const {
  // Never refuse a record into an otherwise empty journal.
  return used_bytes_ + record_bytes > options_.capacity_bytes && used_bytes_ > current_->size;
}

Status Journal::WaitForRoom(uint64_t payload_bytes, int64_t deadline_ns) {
  std::unique_lock lock(mu_);
  return WaitForRoomLocked(lock, kJournalHeaderBytes + payload_bytes, deadline_ns);
}

Status Journal::WaitForRoomLocked(std::unique_lock<std::mutex>& lock, uint64_t record_bytes,
                                  int64_t deadline_ns) {
  const auto no_space = [&] {
    return Status::NoSpace("the journal is full (" + std::to_string(used_bytes_ >> 20) +
                           " MiB of acknowledged writes wait for the stores)");
  };
  if (FullLocked(record_bytes) && out_of_space_) return no_space();
  while (FullLocked(record_bytes)) {
    const int64_t left = deadline_ns - options_.clock->monotonic_ns();
    if (left <= 0) {
      if (!out_of_space_) {
        spdlog::warn("journal full for {} s: writes fail with ENOSPC until the stores take some",
                     options_.full_wait_ns / 1'000'000'000);
      }
      out_of_space_ = true;
      room_cv_.notify_all();  // the other waiters give up too
      return no_space();
    }
    ++waiting_;
    room_cv_.wait_for(lock, std::chrono::nanoseconds(std::min<int64_t>(left, 100'000'000)));
    --waiting_;
    if (FullLocked(record_bytes) && out_of_space_) return no_space();
  }
  return Status::Ok();
}

std::optional<Journal::SegmentInfo> Journal::OldestSealedSegment() const {
  std::lock_guard lock(mu_);
  if (segments_.empty() || segments_.begin()->second == current_) return std::nullopt;
  SegmentInfo info{segments_.begin()->first, segments_.begin()->second->size, 0};
  info.freed_with_it = info.bytes;
  for (auto it = std::next(segments_.begin()); it != segments_.end(); ++it) {
    if (it->second == current_ || it->second->refs > 0) break;
    info.freed_with_it += it->second->size;
  }
  return info;
}

int Journal::waiting_appends() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

bool Journal::out_of_space() const {
  std::lock_guard lock(mu_);
  return out_of_space_;
}

uint64_t Journal::used_bytes() const {
  std::lock_guard lock(mu_);
  return used_bytes_;
}

uint64_t Journal::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

size_t Journal::segment_count() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

}  // namespace quid
