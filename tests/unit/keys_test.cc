#include "storage/crypto/keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace quid {
namespace {

bool SameKey(const SecretKey& a, const SecretKey& b) {
  return std::equal(a.span().begin(), a.span().end(), b.span().begin());
}

// A fresh temporary directory per test, removed with its key files afterwards.
class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/quid_keys_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const char* name : {"/key", "/other", "/bad"}) std::remove((dir_ + name).c_str());
    rmdir(dir_.c_str());
  }
  std::string Path(const char* name) const { return dir_ + "/" + name; }
  void WriteFile(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  std::string dir_;
};

TEST(SecretKeyTest, RandomKeysDiffer) {
  EXPECT_FALSE(SameKey(SecretKey::Random(), SecretKey::Random()));
}

TEST(SecretKeyTest, FromBytesKeepsTheBytes) {
  std::array<uint8_t, kKeyBytes> raw{};
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 7);
  SecretKey key = SecretKey::FromBytes(raw);
  EXPECT_TRUE(std::equal(raw.begin(), raw.end(), key.data()));
}

TEST(VolumeKeysTest, SubkeysDifferFromEachOtherAndFromTheMaster) {
  SecretKey master = SecretKey::Random();
  VolumeKeys keys = VolumeKeys::Derive(master);
  const SecretKey* all[] = {&master, &keys.chunk_id, &keys.data, &keys.shard_id, &keys.metadata};
  for (size_t i = 0; i < std::size(all); ++i) {
    for (size_t j = i + 1; j < std::size(all); ++j) {
      EXPECT_FALSE(SameKey(*all[i], *all[j])) << i << " vs " << j;
    }
  }
}

TEST(VolumeKeysTest, DerivationIsDeterministic) {
  SecretKey master = SecretKey::Random();
  VolumeKeys a = VolumeKeys::Derive(master);
  VolumeKeys b = VolumeKeys::Derive(master);
  EXPECT_TRUE(SameKey(a.chunk_id, b.chunk_id));
  EXPECT_TRUE(SameKey(a.data, b.data));
  EXPECT_TRUE(SameKey(a.shard_id, b.shard_id));
  EXPECT_TRUE(SameKey(a.metadata, b.metadata));
}

TEST(WrapTest, PassphraseRoundTripReturnsTheMasterKey) {
  SecretKey master = SecretKey::Random();
  Result<std::string> wrapped =
      WrapWithPassphrase(master, "correct horse", KdfStrength::kFastForTests);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_FALSE(IsKeyFileWrapped(*wrapped));
  Result<SecretKey> unwrapped = Unwrap(*wrapped, "correct horse");
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
  EXPECT_TRUE(SameKey(master, *unwrapped));
}

TEST(WrapTest, SameKeyWrapsDifferentlyEachTime) {
  SecretKey master = SecretKey::Random();
  Result<std::string> a = WrapWithPassphrase(master, "pw", KdfStrength::kFastForTests);
  Result<std::string> b = WrapWithPassphrase(master, "pw", KdfStrength::kFastForTests);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // random salt and nonce
}

TEST(WrapTest, WrongPassphraseIsBadKey) {
  SecretKey master = SecretKey::Random();
  Result<std::string> wrapped = WrapWithPassphrase(master, "right", KdfStrength::kFastForTests);
  ASSERT_TRUE(wrapped.ok());
  Result<SecretKey> unwrapped = Unwrap(*wrapped, "wrong");
  ASSERT_FALSE(unwrapped.ok());
  EXPECT_EQ(unwrapped.status().code(), Code::kBadKey);
  EXPECT_EQ(unwrapped.status().message(), "wrong passphrase");
}

TEST(WrapTest, EmptyPassphraseStillRoundTrips) {
  SecretKey master = SecretKey::Random();
  Result<std::string> wrapped = WrapWithPassphrase(master, "", KdfStrength::kFastForTests);
  ASSERT_TRUE(wrapped.ok());
  Result<SecretKey> unwrapped = Unwrap(*wrapped, "");
  ASSERT_TRUE(unwrapped.ok());
  EXPECT_TRUE(SameKey(master, *unwrapped));
}

TEST(WrapTest, EveryTruncationIsCorrupt) {
  Result<std::string> wrapped =
      WrapWithPassphrase(SecretKey::Random(), "pw", KdfStrength::kFastForTests);
  ASSERT_TRUE(wrapped.ok());
  for (size_t len = 0; len < wrapped->size(); ++len) {
    Result<SecretKey> r = Unwrap(std::string_view(*wrapped).substr(0, len), "pw");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kCorrupt) << "length " << len;
  }
  Result<SecretKey> longer = Unwrap(*wrapped + "x", "pw");
  EXPECT_EQ(longer.status().code(), Code::kCorrupt);
}

TEST(WrapTest, AnyGarbledByteIsCorruptNotBadKey) {
  Result<std::string> wrapped =
      WrapWithPassphrase(SecretKey::Random(), "pw", KdfStrength::kFastForTests);
  ASSERT_TRUE(wrapped.ok());
  for (size_t i = 0; i < wrapped->size(); ++i) {
    std::string garbled = *wrapped;
    garbled[i] = static_cast<char>(garbled[i] ^ 0x01);
    Result<SecretKey> r = Unwrap(garbled, "pw");
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.status().code(), Code::kCorrupt) << "byte " << i << ": " << r.status().ToString();
  }
}

