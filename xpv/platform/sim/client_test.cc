// The Platform of xpv-hv end to end, in one process: the daemon on a thread (SimHost), each
// domain a Platform over its own connection.
#include "xpv/platform/sim/client.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <cstring>

#include "xpv/abi/event_channel.h"
#include "xpv/platform/sim/sim_host.h"

namespace xpv::platform::sim {
namespace {

bool Readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = SimHost::Start();
    ASSERT_TRUE(host.has_value()) << std::strerror(host.error().code);
    host_ = std::move(*host);
  }
  std::unique_ptr<SimPlatform> Domain(const std::string& name,
                                      MappingMode mode = MappingMode::kCopy,
                                      SimDomain* created = nullptr) {
    SimDomainSpec spec;
    spec.name = name;
    spec.memory_mib = 4;
    spec.mode = mode;
    auto p = host_->NewDomain(spec, created);
    EXPECT_TRUE(p.has_value()) << name;
    return p.has_value() ? std::move(*p) : nullptr;
  }
  // front allocates a page, fills it with `fill` and grants it to back.
  std::pair<Gfn, GrantRef> GrantPage(SimPlatform& front, SimPlatform& back, uint8_t fill,
                                     Access access = Access::kReadWrite) {
    auto gfn = front.memory().AllocPages(1);
    EXPECT_TRUE(gfn.has_value());
    std::memset(front.memory().PageAddress(*gfn), fill, kPageSize);
    auto ref = front.grants().GrantAccess(back.self(), *gfn, access);
    EXPECT_TRUE(ref.has_value());
    return {*gfn, *ref};
  }
  std::unique_ptr<SimHost> host_;
};

TEST_F(ClientTest, ConnectReportsWhoWeAre) {
  SimDomain created;
  auto d = Domain("guest", MappingMode::kCopy, &created);
  EXPECT_EQ(d->self(), created.domid);
  EXPECT_EQ(d->mode(), MappingMode::kCopy);
  EXPECT_EQ(d->privilege(), Privilege::kNone);
  EXPECT_EQ(d->control(), nullptr);
  EXPECT_EQ(d->store_gfn(), created.store_gfn);
  EXPECT_EQ(d->store_port(), created.store_port);
  EXPECT_EQ(d->memory().page_count(), 4u * 256);
  EXPECT_EQ(host_->dom0().self(), kDom0);
  EXPECT_NE(host_->dom0().control(), nullptr);
}

TEST_F(ClientTest, MapModeSharesThePageBothWays) {
  auto front = Domain("front");
  auto back = Domain("back", MappingMode::kMap);
  auto [gfn, ref] = GrantPage(*front, *back, 0x3C);
  MapRequest req{front->self(), ref, Access::kReadWrite};
  auto m = back->mapper().Map({&req, 1});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((*m)->status(0), GrantStatus::kOkay);
  uint8_t* page = (*m)->page(0);
  EXPECT_EQ(page[0], 0x3C);
  EXPECT_EQ(page[4095], 0x3C);
  page[7] = 0x99;
  EXPECT_EQ(front->memory().PageAddress(gfn)[7], 0x99) << "the same frame, not a copy";
  // grant_table.h: access cannot end while the peer has it mapped.
  auto busy = front->grants().EndAccess(ref);
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().code, EBUSY);
  m->reset();  // unmap
  EXPECT_TRUE(front->grants().EndAccess(ref).has_value());
  EXPECT_EQ(front->grants().EndAccess(ref).error().code, EINVAL) << "already ended";
}

TEST_F(ClientTest, MapBatchReportsEachEntry) {
  auto front = Domain("front");
  auto back = Domain("back", MappingMode::kMap);
  std::vector<MapRequest> reqs;
  for (int i = 0; i < 300; ++i) {  // more than one wire batch
    auto [gfn, ref] = GrantPage(*front, *back, static_cast<uint8_t>(i));
    reqs.push_back({front->self(), ref, Access::kReadOnly});
  }
  reqs[5].ref = GrantRef(999999);
  reqs[6].domid = DomId(4321);
  auto m = back->mapper().Map(reqs);
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((*m)->size(), reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (i == 5) {
      EXPECT_EQ((*m)->status(i), GrantStatus::kBadGntref);
      EXPECT_EQ((*m)->page(i), nullptr);
    } else if (i == 6) {
      EXPECT_EQ((*m)->status(i), GrantStatus::kBadDomain);
    } else {
      ASSERT_EQ((*m)->status(i), GrantStatus::kOkay) << i;
      EXPECT_EQ((*m)->page(i)[100], static_cast<uint8_t>(i));
    }
  }
}

