// End to end: a real Volume on folder stores, served through a real FUSE mount, driven with
// plain POSIX calls as a user's tools would drive it.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fs/fuse_frontend.h"
#include "storage/volume/volume.h"

namespace quid {
namespace {

constexpr size_t kMiB = 1024 * 1024;
constexpr int kStoreFolders = 6;  // the default 4 data + 2 parity, one folder each
constexpr char kPassphrase[] = "fuse mount test passphrase";
constexpr auto kMountTimeout = std::chrono::seconds(30);
// TRAPS.md: big and sparse files go on a size-limited tmpfs, where we may mount one.
constexpr char kTmpfsOptions[] = "size=4g,mode=0755";

std::string Errno() {
  return std::strerror(errno);
}

// The errno a failed call left (0 if it succeeded), read before anything can overwrite it.
int ErrorOf(long result) {
  return result == -1 ? errno : 0;
}

std::string RandomData(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Writes `data` to a new (or truncated) file at `path`.
void WriteFile(const std::string& path, const std::string& data, int extra_flags = O_TRUNC) {
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | extra_flags, 0644);
  ASSERT_GE(fd, 0) << path << ": " << Errno();
  EXPECT_TRUE(WriteAll(fd, data)) << path << ": " << Errno();
  EXPECT_EQ(close(fd), 0) << Errno();
}

// Reads the whole file after dropping its cached pages, so the bytes come from the Volume
// rather than from the kernel's page cache.
std::string ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << path << ": " << Errno();
    return {};
  }
  EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  std::string out;
  char buffer[64 * 1024];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << path << ": " << Errno();
  close(fd);
  return out;
}

struct stat Stat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path << ": " << Errno();
  return st;
}

int64_t Ns(const timespec& ts) {
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return Ns(ts);
}

int RenameAt2(const std::string& from, const std::string& to, unsigned flags) {
  return static_cast<int>(
      syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
}

// Each test gets a fresh volume (six folder stores, no read cache, so reads go down the
// erasure-coded path) mounted on a fresh folder.
class FuseMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No skipping: these tests are the proof that the mount works, and CI has FUSE.
    ASSERT_EQ(access("/dev/fuse", F_OK), 0) << "/dev/fuse is absent: FUSE tests need it (and root)";
    char pattern[] = "/tmp/quid-fuse-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr) << Errno();
    root_ = pattern;
    tmpfs_ = mount("tmpfs", root_.c_str(), "tmpfs", 0, kTmpfsOptions) == 0;
    ASSERT_EQ(chmod(root_.c_str(), 0755), 0) << Errno();  // mkdtemp made it 0700
    home_ = root_ + "/home";
    mnt_ = root_ + "/mnt";
    ASSERT_EQ(mkdir(home_.c_str(), 0755), 0) << Errno();
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0) << Errno();

    VolumeInitOptions init;
    init.home = home_;
    init.passphrase = kPassphrase;
    init.kdf = KdfStrength::kFastForTests;
    for (int i = 0; i < kStoreFolders; ++i) {
      std::string store = root_ + "/store" + std::to_string(i);
      ASSERT_EQ(mkdir(store.c_str(), 0755), 0) << Errno();
      init.store_folders.push_back(store);
    }
    Status created = Volume::Init(init);
    ASSERT_TRUE(created.ok()) << created.ToString();
    StartServing();
  }

  void TearDown() override {
    StopServing();
    if (root_.empty()) return;
    if (tmpfs_) umount2(root_.c_str(), MNT_DETACH);
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  void StartServing() {
    VolumeOpenOptions open_options;
    open_options.home = home_;
    open_options.passphrase = kPassphrase;
    open_options.cache_bytes = 0;
    Result<std::unique_ptr<Volume>> opened = Volume::Open(open_options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    volume_ = std::move(opened).value();

    MountOptions options;
    options.mountpoint = mnt_;
    auto mounted = std::make_shared<std::promise<bool>>();
    std::future<bool> mounted_future = mounted->get_future();
    serve_thread_ = std::thread([this, options, mounted] {
      bool signalled = false;
      serve_status_ = ServeFuse(volume_.get(), options, [&] {
        signalled = true;
        mounted->set_value(true);
      });
      if (!signalled) mounted->set_value(false);
    });
    ASSERT_EQ(mounted_future.wait_for(kMountTimeout), std::future_status::ready)
        << "ServeFuse did not mount in time";
    ASSERT_TRUE(mounted_future.get()) << "ServeFuse failed: " << serve_status_.ToString();
  }

  void StopServing() {
    if (serve_thread_.joinable()) {
      RequestUnmount();
      serve_thread_.join();
      EXPECT_TRUE(serve_status_.ok()) << serve_status_.ToString();
    }
    if (volume_ != nullptr) {
      Status closed = volume_->Close();
      EXPECT_TRUE(closed.ok()) << closed.ToString();
      volume_.reset();
    }
  }

  std::string Path(const std::string& relative) const { return mnt_ + "/" + relative; }

  std::string root_, home_, mnt_;
  bool tmpfs_ = false;
  std::unique_ptr<Volume> volume_;
  std::thread serve_thread_;
  Status serve_status_;
};

TEST_F(FuseMountTest, ReadsBackEveryByteAtBoundarySizes) {
  const size_t sizes[] = {0, 1, 4095, 4096, 4097, 4 * kMiB - 1, 4 * kMiB, 4 * kMiB + 1};
  uint32_t seed = 1;
  for (size_t size : sizes) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string path = Path("file" + std::to_string(size));
    const std::string data = RandomData(size, seed++);
    WriteFile(path, data);
    EXPECT_EQ(Stat(path).st_size, static_cast<off_t>(size));
    EXPECT_TRUE(ReadFile(path) == data);
  }
}

