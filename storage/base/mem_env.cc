#include "storage/base/mem_env.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace quid {

struct MemEnv::Node {
  uint64_t id = 0;
  bool is_dir = false;
  unsigned mode = 0;
  int64_t mtime_ns = 0;
  // A file: what readers see, and what the last Sync made durable.
  Bytes data;
  Bytes durable_data;
  // A directory: the current entries, and those the last SyncDir made durable.
  std::map<std::string, std::shared_ptr<Node>> entries;
  std::map<std::string, std::shared_ptr<Node>> durable_entries;
};

namespace {

Status PowerLost(const std::string& path) {
  return Status::IoError("opened before a power loss (simulated): " + path);
}

// "/a//b/" -> {"a", "b"}. Relative paths are taken from the root too: tests use one
// namespace, and the real disk's current directory has no meaning here.
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (!part.empty() && part != ".") {
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else {
        parts.push_back(std::move(part));
      }
    }
    i = j + 1;
  }
  return parts;
}

std::string Normalize(const std::string& path) {
  std::string out;
  for (const std::string& part : SplitPath(path)) out += "/" + part;
  return out.empty() ? "/" : out;
}

// Rebuilds `node` (reached through durable entries) from its durable state.
void RevertToDurable(const std::shared_ptr<MemEnv::Node>& node) {
  if (node->is_dir) {
    node->entries = node->durable_entries;
    for (auto& [name, child] : node->entries) RevertToDurable(child);
  } else {
    node->data = node->durable_data;
  }
}

}  // namespace

