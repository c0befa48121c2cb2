#include "storage/chunks/chunker.h"

#include <gtest/gtest.h>

namespace quid {
namespace {

TEST(FixedSizeChunkerTest, ChunksStartOnMultiplesAndEndAtTheFileEnd) {
  FixedSizeChunker chunker(4 << 20);
  EXPECT_EQ(chunker.ChunkStart(0), 0u);
  EXPECT_EQ(chunker.ChunkStart((4 << 20) - 1), 0u);
  EXPECT_EQ(chunker.ChunkStart(4 << 20), uint64_t{4} << 20);
  EXPECT_EQ(chunker.ChunkLength(0, 100), 100u);
  EXPECT_EQ(chunker.ChunkLength(0, 10 << 20), uint64_t{4} << 20);
  EXPECT_EQ(chunker.ChunkLength(8 << 20, 10 << 20), uint64_t{2} << 20);
  EXPECT_EQ(chunker.ChunkLength(12 << 20, 10 << 20), 0u);
}

TEST(FixedSizeChunkerTest, ChunksTileTheFileWithoutGaps) {
  FixedSizeChunker chunker(1000);
  const uint64_t size = 12345;
  uint64_t covered = 0;
  for (uint64_t start = 0; start < size; start += chunker.ChunkLength(start, size)) {
    EXPECT_EQ(start, covered);
    EXPECT_LE(chunker.ChunkLength(start, size), chunker.max_chunk_bytes());
    covered += chunker.ChunkLength(start, size);
  }
  EXPECT_EQ(covered, size);
}

}  // namespace
}  // namespace quid
