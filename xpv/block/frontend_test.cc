// BlkFront against xpv-blkback on the simulated hypervisor, end to end: pattern-verified I/O
// through each negotiated feature combination, checked through the frontend and in the image
// file's own bytes; flush, discard, a read-only disk, reconnection.
#include "xpv/block/frontend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "xpv/base/unique_fd.h"
#include "xpv/block/blkif_back_ring.h"
#include "xpv/block/testing/vbd_fixture.h"
#include "xpv/ring/ring_layout.h"
#include "xpv/ring/ring_memory.h"

namespace xpv::block {
namespace {

using abi::blkif::Protocol;
using platform::sim::MappingMode;
using testing::VbdFixture;
using testing::VbdFixtureOptions;
using testing::VbdSpec;

constexpr uint64_t kDiskBytes = 4ull << 20;

// Byte i of the disk, written by pass `seed`.
std::byte PatternByte(uint64_t i, uint32_t seed) {
  const uint64_t x = (i / 8 + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t{seed} << 32 | seed);
  return static_cast<std::byte>(x >> (8 * (i % 8)));
}

std::vector<std::byte> Pattern(uint64_t offset, size_t len, uint32_t seed) {
  std::vector<std::byte> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = PatternByte(offset + i, seed);
  return v;
}

std::vector<std::byte> ReadImage(const std::string& path, uint64_t offset, size_t len) {
  std::vector<std::byte> v(len);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::pread(fd.get(), v.data(), len, static_cast<off_t>(offset)),
            static_cast<ssize_t>(len));
  return v;
}

// Index of the first differing byte, or -1.
int64_t FirstDiff(std::span<const std::byte> a, std::span<const std::byte> b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return -1;
}

enum class Persist : uint8_t { kOff, kOn };
enum class Indirect : uint8_t { kOff, kOn };

// {backend mode, persistent, indirect, ring page order, queues, protocol}
using Combo = std::tuple<MappingMode, Persist, Indirect, uint32_t, uint32_t, Protocol>;

std::string ComboName(const ::testing::TestParamInfo<Combo>& info) {
  const auto& [mode, persist, indirect, order, queues, protocol] = info.param;
  return fmt::format("{}_{}_{}_{}page_{}q_{}", mode == MappingMode::kMap ? "map" : "copy",
                     persist == Persist::kOn ? "persistent" : "grantperio",
                     indirect == Indirect::kOn ? "indirect" : "direct", 1u << order, queues,
                     protocol == Protocol::kX86_64 ? "x86_64" : "x86_32");
}

class FeatureMatrixTest : public ::testing::TestWithParam<Combo> {};

TEST_P(FeatureMatrixTest, PatternVerifiedIo) {
  const auto& [mode, persist, indirect, order, queues, protocol] = GetParam();
  VbdFixtureOptions fo;
  fo.backend_mode = mode;
  auto fx = VbdFixture::Start(fo);
  ASSERT_TRUE(fx) << fx.error().message;
  auto id = (*fx)->AddVbd({.size_bytes = kDiskBytes});
  ASSERT_TRUE(id) << id.error().message;
  FrontOptions opts;
  opts.queues = queues;
  opts.ring_page_order = order;
  opts.persistent = persist == Persist::kOn;
  opts.max_indirect_segments = indirect == Indirect::kOn ? 64 : 0;
  opts.protocol = protocol;
  auto front = (*fx)->ConnectFront(*id, opts);
  ASSERT_TRUE(front) << front.error().message << " " << std::strerror(front.error().code);
  BlkFront& f = **front;

  const Negotiated& n = f.negotiated();
  EXPECT_EQ(n.queues, queues);
  EXPECT_EQ(n.ring_pages, 1u << order);
  // Persistent grants need mappings: copy mode's backend does not offer them.
  EXPECT_EQ(n.persistent, persist == Persist::kOn && mode == MappingMode::kMap);
  EXPECT_EQ(n.indirect_segments, indirect == Indirect::kOn ? 64u : 0u);
  EXPECT_EQ(n.sectors, kDiskBytes / 512);
  EXPECT_EQ(n.protocol, protocol);
  EXPECT_TRUE(n.flush);
  EXPECT_TRUE(n.discard);
  EXPECT_FALSE(n.read_only);

  // 1. The whole disk, synchronously (chunks spread over the queues), read back.
  const std::vector<std::byte> whole = Pattern(0, kDiskBytes, 1);
  ASSERT_TRUE(f.Write(0, whole));
  std::vector<std::byte> back(kDiskBytes);
  ASSERT_TRUE(f.Read(0, back));
  ASSERT_EQ(FirstDiff(back, whole), -1);
  ASSERT_TRUE(f.Flush());
  ASSERT_EQ(FirstDiff(ReadImage((*fx)->ImagePath(id->devid), 0, kDiskBytes), whole), -1);

  // 2. Asynchronous at QD32: writes of odd sizes at random sector offsets (some longer than 11
  // pages), then reads of the same ranges.
  std::mt19937 rng(static_cast<uint32_t>(order * 131 + queues));
  struct Io {
    uint64_t offset;
    std::vector<std::byte> data;
  };
  std::vector<Io> ios;
  for (int i = 0; i < 96; ++i) {
    const size_t sectors = 1 + rng() % (i % 8 == 0 ? 160 : 24);
    const uint64_t offset = uint64_t{rng() % (kDiskBytes / 512 - sectors)} * 512;
    ios.push_back({offset, Pattern(offset, sectors * 512, 2)});
  }
  // Overlapping ranges would race: keep only the first of any overlapping pair.
  std::vector<Io> disjoint;
  for (Io& io : ios) {
    bool overlaps = false;
    for (const Io& o : disjoint)
      overlaps |= io.offset < o.offset + o.data.size() && o.offset < io.offset + io.data.size();
    if (!overlaps) disjoint.push_back(std::move(io));
  }
  std::vector<IoCompletion> done;
  size_t next = 0, completed = 0;
  while (completed < disjoint.size()) {
    while (next < disjoint.size() && f.in_flight() < 32) {
      auto st = f.SubmitWrite(next, disjoint[next].offset, disjoint[next].data);
      if (!st) {
        ASSERT_EQ(st.error().code, EAGAIN) << st.error().message;
        break;
      }
      ++next;
    }
    done.clear();
    auto w = f.Wait(done, 5000);
    ASSERT_TRUE(w) << w.error().message;
    for (const IoCompletion& c : done) {
      EXPECT_EQ(c.status, BLKIF_RSP_OKAY) << "write " << c.tag;
      EXPECT_EQ(c.op, IoOp::kWrite);
    }
    completed += done.size();
  }
  std::vector<std::vector<std::byte>> reads(disjoint.size());
  for (size_t i = 0; i < disjoint.size(); ++i) reads[i].resize(disjoint[i].data.size());
  next = completed = 0;
  while (completed < disjoint.size()) {
    while (next < disjoint.size() && f.in_flight() < 32) {
      auto st = f.SubmitRead(next, disjoint[next].offset, reads[next]);
      if (!st) {
        ASSERT_EQ(st.error().code, EAGAIN) << st.error().message;
        break;
      }
      ++next;
    }
    done.clear();
    auto w = f.Wait(done, 5000);
    ASSERT_TRUE(w) << w.error().message;
    for (const IoCompletion& c : done) EXPECT_EQ(c.status, BLKIF_RSP_OKAY) << "read " << c.tag;
    completed += done.size();
  }
  const std::string image = (*fx)->ImagePath(id->devid);
  for (size_t i = 0; i < disjoint.size(); ++i) {
    SCOPED_TRACE(fmt::format("io {} at {} len {}", i, disjoint[i].offset, disjoint[i].data.size()));
    EXPECT_EQ(FirstDiff(reads[i], disjoint[i].data), -1);
    EXPECT_EQ(
        FirstDiff(ReadImage(image, disjoint[i].offset, disjoint[i].data.size()), disjoint[i].data),
        -1);
  }
  EXPECT_TRUE(f.Close());
}

// The full product: 64 combinations. (Copy mode's backend never offers persistent grants, so
// there persistent "on" checks the fallback to grants per request.)
std::vector<Combo> Combos() {
  std::vector<Combo> out;
  for (MappingMode mode : {MappingMode::kMap, MappingMode::kCopy})
    for (Persist p : {Persist::kOff, Persist::kOn})
      for (Indirect ind : {Indirect::kOff, Indirect::kOn})
        for (uint32_t order : {0u, 2u})
          for (uint32_t queues : {1u, 4u})
            for (Protocol proto : {Protocol::kX86_64, Protocol::kX86_32}) {
              out.emplace_back(mode, p, ind, order, queues, proto);
            }
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllFeatures, FeatureMatrixTest, ::testing::ValuesIn(Combos()), ComboName);

// ---------------------------------------------------------------------------------------------

class BlkFrontTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fx = VbdFixture::Start();
    ASSERT_TRUE(fx) << fx.error().message;
    fx_ = std::move(*fx);
  }
  std::unique_ptr<VbdFixture> fx_;
};

