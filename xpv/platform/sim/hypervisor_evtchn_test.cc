// Event-channel rules of the hypervisor core (event_channel.h, common/event_channel.c).
#include <sys/socket.h>

#include "xpv/platform/sim/hypervisor_test_util.h"

namespace xpv::platform::sim::testing {
namespace {

class EvtchnTest : public CoreTest {
 protected:
  void SetUp() override {
    CoreTest::SetUp();
    a_ = Make("a");
    b_ = Make("b");
    ASSERT_TRUE(a_ && b_);
  }
  PortStatus StatusOf(TestDomain& d, uint32_t port) {
    auto st = hv_->EvtchnStatus(d.session, EvtchnPort(port));
    EXPECT_TRUE(st.has_value());
    return st.has_value() ? *st : PortStatus{};
  }
  static bool SendDirect(int fd) { return ::send(fd, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1; }
  std::unique_ptr<TestDomain> a_, b_;
};

TEST_F(EvtchnTest, AllocBindSendClose) {
  auto unbound = hv_->AllocUnbound(a_->session, b_->domid);
  ASSERT_TRUE(unbound.has_value());
  EXPECT_GE(unbound->port.value, 1u);
  EXPECT_EQ(StatusOf(*a_, unbound->port.value).status, EVTCHNSTAT_unbound);
  EXPECT_EQ(StatusOf(*a_, unbound->port.value).remote, b_->domid);
  EXPECT_FALSE(TakePending(unbound->recv.get()));

  auto bound = hv_->BindInterdomain(b_->session, a_->domid, unbound->port);
  ASSERT_TRUE(bound.has_value());
  // event_channel.h: bind_interdomain "always sets the local event channel pending".
  EXPECT_TRUE(TakePending(bound->recv.get()));
  EXPECT_FALSE(TakePending(unbound->recv.get()));
  PortStatus sa = StatusOf(*a_, unbound->port.value), sb = StatusOf(*b_, bound->port.value);
  EXPECT_EQ(sa.status, EVTCHNSTAT_interdomain);
  EXPECT_EQ(sa.remote, b_->domid);
  EXPECT_EQ(sa.remote_port, bound->port);
  EXPECT_EQ(sb.remote_port, unbound->port);

  // The binder got the peer's send end: a notification needs no hypervisor.
  ASSERT_GE(bound->peer_send, 0);
  EXPECT_TRUE(SendDirect(bound->peer_send));
  EXPECT_TRUE(TakePending(unbound->recv.get()));
  // The slow path (EVTCHNOP_send through the hypervisor) delivers too, and says where to send.
  auto sent = hv_->Send(a_->session, unbound->port);
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(TakePending(bound->recv.get()));
  ASSERT_GE(sent->peer_send, 0);
  EXPECT_TRUE(SendDirect(sent->peer_send));
  EXPECT_TRUE(TakePending(bound->recv.get()));

  // evtchn_close: the remote end goes back to unbound, awaiting the closer.
  const uint32_t gen_before = a_->gen(unbound->port.value);
  ASSERT_TRUE(hv_->Close(b_->session, bound->port).has_value());
  EXPECT_EQ(StatusOf(*b_, bound->port.value).status, EVTCHNSTAT_closed);
  PortStatus after = StatusOf(*a_, unbound->port.value);
  EXPECT_EQ(after.status, EVTCHNSTAT_unbound);
  EXPECT_EQ(after.remote, b_->domid);
  EXPECT_NE(a_->gen(unbound->port.value), gen_before) << "a sender learns its peer changed";
  // ... and the closer may bind to it again.
  auto again = hv_->BindInterdomain(b_->session, a_->domid, unbound->port);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(StatusOf(*a_, unbound->port.value).status, EVTCHNSTAT_interdomain);
}

TEST_F(EvtchnTest, SendOnUnboundPortIsDroppedSilently) {
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  ASSERT_TRUE(p.has_value());
  auto sent = hv_->Send(a_->session, p->port);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->peer_send, -1);
}

TEST_F(EvtchnTest, EventToAClosedPort) {
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE(hv_->Close(a_->session, p->port).has_value());
  auto sent = hv_->Send(a_->session, p->port);
  ASSERT_FALSE(sent.has_value());
  EXPECT_EQ(sent.error().code, EINVAL);
  EXPECT_EQ(hv_->Close(a_->session, p->port).error().code, EINVAL) << "double close";
  // Ports never allocated, port 0 and ports past the end.
  for (uint32_t bad : {0u, 77u, kMaxPorts, 0xFFFFFFFFu}) {
    EXPECT_EQ(hv_->Send(a_->session, EvtchnPort(bad)).error().code, EINVAL) << bad;
    EXPECT_EQ(hv_->Close(a_->session, EvtchnPort(bad)).error().code, EINVAL) << bad;
  }
  EXPECT_EQ(hv_->EvtchnStatus(a_->session, EvtchnPort(kMaxPorts)).error().code, EINVAL);
  EXPECT_EQ(StatusOf(*a_, 0).status, EVTCHNSTAT_closed);
}

TEST_F(EvtchnTest, BindToAPortNotOfferedToYou) {
  auto c = Make("c");
  auto p = hv_->AllocUnbound(a_->session, c->domid);
  ASSERT_TRUE(p.has_value());
  auto bound = hv_->BindInterdomain(b_->session, a_->domid, p->port);
  ASSERT_FALSE(bound.has_value());
  EXPECT_EQ(bound.error().code, EINVAL);
  EXPECT_EQ(StatusOf(*a_, p->port.value).status, EVTCHNSTAT_unbound) << "untouched";
  EXPECT_TRUE(hv_->BindInterdomain(c->session, a_->domid, p->port).has_value());
}

TEST_F(EvtchnTest, BindToAPortAlreadyBound) {
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  ASSERT_TRUE(hv_->BindInterdomain(b_->session, a_->domid, p->port).has_value());
  auto twice = hv_->BindInterdomain(b_->session, a_->domid, p->port);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, EINVAL);
}

TEST_F(EvtchnTest, BindToBadPortOrDomain) {
  EXPECT_EQ(hv_->BindInterdomain(b_->session, a_->domid, EvtchnPort(0)).error().code, EINVAL);
  EXPECT_EQ(hv_->BindInterdomain(b_->session, a_->domid, EvtchnPort(500)).error().code, EINVAL);
  EXPECT_EQ(hv_->BindInterdomain(b_->session, a_->domid, EvtchnPort(0xFFFFFFFF)).error().code,
            EINVAL);
  EXPECT_EQ(hv_->BindInterdomain(b_->session, DomId(4000), EvtchnPort(1)).error().code, ESRCH);
  // A port of the domain's own, not its peer's, unbound port offered to someone else.
  EXPECT_EQ(hv_->BindInterdomain(b_->session, a_->domid, a_->info.store_port.value()).error().code,
            EINVAL)
      << "the store port is offered to the store's domain only";
}

TEST_F(EvtchnTest, AllocUnboundForReservedDomid) {
  EXPECT_EQ(hv_->AllocUnbound(a_->session, DomId(0x7FF1)).error().code, EINVAL);
  EXPECT_EQ(hv_->AllocUnbound(a_->session, DomId(0xFFFFFFFF)).error().code, EINVAL);
}

TEST_F(EvtchnTest, Loopback) {
  auto p = hv_->AllocUnbound(a_->session, kDomIdSelf);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(StatusOf(*a_, p->port.value).remote, a_->domid);
  auto q = hv_->BindInterdomain(a_->session, kDomIdSelf, p->port);
  ASSERT_TRUE(q.has_value());
  EXPECT_TRUE(SendDirect(q->peer_send));
  EXPECT_TRUE(TakePending(p->recv.get()));
  ASSERT_TRUE(hv_->Close(a_->session, p->port).has_value());
  EXPECT_EQ(StatusOf(*a_, q->port.value).status, EVTCHNSTAT_unbound);
}

TEST_F(EvtchnTest, PortExhaustion) {
  std::vector<BoundPort> ports;
  for (;;) {
    auto p = hv_->AllocUnbound(a_->session, b_->domid);
    if (!p.has_value()) {
      EXPECT_EQ(p.error().code, ENOSPC);
      break;
    }
    ports.push_back(std::move(*p));
    ASSERT_LT(ports.size(), kMaxPorts);
  }
  EXPECT_EQ(ports.size(), kMaxPorts - 2) << "port 0 is reserved, one is the store's";
  // The lowest free port is reused.
  const EvtchnPort some = ports[10].port;
  ASSERT_TRUE(hv_->Close(a_->session, some).has_value());
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->port, some);
}

