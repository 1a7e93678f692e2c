// xpv-hv as a process, with domains that are processes (sim_test_guest) it spawned.
#include <sys/epoll.h>

#include "xpv/abi/event_channel.h"
#include "xpv/platform/sim/testing/daemon_fixture.h"
#include "xpv/platform/sim/testing/test_guest.h"

namespace xpv::platform::sim::testing {
namespace {

bool Readable(int fd, int timeout_ms = 0) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

class ProcessTest : public DaemonTest {
 protected:
  // Creates a domain running sim_test_guest `mode` and waits for its report.
  struct Guest {
    SimDomain domain;
    std::unique_ptr<ForeignPage> store;
    GuestReport report{};
  };
  Guest Spawn(const std::string& name, const std::string& mode = "serve") {
    Guest g;
    SimDomainSpec spec;
    spec.name = name;
    spec.memory_mib = 4;
    spec.argv = {XPV_SIM_TEST_GUEST, mode};
    auto d = dom0_->sim_control()->CreateDomain(spec);
    EXPECT_TRUE(d.has_value()) << (d ? "" : std::strerror(d.error().code));
    if (!d) return g;
    g.domain = std::move(*d);
    auto page = dom0_->control()->MapForeign(g.domain.domid, g.domain.store_gfn);
    EXPECT_TRUE(page.has_value());
    if (!page) return g;
    g.store = std::move(*page);
    auto* r = reinterpret_cast<GuestReport*>(g.store->data());
    EXPECT_TRUE(
        WaitFor([&] { return __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) == kGuestMagic; }));
    std::memcpy(&g.report, r, sizeof g.report);
    return g;
  }
  static uint32_t Events(Guest& g) {
    return __atomic_load_n(&reinterpret_cast<GuestReport*>(g.store->data())->events,
                           __ATOMIC_ACQUIRE);
  }
  bool Listed(DomId domid) {
    auto list = dom0_->control()->List();
    if (!list) return false;
    for (const auto& d : *list) {
      if (d.domid == domid) return true;
    }
    return false;
  }
};

TEST_F(ProcessTest, SpawnedDomainKnowsItselfFromItsConnection) {
  Guest g = Spawn("guest");
  ASSERT_EQ(g.report.magic, kGuestMagic);
  EXPECT_EQ(g.report.domid, g.domain.domid.value);
  EXPECT_EQ(g.report.env_domid, g.domain.domid.value);
  EXPECT_EQ(g.report.fd_unset, 1u);
  EXPECT_GT(g.domain.pid, 0);
  auto list = dom0_->control()->List();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].pid, g.domain.pid);
}

TEST_F(ProcessTest, GrantAndEventsBetweenProcesses) {
  Guest g = Spawn("guest");
  // dom0 (map mode) maps the page the guest process granted.
  MapRequest req{g.domain.domid, GrantRef(g.report.ref), Access::kReadWrite};
  auto m = dom0_->mapper().Map({&req, 1});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((*m)->status(0), GrantStatus::kOkay);
  EXPECT_EQ((*m)->page(0)[0], kGuestFill);
  EXPECT_EQ((*m)->page(0)[4095], kGuestFill);
  // Ping-pong over the port the guest offered.
  auto port = dom0_->events().BindInterdomain(g.domain.domid, EvtchnPort(g.report.port));
  ASSERT_TRUE(port.has_value());
  (void)dom0_->events().NextPending();  // pending from the bind
  ASSERT_TRUE(dom0_->events().Unmask(*port).has_value());
  for (uint32_t i = 1; i <= 20; ++i) {
    ASSERT_TRUE(dom0_->events().Notify(*port).has_value());
    ASSERT_TRUE(Readable(dom0_->events().fd(), 5000)) << "no answer to notification " << i;
    EXPECT_EQ(dom0_->events().NextPending(), *port);
    ASSERT_TRUE(dom0_->events().Unmask(*port).has_value());
  }
  EXPECT_TRUE(WaitFor([&] { return Events(g) == 20; }));
}

