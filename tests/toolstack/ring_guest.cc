// xpv_ring_guest: a test domain for the toolstack's end-to-end test. xpv-hv runs it (XPV_HV_FD);
// it talks to the store as a PV guest's xenbus does, through the xenstore_domain_interface page
// at its store gfn and the store event channel (start_info's store_mfn and store_evtchn):
//   xpv_ring_guest KEY VALUE   writes data/KEY = VALUE (relative: under its home), then idles
//                              until killed or its hypervisor connection ends.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "xpv/platform/port_dispatcher.h"
#include "xpv/platform/sim/client.h"
#include "xpv/xenstore/client.h"

int main(int argc, char** argv) {
  const std::string key = argc > 1 ? argv[1] : "hello";
  const std::string value = argc > 2 ? argv[2] : "world";
  auto p = xpv::platform::sim::ConnectSim();
  if (!p) {
    std::fprintf(stderr, "xpv_ring_guest: ConnectSim: %s\n", std::strerror(p.error().code));
    return 1;
  }
  auto& plat = **p;
  if (!plat.store_gfn() || !plat.store_port()) return 2;
  // SAFETY: the store page is one whole page of this domain's own RAM.
  auto* page =
      reinterpret_cast<xenstore_domain_interface*>(plat.memory().PageAddress(*plat.store_gfn()));
  xpv::platform::PortDispatcher ports(plat.events());
  auto ring = xpv::xenstore::Client::ConnectRing(page, ports, *plat.store_port());
  if (!ring) return 3;
  // The toolstack introduces the domain after starting it: the request waits in the ring.
  if (auto st = ring->Write("data/" + key, value); !st) {
    std::fprintf(stderr, "xpv_ring_guest: write: %s\n", std::strerror(st.error().code));
    return 3;
  }
  std::fprintf(stderr, "xpv_ring_guest: domain %u wrote data/%s\n", plat.self().value, key.c_str());
  // A dead hypervisor connection ends the domain.
  while (plat.PortStatus(*plat.store_port()))
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return 0;
}
