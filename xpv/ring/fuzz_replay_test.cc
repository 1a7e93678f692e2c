// The back-ring fuzz target's body on seeded random inputs, in every build (the libFuzzer binary
// needs XPV_FUZZ and clang).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "xpv/ring/testing/back_ring_fuzz_entry.h"

namespace xpv::ring::testing {
namespace {

TEST(RingFuzzReplay, HostileFrontendAgainstBackRing) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> in(rng() % 1500);
    for (auto& b : in) b = static_cast<uint8_t>(rng());
    FuzzBackRingOnce(in.data(), in.size());
  }
}

}  // namespace
}  // namespace xpv::ring::testing