TEST_F(EvtchnTest, StaleSendEndOfAClosedPortReachesNobody) {
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  auto q = hv_->BindInterdomain(b_->session, a_->domid, p->port);
  UniqueFd stale = Dup(q->peer_send);
  // a closes its port and reopens one with the same number: a new port, a new socket.
  ASSERT_TRUE(hv_->Close(a_->session, p->port).has_value());
  p->recv.reset();
  auto p2 = hv_->AllocUnbound(a_->session, b_->domid);
  ASSERT_EQ(p2->port, p->port);
  (void)::send(stale.get(), "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  EXPECT_FALSE(TakePending(p2->recv.get()));
}

TEST_F(EvtchnTest, FloodedPortStaysBoundedAndPending) {
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  auto q = hv_->BindInterdomain(b_->session, a_->domid, p->port);
  int sent = 0;
  for (int i = 0; i < 100000; ++i) sent += SendDirect(q->peer_send);
  EXPECT_LT(sent, 100) << "the queue is a few datagrams; EAGAIN means already pending";
  // A full queue does not stop the hypervisor (it never blocks on a domain's socket).
  EXPECT_TRUE(hv_->Send(b_->session, q->port).has_value());
  EXPECT_TRUE(TakePending(p->recv.get()));
}

TEST_F(EvtchnTest, PeerKilledReturnsOurEndToUnbound) {
  auto p = hv_->AllocUnbound(a_->session, b_->domid);
  auto q = hv_->BindInterdomain(b_->session, a_->domid, p->port);
  ASSERT_TRUE(q.has_value());
  const DomId b = b_->domid;
  hv_->Detach(b_->session);
  PortStatus st = StatusOf(*a_, p->port.value);
  EXPECT_EQ(st.status, EVTCHNSTAT_unbound);
  EXPECT_EQ(st.remote, b);
  auto sent = hv_->Send(a_->session, p->port);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->peer_send, -1);
  EXPECT_EQ(hv_->BindInterdomain(a_->session, b, q->port).error().code, ESRCH);
}

