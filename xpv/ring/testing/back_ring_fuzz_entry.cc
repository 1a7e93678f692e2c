#include "xpv/ring/testing/back_ring_fuzz_entry.h"

#include <cstring>
#include <vector>

#include "xpv/abi/blkif.h"
#include "xpv/base/check.h"
#include "xpv/base/testing/fuzz_reader.h"
#include "xpv/ring/back_ring.h"
#include "xpv/ring/testing/test_pages.h"

namespace xpv::ring::testing {
namespace {

using Reader = xpv::testing::FuzzReader;

volatile uint64_t sink;

template <typename Req, typename Discard, typename Rsp>
void Run(Reader& in, size_t nr_pages, uint32_t start) {
  using Ring = BackRing<Req, Rsp>;
  TestPages pages(nr_pages, PageLayout::kScattered);
  DirectRingMemory memory(pages.pages());
  auto created = Ring::Create(memory, start);
  XPV_CHECK(created.has_value());
  Ring ring = std::move(*created);
  const uint32_t size = ring.size();
  std::vector<typename Ring::Slot> slots(size + 8);
  std::vector<Req> reqs(size + 8);

  for (int step = 0; step < 512 && !in.done(); ++step) {
    switch (in.u8() % 8) {
      case 0: {  // the frontend writes an index: anything, or req_prod a little ahead
        const uint8_t how = in.u8();
        if (how & 0x80) {
          pages.SetIndex(4 * (how % 4), in.u32());
        } else {
          pages.SetIndex(0, ring.req_cons() + in.u8() % (size + 2));
        }
        break;
      }
      case 1: {  // the frontend writes bytes into a slot
        const uint32_t slot = in.u32() % size;
        const size_t len = in.u8() % (Ring::kSlotSize + 1);
        uint8_t bytes[256];
        for (size_t i = 0; i < len; ++i) bytes[i] = in.u8();
        pages.WriteAt(kRingHeaderSize + slot * Ring::kSlotSize, bytes, len);
        break;
      }
      case 2:
      case 3: {  // the backend takes a batch, typed or raw
        const bool broken = ring.broken();
        const uint32_t before = ring.req_cons();
        const size_t max = in.u8() % (size + 8);
        const bool raw = (in.u8() & 1) != 0;
        auto n = raw ? ring.TakeRequestSlots(std::span(slots).first(max))
                     : ring.TakeRequests(std::span(reqs).first(max));
        XPV_CHECK(!broken || !n.has_value());
        if (n.has_value()) {
          XPV_CHECK(*n <= max);
          XPV_CHECK(ring.req_cons() - before == *n);
          // Raw slots: look at `operation`, then reinterpret the copy, as blkback does.
          for (size_t i = 0; raw && i < *n; ++i) {
            const uint8_t op = slots[i].template As<Req>().operation;
            sink = sink + (op == BLKIF_OP_DISCARD ? slots[i].template As<Discard>().nr_sectors
                                                  : slots[i].template As<Req>().sector_number);
          }
        } else {
          XPV_CHECK(ring.broken() || n.error().code != EPROTO);
          XPV_CHECK(ring.req_cons() == before);
        }
        XPV_CHECK(ring.outstanding() <= size);
        break;
      }
      case 4: {  // the backend answers some
        const uint32_t k = in.u8() % (ring.outstanding() + 1);
        for (uint32_t i = 0; i < k; ++i) {
          Rsp r;
          std::memset(&r, 0, sizeof r);
          r.id = i;
          ring.PutResponse(r);
        }
        break;
      }
      case 5: {
        auto r = ring.PushResponses();
        XPV_CHECK(r.has_value() != ring.broken());
        break;
      }
      case 6: {
        const bool broken = ring.broken();
        auto r = ring.FinalCheckForRequests();
        XPV_CHECK(!broken || !r.has_value());
        break;
      }
      case 7:
        if (in.u8() < 16) ring.Reset(pages.Index(8));
        break;
    }
  }
  XPV_CHECK(pages.GuardsIntact());
}

}  // namespace

void FuzzBackRingOnce(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t shape = in.u8();
  const size_t nr_pages = size_t{1} << (shape % 4);  // 1, 2, 4, 8
  const uint32_t start = (shape & 0x10) ? UINT32_MAX - in.u8() : in.u8();
  if (shape & 0x20) {
    Run<abi::blkif::x86_32::Request, abi::blkif::x86_32::RequestDiscard,
        abi::blkif::x86_32::Response>(in, nr_pages, start);
  } else {
    Run<abi::blkif::x86_64::Request, abi::blkif::x86_64::RequestDiscard,
        abi::blkif::x86_64::Response>(in, nr_pages, start);
  }
}

}  // namespace xpv::ring::testing
