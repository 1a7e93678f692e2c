// libFuzzer target: a hostile frontend against the back ring (testing/back_ring_fuzz_entry.h).
#include "xpv/ring/testing/back_ring_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xpv::ring::testing::FuzzBackRingOnce(data, size);
  return 0;
}
