// One event-channel descriptor, many consumers.
//
// A domain has one EventChannels descriptor for all its ports (as one /dev/xen/evtchn handle),
// while its consumers (the store client, each device ring) each want to wait on their own port.
// PortDispatcher gives every registered port an eventfd. Whoever waits on fd() calls Dispatch()
// when it is readable: each pending port's eventfd is kicked, then the port is unmasked. A
// consumer may also call Dispatch() itself while it waits (the store client does, so that a
// synchronous store call inside a device loop cannot starve the other ports: their kicks wait in
// their eventfds for the loop).
//
//   PortDispatcher ports(platform.events());
//   XPV_ASSIGN_OR_RETURN(int kick, ports.Register(port));   // poll(kick) for this port
//   ... poll(ports.fd()) readable -> ports.Dispatch();
//
// Thread-safe. Ports not registered are drained and unmasked silently.
#pragma once

#include <mutex>
#include <unordered_map>

#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/base/unique_fd.h"
#include "xpv/platform/platform.h"

namespace xpv::platform {

class PortDispatcher {
 public:
  // `events` must outlive this object.
  explicit PortDispatcher(EventChannels& events) : events_(events) {}

  // The eventfd kicked when `port` is pending (owned here; valid until Unregister). EEXIST if
  // the port is registered already.
  Result<int> Register(EvtchnPort port);
  void Unregister(EvtchnPort port);

  // Readable when some port is pending: the platform's descriptor.
  int fd() const { return events_.fd(); }
  EventChannels& events() { return events_; }

  // Drains the pending ports, kicking each one's eventfd, then unmasks them.
  void Dispatch();

  // Reads an eventfd dry: what a consumer does after its kick fired.
  static void Clear(int kick_fd);

 private:
  EventChannels& events_;
  std::mutex mu_;
  std::unordered_map<uint32_t, UniqueFd> kicks_;
};

}  // namespace xpv::platform
