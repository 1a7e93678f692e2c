// libFuzzer target: scripts of requests from dom0, a second tools socket and two unprivileged
// domains through Engine::Handle. The body is shared with the corpus-replay test; see
// testing/fuzz_entry.h for the input format and the invariants checked.
#include <cstddef>
#include <cstdint>

#include "spdlog/spdlog.h"
#include "xpv/xenstore/testing/fuzz_entry.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // CONTROL "log on" and "print" would otherwise flood the fuzzer's output.
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xpv::xenstore::testing::EngineFuzzOneInput({data, size});
  return 0;
}
