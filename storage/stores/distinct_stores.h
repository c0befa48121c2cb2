// A volume names each of its stores once. Two entries for one store would put two shards
// of a chunk on it (one loss costs two), and the per-store sweep of one entry would remove
// the shards the other entry placed there. So `quid init` refuses a list that names one
// store twice, however it is spelled:
//   - folders by what they are (device and inode), not by path: a symlink, a bind mount or
//     "a/../a" is the same folder;
//   - hosts by the key pinned for them, not by address: 127.0.0.1:P and localhost:P are
//     one host.
#pragma once

#include <string>
#include <vector>

#include "storage/base/bytes.h"
#include "storage/base/env.h"
#include "storage/base/status.h"

namespace quid {

// kInvalid naming both paths if two of `folders` are one folder. The folders must exist.
Status CheckDistinctFolders(Env* env, const std::vector<std::string>& folders);

struct HostEntry {
  std::string location;  // HOST:PORT as given
  Bytes public_key;      // the key pinned for it
};
// kInvalid naming both addresses if two of `hosts` have the same pinned key.
Status CheckDistinctHosts(const std::vector<HostEntry>& hosts);

}  // namespace quid
