// RingPorts over the generic platform interfaces (platform.h): a domain's store page mapped with
// DomainControl::MapForeign (xenforeignmemory_map of the gfn XS_INTRODUCE names) or, given a
// GrantMapper, through its grant GNTTAB_RESERVED_XENSTORE as Xen 4.17's daemon does
// (xenstored_domain.c map_interface(), falling back to the gfn); its channel bound with
// EventChannels::BindInterdomain. Works on any Platform (xpv-hv's sim or real Xen); the store
// never sees which.
//
// The store's own domain (Xen's dom0 with a local store, XS_LOCAL) has no grant or gfn to map:
// its kernel exports the page (/proc/xen/xsd_kva). SetLocal hands it in; the factory then uses
// it for that domain and notifies the channel once bound, as Xen's dom0_init() does.
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
  PlatformRings(platform::DomainControl& control, platform::EventChannels& events,
                platform::GrantMapper* mapper = nullptr);
  ~PlatformRings();

  // The ring page of `self`, the domain this store runs in. Not owned: must outlive this object
  // and every RingPort it made.
  void SetLocal(DomId self, platform::ForeignPage* page);

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
