// FolderStore under power loss, on MemEnv: a crash at every sync point of a sequence of
// puts, overwrites and removes. An acknowledged put survives whole; an unacknowledged one
// leaves the old shard or nothing, never a torn file; a reopened store counts what is
// really there and lists no temp files.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "storage/base/mem_env.h"
#include "storage/stores/folder_store.h"
#include "tests/unit/shard_store_contract.h"

namespace quid {
namespace {

using contract::Id;
using contract::Pattern;

struct Step {
  enum Kind { kPut, kRemove } kind;
  uint32_t shard;
  uint32_t seed;  // content of a put
};

const Step kSteps[] = {
    {Step::kPut, 1, 10},   {Step::kPut, 2, 20},   {Step::kPut, 1, 11},  // overwrite
    {Step::kRemove, 2, 0}, {Step::kPut, 300, 30}, {Step::kRemove, 1, 0}, {Step::kPut, 2, 21},
};

constexpr size_t kShardBytes = 3000;

// Runs kSteps on a fresh store in `env`; crashes at sync number `crash_at` (0: never).
// Returns the shards acknowledged so far (content seed, or nullopt if removed) and, for
// the step in flight at the crash, what it would have done.
struct Outcome {
  std::map<uint32_t, std::optional<uint32_t>> acked;
  std::optional<Step> in_flight;
  int syncs = 0;
};

Outcome RunSteps(MemEnv* env, int crash_at) {
  Outcome out;
  env->SetHook([&](EnvOp op, const std::string&) {
    if (op != EnvOp::kSync && op != EnvOp::kSyncDir) return Status::Ok();
    if (++out.syncs == crash_at) {
      env->Crash();
      return Status::IoError("power lost");
    }
    return Status::Ok();
  });
  auto store = FolderStore::Open("/disk/store", 0, env);
  if (!store.ok()) {
    env->SetHook(nullptr);
    return out;
  }
  for (const Step& step : kSteps) {
    Status s = step.kind == Step::kPut
                   ? (*store)->Put(Id(step.shard), Pattern(kShardBytes, step.seed))
                   : (*store)->Remove(Id(step.shard));
    if (!s.ok()) {
      out.in_flight = step;
      break;
    }
    out.acked[step.shard] =
        step.kind == Step::kPut ? std::optional<uint32_t>(step.seed) : std::nullopt;
  }
  env->SetHook(nullptr);
  return out;
}

TEST(FolderStorePowerLossTest, EverySyncPointKeepsAcknowledgedShardsWhole) {
  int total_syncs = 0;
  {
    MemEnv env;
    total_syncs = RunSteps(&env, 0).syncs;
  }
  ASSERT_GT(total_syncs, 10);
  for (int crash_at = 1; crash_at <= total_syncs; ++crash_at) {
    SCOPED_TRACE("power lost at sync point " + std::to_string(crash_at));
    MemEnv env;
    Outcome out = RunSteps(&env, crash_at);
    ASSERT_TRUE(env.crashed());
    env.Restart();
    auto store = FolderStore::Open("/disk/store", 0, &env);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::map<uint32_t, std::optional<uint32_t>> expected = out.acked;
    for (uint32_t shard : {1u, 2u, 300u}) {
      auto got = (*store)->Get(Id(shard));
      std::optional<uint32_t> before =
          expected.count(shard) ? expected[shard] : std::optional<uint32_t>();
      // The step cut short may or may not have happened, but never half.
      std::optional<uint32_t> after = before;
      if (out.in_flight && out.in_flight->shard == shard) {
        after = out.in_flight->kind == Step::kPut ? std::optional<uint32_t>(out.in_flight->seed)
                                                  : std::nullopt;
      }
      if (got.ok()) {
        const bool is_before = before && *got == Pattern(kShardBytes, *before);
        const bool is_after = after && *got == Pattern(kShardBytes, *after);
        EXPECT_TRUE(is_before || is_after) << "shard " << shard << " holds other bytes";
      } else {
        EXPECT_EQ(got.status().code(), Code::kNotFound) << got.status().ToString();
        EXPECT_TRUE(!before || !after) << "acknowledged shard " << shard << " is gone";
      }
    }
    // The counters agree with the files, and no temp file is listed.
    uint64_t listed = 0, bytes = 0;
    ASSERT_TRUE((*store)
                    ->List([&](const ShardId&, const ShardInfo& info) {
                      ++listed;
                      bytes += info.size;
                      return true;
                    })
                    .ok());
    auto usage = (*store)->Usage();
    ASSERT_TRUE(usage.ok());
    EXPECT_EQ(usage->shard_count, listed);
    EXPECT_EQ(usage->used_bytes, bytes);
  }
}

}  // namespace
}  // namespace quid
