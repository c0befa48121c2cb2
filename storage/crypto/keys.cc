#include "storage/crypto/keys.h"
#include "storage/base/env.h"
#include "storage/crypto/sodium_init.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

namespace quid {
namespace {

// Wrapped key format, version 1 (all integers little endian):
//   magic "QKEY" (4) | version (1) | kind (1) | reserved (2, zero) |
//   salt (16) | opslimit (8) | memlimit (8) | nonce (24) |
//   XChaCha20-Poly1305 ciphertext of the master key (32) | tag (16) |
//   checksum (16, unkeyed BLAKE2b of everything before it)
// The whole 64-byte header is the associated data, so no field can be altered without the
// unwrap failing. The AEAD alone cannot tell a damaged blob from a wrong passphrase; the
// checksum can, so the user is told which (it adds no security, the AEAD does that).
// Key-file wraps carry zero salt and limits: the same layout keeps one parser for both.
constexpr char kWrapMagic[4] = {'Q', 'K', 'E', 'Y'};
constexpr uint8_t kWrapVersion = 1;
enum class WrapKind : uint8_t { kPassphrase = 1, kKeyFile = 2 };

constexpr size_t kSaltBytes = crypto_pwhash_argon2id_SALTBYTES;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kSealTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr size_t kSaltOffset = 8;
constexpr size_t kOpsOffset = kSaltOffset + kSaltBytes;
constexpr size_t kMemOffset = kOpsOffset + 8;
constexpr size_t kNonceOffset = kMemOffset + 8;
constexpr size_t kWrapHeaderBytes = kNonceOffset + kNonceBytes;
constexpr size_t kChecksumOffset = kWrapHeaderBytes + kKeyBytes + kSealTagBytes;
constexpr size_t kChecksumBytes = 16;
constexpr size_t kWrappedBytes = kChecksumOffset + kChecksumBytes;
static_assert(kSaltBytes == 16 && kWrapHeaderBytes == 64);

// Limits above libsodium's "sensitive" level are never written by this code; refusing them
// before running Argon2 keeps a garbled blob from making us allocate gigabytes.
constexpr uint64_t kMaxOpsLimit = crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE;
constexpr uint64_t kMaxMemLimit = crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE;

constexpr size_t kKeyFileHexChars = 2 * kKeyBytes;

void PutLittleEndian64(uint64_t v, uint8_t* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

std::array<uint8_t, kChecksumBytes> Checksum(const uint8_t* wrapped) {
  std::array<uint8_t, kChecksumBytes> sum{};
  crypto_generichash(sum.data(), sum.size(), wrapped, kChecksumOffset, nullptr, 0);
  return sum;
}

uint64_t GetLittleEndian64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | in[i];
  return v;
}

struct WrapHeader {
  WrapKind kind = WrapKind::kPassphrase;
  std::array<uint8_t, kSaltBytes> salt{};
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;
  std::array<uint8_t, kNonceBytes> nonce{};

