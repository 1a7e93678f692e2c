// Domain lifecycle of the hypervisor core: creation, sessions, privilege, death.
#include <poll.h>

#include <cstring>

#include "xpv/platform/sim/hypervisor_test_util.h"

namespace xpv::platform::sim::testing {
namespace {

using DomainTest = CoreTest;

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST_F(DomainTest, Dom0ExistsAndCannotBeDestroyed) {
  auto rec = hv_->Find(kDom0);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->privilege, Privilege::kControl);
  EXPECT_EQ(hv_->DestroyDomain(kDom0).error().code, EPERM);
  EXPECT_EQ(hv_->DestroyDomain(DomId(77)).error().code, ESRCH);
}

TEST_F(DomainTest, CreateValidatesItsConfig) {
  DomainConfig good;
  good.name = "ok";
  good.memory_mib = 2;
  auto expect_einval = [&](DomainConfig c) {
    auto r = hv_->CreateDomain(c);
    ASSERT_FALSE(r.has_value()) << c.name;
    EXPECT_EQ(r.error().code, EINVAL);
  };
  DomainConfig c = good;
  c.name = "";
  expect_einval(c);
  c = good;
  c.name = std::string(kMaxNameLen + 1, 'x');
  expect_einval(c);
  c = good;
  c.name = "bad\nname";
  expect_einval(c);
  c = good;
  c.memory_mib = 0;
  expect_einval(c);
  c = good;
  c.memory_mib = kMaxMemoryMib + 1;
  expect_einval(c);
  c = good;
  c.grant_frames = 0;
  expect_einval(c);
  c = good;
  c.grant_frames = kMaxGrantFrames + 1;
  expect_einval(c);
  c = good;
  c.mode = static_cast<MappingMode>(7);
  expect_einval(c);
  c = good;
  c.privilege = Privilege::kControl;
  expect_einval(c);
  c = good;
  c.vcpus = 0;
  expect_einval(c);
  c = good;
  c.vcpus = kMaxVcpus + 1;
  expect_einval(c);
  c = good;
  c.store_domid = DomId(0x7FF0);
  expect_einval(c);
  EXPECT_TRUE(hv_->CreateDomain(good).has_value());
}

TEST_F(DomainTest, DomidsAreSequentialAndNotReusedWhileDying) {
  auto a = Make("a");
  auto b = Make("b");
  EXPECT_EQ(a->domid.value + 1, b->domid.value);
  auto list = hv_->List(DomId(0), 100);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].domid, kDom0);
  EXPECT_EQ(list[1].name, "a");
  EXPECT_EQ(list[2].memory_kib, 4096u);
  EXPECT_EQ(hv_->List(b->domid, 100).size(), 1u);
  EXPECT_EQ(hv_->List(DomId(0), 1).size(), 1u);
}

TEST_F(DomainTest, AttachOnlyOnceAndOnlyTheRightIncarnation) {
  DomainConfig c;
  c.name = "x";
  c.memory_mib = 2;
  auto created = hv_->CreateDomain(c);
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(hv_->Attach(created->domid, created->incarnation + 1).error().code, ESRCH);
  auto s = hv_->Attach(created->domid, created->incarnation);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(hv_->Attach(created->domid, created->incarnation).error().code, EBUSY);
  EXPECT_FALSE(s->death_recv.valid()) << "unprivileged: no death notifications";
}

