#include "storage/volume/chunk_record.h"

#include <algorithm>
#include <cstring>

namespace quid {

ChunkId ChunkIdOf(std::string_view bytes) {
  ChunkId id{};
  std::memcpy(id.data(), bytes.data(), std::min(id.size(), bytes.size()));
  return id;
}

meta::Chunk ToRecord(const StoredChunk& chunk) {
  meta::Chunk record;
  record.set_generation(chunk.generation);
  record.set_header(
      std::string(reinterpret_cast<const char*>(chunk.header.data()), chunk.header.size()));
  record.set_plain_size(chunk.plain_size);
  record.set_blob_size(chunk.blob_size);
  record.set_shard_size(chunk.shard_size);
  record.set_k(chunk.k);
  record.set_m(chunk.m);
  for (uint32_t s : chunk.stores) record.add_stores(s);
  return record;
}

Result<StoredChunk> FromRecord(const ChunkId& id, const meta::Chunk& record) {
  StoredChunk chunk;
  chunk.id = id;
  chunk.generation = record.generation();
  if (record.header().size() != chunk.header.size()) return Status::Corrupt("bad chunk header");
  std::memcpy(chunk.header.data(), record.header().data(), chunk.header.size());
  chunk.plain_size = record.plain_size();
  chunk.blob_size = record.blob_size();
  chunk.shard_size = record.shard_size();
  chunk.k = static_cast<uint8_t>(record.k());
  chunk.m = static_cast<uint8_t>(record.m());
  chunk.stores.assign(record.stores().begin(), record.stores().end());
  return chunk;
}

}  // namespace quid