  std::array<uint8_t, kWrapHeaderBytes> Serialize() const {
    std::array<uint8_t, kWrapHeaderBytes> out{};
    std::memcpy(out.data(), kWrapMagic, sizeof(kWrapMagic));
    out[4] = kWrapVersion;
    out[5] = static_cast<uint8_t>(kind);
    std::memcpy(out.data() + kSaltOffset, salt.data(), salt.size());
    PutLittleEndian64(opslimit, out.data() + kOpsOffset);
    PutLittleEndian64(memlimit, out.data() + kMemOffset);
    std::memcpy(out.data() + kNonceOffset, nonce.data(), nonce.size());
    return out;
  }
};

bool LimitsValid(const WrapHeader& h) {
  if (h.kind == WrapKind::kKeyFile) {
    static constexpr std::array<uint8_t, kSaltBytes> kZeroSalt{};
    return h.salt == kZeroSalt && h.opslimit == 0 && h.memlimit == 0;
  }
  return h.opslimit >= crypto_pwhash_argon2id_OPSLIMIT_MIN && h.opslimit <= kMaxOpsLimit &&
         h.memlimit >= crypto_pwhash_argon2id_MEMLIMIT_MIN && h.memlimit <= kMaxMemLimit;
}

// Checks everything that can be checked without a key; authentication does the rest.
Result<WrapHeader> ParseWrapped(std::string_view wrapped) {
  if (wrapped.size() != kWrappedBytes) {
    return Status::Corrupt("wrapped key has " + std::to_string(wrapped.size()) +
                           " bytes, expected " + std::to_string(kWrappedBytes));
  }
  const uint8_t* p = AsBytes(wrapped).data();
  if (std::memcmp(p, kWrapMagic, sizeof(kWrapMagic)) != 0) {
    return Status::Corrupt("not a quid wrapped key (bad magic)");
  }
  if (sodium_memcmp(Checksum(p).data(), p + kChecksumOffset, kChecksumBytes) != 0) {
    return Status::Corrupt("wrapped key is damaged (checksum mismatch)");
  }
  if (p[4] != kWrapVersion) {
    return Status::Corrupt("unknown wrapped key version " + std::to_string(p[4]));
  }
  if (p[5] != static_cast<uint8_t>(WrapKind::kPassphrase) &&
      p[5] != static_cast<uint8_t>(WrapKind::kKeyFile)) {
    return Status::Corrupt("unknown wrapped key kind " + std::to_string(p[5]));
  }
  if (p[6] != 0 || p[7] != 0) return Status::Corrupt("wrapped key reserved bytes are not zero");
  WrapHeader h;
  h.kind = static_cast<WrapKind>(p[5]);
  std::memcpy(h.salt.data(), p + kSaltOffset, kSaltBytes);
  h.opslimit = GetLittleEndian64(p + kOpsOffset);
  h.memlimit = GetLittleEndian64(p + kMemOffset);
  std::memcpy(h.nonce.data(), p + kNonceOffset, kNonceBytes);
  if (!LimitsValid(h)) return Status::Corrupt("wrapped key has invalid KDF parameters");
  return h;
}

Result<SecretKey> StretchPassphrase(std::string_view passphrase, const WrapHeader& h) {
  SecretKey key;
  if (crypto_pwhash(key.data(), kKeyBytes, passphrase.data(), passphrase.size(), h.salt.data(),
                    h.opslimit, static_cast<size_t>(h.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::IoError("Argon2id failed (out of memory?)");
  }
  return key;
}

std::string Seal(const SecretKey& master, const SecretKey& wrapping_key, WrapHeader h) {
  randombytes_buf(h.nonce.data(), h.nonce.size());
  const auto header = h.Serialize();
  std::string out(kWrappedBytes, '\0');
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(o, header.data(), header.size());
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
      o + kWrapHeaderBytes, o + kWrapHeaderBytes + kKeyBytes, nullptr, master.data(), kKeyBytes,
      header.data(), header.size(), nullptr, h.nonce.data(), wrapping_key.data());
  const auto sum = Checksum(o);
  std::memcpy(o + kChecksumOffset, sum.data(), sum.size());
  return out;
}

// REQUIRES: `wrapped` passed ParseWrapped.
Result<SecretKey> Open(std::string_view wrapped, const SecretKey& wrapping_key,
                       const char* failure) {
  const uint8_t* p = AsBytes(wrapped).data();
  SecretKey master;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
          master.data(), nullptr, p + kWrapHeaderBytes, kKeyBytes, p + kWrapHeaderBytes + kKeyBytes,
          p, kWrapHeaderBytes, p + kNonceOffset, wrapping_key.data()) != 0) {
    return Status::BadKey(failure);
  }
  return master;
}

}  // namespace

SecretKey::~SecretKey() {
  sodium_memzero(bytes_.data(), bytes_.size());
}

SecretKey SecretKey::Random() {
  EnsureSodium();
  SecretKey key;
  randombytes_buf(key.data(), kKeyBytes);
  return key;
}

SecretKey SecretKey::FromBytes(ByteSpan bytes) {
  assert(bytes.size() == kKeyBytes);
  SecretKey key;
  std::memcpy(key.data(), bytes.data(), std::min(bytes.size(), kKeyBytes));
  return key;
}

VolumeKeys VolumeKeys::Derive(const SecretKey& master) {
  EnsureSodium();
  // One context per purpose: a subkey's context names what it is for, and changing the
  // trailing digit is how a purpose's key would be rotated.
  static_assert(crypto_kdf_KEYBYTES == kKeyBytes && crypto_kdf_CONTEXTBYTES == 8);
  constexpr uint64_t kSubkeyId = 1;
  auto derive = [&](SecretKey& out, const char(&context)[crypto_kdf_CONTEXTBYTES + 1]) {
    crypto_kdf_derive_from_key(out.data(), kKeyBytes, kSubkeyId, context, master.data());
  };
  VolumeKeys keys;
  derive(keys.chunk_id, "quidcid1");
  derive(keys.data, "quiddat1");
  derive(keys.shard_id, "quidsid1");
  derive(keys.metadata, "quidmet1");
  return keys;
}

