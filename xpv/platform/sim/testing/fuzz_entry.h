// Bodies of the xpv-hv fuzz targets, shared by the libFuzzer binaries (XPV_FUZZ builds) and the
// replay test that runs them on seeded random inputs in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xpv::platform::sim::testing {

// Interprets the input as a sequence of operations by three domains and dom0 on a fresh
// hypervisor core, guests scribbling over their grant tables in between: maps, unmaps, copies,
// end of access, event-channel operations, deaths and destruction. Aborts (XPV_CHECK) on a broken
// invariant; at the end every domain is torn down and must be freed (no pin leaked).
void FuzzCoreOnce(const uint8_t* data, size_t size);

// Sends the input as one request to an xpv-hv running in this process, on a dom0 session or on a
// domain's connection (the first byte chooses), and waits for its reply.
void FuzzWireOnce(const uint8_t* data, size_t size);

}  // namespace xpv::platform::sim::testing