const char* EnvOpName(EnvOp op) {
  switch (op) {
    case EnvOp::kOpen:
      return "open";
    case EnvOp::kRead:
      return "read";
    case EnvOp::kWrite:
      return "write";
    case EnvOp::kTruncate:
      return "truncate";
    case EnvOp::kSync:
      return "sync";
    case EnvOp::kRename:
      return "rename";
    case EnvOp::kRemove:
      return "remove";
    case EnvOp::kCreateDir:
      return "mkdir";
    case EnvOp::kRemoveDir:
      return "rmdir";
    case EnvOp::kSyncDir:
      return "syncdir";
    case EnvOp::kList:
      return "list";
    case EnvOp::kStat:
      return "stat";
    case EnvOp::kSetMtime:
      return "set-mtime";
    case EnvOp::kLock:
      return "lock";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------

class MemEnv::MemFile : public File {
 public:
  MemFile(MemEnv* env, std::shared_ptr<Node> node, std::string path, bool writable)
      : env_(env),
        node_(std::move(node)),
        path_(std::move(path)),
        writable_(writable),
        epoch_(env->epoch_) {}

  Result<size_t> ReadAt(uint64_t offset, MutableByteSpan out) override {
    QUID_RETURN_IF_ERROR(env_->Enter(EnvOp::kRead, path_));
    std::lock_guard lock(env_->mu_);
    QUID_RETURN_IF_ERROR(AliveLocked());
    const Bytes& data = node_->data;
    if (offset >= data.size()) return size_t{0};
    const size_t n = std::min<uint64_t>(out.size(), data.size() - offset);
    if (n > 0) std::memcpy(out.data(), data.data() + offset, n);
    return n;
  }

  Status WriteAt(uint64_t offset, std::span<const ByteSpan> parts) override {
    QUID_RETURN_IF_ERROR(env_->Enter(EnvOp::kWrite, path_));
    std::lock_guard lock(env_->mu_);
    QUID_RETURN_IF_ERROR(AliveLocked());
    if (!writable_) return Status::FromErrno(EBADF, "write " + path_);
    uint64_t total = 0;
    for (ByteSpan part : parts) total += part.size();
    Bytes& data = node_->data;
    const uint64_t end = offset + total;
    if (end > data.size()) {
      const uint64_t grow = end - data.size();
      if (env_->UsedBytesLocked() + grow > env_->capacity_bytes_)
        return Status::NoSpace("write " + path_ + ": no space left (simulated disk)");
      data.resize(end);
    }
    uint64_t at = offset;
    for (ByteSpan part : parts) {
      if (!part.empty()) std::memcpy(data.data() + at, part.data(), part.size());
      at += part.size();
    }
    node_->mtime_ns = env_->clock_->now_ns();
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    QUID_RETURN_IF_ERROR(env_->Enter(EnvOp::kTruncate, path_));
    std::lock_guard lock(env_->mu_);
    QUID_RETURN_IF_ERROR(AliveLocked());
    if (!writable_) return Status::FromErrno(EBADF, "truncate " + path_);
    node_->data.resize(size);
    node_->mtime_ns = env_->clock_->now_ns();
    return Status::Ok();
  }

  Status Sync() override {
    QUID_RETURN_IF_ERROR(env_->Enter(EnvOp::kSync, path_));
    std::lock_guard lock(env_->mu_);
    QUID_RETURN_IF_ERROR(AliveLocked());
    if (!env_->crashed_) node_->durable_data = node_->data;
    return Status::Ok();
  }

  Result<FileStat> Stat() override {
    std::lock_guard lock(env_->mu_);
    QUID_RETURN_IF_ERROR(AliveLocked());
    return env_->StatOf(*node_);
  }

  Result<uint64_t> Size() override {
    std::lock_guard lock(env_->mu_);
    QUID_RETURN_IF_ERROR(AliveLocked());
    return static_cast<uint64_t>(node_->data.size());
  }

 private:
  Status AliveLocked() const {
    if (epoch_ != env_->epoch_) return PowerLost(path_);
    return Status::Ok();
  }

  MemEnv* env_;
  std::shared_ptr<Node> node_;
  std::string path_;
  bool writable_;
  uint64_t epoch_;
};

class MemEnv::MemLock : public FileLock {
 public:
  MemLock(MemEnv* env, std::string path) : env_(env), path_(std::move(path)), epoch_(env->epoch_) {}
  ~MemLock() override {
    std::lock_guard lock(env_->mu_);
    if (epoch_ == env_->epoch_) env_->locks_.erase(path_);
  }

 private:
  MemEnv* env_;
  std::string path_;
  uint64_t epoch_;
};

// ---------------------------------------------------------------------------------------

MemEnv::MemEnv(Clock* clock, uint64_t capacity_bytes)
    : clock_(clock ? clock : RealClock::Get()),
      capacity_bytes_(capacity_bytes),
      root_(std::make_shared<Node>()) {
  root_->id = 1;
  root_->is_dir = true;
  root_->mode = 0755;
}

MemEnv::~MemEnv() = default;

void MemEnv::SetHook(Hook hook) {
  std::lock_guard lock(hook_mu_);
  hook_ = std::move(hook);
}

Status MemEnv::Enter(EnvOp op, const std::string& path) {
  Hook hook;
  {
    std::lock_guard lock(hook_mu_);
    hook = hook_;
  }
  // A power cut freezes durability; it does not fail calls (see the header).
  return hook ? hook(op, path) : Status::Ok();
}

void MemEnv::Crash() {
  std::lock_guard lock(mu_);
  crashed_ = true;
}

void MemEnv::Restart() {
  std::lock_guard lock(mu_);
  RevertToDurable(root_);
  locks_.clear();
  ++epoch_;
  crashed_ = false;
}

bool MemEnv::crashed() const {
  std::lock_guard lock(mu_);
  return crashed_;
}

uint64_t MemEnv::UnsyncedBytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  std::vector<const Node*> stack{root_.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (node->is_dir) {
      for (const auto& [name, child] : node->entries) stack.push_back(child.get());
    } else if (node->data != node->durable_data) {
      total += node->data.size();
    }
  }
  return total;
}

uint64_t MemEnv::UsedBytesLocked() const {
  uint64_t total = 0;
  std::vector<const Node*> stack{root_.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (node->is_dir) {
      for (const auto& [name, child] : node->entries) stack.push_back(child.get());
    } else {
      total += node->data.size();
    }
  }
  return total;
}

std::shared_ptr<MemEnv::Node> MemEnv::LookupLocked(const std::string& path,
                                                   std::shared_ptr<Node>* parent,
                                                   std::string* leaf) const {
  std::vector<std::string> parts = SplitPath(path);
  if (parts.empty()) {
    if (parent) *parent = nullptr;
    if (leaf) leaf->clear();
    return root_;
  }
  std::shared_ptr<Node> dir = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = dir->entries.find(parts[i]);
    if (it == dir->entries.end() || !it->second->is_dir) {
      dir = nullptr;
      break;
    }
    dir = it->second;
  }
  if (parent) *parent = dir;
  if (leaf) *leaf = parts.back();
  if (!dir) return nullptr;
  auto it = dir->entries.find(parts.back());
  return it == dir->entries.end() ? nullptr : it->second;
}