Result<std::string> WrapWithPassphrase(const SecretKey& master, std::string_view passphrase,
                                       KdfStrength strength) {
  EnsureSodium();
  WrapHeader h;
  h.kind = WrapKind::kPassphrase;
  randombytes_buf(h.salt.data(), h.salt.size());
  if (strength == KdfStrength::kInteractive) {
    h.opslimit = crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE;
    h.memlimit = crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE;
  } else {
    h.opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
    h.memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
  }
  QUID_ASSIGN_OR_RETURN(SecretKey wrapping_key, StretchPassphrase(passphrase, h));
  return Seal(master, wrapping_key, h);
}

Result<std::string> WrapWithKeyFile(const SecretKey& master, const SecretKey& file_key) {
  EnsureSodium();
  WrapHeader h;
  h.kind = WrapKind::kKeyFile;
  return Seal(master, file_key, h);
}

Result<SecretKey> Unwrap(std::string_view wrapped, std::string_view passphrase) {
  EnsureSodium();
  QUID_ASSIGN_OR_RETURN(WrapHeader h, ParseWrapped(wrapped));
  if (h.kind != WrapKind::kPassphrase) {
    return Status::BadKey("this volume key is wrapped with a key file, not a passphrase");
  }
  QUID_ASSIGN_OR_RETURN(SecretKey wrapping_key, StretchPassphrase(passphrase, h));
  return Open(wrapped, wrapping_key, "wrong passphrase");
}

Result<SecretKey> UnwrapWithKeyFile(std::string_view wrapped, const SecretKey& file_key) {
  EnsureSodium();
  QUID_ASSIGN_OR_RETURN(WrapHeader h, ParseWrapped(wrapped));
  if (h.kind != WrapKind::kKeyFile) {
    return Status::BadKey("this volume key is wrapped with a passphrase, not a key file");
  }
  return Open(wrapped, file_key, "wrong key file");
}

bool IsKeyFileWrapped(std::string_view wrapped) {
  Result<WrapHeader> h = ParseWrapped(wrapped);
  return h.ok() && h->kind == WrapKind::kKeyFile;
}

Status CreateKeyFile(const std::string& path, Env* env) {
  if (!env) env = Env::Default();
  // Exclusive: never overwrite a key file, since that would lock the user out of a volume.
  auto file = env->Open(path, OpenMode::kCreateExclusive, 0600);
  if (!file.ok())
    return Status(file.status().code(), "cannot create key file: " + file.status().message());
  SecretKey key = SecretKey::Random();
  std::string line = ToHex(key.span()) + "\n";
  Status status = (*file)->WriteAt(0, AsBytes(line));
  sodium_memzero(line.data(), line.size());
  if (status.ok()) status = (*file)->Sync();
  file->reset();
  // The volume's key will be wrapped with this file's key: its entry must survive a power
  // loss as surely as its bytes, or the volume is locked for good.
  if (status.ok()) status = env->SyncDir(ParentDir(path));
  // A half-written key file would later read as malformed; better that it not exist.
  if (!status.ok()) {
    (void)env->Remove(path);
    return Status(status.code(), "cannot write key file: " + status.message());
  }
  return status;
}

Result<SecretKey> ReadKeyFile(const std::string& path, Env* env) {
  if (!env) env = Env::Default();
  auto file = env->Open(path, OpenMode::kRead);
  if (!file.ok())
    return Status(file.status().code(), "cannot open key file: " + file.status().message());
  // One byte more than the longest valid content ("hex\r\n") tells a longer file apart.
  std::array<char, kKeyFileHexChars + 3> buf{};
  auto len = (*file)->ReadAt(0, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()});
  if (!len.ok())
    return Status(len.status().code(), "cannot read key file: " + len.status().message());
  std::string_view text(buf.data(), *len);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  SecretKey key;
  const bool parsed = text.size() == kKeyFileHexChars && FromHex(text, {key.data(), kKeyBytes});
  sodium_memzero(buf.data(), buf.size());
  if (!parsed) {
    return Status::Invalid("key file " + path + " is not " + std::to_string(kKeyFileHexChars) +
                           " hex digits on one line");
  }
  return key;
}

}  // namespace quid
