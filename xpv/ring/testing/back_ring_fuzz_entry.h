// Body of the back-ring fuzz target, shared by the libFuzzer binary (XPV_FUZZ builds) and the
// replay test that runs it on seeded random inputs in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xpv::ring::testing {

// The input plays a hostile frontend: between the backend's calls (take a batch, answer, push,
// final check, reset) it writes any header index and any slot bytes. The ring's geometry (page
// count, blkif layout, start index) comes from the first bytes. Aborts (XPV_CHECK) if the back
// ring breaks an invariant: more requests outstanding than slots, a batch larger than asked, work
// after a protocol error, a write outside the ring's pages.
void FuzzBackRingOnce(const uint8_t* data, size_t size);

}  // namespace xpv::ring::testing