TEST_F(FuseMountTest, AppendsWithOAppend) {
  const std::string path = Path("log");
  WriteFile(path, "first ");
  WriteFile(path, "second", O_APPEND);
  WriteFile(path, " third", O_APPEND);
  EXPECT_EQ(ReadFile(path), "first second third");
}

TEST_F(FuseMountTest, SparseFileReadsHolesAsZerosAndStoresNoHoles) {
  const std::string path = Path("sparse");
  const off_t far = 100 * static_cast<off_t>(kMiB);
  int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(pwrite(fd, "end", 3, far), 3) << Errno();
  ASSERT_EQ(fsync(fd), 0) << Errno();
  EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);

  std::string hole(kMiB, 'x');
  ASSERT_EQ(pread(fd, hole.data(), hole.size(), 50 * static_cast<off_t>(kMiB)),
            static_cast<ssize_t>(kMiB));
  EXPECT_EQ(hole, std::string(kMiB, '\0'));
  char tail[8] = {};
  ASSERT_EQ(pread(fd, tail, sizeof(tail), far - 2), 5) << Errno();
  EXPECT_EQ(std::string(tail, 5), std::string("\0\0end", 5));
  close(fd);

  struct stat st = Stat(path);
  EXPECT_EQ(st.st_size, far + 3);
  // At most one stored chunk's worth, nowhere near the 100 MiB the holes span.
  EXPECT_LE(st.st_blocks * 512, static_cast<blkcnt_t>(8 * kMiB));
}

TEST_F(FuseMountTest, TruncatesDownAndUp) {
  const std::string path = Path("truncated");
  const std::string data = RandomData(10000, 7);
  WriteFile(path, data);
  ASSERT_EQ(truncate(path.c_str(), 100), 0) << Errno();
  EXPECT_EQ(Stat(path).st_size, 100);
  EXPECT_TRUE(ReadFile(path) == data.substr(0, 100));

  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kMiB)), 0) << Errno();
  close(fd);
  EXPECT_EQ(Stat(path).st_size, static_cast<off_t>(kMiB));
  EXPECT_TRUE(ReadFile(path) == data.substr(0, 100) + std::string(kMiB - 100, '\0'));

  WriteFile(path, "short");  // O_TRUNC on open
  EXPECT_EQ(ReadFile(path), "short");
}

TEST_F(FuseMountTest, RenameReplacesAnExistingFile) {
  WriteFile(Path("a"), "from a");
  WriteFile(Path("b"), "from b");
  ASSERT_EQ(rename(Path("a").c_str(), Path("b").c_str()), 0) << Errno();
  EXPECT_EQ(ReadFile(Path("b")), "from a");
  EXPECT_EQ(ErrorOf(access(Path("a").c_str(), F_OK)), ENOENT);
}

