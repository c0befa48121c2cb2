#include "storage/stores/store_stamp.h"

#include <sodium.h>

#include <cstring>

#include "storage/base/byte_order.h"
#include "storage/crypto/sodium_init.h"
#include "storage/erasure/checksum.h"

namespace quid {
namespace {

constexpr char kMagic[4] = {'Q', 'S', 'T', 'P'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kFileBytes = 28;
constexpr std::string_view kLabel = "quidfs store stamp v1";

}  // namespace

StoreStamp StoreStamp::ForVolume(std::string_view volume_id) {
  EnsureSodium();
  std::string message(kLabel);
  message.append(volume_id);
  StoreStamp stamp;
  crypto_generichash(stamp.bytes.data(), stamp.bytes.size(),
                     reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                     nullptr, 0);
  return stamp;
}

Result<StoreStamp> StoreStamp::FromBytes(std::string_view raw) {
  if (raw.size() != kStoreStampBytes) {
    return Status::Invalid("a store stamp is " + std::to_string(kStoreStampBytes) + " bytes, not " +
                           std::to_string(raw.size()));
  }
  StoreStamp stamp;
  std::memcpy(stamp.bytes.data(), raw.data(), kStoreStampBytes);
  return stamp;
}

std::string StampFilePath(const std::string& dir) {
  return dir + "/VOLUME";
}

Result<std::optional<StoreStamp>> ReadStampFile(Env* env, const std::string& dir) {
  const std::string path = StampFilePath(dir);
  Result<std::string> text = env->ReadWholeFile(path);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return std::optional<StoreStamp>();
    return text.status();
  }
  const auto* p = reinterpret_cast<const uint8_t*>(text->data());
  if (text->size() != kFileBytes || std::memcmp(p, kMagic, sizeof(kMagic)) != 0 ||
      GetBigEndian32(p + 24) != Crc32c(ByteSpan(p, 24))) {
    return Status::Corrupt(path + ": not a readable volume stamp");
  }
  if (GetBigEndian32(p + 4) != kFormatVersion) {
    return Status::Corrupt(path + ": unknown stamp format " +
                           std::to_string(GetBigEndian32(p + 4)));
  }
  StoreStamp stamp;
  std::memcpy(stamp.bytes.data(), p + 8, kStoreStampBytes);
  return std::optional<StoreStamp>(stamp);
}

Status WriteStampFile(Env* env, const std::string& dir, const StoreStamp& stamp) {
  std::array<uint8_t, kFileBytes> file{};
  std::memcpy(file.data(), kMagic, sizeof(kMagic));
  PutBigEndian32(kFormatVersion, file.data() + 4);
  std::memcpy(file.data() + 8, stamp.bytes.data(), kStoreStampBytes);
  PutBigEndian32(Crc32c(ByteSpan(file.data(), 24)), file.data() + 24);
  // Temp file, sync, rename, SyncDir: durable and never torn.
  return env->WriteFileAtomic(StampFilePath(dir), ByteSpan(file.data(), file.size()), 0600);
}

}  // namespace quid
