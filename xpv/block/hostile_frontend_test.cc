// A hostile frontend against xpv-blkback: a raw ring and raw grants, bypassing every check
// BlkFront makes. Each test is named after its attack and asserts that the backend answers it
// with BLKIF_RSP_ERROR / BLKIF_RSP_EOPNOTSUPP (and keeps serving the attacker's ring) or
// disconnects the attacker (backend state 5 and an `error` node), and that a second disk served
// by the same Blkback keeps working throughout. Every attack runs in map and in copy mode.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "xpv/block/blkif_front_ring.h"
#include "xpv/block/frontend.h"
#include "xpv/block/testing/vbd_fixture.h"
#include "xpv/ring/ring_layout.h"
#include "xpv/xenbus/frontend.h"

namespace xpv::block {
namespace {

namespace b = abi::blkif;
using platform::Access;
using platform::sim::MappingMode;
using testing::VbdFixture;
using xenbus::State;

constexpr uint64_t kDiskBytes = 1 << 20;
constexpr uint64_t kDiskSectors = kDiskBytes / 512;
constexpr int kTimeoutMs = 5000;

// The attacker: the handshake done by hand, then a ring and grants it fills as it likes.
class RawFront {
 public:
  static Result<std::unique_ptr<RawFront>> Connect(VbdFixture& fx, const xenbus::DeviceId& id) {
    XPV_ASSIGN_OR_RETURN(auto store, fx.NewStoreClient());
    XPV_ASSIGN_OR_RETURN(auto link, xenbus::FrontendLink::Open(*store, id));
    std::unique_ptr<RawFront> r(new RawFront(fx, std::move(store), std::move(link)));
    XPV_TRY(r->link_.WaitForBackend({State::kInitWait}, kTimeoutMs));
    platform::Platform& p = fx.frontend();
    XPV_ASSIGN_OR_RETURN(r->ring_gfn_, p.memory().AllocPages(1));
    uint8_t* page = p.memory().PageAddress(r->ring_gfn_);
    r->ring_page_ = page;
    XPV_ASSIGN_OR_RETURN(r->ring_,
                         BlkifFrontRing::Create(std::span(&page, 1), b::Protocol::kX86_64));
    XPV_ASSIGN_OR_RETURN(GrantRef ref,
                         p.grants().GrantAccess(fx.backend_id(), r->ring_gfn_, Access::kReadWrite));
    XPV_ASSIGN_OR_RETURN(r->port_, p.events().AllocUnbound(fx.backend_id()));
    XPV_ASSIGN_OR_RETURN(r->kick_, fx.frontend_ports().Register(r->port_));
    XPV_TRY(r->link_.WriteFrontend("ring-ref", std::to_string(ref.value)));
    XPV_TRY(r->link_.WriteFrontend("event-channel", std::to_string(r->port_.value)));
    XPV_TRY(r->link_.WriteFrontend("protocol", b::kProtocolX86_64));
    XPV_TRY(r->link_.SwitchState(State::kInitialised));
    XPV_TRY(r->link_.WaitForBackend({State::kConnected}, kTimeoutMs));
    XPV_TRY(r->link_.SwitchState(State::kConnected));
    return r;
  }
  ~RawFront() { fx_.frontend_ports().Unregister(port_); }

  // A fresh page of ours, granted to `to` (the backend unless said otherwise), filled with `fill`.
  struct GrantedPage {
    Gfn gfn;
    GrantRef ref;
    uint8_t* data;
  };
  GrantedPage Grant(Access access, std::optional<DomId> to = std::nullopt, uint8_t fill = 0) {
    platform::Platform& p = fx_.frontend();
    Gfn gfn = *p.memory().AllocPages(1);
    uint8_t* data = p.memory().PageAddress(gfn);
    std::memset(data, fill, kPageSize);
    GrantRef ref = *p.grants().GrantAccess(to.value_or(fx_.backend_id()), gfn, access);
    return {gfn, ref, data};
  }

  BlkifFrontRing& ring() { return *ring_; }
  uint8_t* ring_page() { return ring_page_; }
  void Notify() { (void)fx_.frontend().events().Notify(port_); }
  void Push() {
    auto n = ring_->Push();
    ASSERT_TRUE(n.has_value());
    Notify();  // always: an attacker does not care what the backend asked for
  }

