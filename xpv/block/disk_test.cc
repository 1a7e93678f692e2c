// Disk over temporary files (and a loop device when the test may create one).
#include "xpv/block/disk.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace xpv::block {
namespace {

constexpr uint64_t kDiskBytes = 4 << 20;

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/xpv-disk-test-XXXXXX";
    XPV_CHECK(::mkdtemp(t) != nullptr);
    path_ = t;
  }
  ~TempDir() { (void)std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string MakeFile(const TempDir& dir, uint64_t size, const char* name = "disk.img") {
  const std::string path = dir.path() + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
  XPV_CHECK(fd.valid());
  XPV_CHECK(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
  return path;
}

std::unique_ptr<Disk> OpenOrDie(const std::string& path, DiskOptions o = {}) {
  auto d = Disk::Open(path, o);
  XPV_CHECK(d.has_value());
  return std::move(*d);
}

// Waits for `n` completions, keyed by tag.
std::map<uint64_t, int64_t> Collect(Disk& disk, size_t n) {
  std::map<uint64_t, int64_t> got;
  std::vector<DiskCompletion> out;
  while (got.size() < n) {
    if (!disk.Wait(5000).has_value()) break;
    out.clear();
    disk.Reap(out);
    for (const auto& c : out) {
      EXPECT_FALSE(got.contains(c.tag)) << "tag completed twice: " << c.tag;
      got[c.tag] = c.result;
    }
  }
  EXPECT_EQ(got.size(), n);
  EXPECT_EQ(disk.in_flight(), 0u);
  return got;
}

int64_t RunOne(Disk& disk) {
  auto s = disk.Submit();
  EXPECT_TRUE(s.has_value());
  auto got = Collect(disk, 1);
  return got.empty() ? INT64_MIN : got.begin()->second;
}

std::vector<char> Pattern(size_t n, unsigned seed) {
  std::vector<char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 9)) & 0xFF);
  return v;
}

iovec Iov(std::vector<char>& v, size_t at = 0, size_t len = SIZE_MAX) {
  return iovec{v.data() + at, len == SIZE_MAX ? v.size() - at : len};
}

TEST(DiskOpen, MissingFileIsEnoent) {
  TempDir dir;
  auto d = Disk::Open(dir.path() + "/nope", {});
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ENOENT);
}

TEST(DiskOpen, FileWithoutPermissionIsEacces) {
  if (::geteuid() == 0) GTEST_SKIP() << "root bypasses file permissions";
  TempDir dir;
  const std::string path = MakeFile(dir, 4096);
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  auto d = Disk::Open(path, {});
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, EACCES);
}

TEST(DiskOpen, CharacterDeviceIsNotADisk) {
  auto d = Disk::Open("/dev/null", {});
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ENOTBLK);
}

TEST(DiskOpen, DirectoryIsNotADisk) {
  TempDir dir;
  DiskOptions o;
  o.access = Access::kReadOnly;
  auto d = Disk::Open(dir.path(), o);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ENOTBLK);
}

TEST(DiskOpen, QueueDepthZeroIsRefused) {
  TempDir dir;
  DiskOptions o;
  o.queue_depth = 0;
  EXPECT_FALSE(Disk::Open(MakeFile(dir, 4096), o).has_value());
}

TEST(DiskOpen, FileGeometry) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  EXPECT_EQ(disk->kind(), DiskKind::kFile);
  EXPECT_EQ(disk->size_bytes(), kDiskBytes);
  EXPECT_EQ(disk->sectors(), kDiskBytes / 512);
  EXPECT_EQ(disk->logical_sector_size(), 512u);
  EXPECT_EQ(disk->physical_sector_size(), 4096u);
  EXPECT_EQ(disk->queue_depth(), 128u);
  EXPECT_GE(disk->event_fd(), 0);
}

TEST(DiskIo, WriteThenReadBackPattern) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  auto data = Pattern(64 * 1024, 1);
  iovec w = Iov(data);
  ASSERT_TRUE(disk->Write(1, 8192, {&w, 1}).has_value());
  EXPECT_EQ(RunOne(*disk), 64 * 1024);
  std::vector<char> back(data.size());
  iovec r = Iov(back);
  ASSERT_TRUE(disk->Read(2, 8192, {&r, 1}).has_value());
  EXPECT_EQ(RunOne(*disk), 64 * 1024);
  EXPECT_EQ(back, data);
}

