// NodeBook: what a node daemon keeps about the exchange, on its disk (H/node/book): its
// peers, the leases it is party to, its invitations and trusted pairings. Small (a few
// kilobytes per peer), read often and changed rarely, so the whole book is one protobuf
// replaced atomically (temp file, fsync, rename, fsync of the folder) on every change:
// after a power cut it is the book before or after the change, never a mix, and a change
// is durable before Update returns. A LOCK file keeps a second daemon off the same home.
//
// Thread-safe: one mutex; Update runs its function under it, so read-modify-write of the
// book is one step.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "storage/base/env.h"
#include "storage/base/status.h"
#include "storage/crypto/node_key.h"
#include "storage/exchange/exchange.pb.h"

namespace quid::exchange {

class NodeBook {
 public:
  // Opens (or creates) the book in `dir`, locking it: kBusy if another process has it.
  // kCorrupt for a book that does not check (it is never replaced silently).
  static Result<std::unique_ptr<NodeBook>> Open(Env* env, const std::string& dir);

  // A copy of the book as it stands.
  exchange::Book Snapshot() const;

  // Runs `change` on a copy of the book; if it returns OK, the copy is written durably and
  // becomes the book. On any error (change's or the disk's) the book stays as it was.
  // With `durable` given and false once `change` has run, the change is kept in memory
  // only, to be written with the next durable one or by Flush: for what may be lost in a
  // power cut (a peer's last heartbeat), never for leases, invitations or trusts.
  Status Update(const std::function<Status(exchange::Book*)>& change,
                const bool* durable = nullptr);
  // Writes changes kept in memory only, if there are any.
  Status Flush();

 private:
  NodeBook(Env* env, std::string path, std::unique_ptr<FileLock> lock)
      : env_(env), path_(std::move(path)), lock_(std::move(lock)) {}
  Status Write(const exchange::Book& book);

  Env* const env_;
  const std::string path_;
  const std::unique_ptr<FileLock> lock_;
  mutable std::mutex mu_;
  Book book_;
  bool dirty_ = false;  // book_ holds changes not yet written
};

// Lookups over a book (pure functions, for the daemon and for tests).
Peer* FindPeer(exchange::Book* book, const PublicKey& key);
const Peer* FindPeer(const exchange::Book& book, const PublicKey& key);
// The peer's entry, made if it has none.
Peer* UpsertPeer(exchange::Book* book, const PublicKey& key, int64_t now);
LeaseEntry* FindLease(exchange::Book* book, const std::string& lease_id);
// Keeps `lease` if it is new, or newer than the one held (a higher sequence, or the same
// with more signatures). Returns true if the book changed. REQUIRES: VerifyLease passed.
bool AdoptLease(exchange::Book* book, const SignedLease& lease);

}  // namespace quid::exchange