  // The next response, or nullopt after `timeout_ms`.
  std::optional<BlkifResponse> Next(int timeout_ms = kTimeoutMs) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      BlkifResponse rsp[1];
      auto n = ring_->Take(rsp);
      if (!n.has_value()) return std::nullopt;
      if (*n == 1) return rsp[0];
      auto more = ring_->FinalCheck();
      if (!more.has_value()) return std::nullopt;
      if (*more) continue;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return std::nullopt;
      pollfd fds[2] = {{fx_.frontend_ports().fd(), POLLIN, 0}, {kick_, POLLIN, 0}};
      ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 100)));
      if (fds[0].revents != 0) fx_.frontend_ports().Dispatch();
      platform::PortDispatcher::Clear(kick_);
    }
  }

  // Sends one read of `sectors` sectors at `sector` into a fresh read-write page; the answer.
  std::optional<BlkifResponse> ValidRead(uint64_t id, uint64_t sector = 0) {
    GrantedPage pg = Grant(Access::kReadWrite);
    blkif_request_segment seg{pg.ref.value, 0, 7};
    ring_->PutSegments(BLKIF_OP_READ, id, sector, 0, 1, std::span(&seg, 1));
    Push();
    return Next();
  }

 private:
  RawFront(VbdFixture& fx, std::unique_ptr<xenstore::Client> store, xenbus::FrontendLink link)
      : fx_(fx), store_(std::move(store)), link_(std::move(link)) {}
  VbdFixture& fx_;
  std::unique_ptr<xenstore::Client> store_;
  xenbus::FrontendLink link_;
  Gfn ring_gfn_;
  uint8_t* ring_page_ = nullptr;
  std::unique_ptr<BlkifFrontRing> ring_;
  EvtchnPort port_;
  int kick_ = -1;
};

class HostileFrontendTest : public ::testing::TestWithParam<MappingMode> {
 protected:
  void SetUp() override {
    auto fx = VbdFixture::Start({.backend_mode = GetParam()});
    ASSERT_TRUE(fx) << fx.error().message;
    fx_ = std::move(*fx);
    auto victim = fx_->AddVbd({.devid = 51712, .size_bytes = kDiskBytes});
    auto good = fx_->AddVbd({.devid = 51728, .size_bytes = kDiskBytes});
    ASSERT_TRUE(victim && good);
    victim_ = *victim;
    good_id_ = *good;
    auto front = fx_->ConnectFront(good_id_, {.queues = 2});
    ASSERT_TRUE(front) << front.error().message;
    good_ = std::move(*front);
    auto raw = RawFront::Connect(*fx_, victim_);
    ASSERT_TRUE(raw) << raw.error().message;
    raw_ = std::move(*raw);
    ExpectGoodDiskWorks();
  }

  // The other disk of the same Blkback still serves verified I/O.
  void ExpectGoodDiskWorks() {
    std::vector<std::byte> data(64 << 10), back(64 << 10);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + round_);
    ++round_;
    ASSERT_TRUE(good_->Write(4096, data));
    ASSERT_TRUE(good_->Read(4096, back));
    EXPECT_EQ(std::memcmp(data.data(), back.data(), data.size()), 0);
  }

  // The attacker's ring still works: the attack was answered, not fatal.
  void ExpectVictimRingServes() {
    auto rsp = raw_->ValidRead(0xC0FFEE);
    ASSERT_TRUE(rsp.has_value()) << "no answer to a valid request";
    EXPECT_EQ(rsp->id, 0xC0FFEEu);
    EXPECT_EQ(rsp->status, BLKIF_RSP_OKAY);
  }

  // One request staged by `put`, pushed; its answer must carry `id` and `status`.
  template <typename Put>
  void ExpectAnswered(uint64_t id, int16_t status, Put put) {
    put(raw_->ring());
    raw_->Push();
    auto rsp = raw_->Next();
    ASSERT_TRUE(rsp.has_value()) << "the backend did not answer";
    EXPECT_EQ(rsp->id, id);
    EXPECT_EQ(rsp->status, status);
  }

  std::unique_ptr<VbdFixture> fx_;
  xenbus::DeviceId victim_, good_id_;
  std::unique_ptr<BlkFront> good_;
  std::unique_ptr<RawFront> raw_;
  int round_ = 0;
};

