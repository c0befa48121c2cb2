#include "storage/journal/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "storage/base/byte_order.h"
#include "storage/base/posix_io.h"
#include "storage/erasure/checksum.h"

namespace quid {
namespace {

constexpr uint32_t kRecordMagic = 0x3152'4a51;  // "QJR1" little endian
constexpr size_t kCrcOffset = 12;

// Header layout: magic(4) type(1) reserved(3) length(4) crc(4) seq(8) ino(8) offset(8)
// mtime(8). The CRC covers the header with its crc field zeroed, then the payload.
void EncodeHeader(const JournalRecord& r, uint8_t* h) {
  std::memset(h, 0, kJournalHeaderBytes);
  PutLittleEndian32(kRecordMagic, h);
  h[4] = static_cast<uint8_t>(r.type);
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

}  // namespace

struct Journal::Segment {
  uint64_t number = 0;
  std::string path;
  int fd = -1;
  uint64_t size = 0;    // bytes written
  uint64_t synced = 0;  // bytes known durable
  uint64_t refs = 0;
  bool sealed = false;
  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};

Journal::Journal(const JournalOptions& options) : options_(options) {
  if (!options_.clock) options_.clock = RealClock::Get();
}

Journal::~Journal() = default;

std::string Journal::SegmentPath(uint64_t number) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu.seg", static_cast<unsigned long long>(number));
  return options_.dir + "/" + name;
}

Result<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options,
                                               const ReplayFn& replay) {
  QUID_RETURN_IF_ERROR(MakeDirs(options.dir, 0700));
  std::unique_ptr<Journal> journal(new Journal(options));
  QUID_RETURN_IF_ERROR(journal->Replay(replay));
  std::lock_guard lock(journal->mu_);
  QUID_RETURN_IF_ERROR(journal->StartSegmentLocked());
  journal->CollectLocked();
  return journal;
}

Status Journal::Replay(const ReplayFn& replay) {
  std::vector<uint64_t> numbers;
  QUID_RETURN_IF_ERROR(ListDir(options_.dir, [&](const std::string& name) {
    unsigned long long n = 0;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "%20llu.%3s", &n, tail) == 2 && std::strcmp(tail, "seg") == 0)
      numbers.push_back(n);
  }));
  std::sort(numbers.begin(), numbers.end());

  bool torn = false;  // once a torn record is seen, every later byte is discarded
  uint64_t last_seq = 0;
  for (uint64_t number : numbers) {
    std::string path = SegmentPath(number);
    if (torn) {
      ::unlink(path.c_str());
      continue;
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "open journal segment " + path);
    auto segment = std::make_shared<Segment>();
    segment->number = number;
    segment->path = path;
    segment->fd = fd;
    segment->sealed = true;
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + path);
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);

    uint64_t pos = 0;
    Bytes payload;
    while (pos + kJournalHeaderBytes <= file_size) {
      uint8_t header[kJournalHeaderBytes];
      QUID_RETURN_IF_ERROR(PreadExact(fd, {header, sizeof(header)}, pos, path));
      JournalRecord r;
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
      if (!plausible) break;
      payload.resize(r.length);
      QUID_RETURN_IF_ERROR(PreadExact(fd, payload, pos + kJournalHeaderBytes, path));
      if (RecordCrc(header, payload) != GetLittleEndian32(header + kCrcOffset)) break;
      r.segment = number;
      r.data_offset = pos + kJournalHeaderBytes;
      last_seq = r.seq;
      pos += kJournalHeaderBytes + r.length;
      {
        std::lock_guard lock(mu_);
        segments_[number] = segment;
        segment->size = pos;
        segment->synced = pos;
      }
      replay(this, r);
    }
    if (pos != file_size) {
      // The torn tail: drop it so the file holds only whole records.
      torn = true;
      if (::ftruncate(fd, static_cast<off_t>(pos)) != 0 || ::fsync(fd) != 0)
        return Status::FromErrno(errno, "truncate torn journal tail in " + path);
    }
    std::lock_guard lock(mu_);
    if (segments_.count(number) == 0) {
      segment->size = pos;
      segments_[number] = segment;
    }
    used_bytes_ += segment->size;
  }
  std::lock_guard lock(mu_);
  next_seq_ = std::max(last_seq, options_.min_seq) + 1;
  return Status::Ok();
}

Status Journal::StartSegmentLocked() {
  uint64_t number = segments_.empty() ? 1 : segments_.rbegin()->first + 1;
  auto segment = std::make_shared<Segment>();
  segment->number = number;
  segment->path = SegmentPath(number);
  segment->fd = ::open(segment->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (segment->fd < 0) return Status::FromErrno(errno, "create journal segment " + segment->path);
  QUID_RETURN_IF_ERROR(SyncDir(options_.dir));
  if (current_) current_->sealed = true;
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

Result<JournalRecord> Journal::Append(JournalRecordType type, uint64_t ino, uint64_t offset,
                                      ByteSpan data, int64_t mtime_ns) {
  const uint64_t record_bytes = kJournalHeaderBytes + data.size();
  std::unique_lock lock(mu_);
  const int64_t deadline = options_.clock->monotonic_ns() + options_.full_wait_ns;
  // Wait for room, but never refuse a record into an otherwise empty journal.
  while (used_bytes_ + record_bytes > options_.capacity_bytes && used_bytes_ > current_->size) {
    int64_t left = deadline - options_.clock->monotonic_ns();
    if (left <= 0) {
      return Status::NoSpace("write-back area full (" + std::to_string(used_bytes_ >> 20) +
                             " MiB waiting for the stores)");
    }
    room_cv_.wait_for(lock, std::chrono::nanoseconds(std::min<int64_t>(left, 100'000'000)));
  }
  if (current_->size + record_bytes > options_.segment_bytes && current_->size > 0) {
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

  uint8_t header[kJournalHeaderBytes];
  EncodeHeader(r, header);
  PutLittleEndian32(RecordCrc(header, data), header + kCrcOffset);
  iovec iov[2] = {{header, sizeof(header)}, {const_cast<uint8_t*>(data.data()), data.size()}};
  Status written = PwritevExact(current_->fd, iov, data.empty() ? 1 : 2, current_->size,
                                record_bytes, current_->path);
  if (!written.ok()) {
    // Leave no partial record behind: later appends start where this one started.
    (void)::ftruncate(current_->fd, static_cast<off_t>(current_->size));
    return written;
  }
  ++next_seq_;
  current_->size += record_bytes;
  current_->refs += 1;
  used_bytes_ += record_bytes;
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
  return PreadExact(seg->fd, out, data_offset, seg->path);
}

Status Journal::Sync() {
  std::vector<std::shared_ptr<Segment>> dirty;
  std::vector<uint64_t> sizes;
  {
    std::lock_guard lock(mu_);
    for (auto& [number, seg] : segments_) {
      if (seg->synced < seg->size) {
        dirty.push_back(seg);
        sizes.push_back(seg->size);
      }
    }
  }
  for (size_t i = 0; i < dirty.size(); ++i) {
    if (::fdatasync(dirty[i]->fd) != 0) return Status::FromErrno(errno, "sync " + dirty[i]->path);
  }
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < dirty.size(); ++i) dirty[i]->synced = std::max(dirty[i]->synced, sizes[i]);
  return Status::Ok();
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
    ::unlink(seg.path.c_str());
    used_bytes_ -= std::min(used_bytes_, seg.size);
    segments_.erase(it);  // readers holding the shared_ptr keep the fd until done
    freed = true;
  }
  if (freed) room_cv_.notify_all();
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