TEST(WrapTest, GarbageInputIsCorrupt) {
  for (std::string junk : {std::string(), std::string("hello"), std::string(128, '\0'),
                           std::string(128, '\xff'), std::string(5000, 'Q')}) {
    Result<SecretKey> r = Unwrap(junk, "pw");
    EXPECT_EQ(r.status().code(), Code::kCorrupt) << junk.size();
    EXPECT_EQ(UnwrapWithKeyFile(junk, SecretKey::Random()).status().code(), Code::kCorrupt);
    EXPECT_FALSE(IsKeyFileWrapped(junk));
  }
}

TEST(WrapTest, KeyFileRoundTripReturnsTheMasterKey) {
  SecretKey master = SecretKey::Random();
  SecretKey file_key = SecretKey::Random();
  Result<std::string> wrapped = WrapWithKeyFile(master, file_key);
  ASSERT_TRUE(wrapped.ok());
  EXPECT_TRUE(IsKeyFileWrapped(*wrapped));
  Result<SecretKey> unwrapped = UnwrapWithKeyFile(*wrapped, file_key);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
  EXPECT_TRUE(SameKey(master, *unwrapped));
}

TEST(WrapTest, WrongKeyFileIsBadKey) {
  Result<std::string> wrapped = WrapWithKeyFile(SecretKey::Random(), SecretKey::Random());
  ASSERT_TRUE(wrapped.ok());
  Result<SecretKey> r = UnwrapWithKeyFile(*wrapped, SecretKey::Random());
  EXPECT_EQ(r.status().code(), Code::kBadKey);
}

TEST(WrapTest, WrongUnwrapMethodIsBadKey) {
  SecretKey master = SecretKey::Random();
  Result<std::string> by_file = WrapWithKeyFile(master, SecretKey::Random());
  Result<std::string> by_pass = WrapWithPassphrase(master, "pw", KdfStrength::kFastForTests);
  ASSERT_TRUE(by_file.ok() && by_pass.ok());
  EXPECT_EQ(Unwrap(*by_file, "pw").status().code(), Code::kBadKey);
  EXPECT_EQ(UnwrapWithKeyFile(*by_pass, SecretKey::Random()).status().code(), Code::kBadKey);
}

TEST_F(KeyFileTest, CreatedKeyFileIsPrivateHexAndReadsBack) {
  ASSERT_TRUE(CreateKeyFile(Path("key")).ok());
  struct stat st {};
  ASSERT_EQ(stat(Path("key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 65);

  Result<SecretKey> key = ReadKeyFile(Path("key"));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  std::ifstream in(Path("key"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, ToHex(key->span()));
}

TEST_F(KeyFileTest, KeyFileUnwrapsWhatItWrapped) {
  ASSERT_TRUE(CreateKeyFile(Path("key")).ok());
  ASSERT_TRUE(CreateKeyFile(Path("other")).ok());
  Result<SecretKey> key = ReadKeyFile(Path("key"));
  Result<SecretKey> other = ReadKeyFile(Path("other"));
  ASSERT_TRUE(key.ok() && other.ok());
  SecretKey master = SecretKey::Random();
  Result<std::string> wrapped = WrapWithKeyFile(master, *key);
  ASSERT_TRUE(wrapped.ok());

  Result<SecretKey> unwrapped = UnwrapWithKeyFile(*wrapped, *ReadKeyFile(Path("key")));
  ASSERT_TRUE(unwrapped.ok());
  EXPECT_TRUE(SameKey(master, *unwrapped));
  EXPECT_EQ(UnwrapWithKeyFile(*wrapped, *other).status().code(), Code::kBadKey);
}

TEST_F(KeyFileTest, CreateNeverOverwritesAnExistingFile) {
  ASSERT_TRUE(CreateKeyFile(Path("key")).ok());
  Result<SecretKey> before = ReadKeyFile(Path("key"));
  Status again = CreateKeyFile(Path("key"));
  EXPECT_EQ(again.code(), Code::kExists);
  Result<SecretKey> after = ReadKeyFile(Path("key"));
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_TRUE(SameKey(*before, *after));
}

TEST_F(KeyFileTest, MissingKeyFileIsNotFound) {
  EXPECT_EQ(ReadKeyFile(Path("key")).status().code(), Code::kNotFound);
}

TEST_F(KeyFileTest, MalformedKeyFileIsInvalid) {
  const std::string hex(64, 'a');
  for (const std::string& text :
       {std::string(), hex.substr(1) + "\n", hex + "a\n", hex.substr(2) + "zz\n", hex + "\nmore\n",
        std::string(500, 'a')}) {
    WriteFile(Path("bad"), text);
    Result<SecretKey> r = ReadKeyFile(Path("bad"));
    EXPECT_EQ(r.status().code(), Code::kInvalid) << "content: " << text;
  }
}

TEST_F(KeyFileTest, KeyFileWithoutNewlineOrWithCrlfIsAccepted) {
  const std::string hex(64, 'A');
  for (const std::string& text : {hex, hex + "\r\n"}) {
    WriteFile(Path("bad"), text);
    Result<SecretKey> r = ReadKeyFile(Path("bad"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(ToHex(r->span()), std::string(64, 'a'));
  }
}

}  // namespace
}  // namespace quid