TEST_F(ProcessTest, DomainKilledWhileItsGrantsAreMappedAndChannelsBound) {
  Guest g = Spawn("victim");
  MapRequest req{g.domain.domid, GrantRef(g.report.ref), Access::kReadWrite};
  auto m = dom0_->mapper().Map({&req, 1});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ((*m)->status(0), GrantStatus::kOkay);
  auto port = dom0_->events().BindInterdomain(g.domain.domid, EvtchnPort(g.report.port));
  ASSERT_TRUE(port.has_value());

  ASSERT_EQ(::kill(g.domain.pid, SIGKILL), 0);
  // VIRQ_DOM_EXC: the death is reported to dom0.
  ASSERT_TRUE(Readable(dom0_->control()->death_fd(), 5000));
  auto dead = dom0_->control()->TakeDead();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], g.domain.domid);
  // Our end of the channel is unbound now; sending is harmless.
  auto st = dom0_->PortStatus(*port);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->status, EVTCHNSTAT_unbound);
  EXPECT_TRUE(dom0_->events().Notify(*port).has_value());
  // The granted page outlives its owner while mapped; the domain is listed, dying.
  EXPECT_EQ((*m)->page(0)[10], kGuestFill);
  auto list = dom0_->control()->List();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_TRUE((*list)[1].dying);
  g.store.reset();
  m->reset();
  EXPECT_TRUE(WaitFor([&] { return !Listed(g.domain.domid); })) << "reclaimed after unmap";
  EXPECT_TRUE(dom0_->events().Close(*port).has_value());
  // A new domain can start and gets the next domid.
  Guest next = Spawn("next");
  EXPECT_EQ(next.report.magic, kGuestMagic);
}

TEST_F(ProcessTest, DestroyKillsTheProcess) {
  Guest g = Spawn("guest");
  ASSERT_TRUE(dom0_->control()->Destroy(g.domain.domid).has_value());
  // The daemon reaps its child: the pid goes away.
  EXPECT_TRUE(WaitFor([&] { return ::kill(g.domain.pid, 0) != 0 && errno == ESRCH; }));
  EXPECT_FALSE(Listed(g.domain.domid));
  EXPECT_EQ(dom0_->control()->TakeDead().size(), 1u);
}

TEST_F(ProcessTest, ExitingProcessEndsItsDomain) {
  for (const char* mode : {"exit-now", "no-connect"}) {
    SimDomainSpec spec;
    spec.name = mode;
    spec.memory_mib = 2;
    spec.argv = {XPV_SIM_TEST_GUEST, mode};
    auto d = dom0_->sim_control()->CreateDomain(spec);
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(WaitFor([&] { return !Listed(d->domid); })) << mode;
  }
  EXPECT_TRUE(WaitFor([&] { return dom0_->control()->TakeDead().size() >= 1; }));
}

TEST_F(ProcessTest, ProgramThatCannotRun) {
  SimDomainSpec spec;
  spec.name = "nothing";
  spec.memory_mib = 2;
  spec.argv = {"/nonexistent/xpv-program"};
  auto d = dom0_->sim_control()->CreateDomain(spec);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ENOENT);
  EXPECT_EQ(dom0_->control()->List()->size(), 1u);
}

TEST_F(ProcessTest, DomainConnectionHandedToAnotherProcess) {
  // Create without a program; a forked child becomes the domain through the returned fd.
  SimDomainSpec spec;
  spec.name = "adopted";
  spec.memory_mib = 2;
  auto d = dom0_->sim_control()->CreateDomain(spec);
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(d->connection.valid());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto p = ConnectSimDomain(std::move(d->connection));
    ::_exit(p.has_value() && (*p)->self() == d->domid ? 0 : 1);
  }
  d->connection.reset();
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(WaitFor([&] { return !Listed(d->domid); })) << "its process exited";
}

TEST_F(ProcessTest, ManyDomainsComeAndGo) {
  (void)dom0_->control()->List();  // the daemon has done some work before we count
  const size_t fds_before = DaemonFds();
  for (int round = 0; round < 3; ++round) {
    std::vector<Guest> guests;
    for (int i = 0; i < 4; ++i) guests.push_back(Spawn("g" + std::to_string(i)));
    for (auto& g : guests) ASSERT_EQ(g.report.magic, kGuestMagic);
    for (auto& g : guests) ::kill(g.domain.pid, SIGKILL);
    for (auto& g : guests) g.store.reset();
    EXPECT_TRUE(WaitFor([&] { return dom0_->control()->List()->size() == 1; }));
  }
  EXPECT_TRUE(WaitFor([&] { return DaemonFds() <= fds_before; }))
      << DaemonFds() << " fds now, " << fds_before << " before";
}

}  // namespace
}  // namespace xpv::platform::sim::testing