TEST_F(ClientTest, WriteThroughReadOnlyMappingFaults) {
  auto front = Domain("front");
  auto back = Domain("back", MappingMode::kMap);
  auto [gfn, ref] = GrantPage(*front, *back, 1, Access::kReadOnly);
  MapRequest rw{front->self(), ref, Access::kReadWrite};
  auto denied = back->mapper().Map({&rw, 1});
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ((*denied)->status(0), GrantStatus::kPermissionDenied);
  MapRequest ro{front->self(), ref, Access::kReadOnly};
  auto m = back->mapper().Map({&ro, 1});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((*m)->status(0), GrantStatus::kOkay);
  volatile uint8_t* page = (*m)->page(0);
  EXPECT_EQ(page[0], 1);
  // The default ("fast") death test forks this process; the child only writes, so the daemon
  // thread it does not have is no concern.
  EXPECT_DEATH({ page[0] = 2; }, "");
}

TEST_F(ClientTest, CopyModeRefusesMapAndCopies) {
  auto front = Domain("front");
  auto back = Domain("back", MappingMode::kCopy);
  auto [gfn, ref] = GrantPage(*front, *back, 0x42);
  MapRequest req{front->self(), ref, Access::kReadWrite};
  auto m = back->mapper().Map({&req, 1});
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code, EOPNOTSUPP);

  auto local = back->memory().AllocPages(1);
  ASSERT_TRUE(local.has_value());
  CopyOp ops[2];
  ops[0].source = {CopyPtr::Kind::kGrant, front->self(), ref, Gfn(), 16};
  ops[0].dest = {CopyPtr::Kind::kLocal, DomId(), GrantRef(), *local, 32};
  ops[0].len = 100;
  ops[1].source = {CopyPtr::Kind::kGrant, front->self(), ref, Gfn(), 4000};
  ops[1].dest = {CopyPtr::Kind::kLocal, DomId(), GrantRef(), *local, 0};
  ops[1].len = 200;  // crosses the page
  ASSERT_TRUE(back->mapper().Copy(ops).has_value());
  EXPECT_EQ(ops[0].status, GrantStatus::kOkay);
  EXPECT_EQ(ops[1].status, GrantStatus::kBadCopyArg);
  EXPECT_EQ(back->memory().PageAddress(*local)[32], 0x42);
  EXPECT_EQ(back->memory().PageAddress(*local)[131], 0x42);
  EXPECT_EQ(back->memory().PageAddress(*local)[132], 0);

  // And the other way: into the frontend's page.
  std::memset(back->memory().PageAddress(*local), 0x77, kPageSize);
  CopyOp out;
  out.source = {CopyPtr::Kind::kLocal, DomId(), GrantRef(), *local, 0};
  out.dest = {CopyPtr::Kind::kGrant, front->self(), ref, Gfn(), 0};
  out.len = 4096;
  ASSERT_TRUE(back->mapper().Copy({&out, 1}).has_value());
  EXPECT_EQ(out.status, GrantStatus::kOkay);
  EXPECT_EQ(front->memory().PageAddress(gfn)[4095], 0x77);
}

TEST_F(ClientTest, CopyWorksInMapModeToo) {
  auto front = Domain("front");
  auto back = Domain("back", MappingMode::kMap);
  auto [gfn, ref] = GrantPage(*front, *back, 0x5A);
  auto local = back->memory().AllocPages(1);
  CopyOp op;
  op.source = {CopyPtr::Kind::kGrant, front->self(), ref, Gfn(), 0};
  op.dest = {CopyPtr::Kind::kLocal, DomId(), GrantRef(), *local, 0};
  op.len = 4096;
  ASSERT_TRUE(back->mapper().Copy({&op, 1}).has_value());
  EXPECT_EQ(op.status, GrantStatus::kOkay);
  EXPECT_EQ(back->memory().PageAddress(*local)[4095], 0x5A);
}