Result<std::unique_ptr<File>> MemEnv::Open(const std::string& path, OpenMode open_mode,
                                           unsigned mode) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kOpen, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  std::shared_ptr<Node> node = LookupLocked(path, &parent, &leaf);
  if (!parent && !node) return Status::NotFound("open " + path + ": no such folder");
  if (node && node->is_dir) return Status(Code::kIsDir, "open " + path + ": is a folder");
  switch (open_mode) {
    case OpenMode::kRead:
    case OpenMode::kReadWrite:
      if (!node) return Status::NotFound("open " + path + ": no such file");
      break;
    case OpenMode::kCreateExclusive:
      if (node) return Status::Exists("create " + path + ": file exists");
      [[fallthrough]];
    case OpenMode::kCreate:
    case OpenMode::kCreateTruncate:
      if (!node) {
        node = std::make_shared<Node>();
        node->id = next_node_id_++;
        node->mode = mode;
        node->mtime_ns = clock_->now_ns();
        parent->entries[leaf] = node;
      } else if (open_mode == OpenMode::kCreateTruncate) {
        node->data.clear();
        node->mtime_ns = clock_->now_ns();
      }
      break;
  }
  return std::unique_ptr<File>(
      new MemFile(this, node, Normalize(path), open_mode != OpenMode::kRead));
}

Status MemEnv::Rename(const std::string& from, const std::string& to) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kRename, from));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> from_parent, to_parent;
  std::string from_leaf, to_leaf;
  std::shared_ptr<Node> node = LookupLocked(from, &from_parent, &from_leaf);
  if (!node) return Status::NotFound("rename " + from + ": no such file");
  std::shared_ptr<Node> target = LookupLocked(to, &to_parent, &to_leaf);
  if (!to_parent) return Status::NotFound("rename to " + to + ": no such folder");
  if (target && target->is_dir != node->is_dir)
    return Status(target->is_dir ? Code::kIsDir : Code::kNotDir, "rename " + from + " over " + to);
  if (target && target->is_dir && !target->entries.empty())
    return Status(Code::kNotEmpty, "rename over " + to + ": folder not empty");
  from_parent->entries.erase(from_leaf);
  to_parent->entries[to_leaf] = node;
  return Status::Ok();
}

Status MemEnv::Remove(const std::string& path) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kRemove, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  std::shared_ptr<Node> node = LookupLocked(path, &parent, &leaf);
  if (!node) return Status::NotFound("remove " + path + ": no such file");
  if (node->is_dir) return Status(Code::kIsDir, "remove " + path + ": is a folder");
  parent->entries.erase(leaf);
  return Status::Ok();
}