TEST(BlkFrontGrantCopyTest, BackendToldToCopyMapsNothingWhereItMay) {
  // A map-mode domain (xpv-hv would let it map) whose backend is told --grant-copy.
  VbdFixtureOptions fo;
  fo.backend.grant_copy = true;
  auto fx = VbdFixture::Start(fo);
  ASSERT_TRUE(fx) << fx.error().message;
  auto id = (*fx)->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  auto f = (*fx)->ConnectFront(*id);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_FALSE((*f)->negotiated().persistent);  // nothing mapped, nothing persists
  ASSERT_TRUE((*f)->Write(0, Pattern(0, 256 << 10, 9)));
  std::vector<std::byte> back(256 << 10);
  ASSERT_TRUE((*f)->Read(0, back));
  EXPECT_EQ(FirstDiff(back, Pattern(0, 256 << 10, 9)), -1);
}

TEST_F(BlkFrontTest, FlushSucceeds) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  auto f = fx_->ConnectFront(*id);
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE((*f)->Write(4096, Pattern(4096, 8192, 3)));
  EXPECT_TRUE((*f)->Flush());
  EXPECT_EQ(FirstDiff(ReadImage(fx_->ImagePath(id->devid), 4096, 8192), Pattern(4096, 8192, 3)),
            -1);
}

