// The fuzz targets' bodies on seeded random inputs, in every build (the libFuzzer binaries need
// XPV_FUZZ and clang).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <random>
#include <vector>

#include "xpv/platform/sim/testing/fuzz_entry.h"

namespace xpv::platform::sim::testing {
namespace {

std::vector<uint8_t> RandomInput(std::mt19937& rng, size_t max) {
  std::vector<uint8_t> v(rng() % max);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(FuzzReplay, CoreOperationSequences) {
  std::mt19937 rng(20240601);
  for (int i = 0; i < 1500; ++i) {
    auto in = RandomInput(rng, 1200);
    FuzzCoreOnce(in.data(), in.size());
  }
}

TEST(FuzzReplay, WireRequests) {
  spdlog::set_level(spdlog::level::warn);
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    auto in = RandomInput(rng, 400);
    // Half of them with a well-formed header, so the handlers see them.
    if (in.size() >= 17 && (i & 1)) {
      const uint32_t magic = 0x48565058, len = static_cast<uint32_t>(in.size() - 1);
      std::memcpy(&in[1], &magic, 4);
      in[5] = 1;
      in[6] = 0;
      in[7] = static_cast<uint8_t>(rng() % 40);
      in[8] = 0;
      std::memcpy(&in[9], &len, 4);
    }
    FuzzWireOnce(in.data(), in.size());
  }
}

}  // namespace
}  // namespace xpv::platform::sim::testing