TEST_F(DomainTest, PrivilegeIsChecked) {
  auto svc = Make("svc", MappingMode::kCopy, Privilege::kService);
  DomainConfig c;
  c.name = "guest";
  c.memory_mib = 4;
  c.store_domid = svc->domid;
  auto created = hv_->CreateDomain(c);
  ASSERT_TRUE(created.has_value());
  auto guest = Attach(created->domid, created->incarnation);
  EXPECT_EQ(hv_->MapForeign(guest->session, svc->domid, Gfn(0)).error().code, EPERM);
  EXPECT_EQ(hv_->TakeDead(guest->session, 10, nullptr).error().code, EPERM);
  EXPECT_TRUE(hv_->MapForeign(svc->session, guest->domid, Gfn(0)).has_value());
  EXPECT_EQ(hv_->MapForeign(svc->session, guest->domid, Gfn(1u << 20)).error().code, EINVAL);
  EXPECT_EQ(hv_->MapForeign(svc->session, DomId(555), Gfn(0)).error().code, ESRCH);
  EXPECT_TRUE(hv_->CheckPrivilege(svc->session, Privilege::kService).has_value());
  EXPECT_EQ(hv_->CheckPrivilege(svc->session, Privilege::kControl).error().code, EPERM);
  auto dom0 = Dom0();
  EXPECT_TRUE(hv_->CheckPrivilege(dom0->session, Privilege::kControl).has_value());
}

TEST_F(DomainTest, ServiceDomainMapsDom0OrADomainItDoesNotServe) {
  // MapForeign hands out the whole RAM: a service domain (a store) gets it only for the domains
  // whose store it is, never dom0's, another service's or an unrelated guest's.
  auto svc = Make("svc", MappingMode::kCopy, Privilege::kService);
  auto other_svc = Make("svc2", MappingMode::kCopy, Privilege::kService);
  auto unrelated = Make("unrelated");  // its store is dom0
  ASSERT_TRUE(svc && other_svc && unrelated);
  EXPECT_EQ(hv_->MapForeign(svc->session, kDom0, Gfn(0)).error().code, EPERM);
  EXPECT_EQ(hv_->MapForeign(svc->session, other_svc->domid, Gfn(0)).error().code, EPERM);
  EXPECT_EQ(hv_->MapForeign(svc->session, unrelated->domid, Gfn(0)).error().code, EPERM);
  // Domain 0 may map any domain's frames.
  auto dom0 = Dom0();
  EXPECT_TRUE(hv_->MapForeign(dom0->session, unrelated->domid, Gfn(0)).has_value());
  EXPECT_TRUE(hv_->MapForeign(dom0->session, svc->domid, Gfn(0)).has_value());
}

TEST_F(DomainTest, DeathIsReportedToPrivilegedSessions) {
  auto dom0 = Dom0();
  auto svc = Make("xenstored", MappingMode::kCopy, Privilege::kService);
  ASSERT_TRUE(dom0->info.death_recv.valid());
  ASSERT_TRUE(svc->info.death_recv.valid());
  auto guest = Make("guest");
  const DomId g = guest->domid;
  EXPECT_FALSE(Readable(dom0->info.death_recv.get()));
  hv_->Detach(guest->session);
  EXPECT_TRUE(Readable(dom0->info.death_recv.get()));
  EXPECT_TRUE(Readable(svc->info.death_recv.get()));
  bool more = true;
  auto dead = hv_->TakeDead(dom0->session, 10, &more);
  ASSERT_TRUE(dead.has_value());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0], g);
  EXPECT_FALSE(more);
  EXPECT_TRUE(hv_->TakeDead(dom0->session, 10, nullptr)->empty()) << "each death once";
  EXPECT_EQ(hv_->TakeDead(svc->session, 10, nullptr)->size(), 1u) << "per subscriber";
}

TEST_F(DomainTest, DestroyCallsTheSessionHook) {
  std::vector<SessionId> closed;
  hv_->set_session_closed_hook([&](SessionId s) { closed.push_back(s); });
  auto guest = Make("guest");
  ASSERT_TRUE(hv_->DestroyDomain(guest->domid).has_value());
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0], guest->session);
  EXPECT_FALSE(hv_->SessionAlive(guest->session));
  EXPECT_TRUE(hv_->DestroyDomain(guest->domid).error().code == ESRCH);
  // Detach after destroy is harmless.
  hv_->Detach(guest->session);
}

