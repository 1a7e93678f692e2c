// The xenstore wire ABI: Xen's own io/xs_wire.h (libxen-dev) plus the four message types that
// Xen 4.17's header predates (XS_GET_FEATURE .. XS_SET_QUOTA, numbered as in later Xen headers and
// docs/misc/xenstore.txt). Raw ABI integers live only here; the rest of xpv uses xenstore::MsgType.
#pragma once

#include <cerrno>
#include <cstdint>

extern "C" {
#include <xen/io/xs_wire.h>
}

namespace xpv::abi {

inline constexpr uint32_t XS_GET_FEATURE = XS_DIRECTORY_PART + 1;
inline constexpr uint32_t XS_SET_FEATURE = XS_DIRECTORY_PART + 2;
inline constexpr uint32_t XS_GET_QUOTA = XS_DIRECTORY_PART + 3;
inline constexpr uint32_t XS_SET_QUOTA = XS_DIRECTORY_PART + 4;
inline constexpr uint32_t XS_TYPE_COUNT_LATEST = XS_DIRECTORY_PART + 5;

// Server feature bits (xs_wire.h); XENSTORE_SERVER_FEATURE_WATCHDEPTH and _ERROR/_RECONNECTION as
// in newer headers where 4.17's lacks them.
#ifndef XENSTORE_SERVER_FEATURE_WATCHDEPTH
inline constexpr uint32_t XENSTORE_SERVER_FEATURE_WATCHDEPTH = 4;
#endif

static_assert(sizeof(xsd_sockmsg) == 16);
static_assert(sizeof(xenstore_domain_interface) == 2 * XENSTORE_RING_SIZE + 7 * 4);

}  // namespace xpv::abi
