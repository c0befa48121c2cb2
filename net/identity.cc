#include "net/identity.h"

#include <sodium.h>

#include <cstdio>
#include <string_view>

#include "storage/base/env.h"
#include "storage/crypto/sodium_init.h"

namespace quid::net {
namespace {

static_assert(crypto_sign_SECRETKEYBYTES == 64);

constexpr size_t kSeedBytes = crypto_sign_SEEDBYTES;

// Key file, version 1: one text line
//   "quid-node-key-v1 <64 hex: Ed25519 seed> <64 hex: public key>\n"
// The seed alone determines the key pair; the public key is stored too so that a damaged
// seed is reported as corruption instead of silently becoming another identity.
constexpr std::string_view kKeyFileTag = "quid-node-key-v1";
constexpr size_t kKeyFileBytes =
    kKeyFileTag.size() + 1 + 2 * kSeedBytes + 1 + 2 * kPublicKeyBytes + 1;
// Anything much larger than one line is not ours; refuse before reading it all.
constexpr uint64_t kMaxKeyFileBytes = 4096;
constexpr unsigned kKeyFileMode = 0600;

Status Malformed(const std::string& path, const std::string& why) {
  return Status::Corrupt("node key file " + path + " is malformed: " + why);
}

}  // namespace

NodeIdentity NodeIdentity::Generate() {
  EnsureSodium();
  NodeIdentity id;
  crypto_sign_keypair(id.public_key_.data(), id.secret_key_.data());
  return id;
}

NodeIdentity::~NodeIdentity() {
  sodium_memzero(secret_key_.data(), secret_key_.size());
}

Signature NodeIdentity::Sign(ByteSpan message) const {
  Signature signature{};
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(),
                       secret_key_.data());
  return signature;
}

namespace {

// Reads the key file through one open file, so the permissions checked are those of the
// file whose bytes are read. The returned text holds the secret: the caller wipes it.
Result<std::string> ReadKeyFile(const std::string& path, File* file) {
  QUID_ASSIGN_OR_RETURN(FileStat st, file->Stat());
  if (!st.is_regular) return Malformed(path, "not a regular file");
  if ((st.mode & 077) != 0) {
    char mode[16];  // room for any unsigned in octal: GCC's -O2 format check cannot see the mask
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.mode & 07777));
    return Status(Code::kPermission, "node key file " + path + " has mode " + mode +
                                         ": others may read it; run chmod 600 on it");
  }
  if (st.size > static_cast<uint64_t>(kMaxKeyFileBytes)) return Malformed(path, "too large");
  std::string text(static_cast<size_t>(st.size), '\0');
  Status s = file->ReadExact(0, {reinterpret_cast<uint8_t*>(text.data()), text.size()});
  if (!s.ok()) {
    sodium_memzero(text.data(), text.size());
    return Status(s.code(), "read " + path + ": " + s.message());
  }
  return text;
}

}  // namespace

Result<NodeIdentity> NodeIdentity::LoadOrCreate(const std::string& path, Env* env) {
  EnsureSodium();
  if (!env) env = Env::Default();
  auto file = env->Open(path, OpenMode::kRead);
  if (!file.ok() && file.status().code() != Code::kNotFound) return file.status();
  if (!file.ok()) {
    NodeIdentity created = Generate();
    std::array<uint8_t, kSeedBytes> seed{};
    crypto_sign_ed25519_sk_to_seed(seed.data(), created.secret_key_.data());
    std::string line =
        std::string(kKeyFileTag) + " " + ToHex(seed) + " " + ToHex(created.public_key_) + "\n";
    sodium_memzero(seed.data(), seed.size());
    Status s = env->CreateDirs(ParentDir(path), 0700);
    // WriteFileAtomic creates "<path>.tmp" with the mode given, but an existing temp file
    // (left by a crash) keeps its old mode: remove it so the secret is never written into
    // a file others can read.
    if (s.ok()) (void)env->Remove(path + ".tmp");
    if (s.ok()) s = env->WriteFileAtomic(path, AsBytes(line), kKeyFileMode);
    sodium_memzero(line.data(), line.size());
    if (!s.ok()) return s;
    // Read back what is on disk: the permission check then covers the file we just made
    // (a umask never adds bits, but a racing creator may have won the rename).
    file = env->Open(path, OpenMode::kRead);
    if (!file.ok()) return file.status();
  }
  Result<std::string> read = ReadKeyFile(path, file->get());
  file->reset();
  if (!read.ok()) return read.status();
  std::string& text = read.value();

  NodeIdentity id;
  std::array<uint8_t, kSeedBytes> seed{};
  PublicKey stored{};
  Status s = Status::Ok();
  if (text.size() != kKeyFileBytes || text.back() != '\n') {
    s = Malformed(path, "expected one line of " + std::to_string(kKeyFileBytes) + " bytes");
  } else if (std::string_view(text).substr(0, kKeyFileTag.size() + 1) !=
             std::string(kKeyFileTag) + " ") {
    s = Malformed(path, "it does not start with \"" + std::string(kKeyFileTag) + " \"");
  } else {
    std::string_view rest = std::string_view(text).substr(kKeyFileTag.size() + 1);
    std::string_view seed_hex = rest.substr(0, 2 * kSeedBytes);
    std::string_view key_hex = rest.substr(2 * kSeedBytes + 1, 2 * kPublicKeyBytes);
    if (rest[2 * kSeedBytes] != ' ' || !FromHex(seed_hex, seed) || !FromHex(key_hex, stored)) {
      s = Malformed(path, "bad hex");
    } else {
      crypto_sign_seed_keypair(id.public_key_.data(), id.secret_key_.data(), seed.data());
      if (sodium_memcmp(id.public_key_.data(), stored.data(), stored.size()) != 0) {
        s = Malformed(path, "the secret does not match the public key");
      }
    }
  }
  sodium_memzero(seed.data(), seed.size());
  sodium_memzero(text.data(), text.size());
  if (!s.ok()) return s;
  return id;
}

}  // namespace quid::net
