// sim_test_guest: a domain program for the process tests. xpv-hv runs it with XPV_HV_FD set.
//   serve      grant a page and offer a port to dom0, report them in the store page, then count
//              (and answer) notifications until killed
//   exit-now   connect and exit 0
//   no-connect exit 0 without ever connecting
#include <poll.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "xpv/platform/sim/client.h"
#include "xpv/platform/sim/testing/test_guest.h"

using namespace xpv;
using namespace xpv::platform;
using namespace xpv::platform::sim;

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "serve";
  if (mode == "no-connect") return 0;
  const char* env_domid = std::getenv(kEnvDomId);
  auto p = ConnectSim();
  if (!p) {
    std::fprintf(stderr, "sim_test_guest: ConnectSim: %s\n", std::strerror(p.error().code));
    return 1;
  }
  if (mode == "exit-now") return 0;

  SimPlatform& plat = **p;
  auto* report =
      reinterpret_cast<testing::GuestReport*>(plat.memory().PageAddress(*plat.store_gfn()));
  auto gfn = plat.memory().AllocPages(1);
  if (!gfn) return 2;
  std::memset(plat.memory().PageAddress(*gfn), testing::kGuestFill, kPageSize);
  auto ref = plat.grants().GrantAccess(kDom0, *gfn, Access::kReadWrite);
  auto port = plat.events().AllocUnbound(kDom0);
  if (!ref || !port) return 3;
  report->domid = plat.self().value;
  report->env_domid = env_domid != nullptr ? static_cast<uint32_t>(std::atoi(env_domid)) : ~0u;
  report->fd_unset = std::getenv(kEnvHvFd) == nullptr;
  report->ref = ref->value;
  report->port = port->value;
  __atomic_store_n(&report->magic, testing::kGuestMagic, __ATOMIC_RELEASE);

  for (;;) {
    pollfd pfd{plat.events().fd(), POLLIN, 0};
    ::poll(&pfd, 1, 200);
    while (auto pending = plat.events().NextPending()) {
      if (*pending == *port) {
        __atomic_fetch_add(&report->events, 1, __ATOMIC_RELEASE);
        if (!plat.events().Notify(*port)) return 4;
      }
      if (!plat.events().Unmask(*pending)) return 5;
    }
    // A dead hypervisor connection ends the domain.
    if (!plat.PortStatus(*port)) return 6;
  }
}