TEST_F(BlkFrontTest, DiscardReadsBackZeros) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  auto f = fx_->ConnectFront(*id);
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE((*f)->negotiated().discard);
  ASSERT_TRUE((*f)->Write(0, Pattern(0, 1 << 20, 4)));
  ASSERT_TRUE((*f)->Discard(64 << 10, 128 << 10));
  std::vector<std::byte> back(1 << 20);
  ASSERT_TRUE((*f)->Read(0, back));
  std::vector<std::byte> want = Pattern(0, 1 << 20, 4);
  std::fill(want.begin() + (64 << 10), want.begin() + (192 << 10), std::byte{0});
  EXPECT_EQ(FirstDiff(back, want), -1);
}

TEST_F(BlkFrontTest, DiscardDisabledIsNotOffered) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20, .discard = false});
  ASSERT_TRUE(id);
  auto f = fx_->ConnectFront(*id);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_FALSE((*f)->negotiated().discard);
  auto st = (*f)->Discard(0, 4096);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, EOPNOTSUPP);
}

TEST_F(BlkFrontTest, ReadOnlyDiskRefusesWrites) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20, .read_only = true});
  ASSERT_TRUE(id);
  auto f = fx_->ConnectFront(*id);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_TRUE((*f)->negotiated().read_only);
  // The backend, not the frontend, refuses: BLKIF_RSP_ERROR.
  std::vector<IoCompletion> done;
  const std::vector<std::byte> data = Pattern(0, 4096, 5);
  ASSERT_TRUE((*f)->SubmitWrite(7, 0, data));
  ASSERT_TRUE((*f)->Wait(done, 5000));
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 7u);
  EXPECT_EQ(done[0].status, BLKIF_RSP_ERROR);
  auto st = (*f)->Write(0, data);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, EIO);
  // Reads still work, and the image is untouched.
  std::vector<std::byte> back(4096);
  EXPECT_TRUE((*f)->Read(0, back));
  EXPECT_EQ(FirstDiff(back, std::vector<std::byte>(4096)), -1);
  EXPECT_EQ(FirstDiff(ReadImage(fx_->ImagePath(id->devid), 0, 4096), std::vector<std::byte>(4096)),
            -1);
}

TEST_F(BlkFrontTest, ReadPastTheEndIsAnError) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  auto f = fx_->ConnectFront(*id);
  ASSERT_TRUE(f);
  std::vector<std::byte> buf(8192);
  auto st = (*f)->Read((1 << 20) - 4096, buf);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, EIO);
}