TEST_F(FuseMountTest, RenameNoReplaceRefusesAnExistingTarget) {
  WriteFile(Path("a"), "from a");
  WriteFile(Path("b"), "from b");
  EXPECT_EQ(ErrorOf(RenameAt2(Path("a"), Path("b"), RENAME_NOREPLACE)), EEXIST);
  EXPECT_EQ(ReadFile(Path("b")), "from b");
  ASSERT_EQ(RenameAt2(Path("a"), Path("c"), RENAME_NOREPLACE), 0) << Errno();
  EXPECT_EQ(ReadFile(Path("c")), "from a");
}

TEST_F(FuseMountTest, RenameExchangeSwapsTwoEntries) {
  WriteFile(Path("file"), "a file");
  ASSERT_EQ(mkdir(Path("dir").c_str(), 0755), 0) << Errno();
  ASSERT_EQ(RenameAt2(Path("file"), Path("dir"), RENAME_EXCHANGE), 0) << Errno();
  EXPECT_TRUE(S_ISDIR(Stat(Path("file")).st_mode));
  EXPECT_TRUE(S_ISREG(Stat(Path("dir")).st_mode));
  EXPECT_EQ(ReadFile(Path("dir")), "a file");
}

TEST_F(FuseMountTest, HardLinksShareContentAndCountLinks) {
  WriteFile(Path("one"), "shared");
  ASSERT_EQ(link(Path("one").c_str(), Path("two").c_str()), 0) << Errno();
  EXPECT_EQ(Stat(Path("one")).st_nlink, 2u);
  EXPECT_EQ(Stat(Path("two")).st_nlink, 2u);
  EXPECT_EQ(Stat(Path("one")).st_ino, Stat(Path("two")).st_ino);

  WriteFile(Path("two"), "changed through two");
  EXPECT_EQ(ReadFile(Path("one")), "changed through two");

  ASSERT_EQ(unlink(Path("one").c_str()), 0) << Errno();
  EXPECT_EQ(Stat(Path("two")).st_nlink, 1u);
  EXPECT_EQ(ReadFile(Path("two")), "changed through two");
}

TEST_F(FuseMountTest, SymlinkReadsBackItsTarget) {
  WriteFile(Path("target"), "pointed at");
  ASSERT_EQ(symlink("target", Path("link").c_str()), 0) << Errno();
  char buffer[256] = {};
  ssize_t n = readlink(Path("link").c_str(), buffer, sizeof(buffer));
  ASSERT_EQ(n, 6) << Errno();
  EXPECT_EQ(std::string(buffer, 6), "target");
  EXPECT_TRUE(S_ISLNK(Stat(Path("link")).st_mode));
  EXPECT_EQ(ReadFile(Path("link")), "pointed at");
}

TEST_F(FuseMountTest, RmdirRefusesANonEmptyDirectory) {
  ASSERT_EQ(mkdir(Path("d").c_str(), 0750), 0) << Errno();
  EXPECT_EQ(Stat(Path("d")).st_mode & 07777, 0750u);  // not narrowed by the usual umask 022
  WriteFile(Path("d/f"), "x");
  EXPECT_EQ(ErrorOf(rmdir(Path("d").c_str())), ENOTEMPTY);
  ASSERT_EQ(unlink(Path("d/f").c_str()), 0) << Errno();
  EXPECT_EQ(rmdir(Path("d").c_str()), 0) << Errno();
  EXPECT_EQ(ErrorOf(access(Path("d").c_str(), F_OK)), ENOENT);
}