TEST(DiskIo, VectoredWriteAndReadScatterDifferently) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  auto data = Pattern(3 * 4096 + 1024, 2);
  // Written as 512 + 4096 + 8704 bytes, read back as 1024 + 0 + 8192 + 4096.
  iovec w[] = {Iov(data, 0, 512), Iov(data, 512, 4096), Iov(data, 4608)};
  ASSERT_TRUE(disk->Write(1, 4096, w).has_value());
  EXPECT_EQ(RunOne(*disk), static_cast<int64_t>(data.size()));
  std::vector<char> a(1024), b(0), c(8192), d(4096);
  iovec r[] = {Iov(a), iovec{nullptr, 0}, Iov(c), Iov(d)};
  ASSERT_TRUE(disk->Read(2, 4096, r).has_value());
  EXPECT_EQ(RunOne(*disk), static_cast<int64_t>(data.size()));
  std::vector<char> back;
  back.insert(back.end(), a.begin(), a.end());
  back.insert(back.end(), c.begin(), c.end());
  back.insert(back.end(), d.begin(), d.end());
  EXPECT_EQ(back, data);
}

// More iovecs than preadv takes (IOV_MAX, 1024): the engine continues where the kernel stopped.
TEST(DiskIo, MoreIovecsThanIovMax) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  auto data = Pattern(1500 * 512, 3);
  std::vector<iovec> w;
  for (size_t i = 0; i < 1500; ++i) w.push_back(Iov(data, i * 512, 512));
  ASSERT_TRUE(disk->Write(1, 0, w).has_value());
  EXPECT_EQ(RunOne(*disk), static_cast<int64_t>(data.size()));
  std::vector<char> back(data.size());
  std::vector<iovec> r;
  for (size_t i = 0; i < 1500; ++i) r.push_back(Iov(back, i * 512, 512));
  ASSERT_TRUE(disk->Read(2, 0, r).has_value());
  EXPECT_EQ(RunOne(*disk), static_cast<int64_t>(data.size()));
  EXPECT_EQ(back, data);
}

TEST(DiskIo, FlushCompletes) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  auto data = Pattern(4096, 4);
  iovec w = Iov(data);
  ASSERT_TRUE(disk->Write(1, 0, {&w, 1}).has_value());
  ASSERT_TRUE(disk->Flush(2).has_value());
  ASSERT_TRUE(disk->Submit().has_value());
  auto got = Collect(*disk, 2);
  EXPECT_EQ(got[1], 4096);
  EXPECT_EQ(got[2], 0);
}

TEST(DiskIo, DiscardReadsBackZeros) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  auto data = Pattern(64 * 1024, 5);
  iovec w = Iov(data);
  ASSERT_TRUE(disk->Write(1, 0, {&w, 1}).has_value());
  EXPECT_EQ(RunOne(*disk), 64 * 1024);
  ASSERT_TRUE(disk->Discard(2, 8192, 16384).has_value());
  EXPECT_EQ(RunOne(*disk), 0);
  std::vector<char> back(data.size());
  iovec r = Iov(back);
  ASSERT_TRUE(disk->Read(3, 0, {&r, 1}).has_value());
  EXPECT_EQ(RunOne(*disk), 64 * 1024);
  for (size_t i = 0; i < back.size(); ++i) {
    const bool hole = i >= 8192 && i < 8192 + 16384;
    ASSERT_EQ(back[i], hole ? 0 : data[i]) << "byte " << i;
  }
}

TEST(DiskIo, ReadOnlyDiskRefusesWritesAndDiscards) {
  TempDir dir;
  DiskOptions o;
  o.access = Access::kReadOnly;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes), o);
  std::vector<char> buf(4096);
  iovec v = Iov(buf);
  auto w = disk->Write(1, 0, {&v, 1});
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, EROFS);
  auto d = disk->Discard(2, 0, 4096);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, EROFS);
  EXPECT_EQ(disk->in_flight(), 0u);
  ASSERT_TRUE(disk->Read(3, 0, {&v, 1}).has_value());
  EXPECT_EQ(RunOne(*disk), 4096);
}

TEST(DiskIo, RangeOutsideDiskAndEmptyTransfersAreRefused) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  std::vector<char> buf(4096);
  iovec v = Iov(buf);
  EXPECT_EQ(disk->Read(1, kDiskBytes - 512, {&v, 1}).error().code, ERANGE);
  EXPECT_EQ(disk->Write(1, ~uint64_t{0} - 10, {&v, 1}).error().code, ERANGE);
  EXPECT_EQ(disk->Discard(1, kDiskBytes, 1).error().code, ERANGE);
  iovec empty{buf.data(), 0};
  EXPECT_EQ(disk->Read(1, 0, {&empty, 1}).error().code, EINVAL);
  EXPECT_EQ(disk->Discard(1, 0, 0).error().code, EINVAL);
  EXPECT_EQ(disk->in_flight(), 0u);
}

