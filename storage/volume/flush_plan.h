// The work list of one flush round: per file, the snapshot of its dirty pieces and the
// chunk-sized ranges the round rewrites. PlanRound fills it under the namespace lock,
// BuildRound fills in each chunk's result without locks, CommitRound applies it in one
// batch (flush_round.cc).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "storage/base/status.h"
#include "storage/chunks/chunk_store.h"
#include "storage/journal/dirty_file.h"
#include "storage/meta/meta.pb.h"

namespace quid {

using Ino = uint64_t;

// One chunk-sized piece of a file that this round rewrites.
struct ChunkJob {
  uint64_t start = 0;
  uint64_t length = 0;  // bytes of the file in this chunk after the flush
  bool had_extent = false;
  meta::Extent old_extent;
  // Results
  Status status;
  bool hole = false;
  bool uploaded = false;
  ChunkId id{};
  StoredChunk stored;
  Bytes inline_content;  // for a file that ends up inline
};

struct FileJob {
  Ino ino = 0;
  meta::Inode inode;
  DirtySnapshot snap;
  bool make_inline = false;
  std::vector<ChunkJob> chunks;
  std::vector<std::pair<uint64_t, meta::Extent>> dropped;  // extents beyond the new end
  bool ok = true;
};

}  // namespace quid