TEST_F(FuseMountTest, ChmodChownAndTimesApply) {
  const std::string path = Path("attrs");
  WriteFile(path, "x");
  ASSERT_EQ(chmod(path.c_str(), 0604), 0) << Errno();
  EXPECT_EQ(Stat(path).st_mode & 07777, 0604u);

  // Only root may give a file away; others exercise the same call with their own ids.
  const uid_t uid = geteuid() == 0 ? 1234 : geteuid();
  const gid_t gid = geteuid() == 0 ? 5678 : getegid();
  ASSERT_EQ(chown(path.c_str(), uid, gid), 0) << Errno();
  EXPECT_EQ(Stat(path).st_uid, uid);
  EXPECT_EQ(Stat(path).st_gid, gid);

  const int64_t old_mtime = Ns(Stat(path).st_mtim);
  timespec times[2] = {{1'000'000'000, 123'456'789}, {0, UTIME_OMIT}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << Errno();
  EXPECT_EQ(Ns(Stat(path).st_atim), 1'000'000'000'123'456'789);
  EXPECT_EQ(Ns(Stat(path).st_mtim), old_mtime);

  const int64_t before = NowNs();
  timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), now, 0), 0) << Errno();
  const int64_t after = NowNs();
  EXPECT_EQ(Ns(Stat(path).st_atim), 1'000'000'000'123'456'789);
  const int64_t mtime = Ns(Stat(path).st_mtim);
  EXPECT_GE(mtime, before - 1'000'000'000);
  EXPECT_LE(mtime, after + 1'000'000'000);
}

TEST_F(FuseMountTest, XattrsSetGetListAndRemove) {
  const std::string path = Path("xattrs");
  WriteFile(path, "x");
  ASSERT_EQ(setxattr(path.c_str(), "user.color", "blue", 4, 0), 0) << Errno();
  ASSERT_EQ(setxattr(path.c_str(), "user.size", "large", 5, XATTR_CREATE), 0) << Errno();

  EXPECT_EQ(getxattr(path.c_str(), "user.color", nullptr, 0), 4);  // size probe
  char small[2];
  EXPECT_EQ(ErrorOf(getxattr(path.c_str(), "user.color", small, sizeof(small))), ERANGE);
  char value[16] = {};
  ASSERT_EQ(getxattr(path.c_str(), "user.color", value, sizeof(value)), 4) << Errno();
  EXPECT_EQ(std::string(value, 4), "blue");

  ssize_t list_size = listxattr(path.c_str(), nullptr, 0);
  ASSERT_GT(list_size, 0) << Errno();
  std::string list(static_cast<size_t>(list_size), '\0');
  ASSERT_EQ(listxattr(path.c_str(), list.data(), list.size()), list_size) << Errno();
  std::set<std::string> names;
  for (size_t at = 0; at < list.size(); at += strlen(list.c_str() + at) + 1) {
    names.insert(list.c_str() + at);
  }
  EXPECT_EQ(names, (std::set<std::string>{"user.color", "user.size"}));

  EXPECT_EQ(ErrorOf(setxattr(path.c_str(), "user.color", "red", 3, XATTR_CREATE)), EEXIST);
  EXPECT_EQ(ErrorOf(setxattr(path.c_str(), "user.missing", "v", 1, XATTR_REPLACE)), ENODATA);
  ASSERT_EQ(setxattr(path.c_str(), "user.color", "red", 3, XATTR_REPLACE), 0) << Errno();
  EXPECT_EQ(getxattr(path.c_str(), "user.color", value, sizeof(value)), 3);

  ASSERT_EQ(removexattr(path.c_str(), "user.color"), 0) << Errno();
  EXPECT_EQ(ErrorOf(getxattr(path.c_str(), "user.color", value, sizeof(value))), ENODATA);
}

TEST_F(FuseMountTest, MknodMakesAFifo) {
  ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0640), 0) << Errno();
  struct stat st = Stat(Path("fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(FuseMountTest, ListsTenThousandEntriesCompletely) {
  constexpr int kEntries = 10000;
  ASSERT_EQ(mkdir(Path("many").c_str(), 0755), 0) << Errno();
  for (int i = 0; i < kEntries; ++i) {
    const std::string path = Path("many/entry-" + std::to_string(i));
    ASSERT_EQ(mknod(path.c_str(), S_IFREG | 0644, 0), 0) << path << ": " << Errno();
  }
  DIR* dir = opendir(Path("many").c_str());
  ASSERT_NE(dir, nullptr) << Errno();
  std::set<std::string> seen;
  int listed = 0;
  bool dot = false, dotdot = false;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == ".") {
      dot = true;
      continue;
    }
    if (name == "..") {
      dotdot = true;
      continue;
    }
    ++listed;
    EXPECT_TRUE(seen.insert(name).second) << "listed twice: " << name;
  }
  closedir(dir);
  EXPECT_TRUE(dot);
  EXPECT_TRUE(dotdot);
  EXPECT_EQ(listed, kEntries);
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_TRUE(seen.count("entry-" + std::to_string(i))) << "missing entry-" << i;
  }
  EXPECT_EQ(Stat(Path("many/entry-9999")).st_size, 0);
}