TEST(DiskIo, QueueFullIsRetryable) {
  TempDir dir;
  DiskOptions o;
  o.queue_depth = 4;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes), o);
  std::vector<char> buf(4 * 4096);
  std::vector<iovec> v;
  for (int i = 0; i < 4; ++i) v.push_back(Iov(buf, i * 4096, 4096));
  for (uint64_t t = 0; t < 4; ++t) ASSERT_TRUE(disk->Read(t, t * 4096, {&v[t], 1}).has_value());
  auto full = disk->Read(4, 0, {&v[0], 1});
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, EAGAIN);
  EXPECT_EQ(disk->Flush(4).error().code, EAGAIN);
  ASSERT_TRUE(disk->Submit().has_value());
  Collect(*disk, 4);
  ASSERT_TRUE(disk->Read(4, 0, {&v[0], 1}).has_value());  // room again
  EXPECT_EQ(RunOne(*disk), 4096);
}

TEST(DiskIo, ManyRequestsInFlightWithOneSubmit) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  constexpr size_t kCount = 128;
  std::vector<std::vector<char>> blocks;
  std::vector<iovec> v(kCount);
  for (size_t i = 0; i < kCount; ++i) {
    blocks.push_back(Pattern(8192, static_cast<unsigned>(i)));
    v[i] = Iov(blocks[i]);
    ASSERT_TRUE(disk->Write(i, i * 8192, {&v[i], 1}).has_value());
  }
  EXPECT_EQ(disk->in_flight(), kCount);
  auto submitted = disk->Submit();
  ASSERT_TRUE(submitted.has_value());
  EXPECT_EQ(*submitted, kCount);  // one io_uring_submit for the whole batch
  for (const auto& [tag, result] : Collect(*disk, kCount)) EXPECT_EQ(result, 8192) << tag;

  std::vector<std::vector<char>> back(kCount, std::vector<char>(8192));
  for (size_t i = 0; i < kCount; ++i) {
    v[i] = Iov(back[i]);
    ASSERT_TRUE(disk->Read(1000 + i, i * 8192, {&v[i], 1}).has_value());
  }
  ASSERT_TRUE(disk->Submit().has_value());
  Collect(*disk, kCount);
  for (size_t i = 0; i < kCount; ++i) EXPECT_EQ(back[i], blocks[i]) << i;
}

TEST(DiskIo, DestructorWaitsForOperationsInFlight) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  std::vector<char> buf(kDiskBytes);
  iovec v = Iov(buf);
  ASSERT_TRUE(disk->Read(1, 0, {&v, 1}).has_value());
  ASSERT_TRUE(disk->Flush(2).has_value());
  ASSERT_TRUE(disk->Submit().has_value());
  disk.reset();  // must not return while the kernel still writes into buf
}

// --- errors from the backing store: each a completion with -errno, never partial data ---

// Someone shrinks the image under a running backend: the read that runs into the new end makes
// progress, then none; it fails instead of returning a short buffer.
TEST(DiskErrors, ReadPastShrunkFileFailsWithEnodata) {
  TempDir dir;
  const std::string path = MakeFile(dir, kDiskBytes);
  auto disk = OpenOrDie(path);
  ASSERT_EQ(::truncate(path.c_str(), 4096 * 3), 0);
  std::vector<char> buf(8192);
  iovec v = Iov(buf);
  ASSERT_TRUE(disk->Read(1, 8192, {&v, 1}).has_value());  // 4096 bytes left before the end
  EXPECT_EQ(RunOne(*disk), -ENODATA);
}

// A real write error from the kernel: the process's file-size limit (RLIMIT_FSIZE) makes writes
// beyond it fail with EFBIG, without root, device mapper or a fault-injection seam.
TEST(DiskErrors, WriteBeyondFileSizeLimitFailsWithEfbig) {
  TempDir dir;
  auto disk = OpenOrDie(MakeFile(dir, kDiskBytes));
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit lim = old;
  lim.rlim_cur = 1 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);

  auto data = Pattern(8192, 6);
  iovec v = Iov(data);
  ASSERT_TRUE(disk->Write(1, 2 << 20, {&v, 1}).has_value());
  const int64_t beyond = RunOne(*disk);
  ASSERT_TRUE(disk->Write(2, 0, {&v, 1}).has_value());
  const int64_t within = RunOne(*disk);

  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &old_action, nullptr), 0);
  EXPECT_EQ(beyond, -EFBIG);
  EXPECT_EQ(within, 8192);
  EXPECT_EQ(BlkifStatus(static_cast<int>(beyond)), BLKIF_RSP_ERROR);
}

