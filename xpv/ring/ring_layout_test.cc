// Ring geometry against Xen's own __CONST_RING_SIZE / __RING_SIZE.
#include "xpv/ring/ring_layout.h"

#include <gtest/gtest.h>

#include "xpv/ring/back_ring.h"
#include "xpv/ring/front_ring.h"
#include "xpv/ring/testing/xen_ring_macros.h"

namespace xpv::ring {
namespace {

namespace blk = abi::blkif;

TEST(RingLayout, HeaderMatchesXenSring) {
  EXPECT_EQ(offsetof(blkif_sring, ring), kRingHeaderSize);
  EXPECT_EQ(offsetof(blkif_sring, req_event), RingIndexOffset(RingIndex::kReqEvent));
  EXPECT_EQ(offsetof(blkif_sring, rsp_prod), RingIndexOffset(RingIndex::kRspProd));
  EXPECT_EQ(offsetof(blkif_sring, rsp_event), RingIndexOffset(RingIndex::kRspEvent));
}

TEST(RingLayout, SlotSizesMatchXenEntries) {
  EXPECT_EQ((kRingSlotSize<blk::x86_64::Request, blk::x86_64::Response>),
            sizeof(blkif_sring_entry));
  EXPECT_EQ((kRingSlotSize<blk::x86_64::Request, blk::x86_64::Response>), 112u);
  EXPECT_EQ((kRingSlotSize<blk::x86_32::Request, blk::x86_32::Response>),
            sizeof(blkif_x86_32_sring_entry));
  EXPECT_EQ((kRingSlotSize<blk::x86_32::Request, blk::x86_32::Response>), 108u);
  EXPECT_EQ((kRingSlotSize<small_req, small_rsp>), sizeof(small_sring_entry));
}

TEST(RingLayout, EntryCountsMatchXenRingSizeForEveryPageCount) {
  for (size_t pages : {1, 2, 4, 8, 16}) {
    const size_t bytes = pages * kPageSize;
    SCOPED_TRACE(pages);
    EXPECT_EQ(RingEntries(sizeof(blkif_sring_entry), bytes), __CONST_RING_SIZE(blkif, bytes));
    EXPECT_EQ(RingEntries(sizeof(blkif_x86_32_sring_entry), bytes),
              __CONST_RING_SIZE(blkif_x86_32, bytes));
    EXPECT_EQ(RingEntries(sizeof(small_sring_entry), bytes), __CONST_RING_SIZE(small, bytes));
    // And through a real ring of that many pages, as FRONT_RING_INIT computes it.
    std::vector<uint8_t> mem(bytes);
    auto* s = reinterpret_cast<blkif_sring*>(mem.data());
    EXPECT_EQ(RingEntries(sizeof(blkif_sring_entry), bytes), __RING_SIZE(s, bytes));
    std::vector<uint8_t*> ptrs;
    for (size_t p = 0; p < pages; ++p) ptrs.push_back(mem.data() + p * kPageSize);
    DirectRingMemory memory(ptrs);
    auto back64 = BackRing<blk::x86_64::Request, blk::x86_64::Response>::Create(memory);
    ASSERT_TRUE(back64.has_value());
    EXPECT_EQ(back64->size(), __CONST_RING_SIZE(blkif, bytes));
    auto back32 = BackRing<blk::x86_32::Request, blk::x86_32::Response>::Create(memory);
    ASSERT_TRUE(back32.has_value());
    EXPECT_EQ(back32->size(), __CONST_RING_SIZE(blkif_x86_32, bytes));
  }
  // The familiar figures: 32 blkif entries in one page, 36 fit but round down.
  EXPECT_EQ(RingEntries(112, kPageSize), 32u);
  EXPECT_EQ(RingEntries(108, 16 * kPageSize), 512u);
}

TEST(RingLayout, RejectsPageCountsThatAreNotAPowerOfTwo) {
  for (size_t pages : {size_t{0}, size_t{3}, size_t{6}, size_t{12}, 2 * kMaxRingPages}) {
    EXPECT_FALSE(MakeRingGeometry(pages, 112).has_value()) << pages;
  }
  EXPECT_FALSE(MakeRingGeometry(1, kPageSize).has_value()) << "slot larger than the ring";
  EXPECT_TRUE(MakeRingGeometry(kMaxRingPages, 112).has_value());
}

}  // namespace
}  // namespace xpv::ring