TEST_F(ClientTest, EventChannelStateMachine) {
  auto a = Domain("a");
  auto b = Domain("b");
  auto pa = a->events().AllocUnbound(b->self());
  ASSERT_TRUE(pa.has_value());
  EXPECT_FALSE(Readable(a->events().fd()));
  auto pb = b->events().BindInterdomain(a->self(), *pa);
  ASSERT_TRUE(pb.has_value());
  // The new local port starts pending.
  ASSERT_TRUE(Readable(b->events().fd()));
  EXPECT_EQ(b->events().NextPending(), *pb);
  EXPECT_EQ(b->events().NextPending(), std::nullopt);

  // a -> b: masked until unmasked; a notification while masked is delivered by Unmask.
  ASSERT_TRUE(a->events().Notify(*pa).has_value());
  EXPECT_FALSE(Readable(b->events().fd(), 50)) << "b's port is masked";
  ASSERT_TRUE(b->events().Unmask(*pb).has_value());
  ASSERT_TRUE(Readable(b->events().fd(), 1000));
  EXPECT_EQ(b->events().NextPending(), *pb);
  ASSERT_TRUE(b->events().Unmask(*pb).has_value());
  EXPECT_FALSE(Readable(b->events().fd(), 20));

  // b -> a, on the fast path (b got a's send end at bind).
  ASSERT_TRUE(b->events().Notify(*pb).has_value());
  ASSERT_TRUE(Readable(a->events().fd(), 1000));
  EXPECT_EQ(a->events().NextPending(), *pa);
  ASSERT_TRUE(a->events().Unmask(*pa).has_value());

  auto st = a->PortStatus(*pa);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->status, EVTCHNSTAT_interdomain);
  EXPECT_EQ(st->remote, b->self());
  EXPECT_EQ(st->remote_port, *pb);

  // Close: a's end back to unbound; b's port gone; a's notifications are dropped.
  ASSERT_TRUE(b->events().Close(*pb).has_value());
  EXPECT_EQ(a->PortStatus(*pa)->status, EVTCHNSTAT_unbound);
  EXPECT_TRUE(a->events().Notify(*pa).has_value());
  EXPECT_EQ(b->events().Notify(*pb).error().code, EINVAL) << "event to a closed port";
  EXPECT_EQ(b->events().Close(*pb).error().code, EINVAL);
  EXPECT_EQ(b->events().Unmask(*pb).error().code, EINVAL);
}

TEST_F(ClientTest, SenderFollowsARebind) {
  // a caches b's send end; b closes and binds again (a new port): a's next notification must
  // reach the new port, which the generation page tells a without a round trip per send.
  auto a = Domain("a");
  auto b = Domain("b");
  auto pa = a->events().AllocUnbound(b->self());
  auto pb1 = b->events().BindInterdomain(a->self(), *pa);
  ASSERT_TRUE(pb1.has_value());
  (void)b->events().NextPending();
  ASSERT_TRUE(a->events().Notify(*pa).has_value());  // slow path: learns b's send end
  ASSERT_TRUE(b->events().Close(*pb1).has_value());
  auto pb2 = b->events().BindInterdomain(a->self(), *pa);
  ASSERT_TRUE(pb2.has_value());
  EXPECT_EQ(b->events().NextPending(), *pb2);  // pending from the bind
  ASSERT_TRUE(b->events().Unmask(*pb2).has_value());
  ASSERT_TRUE(a->events().Notify(*pa).has_value());
  ASSERT_TRUE(Readable(b->events().fd(), 1000));
  EXPECT_EQ(b->events().NextPending(), *pb2);
}

TEST_F(ClientTest, BindToAPortNotOfferedToYou) {
  auto a = Domain("a");
  auto b = Domain("b");
  auto c = Domain("c");
  auto pa = a->events().AllocUnbound(c->self());
  auto r = b->events().BindInterdomain(a->self(), *pa);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_FALSE(Readable(b->events().fd()));
}

