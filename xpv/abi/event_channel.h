// The event-channel ABI: Xen's own public/event_channel.h (libxen-dev), included as is.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
#include <xen/event_channel.h>
}

namespace xpv::abi {

static_assert(sizeof(evtchn_port_t) == 4);
static_assert(EVTCHNSTAT_closed == 0 && EVTCHNSTAT_unbound == 1 && EVTCHNSTAT_interdomain == 2);
// DOMID_SELF (xen.h): "the caller's own domain" in alloc_unbound and bind_interdomain.
static_assert(DOMID_SELF == 0x7FF0U && DOMID_FIRST_RESERVED == 0x7FF0U);

}  // namespace xpv::abi