TEST_F(DomainTest, DestroyBeforeAttach) {
  DomainConfig c;
  c.name = "never-ran";
  c.memory_mib = 2;
  auto created = hv_->CreateDomain(c);
  ASSERT_TRUE(created.has_value());
  ASSERT_TRUE(hv_->DestroyDomain(created->domid).has_value());
  EXPECT_FALSE(hv_->Find(created->domid).has_value());
  EXPECT_EQ(hv_->Attach(created->domid, created->incarnation).error().code, ESRCH);
}

TEST_F(DomainTest, DomainKilledWhileGrantsMappedAndChannelsBound) {
  auto dom0 = Dom0();
  auto front = Make("front");
  auto back = Make("back", MappingMode::kMap);
  // front grants two pages to back, which maps them; they are bound by two channels.
  std::memset(front->page(3), 0x77, kPageSize);
  front->Grant(8, back->domid, 3);
  front->Grant(9, back->domid, 4, true);
  MapResult m1 = MapOne(*back, front->domid, 8);
  MapResult m2 = MapOne(*back, front->domid, 9, true);
  ASSERT_EQ(m1.status, GNTST_okay);
  ASSERT_EQ(m2.status, GNTST_okay);
  auto p1 = hv_->AllocUnbound(front->session, back->domid);
  auto p2 = hv_->AllocUnbound(back->session, front->domid);
  auto b1 = hv_->BindInterdomain(back->session, front->domid, p1->port);
  auto b2 = hv_->BindInterdomain(front->session, back->domid, p2->port);
  ASSERT_TRUE(b1.has_value() && b2.has_value());

  const DomId f = front->domid;
  hv_->Detach(front->session);  // kill -9

  // Peers see their ends unbound, awaiting the dead domain.
  auto st1 = hv_->EvtchnStatus(back->session, b1->port);
  auto st2 = hv_->EvtchnStatus(back->session, p2->port);
  EXPECT_EQ(st1->status, EVTCHNSTAT_unbound);
  EXPECT_EQ(st2->status, EVTCHNSTAT_unbound);
  EXPECT_EQ(st1->remote, f);
  // Sending to a dead peer is dropped, not an error, and does not crash anything.
  EXPECT_TRUE(hv_->Send(back->session, b1->port).has_value());
  // The grants are still pinned; the dying domain lingers and its page is intact.
  EXPECT_TRUE(hv_->Find(f)->dying);
  EXPECT_EQ(hv_->RamForTest(f)[3 * kPageSize], 0x77);
  EXPECT_EQ(UnmapOne(*back, m1.handle), GNTST_okay);
  EXPECT_TRUE(hv_->Find(f).has_value()) << "one mapping left";
  EXPECT_EQ(UnmapOne(*back, m2.handle), GNTST_okay);
  EXPECT_FALSE(hv_->Find(f).has_value()) << "reclaimed";
  EXPECT_EQ(hv_->TakeDead(dom0->session, 10, nullptr)->size(), 1u);
  // The peer can close its dangling end as usual.
  EXPECT_TRUE(hv_->Close(back->session, b1->port).has_value());
}

TEST_F(DomainTest, ManyDomainsComeAndGo) {
  for (int round = 0; round < 50; ++round) {
    auto a = Make("a" + std::to_string(round), MappingMode::kMap);
    auto b = Make("b" + std::to_string(round), MappingMode::kMap);
    a->Grant(8, b->domid, 0);
    MapResult r = MapOne(*b, a->domid, 8);
    ASSERT_EQ(r.status, GNTST_okay);
    auto p = hv_->AllocUnbound(a->session, b->domid);
    ASSERT_TRUE(hv_->BindInterdomain(b->session, a->domid, p->port).has_value());
    hv_->Detach((round & 1) ? a->session : b->session);
    hv_->Detach((round & 1) ? b->session : a->session);
  }
  EXPECT_EQ(hv_->domain_count(), 1u) << "only dom0 is left";
}

}  // namespace
}  // namespace xpv::platform::sim::testing