TEST_F(ClientTest, StorePageAndPortReachTheStoreDomain) {
  SimDomain created;
  auto guest = Domain("guest", MappingMode::kCopy, &created);
  // The guest writes into its store page; dom0 (the store's domain here) maps it, as
  // xenstored maps a ring page named by XS_INTRODUCE.
  uint8_t* store = guest->memory().PageAddress(*guest->store_gfn());
  ASSERT_NE(store, nullptr);
  std::memcpy(store, "ring", 4);
  auto page = host_->control().MapForeign(guest->self(), created.store_gfn);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(std::memcmp((*page)->data(), "ring", 4), 0);
  // dom0 binds the store port; the guest's end is already a port of its own.
  auto store_dom0 = host_->Dom0();
  ASSERT_TRUE(store_dom0.has_value());
  auto port = (*store_dom0)->events().BindInterdomain(guest->self(), created.store_port);
  ASSERT_TRUE(port.has_value());
  ASSERT_TRUE(guest->events().Notify(*guest->store_port()).has_value());
  ASSERT_TRUE(Readable((*store_dom0)->events().fd(), 1000));
  // The guest's allocator never hands out the store page.
  for (;;) {
    auto g = guest->memory().AllocPages(1);
    if (!g) break;
    ASSERT_NE(*g, *guest->store_gfn());
  }
}

TEST_F(ClientTest, ListAndDestroy) {
  SimDomain created;
  auto guest = Domain("guest", MappingMode::kCopy, &created);
  auto list = host_->control().List();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "Domain-0");
  EXPECT_EQ((*list)[1].name, "guest");
  EXPECT_EQ((*list)[1].memory_kib, 4096u);
  EXPECT_EQ((*list)[1].vcpus, 1u) << "the default";
  EXPECT_FALSE((*list)[1].dying);
  ASSERT_TRUE(host_->control().Destroy(created.domid).has_value());
  EXPECT_EQ(host_->control().List()->size(), 1u);
  EXPECT_EQ(host_->control().Destroy(created.domid).error().code, ESRCH);
  EXPECT_EQ(host_->control().Destroy(kDom0).error().code, EPERM);
  // The destroyed domain's connection is closed: its calls fail, they do not hang.
  EXPECT_FALSE(guest->events().AllocUnbound(kDom0).has_value());
}

TEST_F(ClientTest, VcpusTravelFromCreateToList) {
  SimDomainSpec spec;
  spec.name = "smp";
  spec.memory_mib = 4;
  spec.vcpus = 4;
  SimDomain created;
  auto smp = host_->NewDomain(spec, &created);
  ASSERT_TRUE(smp.has_value());
  auto list = host_->control().List();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].vcpus, 1u) << "Domain-0";
  EXPECT_EQ((*list)[1].vcpus, 4u);
  spec.name = "too-many";
  spec.vcpus = kMaxVcpus + 1;
  auto refused = host_->NewDomain(spec);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, EINVAL);
}

TEST_F(ClientTest, DeathIsReportedAndGrantsReclaimedAfterUnmap) {
  auto front = Domain("front");
  auto back = Domain("back", MappingMode::kMap);
  auto [gfn, ref] = GrantPage(*front, *back, 0x61);
  MapRequest req{front->self(), ref, Access::kReadWrite};
  auto m = back->mapper().Map({&req, 1});
  ASSERT_TRUE(m.has_value());
  auto pf = front->events().AllocUnbound(back->self());
  auto pb = back->events().BindInterdomain(front->self(), *pf);
  ASSERT_TRUE(pb.has_value());
  const DomId f = front->self();

  front.reset();  // its connection closes: the domain crashes
  ASSERT_TRUE(Readable(host_->control().death_fd(), 2000));
  auto dead = host_->control().TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], f);
  EXPECT_TRUE(host_->control().TakeDead().empty());
  // The peer's port is unbound, awaiting the dead domain.
  auto st = back->PortStatus(*pb);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->status, EVTCHNSTAT_unbound);
  EXPECT_EQ(st->remote, f);
  EXPECT_TRUE(back->events().Notify(*pb).has_value());
  // The mapping still works; the domain lingers, dying, until it is unmapped.
  EXPECT_EQ((*m)->page(0)[1], 0x61);
  auto list = host_->control().List();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_TRUE((*list)[1].dying);
  m->reset();
  EXPECT_EQ(host_->control().List()->size(), 2u) << "reclaimed";
}

