#include "storage/exchange/node_book.h"

#include <cstring>

#include "storage/base/byte_order.h"
#include "storage/erasure/checksum.h"
#include "storage/exchange/lease.h"

namespace quid::exchange {
namespace {

// File: "QNB1" | CRC-32C of the body (4, little endian) | body (a NodeBook protobuf).
constexpr std::string_view kMagic = "QNB1";
constexpr size_t kHeaderBytes = 8;
constexpr const char* kBookName = "book";
constexpr const char* kLockName = "LOCK";
constexpr unsigned kDirMode = 0700;
constexpr unsigned kFileMode = 0600;

Result<exchange::Book> Parse(const std::string& path, const std::string& bytes) {
  auto bad = [&](const std::string& why) {
    return Status::Corrupt("node book " + path + " is damaged (" + why +
                           "); it is left as it is, restore it from a backup or move it away");
  };
  if (bytes.size() < kHeaderBytes || bytes.compare(0, kMagic.size(), kMagic) != 0)
    return bad("not a quid node book");
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint32_t crc = GetLittleEndian32(data + kMagic.size());
  const ByteSpan body(data + kHeaderBytes, bytes.size() - kHeaderBytes);
  if (Crc32c(body) != crc) return bad("checksum mismatch");
  exchange::Book book;
  if (!book.ParseFromArray(body.data(), static_cast<int>(body.size()))) return bad("malformed");
  return book;
}

bool SameKey(const std::string& bytes, const PublicKey& key) {
  return bytes.size() == key.size() && std::memcmp(bytes.data(), key.data(), key.size()) == 0;
}

}  // namespace

Result<std::unique_ptr<NodeBook>> NodeBook::Open(Env* env, const std::string& dir) {
  Status made = env->CreateDirs(dir, kDirMode);
  if (!made.ok()) return made;
  Result<std::unique_ptr<FileLock>> lock = env->LockFile(dir + "/" + kLockName);
  if (!lock.ok()) {
    if (lock.status().code() == Code::kBusy)
      return Status(Code::kBusy, "another quid serve already runs on " + dir);
    return lock.status();
  }
  const std::string path = dir + "/" + kBookName;
  std::unique_ptr<NodeBook> book(new NodeBook(env, path, std::move(*lock)));
  Result<std::string> bytes = env->ReadWholeFile(path);
  if (bytes.ok()) {
    Result<exchange::Book> parsed = Parse(path, *bytes);
    if (!parsed.ok()) return parsed.status();
    book->book_ = std::move(*parsed);
  } else if (bytes.status().code() != Code::kNotFound) {
    return bytes.status();
  }
  return book;
}

exchange::Book NodeBook::Snapshot() const {
  std::lock_guard lock(mu_);
  return book_;
}

Status NodeBook::Update(const std::function<Status(exchange::Book*)>& change, const bool* durable) {
  std::lock_guard lock(mu_);
  exchange::Book next = book_;
  Status s = change(&next);
  if (!s.ok()) return s;
  if (durable != nullptr && !*durable) {
    book_ = std::move(next);
    dirty_ = true;
    return Status::Ok();
  }
  s = Write(next);
  if (!s.ok()) return s;
  book_ = std::move(next);
  dirty_ = false;
  return Status::Ok();
}

Status NodeBook::Flush() {
  std::lock_guard lock(mu_);
  if (!dirty_) return Status::Ok();
  Status s = Write(book_);
  if (s.ok()) dirty_ = false;
  return s;
}

Status NodeBook::Write(const exchange::Book& book) {
  std::string body;
  if (!book.SerializeToString(&body)) return Status::IoError("node book: cannot serialise");
  Bytes file(kHeaderBytes + body.size());
  std::memcpy(file.data(), kMagic.data(), kMagic.size());
  const auto* b = reinterpret_cast<const uint8_t*>(body.data());
  PutLittleEndian32(Crc32c(ByteSpan(b, body.size())), file.data() + kMagic.size());
  std::memcpy(file.data() + kHeaderBytes, body.data(), body.size());
  return env_->WriteFileAtomic(path_, file, kFileMode);
}

Peer* FindPeer(exchange::Book* book, const PublicKey& key) {
  for (Peer& peer : *book->mutable_peers())
    if (SameKey(peer.key(), key)) return &peer;
  return nullptr;
}

const Peer* FindPeer(const exchange::Book& book, const PublicKey& key) {
  for (const Peer& peer : book.peers())
    if (SameKey(peer.key(), key)) return &peer;
  return nullptr;
}

Peer* UpsertPeer(exchange::Book* book, const PublicKey& key, int64_t now) {
  if (Peer* peer = FindPeer(book, key)) return peer;
  Peer* peer = book->add_peers();
  peer->set_key(std::string(reinterpret_cast<const char*>(key.data()), key.size()));
  peer->set_first_seen(now);
  return peer;
}

LeaseEntry* FindLease(exchange::Book* book, const std::string& lease_id) {
  for (LeaseEntry& entry : *book->mutable_leases()) {
    Result<LeaseTerms> terms = DecodeTerms(entry.lease());
    if (terms.ok() && terms->lease_id() == lease_id) return &entry;
  }
  return nullptr;
}

bool AdoptLease(exchange::Book* book, const SignedLease& lease) {
  Result<LeaseTerms> terms = DecodeTerms(lease);
  if (!terms.ok()) return false;
  LeaseEntry* held = FindLease(book, terms->lease_id());
  if (held == nullptr) {
    *book->add_leases()->mutable_lease() = lease;
    return true;
  }
  // A fully signed record replaces an older or a half-signed one; a half-signed record (a
  // renewal on offer) never replaces a fully signed one, so the lease in force stays in
  // force until its renewal is countersigned.
  Result<LeaseTerms> old = DecodeTerms(held->lease());
  const bool held_full = old.ok() && FullySigned(held->lease());
  const uint64_t held_sequence = old.ok() ? old->sequence() : 0;
  bool replace = false;
  if (FullySigned(lease)) {
    replace = !held_full ? terms->sequence() >= held_sequence : terms->sequence() > held_sequence;
  } else {
    replace = !held_full && terms->sequence() > held_sequence;
  }
  if (!replace) return false;
  *held->mutable_lease() = lease;
  return true;
}

}  // namespace quid::exchange
