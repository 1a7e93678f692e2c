// The request fuzz target's body on seeded random inputs, in every build (the libFuzzer binary
// needs XPV_FUZZ and clang).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "xpv/abi/blkif.h"
#include "xpv/block/testing/request_fuzz_entry.h"

namespace xpv::block::testing {
namespace {

std::vector<uint8_t> RandomInput(std::mt19937& rng, size_t max) {
  std::vector<uint8_t> v(rng() % max);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(BlockFuzzReplay, RandomSlots) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 20000; ++i) {
    auto in = RandomInput(rng, 200);
    FuzzRequestOnce(in.data(), in.size());
  }
}

// Mostly plausible requests: a known operation, few segments, small sectors, sane segment bounds,
// so the checks past the first early return get exercised too.
TEST(BlockFuzzReplay, PlausibleSlotsAndIndirectPages) {
  std::mt19937 rng(5);
  const uint8_t ops[] = {BLKIF_OP_READ,     BLKIF_OP_WRITE,    BLKIF_OP_FLUSH_DISKCACHE,
                         BLKIF_OP_DISCARD,  BLKIF_OP_INDIRECT, BLKIF_OP_WRITE_BARRIER,
                         BLKIF_OP_INDIRECT, BLKIF_OP_READ};
  for (int i = 0; i < 20000; ++i) {
    auto in = RandomInput(rng, 2 * 4096 + 200);
    if (in.size() < 1 + 112) in.resize(1 + 112 + rng() % 64);
    const bool x32 = in[0] & 1;
    uint8_t* slot = &in[1];
    slot[0] = ops[rng() % 8];
    const size_t sector_at = x32 ? 12 : 16;
    const uint64_t sector = rng() % 4096;
    std::memcpy(slot + sector_at, &sector, 8);
    if (slot[0] == BLKIF_OP_INDIRECT) {
      slot[1] = rng() % 2 ? BLKIF_OP_READ : BLKIF_OP_WRITE;
      const uint16_t n = static_cast<uint16_t>(rng() % 600);
      std::memcpy(slot + 2, &n, 2);
    } else if (slot[0] == BLKIF_OP_DISCARD) {
      const uint64_t n = rng() % 4096;
      std::memcpy(slot + sector_at + 8, &n, 8);
    } else {
      slot[1] = static_cast<uint8_t>(rng() % 13);
    }
    // Segment bounds mostly inside a page, in the slot and in the indirect pages after it.
    for (size_t at = 1 + sector_at + 8; at + 8 <= in.size(); at += 8) {
      if (rng() % 16 == 0) continue;
      in[at + 4] = static_cast<uint8_t>(rng() % 8);
      in[at + 5] = static_cast<uint8_t>(in[at + 4] + rng() % (8 - in[at + 4]));
    }
    FuzzRequestOnce(in.data(), in.size());
  }
}

}  // namespace
}  // namespace xpv::block::testing
