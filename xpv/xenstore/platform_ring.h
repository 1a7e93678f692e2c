// RingPorts over the generic platform interfaces (platform.h): a domain's store page mapped with
// DomainControl::MapForeign (xenforeignmemory_map), its channel bound with
// EventChannels::BindInterdomain, exactly what Xen's daemon does with libxenforeignmemory and
// libxenevtchn. Works on any Platform (xpv-hv's sim or real Xen); the store never sees which.
//
// A platform has one event-channel descriptor for all ports, while the server polls one
// descriptor per ring: PlatformRings demultiplexes. Register event_fd() with the loop and call
// Dispatch() when it is readable; each pending port kicks its ring's own eventfd.
//
//   PlatformRings rings(*platform->control(), platform->events());
//   RingDomains domains(server, rings.Factory());
#pragma once

#include <memory>

#include "xpv/platform/platform.h"
#include "xpv/xenstore/ring_transport.h"

namespace xpv::xenstore {

class PlatformRings {
 public:
  // Both must outlive this object and every RingPort it made.
  PlatformRings(platform::DomainControl& control, platform::EventChannels& events);
  ~PlatformRings();

  RingPortFactory Factory();
  // The platform's event-channel descriptor: readable when some port is pending.
  int event_fd() const;
  // Drains the pending ports, kicking each ring's eventfd, then unmasks them.
  void Dispatch();

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace xpv::xenstore
