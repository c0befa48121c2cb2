#include "storage/meta/metadata_keys.h"
#include "storage/base/byte_order.h"

#include "storage/base/bytes.h"

namespace quid {
namespace {
std::string Fixed64(uint64_t v) {
  std::string out(8, '\0');
  PutBigEndian64(v, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}
uint64_t ReadFixed64(std::string_view s, size_t at) {
  return GetBigEndian64(reinterpret_cast<const uint8_t*>(s.data()) + at);
}
}  // namespace

std::string InodeKey(uint64_t ino) {
  return Fixed64(ino);
}
uint64_t InodeFromKey(std::string_view key) {
  return ReadFixed64(key, 0);
}

std::string DirentPrefix(uint64_t parent) {
  return Fixed64(parent);
}
std::string DirentKey(uint64_t parent, uint64_t name_hash, std::string_view name) {
  std::string key = Fixed64(parent) + Fixed64(name_hash);
  key.append(name);
  return key;
}
std::string DirentSeekKey(uint64_t parent, uint64_t cookie) {
  return Fixed64(parent) + Fixed64(cookie);
}
uint64_t DirentHashFromKey(std::string_view key) {
  return ReadFixed64(key, 8);
}
std::string_view DirentNameFromKey(std::string_view key) {
  return key.substr(16);
}

std::string ExtentPrefix(uint64_t ino) {
  return Fixed64(ino);
}
std::string ExtentKey(uint64_t ino, uint64_t offset) {
  return Fixed64(ino) + Fixed64(offset);
}
uint64_t ExtentOffsetFromKey(std::string_view key) {
  return ReadFixed64(key, 8);
}

std::string ChunkKey(const ChunkId& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}
std::string DeleteKey(const ChunkId& id, uint64_t generation) {
  return ChunkKey(id) + Fixed64(generation);
}

std::string XattrPrefix(uint64_t ino) {
  return Fixed64(ino);
}
std::string XattrKey(uint64_t ino, std::string_view name) {
  std::string key = Fixed64(ino);
  key.append(name);
  return key;
}

std::string OrphanKey(uint64_t ino) {
  return std::string(kOrphanPrefix) + Fixed64(ino);
}

}  // namespace quid
