#include "fs/mount_table.h"

#include <gtest/gtest.h>

namespace quid {
namespace {

constexpr char kMountinfo[] =
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "45 22 0:41 / /mnt/quid rw,nosuid,nodev,relatime shared:30 - fuse.quid quidfs rw\n"
    "46 22 0:42 / /mnt/with\\040space rw - fuse.quid quidfs rw\n"
    "47 22 0:43 / /mnt/quid rw - fuse.quid quidfs rw\n";

TEST(MountDeviceTest, FindsTheLastMountAtThePathAndUnescapesIt) {
  // Mounted twice at /mnt/quid: the second mount is the one a path reaches.
  EXPECT_EQ(MountDevice(kMountinfo, "/mnt/quid"), "0:43");
  EXPECT_EQ(MountDevice(kMountinfo, "/mnt/with space"), "0:42");
  EXPECT_EQ(MountDevice(kMountinfo, "/"), "254:0");
}

TEST(MountDeviceTest, AbsentOrMalformedLinesGiveNothing) {
  EXPECT_EQ(MountDevice(kMountinfo, "/mnt"), std::nullopt);
  EXPECT_EQ(MountDevice(kMountinfo, "/mnt/with\\040space"), std::nullopt);  // escaped form
  EXPECT_EQ(MountDevice("", "/"), std::nullopt);
  EXPECT_EQ(MountDevice("garbage\n1 2 nocolon / /x\n\n", "/x"), std::nullopt);
  EXPECT_EQ(MountDevice("1 2 0:5 /", "/"), std::nullopt);  // cut short
}

}  // namespace
}  // namespace quid