Status MemEnv::CreateDir(const std::string& path, unsigned mode) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kCreateDir, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  std::shared_ptr<Node> node = LookupLocked(path, &parent, &leaf);
  if (node) return Status::Exists("create folder " + path + ": exists");
  if (!parent) return Status::NotFound("create folder " + path + ": no parent folder");
  node = std::make_shared<Node>();
  node->id = next_node_id_++;
  node->is_dir = true;
  node->mode = mode;
  node->mtime_ns = clock_->now_ns();
  parent->entries[leaf] = node;
  return Status::Ok();
}

Status MemEnv::RemoveDir(const std::string& path) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kRemoveDir, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> parent;
  std::string leaf;
  std::shared_ptr<Node> node = LookupLocked(path, &parent, &leaf);
  if (!node || !parent) return Status::NotFound("remove folder " + path + ": no such folder");
  if (!node->is_dir) return Status(Code::kNotDir, "remove folder " + path + ": not a folder");
  if (!node->entries.empty())
    return Status(Code::kNotEmpty, "remove folder " + path + ": not empty");
  parent->entries.erase(leaf);
  return Status::Ok();
}

Status MemEnv::SyncDir(const std::string& path) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kSyncDir, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> node = LookupLocked(path, nullptr, nullptr);
  if (!node) return Status::NotFound("sync folder " + path + ": no such folder");
  if (!node->is_dir) return Status(Code::kNotDir, "sync folder " + path + ": not a folder");
  if (!crashed_) node->durable_entries = node->entries;
  return Status::Ok();
}

Status MemEnv::ListDir(const std::string& path, const std::function<bool(const std::string&)>& fn) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kList, path));
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    std::shared_ptr<Node> node = LookupLocked(path, nullptr, nullptr);
    if (!node) return Status::NotFound("list " + path + ": no such folder");
    if (!node->is_dir) return Status(Code::kNotDir, "list " + path + ": not a folder");
    for (const auto& [name, child] : node->entries) names.push_back(name);
  }
  // fn runs without the lock: it may call back into the Env.
  for (const std::string& name : names)
    if (!fn(name)) break;
  return Status::Ok();
}

Result<FileStat> MemEnv::Stat(const std::string& path) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kStat, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> node = LookupLocked(path, nullptr, nullptr);
  if (!node) return Status::NotFound("stat " + path + ": no such file");
  return StatOf(*node);
}

FileStat MemEnv::StatOf(const Node& node) const {
  FileStat st;
  st.is_dir = node.is_dir;
  st.is_regular = !node.is_dir;
  st.mode = node.mode & 07777;
  st.size = node.data.size();
  st.mtime_ns = node.mtime_ns;
  st.device = 1;
  st.inode = node.id;
  return st;
}

Status MemEnv::SetMtime(const std::string& path, int64_t mtime_ns) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kSetMtime, path));
  std::lock_guard lock(mu_);
  std::shared_ptr<Node> node = LookupLocked(path, nullptr, nullptr);
  if (!node) return Status::NotFound("set mtime of " + path + ": no such file");
  node->mtime_ns = mtime_ns;
  return Status::Ok();
}

Result<std::unique_ptr<FileLock>> MemEnv::LockFile(const std::string& path) {
  QUID_RETURN_IF_ERROR(Enter(EnvOp::kLock, path));
  // The lock file exists on disk like a real one (flock needs an open file).
  QUID_ASSIGN_OR_RETURN(auto file, Open(path, OpenMode::kCreate, 0600));
  (void)file;
  std::lock_guard lock(mu_);
  if (!locks_.insert(Normalize(path)).second) return Status(Code::kBusy, path + " is locked");
  return std::unique_ptr<FileLock>(new MemLock(this, Normalize(path)));
}

Result<uint64_t> MemEnv::FreeBytes(const std::string& path) {
  (void)path;
  std::lock_guard lock(mu_);
  const uint64_t used = UsedBytesLocked();
  return used >= capacity_bytes_ ? 0 : capacity_bytes_ - used;
}

}  // namespace quid
