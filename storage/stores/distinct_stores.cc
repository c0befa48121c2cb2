#include "storage/stores/distinct_stores.h"

#include <map>
#include <utility>

namespace quid {

Status CheckDistinctFolders(Env* env, const std::vector<std::string>& folders) {
  std::map<std::pair<uint64_t, uint64_t>, const std::string*> seen;
  for (const std::string& folder : folders) {
    // Stat follows symlinks, so a link to a folder is that folder.
    QUID_ASSIGN_OR_RETURN(FileStat st, env->Stat(folder));
    if (!st.is_dir) return Status(Code::kNotDir, folder + " is not a folder");
    auto [it, added] = seen.emplace(std::make_pair(st.device, st.inode), &folder);
    if (!added) {
      return Status::Invalid("the store folders " + *it->second + " and " + folder +
                             " are the same folder; give each store once");
    }
  }
  return Status::Ok();
}

Status CheckDistinctHosts(const std::vector<HostEntry>& hosts) {
  // Keyed by the key's hex: a map of byte vectors trips GCC 12's -Wstringop-overread at -O2
  // (a false positive in std::lexicographical_compare).
  std::map<std::string, const std::string*> seen;
  for (const HostEntry& host : hosts) {
    auto [it, added] = seen.emplace(ToHex(host.public_key), &host.location);
    if (!added) {
      return Status::Invalid("the hosts " + *it->second + " and " + host.location +
                             " are the same host (they present the same key); give each host "
                             "once");
    }
  }
  return Status::Ok();
}

}  // namespace quid
