// What `quid init` refuses before creating anything: stripes whose shards no host could take
// in one message, and fewer stores than a chunk has shards (unless --allow-degraded).
#include "cmd/init_checks.h"

#include <gtest/gtest.h>

#include "net/wire.h"
#include "storage/chunks/chunk_store.h"

namespace quid {
namespace {

constexpr uint32_t kMiB = 1024 * 1024;

TEST(InitChecksTest, TheFrameLimitIsTheHostProtocols) {
  EXPECT_EQ(MaxShardBytes(), net::kMaxPayloadBytes);
}

TEST(InitChecksTest, ChunksWhoseShardsPassTheFrameLimitAreRefused) {
  EXPECT_TRUE(CheckShardsFitFrames(4 * kMiB, 4).ok());
  EXPECT_TRUE(CheckShardsFitFrames(64 * kMiB, 8).ok());
  // 64 MiB at k=4: 16 MiB of plaintext per shard, plus the segment tags: over the limit.
  Status refused = CheckShardsFitFrames(64 * kMiB, 4);
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_NE(refused.message().find("more than the 16777216 bytes a host takes"), std::string::npos)
      << refused.message();
  EXPECT_EQ(CheckShardsFitFrames(16 * kMiB, 1).code(), Code::kInvalid);
}

TEST(InitChecksTest, TheSuggestedChunkSizeFitsAndOneMoreKibibyteDoesNot) {
  Status refused = CheckShardsFitFrames(64 * kMiB, 4);
  const std::string& m = refused.message();
  const size_t at = m.find("use --chunk-size ");
  ASSERT_NE(at, std::string::npos) << m;
  const uint32_t kib = static_cast<uint32_t>(std::stoul(m.substr(at + 17)));
  EXPECT_TRUE(CheckShardsFitFrames(kib * 1024, 4).ok()) << kib << "K";
  EXPECT_GT(ShardSizeForChunk((kib + 1) * 1024, 4), net::kMaxPayloadBytes) << kib << "K";
}

TEST(InitChecksTest, FewerStoresThanShardsNeedAllowDegraded) {
  EXPECT_TRUE(CheckStoreCount(6, 4, 2, false).ok());
  EXPECT_TRUE(CheckStoreCount(7, 4, 2, false).ok());
  Status refused = CheckStoreCount(5, 4, 2, false);
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_NE(refused.message().find("--allow-degraded"), std::string::npos) << refused.message();
  EXPECT_TRUE(CheckStoreCount(5, 4, 2, true).ok());
  EXPECT_TRUE(CheckStoreCount(1, 1, 0, false).ok());
}

}  // namespace
}  // namespace quid
