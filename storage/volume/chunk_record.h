// The chunk record (meta::Chunk, in the `chunks` column family) and StoredChunk (what the
// ChunkStore needs to read or remove a chunk) are the same facts in two shapes: one place
// converts between them.
#pragma once

#include <string_view>

#include "storage/base/status.h"
#include "storage/chunks/chunk_store.h"
#include "storage/meta/meta.pb.h"

namespace quid {

// A chunk id from its key or extent bytes (the first kChunkIdBytes of `bytes`).
ChunkId ChunkIdOf(std::string_view bytes);

meta::Chunk ToRecord(const StoredChunk& chunk);
// kCorrupt if the record's header has the wrong length.
Result<StoredChunk> FromRecord(const ChunkId& id, const meta::Chunk& record);

}  // namespace quid