TEST_F(BlkFrontTest, ReconnectAfterClose) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  const std::string be = id->BackendPath();
  {
    auto f = fx_->ConnectFront(*id, {.queues = 4, .ring_page_order = 2});
    ASSERT_TRUE(f) << f.error().message;
    ASSERT_TRUE((*f)->Write(0, Pattern(0, 65536, 6)));
    ASSERT_TRUE((*f)->Close());
    // The backend follows the frontend's Closed on its own thread.
    EXPECT_TRUE(fx_->WaitForNode(be + "/state", "6", 5000)) << fx_->Node(be + "/state");
  }
  // Different choices the second time: one queue, one page, the other layout.
  auto f = fx_->ConnectFront(
      *id, {.queues = 1, .ring_page_order = 0, .persistent = false, .protocol = Protocol::kX86_32});
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ((*f)->negotiated().queues, 1u);
  EXPECT_EQ(fx_->Node(be + "/state"), "4");
  std::vector<std::byte> back(65536);
  ASSERT_TRUE((*f)->Read(0, back));
  EXPECT_EQ(FirstDiff(back, Pattern(0, 65536, 6)), -1);
  ASSERT_TRUE((*f)->Close());
}

TEST_F(BlkFrontTest, AsksForMoreThanOffered) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  // The backend offers 4 queues, order 4 and 256 segments (BackendOptions' defaults).
  auto f =
      fx_->ConnectFront(*id, {.queues = 16, .ring_page_order = 8, .max_indirect_segments = 4096});
  ASSERT_TRUE(f) << f.error().message;
  const Negotiated& n = (*f)->negotiated();
  EXPECT_EQ(n.queues, 4u);
  EXPECT_EQ(n.ring_pages, 16u);
  EXPECT_EQ(n.indirect_segments, 256u);
  EXPECT_EQ(fx_->Node(id->FrontendPath() + "/multi-queue-num-queues"), "4");
  EXPECT_EQ(fx_->Node(id->FrontendPath() + "/ring-page-order"), "4");
  EXPECT_EQ(fx_->Node(id->FrontendPath() + "/queue-3/ring-ref15").empty(), false);
  // A 1 MiB write is one indirect request.
  ASSERT_TRUE((*f)->Write(0, Pattern(0, 1 << 20, 7)));
  std::vector<std::byte> back(1 << 20);
  ASSERT_TRUE((*f)->Read(0, back));
  EXPECT_EQ(FirstDiff(back, Pattern(0, 1 << 20, 7)), -1);
}

TEST_F(BlkFrontTest, MisalignedRangesAreRefusedLocally) {
  auto id = fx_->AddVbd({.size_bytes = 1 << 20});
  ASSERT_TRUE(id);
  auto f = fx_->ConnectFront(*id);
  ASSERT_TRUE(f);
  std::vector<std::byte> buf(1000);
  EXPECT_EQ((*f)->Read(0, buf).error().code, EINVAL);
  std::vector<std::byte> ok(512);
  EXPECT_EQ((*f)->Read(100, ok).error().code, EINVAL);
  EXPECT_EQ((*f)->Read(0, std::span<std::byte>()).error().code, EINVAL);
}

// ---------------------------------------------------------------------------------------------
// A backend that lies: the test plays it by hand (a domain Blkback does not serve), so BlkFront's
// own checks are what stands between it and a crash.

enum class Lie : uint8_t { kUnknownId, kDuplicateId, kWrongOperation, kRspProdAhead };

class LyingBackendTest : public ::testing::TestWithParam<Lie> {};

