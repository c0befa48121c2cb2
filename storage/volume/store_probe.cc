#include "storage/volume/store_probe.h"

#include <chrono>
#include <future>

namespace quid {
namespace {
constexpr auto kUsageWait = std::chrono::milliseconds(1500);
}  // namespace

std::vector<Result<StoreUsage>> ProbeStores(ChunkStore& chunks, ThreadPool& pool) {
  const std::vector<std::shared_ptr<ShardStore>> stores = chunks.stores();
  std::vector<std::future<Result<StoreUsage>>> asked;
  for (const auto& store : stores) asked.push_back(pool.Submit([store] { return store->Usage(); }));
  const auto deadline = std::chrono::steady_clock::now() + kUsageWait;
  std::vector<Result<StoreUsage>> answers;
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i].wait_until(deadline) == std::future_status::ready) {
      answers.push_back(asked[i].get());
    } else {
      // The task finishes on its own later; a packaged_task's future does not block here.
      answers.push_back(Status::Unavailable(stores[i]->name() + " did not answer"));
    }
  }
  return answers;
}

}  // namespace quid