TEST_F(EvtchnTest, Dom0SessionsOwnTheirPorts) {
  auto x = Dom0();
  auto y = Dom0();
  auto p = hv_->AllocUnbound(x->session, a_->domid);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(hv_->Close(y->session, p->port).error().code, EINVAL) << "not y's port";
  EXPECT_EQ(hv_->Send(y->session, p->port).error().code, EINVAL);
  auto q = hv_->BindInterdomain(a_->session, kDom0, p->port);
  ASSERT_TRUE(q.has_value());
  hv_->Detach(x->session);  // x's process exited: its ports close
  EXPECT_EQ(StatusOf(*a_, q->port.value).status, EVTCHNSTAT_unbound);
}

TEST_F(EvtchnTest, StorePortIsOfferedToTheStoreDomain) {
  ASSERT_TRUE(a_->info.store_port.has_value());
  ASSERT_TRUE(a_->info.store_recv.valid());
  auto dom0 = Dom0();
  auto q = hv_->BindInterdomain(dom0->session, a_->domid, *a_->info.store_port);
  ASSERT_TRUE(q.has_value());
  EXPECT_TRUE(SendDirect(q->peer_send));
  EXPECT_TRUE(TakePending(a_->info.store_recv.get()));
  // The guest owns its store port like any other.
  EXPECT_TRUE(hv_->Send(a_->session, *a_->info.store_port).has_value());
  EXPECT_TRUE(TakePending(q->recv.get()));
}

}  // namespace
}  // namespace xpv::platform::sim::testing
