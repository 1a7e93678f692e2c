// libFuzzer target: operation sequences on the hypervisor core (testing/fuzz_entry.h).
#include "xpv/platform/sim/testing/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xpv::platform::sim::testing::FuzzCoreOnce(data, size);
  return 0;
}