TEST_P(LyingBackendTest, BreaksTheDeviceNotTheFrontend) {
  auto fx = VbdFixture::Start();
  ASSERT_TRUE(fx) << fx.error().message;
  VbdFixture& f = **fx;
  auto fake = f.host().NewDomain({.name = "fakeback", .mode = MappingMode::kMap});
  ASSERT_TRUE(fake);
  platform::Platform& be = **fake;
  const xenbus::DeviceId id{"vbd", be.self(), f.frontend_id(), 51712};
  ASSERT_TRUE(WriteVbdNodes(f.toolstack(), id, {.params = "/nonexistent"}));
  const std::string bp = id.BackendPath(), fp = id.FrontendPath();
  ASSERT_TRUE(f.toolstack().Write(bp + "/sectors", "2048"));
  ASSERT_TRUE(f.toolstack().Write(bp + "/state", "2"));

  auto connecting = std::async(std::launch::async, [&] {
    return f.ConnectFront(id,
                          {.persistent = false, .max_indirect_segments = 0, .timeout_ms = 5000});
  });
  ASSERT_TRUE(f.WaitForNode(fp + "/state", "3", 5000));
  const auto ref = xenbus::ParseUint(f.Node(fp + "/ring-ref"), UINT32_MAX);
  const auto port = xenbus::ParseUint(f.Node(fp + "/event-channel"), UINT32_MAX);
  ASSERT_TRUE(ref && port);
  platform::MapRequest req{f.frontend_id(), GrantRef(static_cast<uint32_t>(*ref))};
  auto mapping = be.mapper().Map(std::span(&req, 1));
  ASSERT_TRUE(mapping);
  uint8_t* page = (*mapping)->page(0);
  ASSERT_NE(page, nullptr);
  ring::DirectRingMemory memory(std::span(&page, 1));
  auto ring = BlkifBackRing::Create(memory, Protocol::kX86_64);
  ASSERT_TRUE(ring);
  auto local =
      be.events().BindInterdomain(f.frontend_id(), EvtchnPort(static_cast<uint32_t>(*port)));
  ASSERT_TRUE(local);
  ASSERT_TRUE(f.toolstack().Write(bp + "/state", "4"));
  auto front = connecting.get();
  ASSERT_TRUE(front) << front.error().message;
  BlkFront& fe = **front;

  std::vector<std::byte> a(4096), b2(4096);
  ASSERT_TRUE(fe.SubmitRead(1, 0, a));
  ASSERT_TRUE(fe.SubmitRead(2, 4096, b2));
  RequestSlot slots[4];
  size_t taken = 0;
  for (int i = 0; i < 500 && taken < 2; ++i) {
    auto n = (*ring)->Take(std::span(slots + taken, 4 - taken));
    ASSERT_TRUE(n);
    taken += *n;
    if (taken < 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(taken, 2u);
  uint64_t first_id;
  std::memcpy(&first_id, slots[0].data() + offsetof(abi::blkif::x86_64::Request, id), 8);
  switch (GetParam()) {
    case Lie::kUnknownId:
      (*ring)->Put(first_id + 1000, BLKIF_OP_READ, BLKIF_RSP_OKAY);
      break;
    case Lie::kDuplicateId:
      (*ring)->Put(first_id, BLKIF_OP_READ, BLKIF_RSP_OKAY);
      (*ring)->Put(first_id, BLKIF_OP_READ, BLKIF_RSP_OKAY);
      break;
    case Lie::kWrongOperation:
      (*ring)->Put(first_id, BLKIF_OP_WRITE, BLKIF_RSP_OKAY);
      break;
    case Lie::kRspProdAhead:
      break;
  }
  if (GetParam() == Lie::kRspProdAhead) {
    auto* header = reinterpret_cast<ring::SharedRingHeader*>(page);
    // SAFETY: the mapped ring page; the frontend reads rsp_prod atomically.
    std::atomic_ref<uint32_t>(header->rsp_prod).store(1000, std::memory_order_release);
  } else {
    ASSERT_TRUE((*ring)->Push());
  }
  ASSERT_TRUE(be.events().Notify(*local));

  std::vector<IoCompletion> done;
  auto w = fe.Wait(done, 5000);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, EPROTO);
  EXPECT_TRUE(fe.broken());
  EXPECT_EQ(fe.SubmitRead(3, 0, a).error().code, EPROTO);
  ASSERT_TRUE(f.toolstack().Write(bp + "/state", "6"));
  EXPECT_TRUE(fe.Close());
  mapping->reset();  // the backend lets go; the frontend's pages were leaked or freed, not reused
}

INSTANTIATE_TEST_SUITE_P(Lies, LyingBackendTest,
                         ::testing::Values(Lie::kUnknownId, Lie::kDuplicateId, Lie::kWrongOperation,
                                           Lie::kRspProdAhead),
                         [](const auto& info) {
                           switch (info.param) {
                             case Lie::kUnknownId:
                               return std::string("UnknownId");
                             case Lie::kDuplicateId:
                               return std::string("DuplicateId");
                             case Lie::kWrongOperation:
                               return std::string("WrongOperation");
                             case Lie::kRspProdAhead:
                               return std::string("RspProdAhead");
                           }
                           return std::string();
                         });

}  // namespace
}  // namespace xpv::block