TEST_F(FuseMountTest, UnlinkedOpenFileStaysReadableUntilClosed) {
  const std::string path = Path("doomed");
  WriteFile(path, "still here");
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(unlink(path.c_str()), 0) << Errno();
  EXPECT_EQ(ErrorOf(access(path.c_str(), F_OK)), ENOENT);

  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0) << Errno();
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  char buffer[32] = {};
  ASSERT_EQ(pread(fd, buffer, sizeof(buffer), 0), 10) << Errno();
  EXPECT_EQ(std::string(buffer, 10), "still here");
  ASSERT_EQ(pwrite(fd, "!", 1, 10), 1) << Errno();
  ASSERT_EQ(fsync(fd), 0) << Errno();
  ASSERT_EQ(pread(fd, buffer, sizeof(buffer), 0), 11) << Errno();
  EXPECT_EQ(close(fd), 0) << Errno();
}

TEST_F(FuseMountTest, SharedMmapWritesReachTheFile) {
  const std::string path = Path("mapped");
  const size_t size = 256 * 1024;
  const std::string data = RandomData(size, 42);
  int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0) << Errno();
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0) << Errno();
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED) << Errno();
  memcpy(map, data.data(), size);
  EXPECT_EQ(msync(map, size, MS_SYNC), 0) << Errno();
  EXPECT_EQ(memcmp(map, data.data(), size), 0);
  EXPECT_EQ(munmap(map, size), 0) << Errno();
  EXPECT_EQ(close(fd), 0) << Errno();
  EXPECT_TRUE(ReadFile(path) == data);

  fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << Errno();
  map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED) << Errno();
  EXPECT_EQ(memcmp(map, data.data(), size), 0);
  munmap(map, size);
  close(fd);
}

TEST_F(FuseMountTest, StatfsReportsCapacity) {
  struct statvfs st {};
  ASSERT_EQ(statvfs(mnt_.c_str(), &st), 0) << Errno();
  EXPECT_GT(st.f_bsize, 0u);
  EXPECT_GT(st.f_blocks, 0u);
  EXPECT_LE(st.f_bfree, st.f_blocks);
  EXPECT_EQ(st.f_namemax, kMaxNameBytes);
}

TEST_F(FuseMountTest, TheMountReadsAheadAWholeChunk) {
  // Run as root (the suite mounts), so the mount could raise its device's read-ahead past
  // the kernel's 128 KiB (fs/read_ahead.h).
  struct stat st {};
  ASSERT_EQ(stat(mnt_.c_str(), &st), 0) << Errno();
  const std::string path = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                           std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
  FILE* f = fopen(path.c_str(), "r");
  ASSERT_NE(f, nullptr) << path << ": " << Errno();
  unsigned kib = 0;
  EXPECT_EQ(fscanf(f, "%u", &kib), 1);
  fclose(f);
  EXPECT_EQ(kib, 4096u);
}

TEST_F(FuseMountTest, DataSurvivesUnmountAndRemount) {
  const std::string big = RandomData(4 * kMiB + 1, 99);
  ASSERT_EQ(mkdir(Path("kept").c_str(), 0700), 0) << Errno();
  WriteFile(Path("kept/big"), big);
  WriteFile(Path("kept/small"), "small file");
  ASSERT_EQ(symlink("big", Path("kept/link").c_str()), 0) << Errno();
  ASSERT_EQ(setxattr(Path("kept/small").c_str(), "user.k", "v", 1, 0), 0) << Errno();

  StopServing();
  struct statvfs outside {};
  ASSERT_EQ(statvfs(mnt_.c_str(), &outside), 0) << Errno();
  EXPECT_EQ(ErrorOf(access(Path("kept").c_str(), F_OK)), ENOENT)
      << "still mounted after RequestUnmount";
  StartServing();

  EXPECT_TRUE(ReadFile(Path("kept/big")) == big);
  EXPECT_EQ(ReadFile(Path("kept/small")), "small file");
  EXPECT_EQ(Stat(Path("kept")).st_mode & 07777, 0700u);
  char target[16] = {};
  EXPECT_EQ(readlink(Path("kept/link").c_str(), target, sizeof(target)), 3);
  char value[4] = {};
  EXPECT_EQ(getxattr(Path("kept/small").c_str(), "user.k", value, sizeof(value)), 1);
}

}  // namespace
}  // namespace quid
