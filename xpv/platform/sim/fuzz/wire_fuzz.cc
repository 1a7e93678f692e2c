// libFuzzer target: requests to an xpv-hv running in this process (testing/fuzz_entry.h).
#include "xpv/platform/sim/testing/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xpv::platform::sim::testing::FuzzWireOnce(data, size);
  return 0;
}