// With O_DIRECT the kernel refuses a buffer that is not aligned: a real read error.
TEST(DiskErrors, MisalignedDirectReadFails) {
  TempDir dir;
  DiskOptions o;
  o.caching = Caching::kDirect;
  auto d = Disk::Open(MakeFile(dir, kDiskBytes), o);
  if (!d.has_value() && d.error().code == EINVAL) GTEST_SKIP() << "no O_DIRECT on this fs";
  ASSERT_TRUE(d.has_value());
  Disk& disk = **d;
  void* mem = nullptr;
  ASSERT_EQ(::posix_memalign(&mem, 4096, 3 * 4096), 0);
  std::unique_ptr<void, decltype(&std::free)> owner(mem, &std::free);
  iovec aligned{mem, 4096};
  ASSERT_TRUE(disk.Read(1, 0, {&aligned, 1}).has_value());
  EXPECT_EQ(RunOne(disk), 4096);
  // Misaligned in memory and in the file: every file system with real direct I/O refuses it.
  iovec misaligned{static_cast<char*>(mem) + 1, 4095};
  ASSERT_TRUE(disk.Read(2, 1, {&misaligned, 1}).has_value());
  const int64_t result = RunOne(disk);
  if (result == 4095) GTEST_SKIP() << "this file system accepts unaligned direct I/O (DAX?)";
  EXPECT_EQ(result, -EINVAL);
}

// --- a block device (a loop device over a file), where the test may create one ---

TEST(DiskBlockDevice, LoopDeviceGeometryAndRoundTrip) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for losetup";
  TempDir dir;
  const std::string file = MakeFile(dir, kDiskBytes);
  FILE* p = ::popen(("losetup -f --show " + file + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) GTEST_SKIP() << "no losetup";
  char line[256] = {};
  const bool got = std::fgets(line, sizeof line, p) != nullptr;
  ::pclose(p);
  if (!got) GTEST_SKIP() << "cannot create a loop device here";
  std::string dev(line);
  while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) dev.pop_back();
  struct Detach {
    std::string dev;
    ~Detach() { (void)std::system(("losetup -d " + dev).c_str()); }
  } detach{dev};

  auto d = Disk::Open(dev, {});
  ASSERT_TRUE(d.has_value()) << d.error().message;
  Disk& disk = **d;
  EXPECT_EQ(disk.kind(), DiskKind::kBlockDevice);
  EXPECT_EQ(disk.size_bytes(), kDiskBytes);
  EXPECT_EQ(disk.logical_sector_size(), 512u);
  auto data = Pattern(16384, 7);
  iovec w = Iov(data);
  ASSERT_TRUE(disk.Write(1, 4096, {&w, 1}).has_value());
  EXPECT_EQ(RunOne(disk), 16384);
  ASSERT_TRUE(disk.Flush(2).has_value());
  EXPECT_EQ(RunOne(disk), 0);
  std::vector<char> back(data.size());
  iovec r = Iov(back);
  ASSERT_TRUE(disk.Read(3, 4096, {&r, 1}).has_value());
  EXPECT_EQ(RunOne(disk), 16384);
  EXPECT_EQ(back, data);
  // A real error from the block layer: O_DIRECT on a device refuses I/O not on its sectors.
  {
    DiskOptions o;
    o.caching = Caching::kDirect;
    auto direct = Disk::Open(dev, o);
    ASSERT_TRUE(direct.has_value()) << direct.error().message;
    iovec odd{back.data(), 1000};
    ASSERT_TRUE((*direct)->Read(9, 1, {&odd, 1}).has_value());
    EXPECT_EQ(RunOne(**direct), -EINVAL);
  }
  // Discard: zeros back, or EOPNOTSUPP where the device cannot (the backend then answers it).
  ASSERT_TRUE(disk.Discard(4, 4096, 8192).has_value());
  const int64_t discarded = RunOne(disk);
  if (discarded == -EOPNOTSUPP) return;
  EXPECT_EQ(discarded, 0);
  ASSERT_TRUE(disk.Read(5, 4096, {&r, 1}).has_value());
  EXPECT_EQ(RunOne(disk), 16384);
  for (size_t i = 0; i < 8192; ++i) ASSERT_EQ(back[i], 0) << i;
  EXPECT_EQ(std::vector<char>(back.begin() + 8192, back.end()),
            std::vector<char>(data.begin() + 8192, data.end()));
}

}  // namespace
}  // namespace xpv::block