TEST_F(ClientTest, ServiceDomain) {
  SimServiceSpec spec;
  spec.name = "xenstored";
  auto svc = ConnectSimService(host_->socket_path(), spec);
  ASSERT_TRUE(svc.has_value());
  EXPECT_EQ((*svc)->privilege(), Privilege::kService);
  EXPECT_NE((*svc)->control(), nullptr);
  EXPECT_TRUE((*svc)->control()->List().has_value());
  SimDomainSpec guest_spec;
  guest_spec.name = "x";
  EXPECT_EQ((*svc)->sim_control()->CreateDomain(guest_spec).error().code, EPERM);
  // A guest whose store is the service domain.
  guest_spec.store_domid = (*svc)->self();
  SimDomain created;
  auto guest = host_->NewDomain(guest_spec, &created);
  ASSERT_TRUE(guest.has_value());
  auto port = (*svc)->events().BindInterdomain(created.domid, created.store_port);
  ASSERT_TRUE(port.has_value());
  EXPECT_TRUE((*svc)->control()->MapForeign(created.domid, created.store_gfn).has_value());
  // The service domain dies with its connection.
  const DomId s = (*svc)->self();
  svc->reset();
  ASSERT_TRUE(Readable(host_->control().death_fd(), 2000));
  auto dead = host_->control().TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], s);
  EXPECT_EQ((*guest)->PortStatus(created.store_port)->status, EVTCHNSTAT_unbound);
}

TEST_F(ClientTest, Dom0SessionsGrantToo) {
  auto back = Domain("back", MappingMode::kMap);
  auto gfn = host_->dom0().memory().AllocPages(2);
  ASSERT_TRUE(gfn.has_value());
  std::memset(host_->dom0().memory().PageAddress(*gfn), 0x0D, kPageSize);
  auto ref = host_->dom0().grants().GrantAccess(back->self(), *gfn, Access::kReadOnly);
  ASSERT_TRUE(ref.has_value());
  MapRequest req{kDom0, *ref, Access::kReadOnly};
  auto m = back->mapper().Map({&req, 1});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((*m)->status(0), GrantStatus::kOkay);
  EXPECT_EQ((*m)->page(0)[0], 0x0D);
}

TEST_F(ClientTest, GrantAccessValidatesItsArguments) {
  auto a = Domain("a");
  EXPECT_EQ(a->grants().GrantAccess(DomId(0x7FF0), Gfn(0), Access::kReadOnly).error().code, EINVAL);
  EXPECT_EQ(a->grants().GrantAccess(kDom0, Gfn(1u << 30), Access::kReadOnly).error().code, EINVAL);
  EXPECT_EQ(a->grants().EndAccess(GrantRef(1)).error().code, EINVAL)
      << "the store grant is not ours";
  EXPECT_EQ(a->grants().EndAccess(GrantRef(77777)).error().code, EINVAL);
  EXPECT_EQ(a->memory().AllocPages(0).error().code, EINVAL);
  EXPECT_EQ(a->memory().AllocPages(1u << 20).error().code, ENOMEM);
  EXPECT_EQ(a->memory().PageAddress(Gfn(1u << 30)), nullptr);
}

TEST_F(ClientTest, GrantTableFillsUp) {
  auto a = Domain("a");
  size_t n = 0;
  for (;;) {
    auto r = a->grants().GrantAccess(kDom0, Gfn(0), Access::kReadOnly);
    if (!r) {
      EXPECT_EQ(r.error().code, ENOSPC);
      break;
    }
    ++n;
  }
  EXPECT_EQ(n, kDefaultGrantFrames * 512 - 8);
}

}  // namespace
}  // namespace xpv::platform::sim
