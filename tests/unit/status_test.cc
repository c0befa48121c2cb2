#include "storage/base/status.h"
#include "storage/base/byte_order.h"

#include <gtest/gtest.h>

#include <cstring>

#include "storage/base/bytes.h"

namespace quid {
namespace {

TEST(StatusTest, OkMapsToZeroErrno) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_errno(), 0);
}

TEST(StatusTest, CodesMapToTheirErrno) {
  EXPECT_EQ(Status::NotFound("x").to_errno(), ENOENT);
  EXPECT_EQ(Status::Corrupt("x").to_errno(), EIO);
  EXPECT_EQ(Status::NoSpace("x").to_errno(), ENOSPC);
  EXPECT_EQ(Status(Code::kNotEmpty, "x").to_errno(), ENOTEMPTY);
}

TEST(StatusTest, FromErrnoKeepsTheMeaning) {
  Status s = Status::FromErrno(ENOSPC, "write shard");
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_NE(s.message().find("write shard"), std::string::npos);
}

Result<int> Half(int v) {
  if (v % 2) return Status::Invalid("odd");
  return v / 2;
}

Status UseHalf(int v, int* out) {
  QUID_ASSIGN_OR_RETURN(int h, Half(v));
  *out = h;
  return Status::Ok();
}

TEST(StatusTest, AssignOrReturnPropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(UseHalf(8, &out).ok());
  EXPECT_EQ(out, 4);
  EXPECT_EQ(UseHalf(3, &out).code(), Code::kInvalid);
}

TEST(BytesTest, HexRoundTrip) {
  Bytes in = {0x00, 0x7f, 0xff, 0x10};
  std::string hex = ToHex(in);
  EXPECT_EQ(hex, "007fff10");
  Bytes out(4);
  ASSERT_TRUE(FromHex(hex, out));
  EXPECT_EQ(in, out);
  EXPECT_FALSE(FromHex("zz7fff10", out));
  EXPECT_FALSE(FromHex("007fff", out));
}

TEST(BytesTest, BigEndianSortsNumerically) {
  uint8_t a[8], b[8];
  PutBigEndian64(255, a);
  PutBigEndian64(256, b);
  EXPECT_LT(std::memcmp(a, b, 8), 0);
  EXPECT_EQ(GetBigEndian64(b), 256u);
}

}  // namespace
}  // namespace quid
