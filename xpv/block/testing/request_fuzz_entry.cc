#include "xpv/block/testing/request_fuzz_entry.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "xpv/block/request.h"

namespace xpv::block::testing {

void FuzzRequestOnce(const uint8_t* data, size_t size) {
  namespace blkif = abi::blkif;
  if (size < 1) return;
  const uint8_t knobs = data[0];
  const auto protocol = (knobs & 1) ? blkif::Protocol::kX86_32 : blkif::Protocol::kX86_64;
  RequestLimits limits;
  limits.disk_sectors = (knobs & 2) ? ~uint64_t{0} : 2048;
  limits.access = (knobs & 4) ? Access::kReadOnly : Access::kReadWrite;
  limits.max_indirect_segments = (knobs & 8) ? 0 : ((knobs & 16) ? 4096 : 256);
  limits.discard = static_cast<DiscardSupport>((knobs >> 5) % 3);
  limits.logical_sector_size = (knobs & 0x80) ? 4096 : 512;

  // The slot, zero-padded when the input is short (the ring layer always hands over a full one).
  std::vector<std::byte> slot(RequestSize(protocol));
  const size_t slot_bytes = std::min(size - 1, slot.size());
  std::memcpy(slot.data(), data + 1, slot_bytes);
  uint64_t raw_id = 0;
  std::memcpy(&raw_id, slot.data() + (protocol == blkif::Protocol::kX86_64 ? 8 : 4), 8);

  auto checked = [&](const BlockRequest& r) {
    XPV_CHECK(r.id == raw_id);
    uint64_t sectors = 0;
    for (const Segment& s : r.segments) {
      XPV_CHECK(s.length > 0 && s.length % 512 == 0);
      XPV_CHECK(size_t{s.offset} + s.length <= kPageSize);
      if (limits.logical_sector_size == 4096) XPV_CHECK(s.offset == 0 && s.length == 4096);
      sectors += s.length / 512;
    }
    if (r.op != BlockOp::kDiscard) XPV_CHECK(sectors == r.nr_sectors);
    if (r.nr_sectors > 0) {
      XPV_CHECK(r.sector <= limits.disk_sectors && r.nr_sectors <= limits.disk_sectors - r.sector);
    }
    if (limits.access == Access::kReadOnly) XPV_CHECK(r.op == BlockOp::kRead);
  };

  auto parsed = ParseRequest(slot, protocol, limits);
  if (!parsed) {
    XPV_CHECK(parsed.error().id == raw_id);
    XPV_CHECK(!parsed.error().error.message.empty());
    return;
  }
  BlockRequest& r = *parsed;
  if (!r.is_indirect()) {
    checked(r);
    return;
  }
  XPV_CHECK(r.indirect_segments > 0 && r.indirect_segments <= limits.max_indirect_segments);
  XPV_CHECK(r.indirect_pages.size() == (r.indirect_segments + 511u) / 512u);
  // The rest of the input fills the indirect pages; zeros beyond it.
  std::vector<std::byte> pages(r.indirect_pages.size() * kPageSize);
  const size_t rest = size - 1 - slot_bytes;
  std::memcpy(pages.data(), data + 1 + slot_bytes, std::min(rest, pages.size()));
  auto segs = ParseIndirectSegments(r, pages, limits);
  if (!segs) {
    XPV_CHECK(segs.error().id == raw_id && r.segments.empty());
    return;
  }
  XPV_CHECK(r.segments.size() == r.indirect_segments);
  checked(r);
}

}  // namespace xpv::block::testing
