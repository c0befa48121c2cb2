// StoreStamp: which volume a store belongs to.
//
// A store (a local folder, or the area a host keeps for one tenant) holds the shards of one
// volume only, and carries that volume's stamp. The volume claims every store it uses: a
// store with no stamp (new, or wiped) is stamped; one stamped by this volume is used; one
// stamped by another volume is never used, above all never swept (a sweep removes every
// shard its volume does not know, which on another volume's store is all of them). The
// policy lives in stamped_store.h; this file holds the value and its file format.
//
// The stamp is a one-way image of the volume id (VolumeConfig.volume_id, 16 random bytes),
// not the id itself: the id doubles as the volume's local SipHash key for directory
// entries, and a host has no business holding that.
//
// Folder file `<dir>/VOLUME` (28 bytes, integers big-endian):
//   0  "QSTP"   magic
//   4  u32      format version (1)
//   8  16 bytes the stamp
//   24 u32      CRC-32C of bytes 0..23
// Written like a shard (temp file, fsync, rename, fsync of <dir>), so a power cut leaves
// the old state (no stamp) or the stamp, never half of one.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/base/bytes.h"
#include "storage/base/env.h"
#include "storage/base/status.h"

namespace quid {

constexpr size_t kStoreStampBytes = 16;

struct StoreStamp {
  std::array<uint8_t, kStoreStampBytes> bytes{};

  // The stamp of the volume whose VolumeConfig.volume_id is `volume_id`: BLAKE2b-128 of
  // a fixed label followed by the id.
  static StoreStamp ForVolume(std::string_view volume_id);
  // kInvalid unless `raw` is exactly kStoreStampBytes long (a stamp off the wire).
  static Result<StoreStamp> FromBytes(std::string_view raw);

  std::string hex() const { return ToHex(bytes); }
  // The first 8 hex digits: enough for a person to tell two volumes apart in a message.
  std::string short_hex() const { return hex().substr(0, 8); }
  bool operator==(const StoreStamp&) const = default;
};

// The stamp file of the store in `dir`.
std::string StampFilePath(const std::string& dir);

// The stamp the folder store in `dir` carries: nullopt if it has none; kCorrupt (naming
// the file) if the file is there but unreadable, which callers treat as "not ours".
Result<std::optional<StoreStamp>> ReadStampFile(Env* env, const std::string& dir);

// Writes `stamp` to `dir`'s stamp file, durably. The caller makes sure no other writer
// races it (FolderStore holds the folder's LOCK and a mutex of its own).
Status WriteStampFile(Env* env, const std::string& dir, const StoreStamp& stamp);

}  // namespace quid
