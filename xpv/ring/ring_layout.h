// The layout of a Xen shared ring (public/io/ring.h), independent of the request and response
// types.
//
// A ring is `nr_pages` pages (a power of two, up to kMaxRingPages) that start with a 64-byte
// header {req_prod, req_event, rsp_prod, rsp_event, pvt[4], pad[44]} followed by the entries. An
// entry is one slot of a union of the request and the response (its size: max of the two, rounded
// to the union's alignment); the entry count is the largest power of two that fits in
// `nr_pages * 4096 - 64` bytes (ring.h's __RING_SIZE / __CONST_RING_SIZE), so indices are masked.
// Indices are free-running 32-bit counters (RING_IDX) that wrap.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "xpv/base/result.h"
#include "xpv/base/types.h"

namespace xpv::ring {

inline constexpr size_t kRingHeaderSize = 64;
// Linux's xen-blkfront negotiates up to 16 pages (XENBUS_MAX_RING_GRANT_ORDER 4); we accept more.
inline constexpr size_t kMaxRingPages = 256;

// The four shared indices, as one snapshot of the header.
struct RingIndices {
  uint32_t req_prod = 0;
  uint32_t req_event = 0;
  uint32_t rsp_prod = 0;
  uint32_t rsp_event = 0;
};

// One index of the header; its byte offset is 4 * the enumerator.
enum class RingIndex : uint8_t { kReqProd = 0, kReqEvent = 1, kRspProd = 2, kRspEvent = 3 };
constexpr size_t RingIndexOffset(RingIndex i) {
  return 4 * static_cast<size_t>(i);
}

// The header as it lies in the first page (ring.h's struct __name##_sring minus the entries).
struct SharedRingHeader {
  uint32_t req_prod;
  uint32_t req_event;
  uint32_t rsp_prod;
  uint32_t rsp_event;
  uint8_t pvt[4];
  uint8_t pad[44];
};
static_assert(sizeof(SharedRingHeader) == kRingHeaderSize);
static_assert(offsetof(SharedRingHeader, rsp_event) == RingIndexOffset(RingIndex::kRspEvent));

// ring.h's sring_entry: the size of this union is the slot size.
template <typename Req, typename Rsp>
union RingEntry {
  Req req;
  Rsp rsp;
};

template <typename Req, typename Rsp>
inline constexpr size_t kRingSlotSize = sizeof(RingEntry<Req, Rsp>);

// __RING_SIZE for a ring of `ring_bytes` bytes (header included) and `slot_size`-byte entries:
// the largest power of two that fits, or 0 when not even one entry fits.
constexpr uint32_t RingEntries(size_t slot_size, size_t ring_bytes) {
  if (slot_size == 0 || ring_bytes < kRingHeaderSize) return 0;
  const size_t fit = (ring_bytes - kRingHeaderSize) / slot_size;
  return fit == 0 ? 0 : std::bit_floor(static_cast<uint32_t>(fit > UINT32_MAX ? UINT32_MAX : fit));
}

// Where a ring's entries lie.
struct RingGeometry {
  size_t page_count = 0;
  size_t slot_size = 0;
  uint32_t entries = 0;  // a power of two

  size_t bytes() const { return page_count * kPageSize; }
  // The byte offset of the entry for free-running index `idx`.
  size_t SlotOffset(uint32_t idx) const {
    return kRingHeaderSize + static_cast<size_t>(idx & (entries - 1)) * slot_size;
  }
};

// EINVAL unless page_count is a power of two in [1, kMaxRingPages] and an entry fits. The page
// count usually comes from the peer (blkif's ring-page-order), hence a Result.
inline Result<RingGeometry> MakeRingGeometry(size_t page_count, size_t slot_size) {
  if (page_count == 0 || page_count > kMaxRingPages || !std::has_single_bit(page_count)) {
    return Err(EINVAL, "ring page count is not a power of two in [1, kMaxRingPages]");
  }
  const uint32_t entries = RingEntries(slot_size, page_count * kPageSize);
  if (entries == 0) return Err(EINVAL, "ring slot larger than the ring");
  return RingGeometry{page_count, slot_size, entries};
}

}  // namespace xpv::ring
