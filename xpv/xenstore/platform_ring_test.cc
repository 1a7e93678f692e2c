// xpv-xenstored on a platform, in process: xpv-hv on a thread (SimHost), the daemon on another
// (RunDaemon with a service-domain Platform), a guest domain writing through its store ring.
#include "xpv/xenstore/platform_ring.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "xpv/platform/port_dispatcher.h"
#include "xpv/platform/sim/sim_host.h"
#include "xpv/xenstore/client.h"
#include "xpv/xenstore/daemon.h"

namespace xpv::xenstore {
namespace {

using platform::sim::SimDomain;
using platform::sim::SimHost;

std::string Z(std::string_view s) {
  return std::string(s) + '\0';
}

TEST(PlatformRingTest, IntroducedDomainUsesItsRingAndItsDeathReleasesIt) {
  auto host = SimHost::Start();
  ASSERT_TRUE(host) << host.error().message;
  auto svc = platform::sim::ConnectSimService((*host)->socket_path(), {.name = "xenstored"});
  ASSERT_TRUE(svc) << svc.error().message;
  const DomId store_domid = (*svc)->self();

  char tmpl[] = "/tmp/xpv-platform-ring-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  DaemonOptions opt;
  opt.socket_path = dir + "/socket";
  opt.platform = svc->get();
  opt.log_level = "warn";
  std::thread daemon([&] { RunDaemon(opt); });

  Result<Client> c = Err(ENOENT);
  for (int i = 0; i < 200 && !c; ++i) {
    c = Client::Connect(opt.socket_path);
    if (!c) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(c);

  SimDomain created;
  auto guest = (*host)->NewDomain({.name = "guest", .store_domid = store_domid}, &created);
  ASSERT_TRUE(guest) << guest.error().message;
  const std::string id = std::to_string(created.domid.value);
  const std::string home = "/local/domain/" + id;

  // What a toolstack does: the home (dom0's, readable by the domain), data/ (the domain's).
  ASSERT_TRUE(c->Mkdir(home));
  ASSERT_TRUE(c->Call(MsgType::kSetPerms, Z(home) + Z("n0") + Z("r" + id)));
  ASSERT_TRUE(c->Mkdir(home + "/data"));
  ASSERT_TRUE(c->Call(MsgType::kSetPerms, Z(home + "/data") + Z("n" + id)));
  ASSERT_TRUE(c->Watch("@releaseDomain", "rel"));
  auto first = c->NextEvent(2000);  // a new watch fires once at once
  ASSERT_TRUE(first);
  ASSERT_TRUE(c->Call(MsgType::kIntroduce, Z(id) + Z(std::to_string(created.store_gfn.value)) +
                                               Z(std::to_string(created.store_port.value))));

  auto& g = **guest;
  platform::PortDispatcher ports(g.events());
  auto ring = Client::ConnectRing(
      reinterpret_cast<xenstore_domain_interface*>(g.memory().PageAddress(*g.store_gfn())), ports,
      *g.store_port());
  ASSERT_TRUE(ring);
  ring->set_reply_timeout_ms(5000);
  ASSERT_TRUE(ring->Watch("data", "mine"));  // relative: under the domain's home
  auto armed = ring->NextEvent(2000);
  ASSERT_TRUE(armed);
  EXPECT_EQ(armed->path, "data");
  ASSERT_TRUE(ring->Write("data/hello", "world"));
  auto back = ring->Read("data/hello");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, "world");
  auto fired = ring->NextEvent(2000);  // the guest's own write, through its ring
  ASSERT_TRUE(fired);
  EXPECT_EQ(fired->path, "data/hello");
  EXPECT_EQ(fired->token, "mine");
  auto seen = c->Read(home + "/data/hello");
  ASSERT_TRUE(seen);
  EXPECT_EQ(*seen, "world");

  ASSERT_TRUE((*host)->control().Destroy(created.domid));
  auto ev = c->NextEvent(5000);
  ASSERT_TRUE(ev) << "no @releaseDomain";
  EXPECT_EQ(ev->path, "@releaseDomain");
  EXPECT_FALSE(c->Read(home + "/data/hello"));  // owned by the dead domain: removed
  EXPECT_TRUE(c->Read(home));                   // dom0's: kept

  ::kill(::getpid(), SIGTERM);  // RunDaemon's handler stops its server
  daemon.join();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace xpv::xenstore
