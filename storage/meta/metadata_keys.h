// Key encodings of the metadata column families. Integers are big endian so that keys of
// one inode sort together and in numeric order.
//
//   inodes   ino(8)
//   dirents  parent(8) | name_hash(8) | name     readdir walks one parent in hash order;
//                                                 the hash is the resume cookie
//   extents  ino(8) | chunk start offset(8)
//   chunks   chunk id(32)
//   deletes  chunk id(32) | generation(8)
//   xattrs   ino(8) | name
//   config   "volume", "counters", "hosts", "orphan/" ino(8)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/crypto/chunk_id.h"

namespace quid {

// Cookies (and so name hashes) keep 62 bits, leaving room for the FUSE layer's own
// offsets and a "past the end" value within a positive off_t.
constexpr uint64_t kNameHashMask = (uint64_t{1} << 62) - 1;

std::string InodeKey(uint64_t ino);
uint64_t InodeFromKey(std::string_view key);

std::string DirentPrefix(uint64_t parent);
std::string DirentKey(uint64_t parent, uint64_t name_hash, std::string_view name);
// Seek position for readdir resuming at `cookie` (the first entry with hash >= cookie).
std::string DirentSeekKey(uint64_t parent, uint64_t cookie);
uint64_t DirentHashFromKey(std::string_view key);
std::string_view DirentNameFromKey(std::string_view key);

std::string ExtentPrefix(uint64_t ino);
std::string ExtentKey(uint64_t ino, uint64_t offset);
uint64_t ExtentOffsetFromKey(std::string_view key);

std::string ChunkKey(const ChunkId& id);
std::string DeleteKey(const ChunkId& id, uint64_t generation);

std::string XattrPrefix(uint64_t ino);
std::string XattrKey(uint64_t ino, std::string_view name);

constexpr std::string_view kVolumeConfigKey = "volume";
constexpr std::string_view kCountersKey = "counters";
constexpr std::string_view kHostVerdictsKey = "hosts";
constexpr std::string_view kOrphanPrefix = "orphan/";
std::string OrphanKey(uint64_t ino);

}  // namespace quid
