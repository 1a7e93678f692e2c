// libFuzzer target: the xenstore wire codec (StreamDecoder, string splitting, permissions and path
// parsing). The body is shared with wire_corpus_test.cc; see testing/fuzz_entry.h.
#include <cstddef>
#include <cstdint>

#include "xpv/xenstore/testing/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  xpv::xenstore::testing::WireFuzzOneInput({data, size});
  return 0;
}
