// libFuzzer target: blkif request slots and indirect pages (testing/request_fuzz_entry.h).
#include "xpv/block/testing/request_fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xpv::block::testing::FuzzRequestOnce(data, size);
  return 0;
}
