// Volume keys: the master key, the subkeys derived from it, and wrapping the master key
// under a passphrase (Argon2id) or a key file, so it never rests on disk unwrapped.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/base/bytes.h"
#include "storage/base/env.h"
#include "storage/base/status.h"

namespace quid {

constexpr size_t kKeyBytes = 32;

// 32 secret bytes, wiped (sodium_memzero) on destruction. Copyable: copies are wiped too.
class SecretKey {
 public:
  SecretKey() { bytes_.fill(0); }
  ~SecretKey();
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;

  // A new key from the system CSPRNG (randombytes_buf).
  static SecretKey Random();
  static SecretKey FromBytes(ByteSpan bytes);  // REQUIRES: bytes.size() == kKeyBytes

  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* data() { return bytes_.data(); }
  ByteSpan span() const { return {bytes_.data(), bytes_.size()}; }

 private:
  std::array<uint8_t, kKeyBytes> bytes_;
};

// The subkeys of one volume, derived from its master key with crypto_kdf (BLAKE2b), one
// context per purpose, so that no subkey reveals another or the master key.
struct VolumeKeys {
  SecretKey chunk_id;  // keys the BLAKE2b that names chunks (dedup without leaking content)
  SecretKey data;      // encrypts chunk contents
  SecretKey shard_id;  // derives the opaque shard ids stores see
  SecretKey metadata;  // encrypts metadata snapshots (disaster recovery)

  static VolumeKeys Derive(const SecretKey& master);
};

// How hard the passphrase KDF works. kInteractive is the production default (Argon2id,
// crypto_pwhash OPSLIMIT/MEMLIMIT_INTERACTIVE, about 0.12 s here); kFastForTests is the
// library minimum and exists so unit tests do not spend seconds in Argon2.
enum class KdfStrength { kInteractive, kFastForTests };

// Wraps `master` under a key stretched from `passphrase` with Argon2id and a random salt,
// sealed with XChaCha20-Poly1305. The result is a self-describing, versioned byte string
// (salt, KDF limits, nonce, ciphertext) safe to store anywhere.
Result<std::string> WrapWithPassphrase(const SecretKey& master, std::string_view passphrase,
                                       KdfStrength strength = KdfStrength::kInteractive);
// Wraps `master` under the 32-byte key held in a key file (no KDF).
Result<std::string> WrapWithKeyFile(const SecretKey& master, const SecretKey& file_key);

// Returns the master key. A wrong passphrase or key file gives Code::kBadKey with a clear
// message; malformed input gives Code::kCorrupt. Never returns a wrong key.
Result<SecretKey> Unwrap(std::string_view wrapped, std::string_view passphrase);
Result<SecretKey> UnwrapWithKeyFile(std::string_view wrapped, const SecretKey& file_key);
// True if `wrapped` was made by WrapWithKeyFile (so the caller knows what to ask for).
bool IsKeyFileWrapped(std::string_view wrapped);

// Key files: 32 random bytes in hex, one line, created with mode 0600 and made durable
// (contents and directory entry) before CreateKeyFile returns. `env` defaults to the disk.
Status CreateKeyFile(const std::string& path, Env* env = nullptr);
Result<SecretKey> ReadKeyFile(const std::string& path, Env* env = nullptr);

}  // namespace quid
