// MemEnv: an Env in memory that models power loss exactly as env.h states the contract.
//
// Every file keeps two versions of its contents: what readers see now, and what the last
// File::Sync made durable. Every directory keeps two entry tables: the current one and
// the one its last SyncDir made durable. PowerLoss() throws away everything else: files
// fall back to their synced contents, directories to their synced entries, and a file
// reachable only through unsynced entries is gone. Nothing is "lucky" durable, so a test
// that passes here does not depend on what a particular disk happens to keep.
//
// Fault injection: a hook sees every call before it runs and may fail it, or cut the
// power at that instant (Crash()). From then on the durable state is frozen: calls keep
// working on the volatile state (the process that was running never learns of the cut,
// so no error path of RocksDB or of ours runs that a real power loss would not run), but
// nothing syncs any more. Restart() then reboots the machine, so to speak, with only the
// durable state, and every File opened before it is dead. The power-loss tests count sync
// points through the hook and cut the power at each one in turn.
//
// Thread-safe. The hook runs on the calling thread without the Env's lock held; it may
// call Crash().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "storage/base/clock.h"
#include "storage/base/env.h"

namespace quid {

enum class EnvOp {
  kOpen,
  kRead,
  kWrite,
  kTruncate,
  kSync,  // File::Sync
  kRename,
  kRemove,
  kCreateDir,
  kRemoveDir,
  kSyncDir,
  kList,
  kStat,
  kSetMtime,
  kLock,
};
const char* EnvOpName(EnvOp op);

class MemEnv : public Env {
 public:
  // `clock` stamps modification times (default: the real clock).
  explicit MemEnv(Clock* clock = nullptr, uint64_t capacity_bytes = 1ull << 40);
  ~MemEnv() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode open_mode,
                                     unsigned mode = 0600) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status CreateDir(const std::string& path, unsigned mode) override;
  Status RemoveDir(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Status ListDir(const std::string& path,
                 const std::function<bool(const std::string&)>& fn) override;
  Result<FileStat> Stat(const std::string& path) override;
  Status SetMtime(const std::string& path, int64_t mtime_ns) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;
  Result<uint64_t> FreeBytes(const std::string& path) override;

  // Called before every call with the operation and its path; a non-OK return fails the
  // call with that status (nothing changes).
  using Hook = std::function<Status(EnvOp op, const std::string& path)>;
  void SetHook(Hook hook);

  // The power goes out now: nothing that happens after this becomes durable, whatever
  // syncs the still-running code performs.
  void Crash();
  // Power comes back: only durable state survives; Files opened before are dead for good
  // (kIoError); locks are released.
  void Restart();
  // Crash() then Restart().
  void PowerLoss() {
    Crash();
    Restart();
  }
  bool crashed() const;

  // Bytes written but not yet durable, summed over files (unsynced data at risk).
  uint64_t UnsyncedBytes() const;

  struct Node;  // public so the implementation's helpers can name it

 private:
  class MemFile;
  class MemLock;
  friend class MemFile;
  friend class MemLock;

  Status Enter(EnvOp op, const std::string& path);
  // Resolves a path to a node in the current tree (nullptr if missing); `parent` and
  // `leaf` receive the containing directory and the last component when given.
  std::shared_ptr<Node> LookupLocked(const std::string& path, std::shared_ptr<Node>* parent,
                                     std::string* leaf) const;
  uint64_t UsedBytesLocked() const;
  FileStat StatOf(const Node& node) const;

  Clock* clock_;
  const uint64_t capacity_bytes_;
  mutable std::mutex mu_;
  std::shared_ptr<Node> root_;
  std::set<std::string> locks_;
  uint64_t epoch_ = 1;    // bumped by Restart(); Files and locks of older epochs are dead
  bool crashed_ = false;  // durable state frozen until Restart()
  uint64_t next_node_id_ = 2;
  std::mutex hook_mu_;
  Hook hook_;
};

}  // namespace quid
