// Chunker: how a file's bytes are cut into chunks, the unit of dedup, encryption and
// erasure coding. Extents are keyed by chunk start offset, so a layout only has to say
// where the chunk holding a given byte starts and how long it is.
//
// Fixed-size chunking is the default (4 MiB, per volume): a small overwrite rewrites one
// chunk, and a chunk's place follows from the offset alone. Content-defined chunking
// (better dedup across shifted data) would implement this interface from boundaries it
// records per file; the flusher and read path only talk to Chunker.
#pragma once

#include <algorithm>
#include <cstdint>

namespace quid {

class Chunker {
 public:
  virtual ~Chunker() = default;
  // Start offset of the chunk that holds byte `offset`.
  virtual uint64_t ChunkStart(uint64_t offset) const = 0;
  // Bytes of the chunk starting at `start` in a file of `file_size` bytes (0 past the end).
  virtual uint64_t ChunkLength(uint64_t start, uint64_t file_size) const = 0;
  // No chunk is longer than this.
  virtual uint64_t max_chunk_bytes() const = 0;
};

class FixedSizeChunker : public Chunker {
 public:
  // REQUIRES: chunk_bytes > 0.
  explicit FixedSizeChunker(uint64_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}
  uint64_t ChunkStart(uint64_t offset) const override { return offset - offset % chunk_bytes_; }
  uint64_t ChunkLength(uint64_t start, uint64_t file_size) const override {
    return start >= file_size ? 0 : std::min(chunk_bytes_, file_size - start);
  }
  uint64_t max_chunk_bytes() const override { return chunk_bytes_; }

 private:
  uint64_t chunk_bytes_;
};

}  // namespace quid