blkif_request_segment Seg(GrantRef ref, uint8_t first, uint8_t last) {
  return blkif_request_segment{ref.value, first, last};
}

TEST_P(HostileFrontendTest, BadSegmentCount) {
  auto pg = raw_->Grant(Access::kReadWrite);
  std::vector<blkif_request_segment> segs(11, Seg(pg.ref, 0, 7));
  // 12 claimed (11 slots exist), 255 claimed, and none for a read.
  for (uint8_t n : {uint8_t{12}, uint8_t{255}, uint8_t{0}}) {
    SCOPED_TRACE(n);
    ExpectAnswered(n, BLKIF_RSP_ERROR,
                   [&](BlkifFrontRing& r) { r.PutSegments(BLKIF_OP_READ, n, 0, 0, n, segs); });
  }
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, FirstSectorAfterLastSector) {
  auto pg = raw_->Grant(Access::kReadWrite);
  auto seg = Seg(pg.ref, 5, 2);
  ExpectAnswered(1, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
    r.PutSegments(BLKIF_OP_WRITE, 1, 0, 0, 1, std::span(&seg, 1));
  });
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, LastSectorBeyondPage) {
  auto pg = raw_->Grant(Access::kReadWrite);
  for (uint8_t last : {uint8_t{8}, uint8_t{255}}) {
    auto seg = Seg(pg.ref, 0, last);
    ExpectAnswered(last, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
      r.PutSegments(BLKIF_OP_READ, last, 0, 0, 1, std::span(&seg, 1));
    });
  }
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, RangePastEndOfDisk) {
  auto pg = raw_->Grant(Access::kReadWrite);
  auto seg = Seg(pg.ref, 0, 7);
  // Straddling the end, wholly past it, and a start that wraps 64 bits when the length is added.
  for (uint64_t sector : {kDiskSectors - 4, kDiskSectors, UINT64_MAX - 3}) {
    SCOPED_TRACE(sector);
    ExpectAnswered(sector, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
      r.PutSegments(BLKIF_OP_READ, sector, sector, 0, 1, std::span(&seg, 1));
    });
  }
  ExpectAnswered(9, BLKIF_RSP_ERROR,
                 [&](BlkifFrontRing& r) { r.PutDiscard(9, kDiskSectors - 8, 16, 0, 0); });
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, BadGrantRef) {
  for (uint32_t ref : {0u, 99999u, UINT32_MAX}) {
    SCOPED_TRACE(ref);
    auto seg = Seg(GrantRef(ref), 0, 7);
    for (uint8_t op : {uint8_t{BLKIF_OP_READ}, uint8_t{BLKIF_OP_WRITE}}) {
      ExpectAnswered(ref, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
        r.PutSegments(op, ref, 0, 0, 1, std::span(&seg, 1));
      });
    }
  }
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, GrantToAnotherDomain) {
  // A real grant, but to domain 0, not the backend.
  auto pg = raw_->Grant(Access::kReadWrite, kDom0);
  auto seg = Seg(pg.ref, 0, 7);
  for (uint8_t op : {uint8_t{BLKIF_OP_READ}, uint8_t{BLKIF_OP_WRITE}}) {
    ExpectAnswered(op, BLKIF_RSP_ERROR,
                   [&](BlkifFrontRing& r) { r.PutSegments(op, op, 0, 0, 1, std::span(&seg, 1)); });
  }
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, ReadIntoReadOnlyGrant) {
  auto pg = raw_->Grant(Access::kReadOnly, std::nullopt, 0xAB);
  // Put data on the disk first, so a read that went through would change the page.
  auto src = raw_->Grant(Access::kReadOnly, std::nullopt, 0x11);
  auto wseg = Seg(src.ref, 0, 7);
  ExpectAnswered(1, BLKIF_RSP_OKAY, [&](BlkifFrontRing& r) {
    r.PutSegments(BLKIF_OP_WRITE, 1, 0, 0, 1, std::span(&wseg, 1));
  });
  auto seg = Seg(pg.ref, 0, 7);
  ExpectAnswered(2, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
    r.PutSegments(BLKIF_OP_READ, 2, 0, 0, 1, std::span(&seg, 1));
  });
  for (size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(pg.data[i], 0xAB) << i;
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, GarbageInIndirectPage) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(round);
    auto ind = raw_->Grant(Access::kReadOnly);
    for (size_t i = 0; i < kPageSize; ++i) ind.data[i] = static_cast<uint8_t>(rng());
    uint32_t gref = ind.ref.value;
    ExpectAnswered(round, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
      r.PutIndirect(round % 2 ? BLKIF_OP_READ : BLKIF_OP_WRITE, round, 0, 0, 200,
                    std::span(&gref, 1));
    });
  }
  // An indirect page that is not granted at all, and an indirect_op that is not read or write.
  uint32_t bad = 77777;
  ExpectAnswered(100, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
    r.PutIndirect(BLKIF_OP_READ, 100, 0, 0, 16, std::span(&bad, 1));
  });
  auto ind = raw_->Grant(Access::kReadOnly);
  uint32_t gref = ind.ref.value;
  ExpectAnswered(101, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) {
    r.PutIndirect(BLKIF_OP_DISCARD, 101, 0, 0, 16, std::span(&gref, 1));
  });
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, IndirectCountAboveAdvertised) {
  // The backend advertises 256 (BackendOptions' default).
  ASSERT_EQ(fx_->Node(victim_.BackendPath() + "/feature-max-indirect-segments"), "256");
  std::vector<uint32_t> grefs;
  for (int i = 0; i < 8; ++i) grefs.push_back(raw_->Grant(Access::kReadOnly).ref.value);
  for (uint16_t n : {uint16_t{257}, uint16_t{4096}, uint16_t{65535}, uint16_t{0}}) {
    SCOPED_TRACE(n);
    ExpectAnswered(n, BLKIF_RSP_ERROR,
                   [&](BlkifFrontRing& r) { r.PutIndirect(BLKIF_OP_READ, n, 0, 0, n, grefs); });
  }
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, LyingRingIndex) {
  // req_prod far ahead of anything the ring can hold.
  auto* header = reinterpret_cast<ring::SharedRingHeader*>(raw_->ring_page());
  // SAFETY: our own ring page; the backend reads req_prod atomically.
  std::atomic_ref<uint32_t>(header->req_prod).store(100000, std::memory_order_release);
  raw_->Notify();
  const std::string be = victim_.BackendPath();
  EXPECT_TRUE(fx_->WaitForNode(be + "/state", "5", kTimeoutMs)) << fx_->Node(be + "/state");
  EXPECT_NE(fx_->Node(be + "/error"), "<absent>");
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, EventStorm) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20000; ++i) raw_->Notify();
  // The storm neither stalls the other disk nor the attacker's own ring.
  ExpectGoodDiskWorks();
  ExpectVictimRingServes();
  EXPECT_EQ(fx_->Node(victim_.BackendPath() + "/state"), "4");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_P(HostileFrontendTest, UnknownOperation) {
  for (uint8_t op : {uint8_t{42}, uint8_t{255}, uint8_t{BLKIF_OP_RESERVED_1}}) {
    SCOPED_TRACE(op);
    std::byte slot[sizeof(b::x86_64::Request)] = {};
    slot[0] = std::byte{op};
    const uint64_t id = 1000 + op;
    std::memcpy(slot + offsetof(b::x86_64::Request, id), &id, sizeof id);
    ExpectAnswered(id, BLKIF_RSP_ERROR, [&](BlkifFrontRing& r) { r.PutRaw(slot); });
  }
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

TEST_P(HostileFrontendTest, Barrier) {
  auto pg = raw_->Grant(Access::kReadOnly);
  auto seg = Seg(pg.ref, 0, 7);
  ExpectAnswered(5, BLKIF_RSP_EOPNOTSUPP, [&](BlkifFrontRing& r) {
    r.PutSegments(BLKIF_OP_WRITE_BARRIER, 5, 0, 0, 1, std::span(&seg, 1));
  });
  ExpectVictimRingServes();
  ExpectGoodDiskWorks();
}

INSTANTIATE_TEST_SUITE_P(Modes, HostileFrontendTest,
                         ::testing::Values(MappingMode::kMap, MappingMode::kCopy),
                         [](const auto& info) {
                           return std::string(info.param == MappingMode::kMap ? "Map" : "Copy");
                         });

}  // namespace
}  // namespace xpv::block
