// INTEROP: our rings against Xen's own ring.h macros, over the same memory.
//
// Two worlds run the same random traffic in lockstep. World A is Xen's macros at both ends (the
// reference). World B has our FrontRing and/or BackRing at one or both ends, Xen's macros at the
// other. After every step the two worlds must agree on every request and response delivered,
// every notify and final-check decision, and every byte of the shared ring. The indices start
// just below UINT32_MAX, so they wrap early on.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "xpv/ring/back_ring.h"
#include "xpv/ring/front_ring.h"
#include "xpv/ring/testing/test_pages.h"
#include "xpv/ring/testing/xen_ring_macros.h"

namespace xpv::ring {
namespace {

using testing::PageLayout;
using testing::TestPages;

template <typename Req, typename Rsp>
struct FrontEnd {
  virtual ~FrontEnd() = default;
  virtual uint32_t Free() = 0;
  virtual void Put(const Req& r) = 0;
  virtual bool Push() = 0;
  virtual std::vector<Rsp> Take(size_t max) = 0;
  virtual bool FinalCheck() = 0;
};

template <typename Req, typename Rsp>
struct BackEnd {
  virtual ~BackEnd() = default;
  virtual std::vector<Req> Take(size_t max) = 0;
  virtual void Put(const Rsp& r) = 0;
  virtual bool Push() = 0;
  virtual bool FinalCheck() = 0;
};

// Xen's macros, over one contiguous block. XF/XB/XS: the macros' front, back and sring types.
template <typename XF, typename XS, typename Req, typename Rsp>
struct XenFront : FrontEnd<Req, Rsp> {
  XenFront(uint8_t* mem, size_t bytes, uint32_t start) {
    FRONT_RING_ATTACH(&r, reinterpret_cast<XS*>(mem), start, bytes);
  }
  uint32_t Free() override { return RING_FREE_REQUESTS(&r); }
  void Put(const Req& q) override {
    std::memcpy(RING_GET_REQUEST(&r, r.req_prod_pvt), &q, sizeof q);
    r.req_prod_pvt++;
  }
  bool Push() override {
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&r, notify);
    return notify;
  }
  std::vector<Rsp> Take(size_t max) override {
    std::vector<Rsp> out;
    RING_IDX rp = r.sring->rsp_prod;
    rmb();
    RING_IDX rc = r.rsp_cons;
    for (; rc != rp && out.size() < max; ++rc) {
      Rsp s;
      std::memcpy(&s, RING_GET_RESPONSE(&r, rc), sizeof s);
      out.push_back(s);
    }
    r.rsp_cons = rc;
    return out;
  }
  bool FinalCheck() override {
    int work;
    RING_FINAL_CHECK_FOR_RESPONSES(&r, work);
    return work;
  }
  XF r;
};

template <typename XB, typename XS, typename Req, typename Rsp>
struct XenBack : BackEnd<Req, Rsp> {
  XenBack(uint8_t* mem, size_t bytes, uint32_t start) {
    BACK_RING_ATTACH(&r, reinterpret_cast<XS*>(mem), start, bytes);
  }
  std::vector<Req> Take(size_t max) override {
    std::vector<Req> out;
    RING_IDX rp = r.sring->req_prod;
    rmb();
    RING_IDX rc = r.req_cons;
    while (rc != rp && !RING_REQUEST_CONS_OVERFLOW(&r, rc) && out.size() < max) {
      Req q;
      std::memcpy(&q, RING_GET_REQUEST(&r, rc), sizeof q);
      out.push_back(q);
      ++rc;
    }
    r.req_cons = rc;
    return out;
  }
  void Put(const Rsp& s) override {
    std::memcpy(RING_GET_RESPONSE(&r, r.rsp_prod_pvt), &s, sizeof s);
    r.rsp_prod_pvt++;
  }
  bool Push() override {
    int notify;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&r, notify);
    return notify;
  }
  bool FinalCheck() override {
    int work;
    RING_FINAL_CHECK_FOR_REQUESTS(&r, work);
    return work;
  }
  XB r;
};

template <typename Req, typename Rsp>
struct OurFront : FrontEnd<Req, Rsp> {
  OurFront(std::span<uint8_t* const> pages, uint32_t start)
      : r(*FrontRing<Req, Rsp>::Create(pages, FrontInit::kAttach, start)) {}
  uint32_t Free() override { return r.free_requests(); }
  void Put(const Req& q) override { r.PutRequest(q); }
  bool Push() override { return *r.PushRequests(); }
  std::vector<Rsp> Take(size_t max) override {
    std::vector<Rsp> out(max);
    out.resize(*r.TakeResponses(out));
    return out;
  }
  bool FinalCheck() override { return *r.FinalCheckForResponses(); }
  FrontRing<Req, Rsp> r;
};

template <typename Req, typename Rsp>
struct OurBack : BackEnd<Req, Rsp> {
  OurBack(std::span<uint8_t* const> pages, uint32_t start)
      : memory(pages), r(*BackRing<Req, Rsp>::Create(memory, start)) {}
  std::vector<Req> Take(size_t max) override {
    std::vector<Req> out(max);
    auto n = r.TakeRequests(out);
    EXPECT_TRUE(n.has_value());
    out.resize(n.has_value() ? *n : 0);
    return out;
  }
  void Put(const Rsp& s) override { r.PutResponse(s); }
  bool Push() override { return *r.PushResponses(); }
  bool FinalCheck() override { return *r.FinalCheckForRequests(); }
  DirectRingMemory memory;
  BackRing<Req, Rsp> r;
};

enum class Side : uint8_t { kXen, kOurs };

template <typename XF, typename XB, typename XS, typename Req, typename Rsp>
void RunLockstep(size_t pages, Side front, Side back, uint32_t seed) {
  const size_t bytes = pages * kPageSize;
  const uint32_t start = UINT32_MAX - 40;
  // B's pages are scattered when no Xen macro needs them contiguous.
  const PageLayout layout = front == Side::kOurs && back == Side::kOurs ? PageLayout::kScattered
                                                                        : PageLayout::kContiguous;
  TestPages a(pages), b(pages, layout);
  for (TestPages* t : {&a, &b}) {
    // A fresh ring whose indices stand at `start`: SHARED_RING_INIT's state, shifted.
    t->SetIndex(0, start);
    t->SetIndex(4, start + 1);
    t->SetIndex(8, start);
    t->SetIndex(12, start + 1);
  }
  XenFront<XF, XS, Req, Rsp> fa(a.contiguous(), bytes, start);
  XenBack<XB, XS, Req, Rsp> ba(a.contiguous(), bytes, start);
  std::unique_ptr<FrontEnd<Req, Rsp>> fb;
  std::unique_ptr<BackEnd<Req, Rsp>> bb;
  if (front == Side::kOurs) {
    fb = std::make_unique<OurFront<Req, Rsp>>(b.pages(), start);
  } else {
    fb = std::make_unique<XenFront<XF, XS, Req, Rsp>>(b.contiguous(), bytes, start);
  }
  if (back == Side::kOurs) {
    bb = std::make_unique<OurBack<Req, Rsp>>(b.pages(), start);
  } else {
    bb = std::make_unique<XenBack<XB, XS, Req, Rsp>>(b.contiguous(), bytes, start);
  }

  std::mt19937 rng(seed);
  std::deque<Req> pending_a, pending_b;  // taken by the back, not yet answered
  uint64_t next_id = 1;
  std::vector<uint8_t> ra(bytes), rb(bytes);
  size_t notifies = 0, suppressed = 0, wraps = 0;
  uint32_t last_prod = start;
  bool staged_req = false, staged_rsp = false;  // put, not yet pushed
  for (int step = 0; step < 4000; ++step) {
    SCOPED_TRACE(step);
    switch (rng() % 6) {
      case 0: {  // the front queues requests, and sometimes pushes
        ASSERT_EQ(fa.Free(), fb->Free());
        const uint32_t k = fa.Free() == 0 ? 0 : rng() % (fa.Free() + 1);
        for (uint32_t i = 0; i < k; ++i) {
          Req q;
          std::memset(&q, static_cast<int>(next_id * 7), sizeof q);
          q.operation = BLKIF_OP_READ;
          q.id = next_id++;
          fa.Put(q);
          fb->Put(q);
          staged_req = true;
        }
        if (rng() % 3 != 0) {
          staged_req = false;
          const bool na = fa.Push();
          ASSERT_EQ(na, fb->Push()) << "RING_PUSH_REQUESTS_AND_CHECK_NOTIFY";
          (na ? notifies : suppressed)++;
        }
        break;
      }
      case 1: {  // the back takes a batch
        const size_t max = rng() % 12;
        auto qa = ba.Take(max), qb = bb->Take(max);
        ASSERT_EQ(qa.size(), qb.size());
        for (size_t i = 0; i < qa.size(); ++i) {
          ASSERT_EQ(0, std::memcmp(&qa[i], &qb[i], sizeof(Req)));
          pending_a.push_back(qa[i]);
          pending_b.push_back(qb[i]);
        }
        break;
      }
      case 2: {  // the back answers some, and sometimes pushes
        const size_t k = pending_a.empty() ? 0 : rng() % (pending_a.size() + 1);
        for (size_t i = 0; i < k; ++i) {
          Rsp s;
          std::memset(&s, 0, sizeof s);
          s.id = pending_a.front().id;
          s.operation = pending_a.front().operation;
          s.status = BLKIF_RSP_OKAY;
          ba.Put(s);
          bb->Put(s);
          pending_a.pop_front();
          pending_b.pop_front();
          staged_rsp = true;
        }
        if (rng() % 3 != 0) {
          staged_rsp = false;
          const bool na = ba.Push();
          ASSERT_EQ(na, bb->Push()) << "RING_PUSH_RESPONSES_AND_CHECK_NOTIFY";
          (na ? notifies : suppressed)++;
        }
        break;
      }
      case 3:
        ASSERT_EQ(ba.FinalCheck(), bb->FinalCheck()) << "RING_FINAL_CHECK_FOR_REQUESTS";
        break;
      case 4: {
        const size_t max = rng() % 12;
        auto sa = fa.Take(max), sb = fb->Take(max);
        ASSERT_EQ(sa.size(), sb.size());
        for (size_t i = 0; i < sa.size(); ++i) {
          ASSERT_EQ(0, std::memcmp(&sa[i], &sb[i], sizeof(Rsp)));
        }
        break;
      }
      case 5:
        ASSERT_EQ(fa.FinalCheck(), fb->FinalCheck()) << "RING_FINAL_CHECK_FOR_RESPONSES";
        break;
    }
    // The shared ring agrees byte for byte: indices and events always; the slots too once nothing
    // is staged (Xen's macros write a slot at once, ours at the push; the peer can't tell).
    a.ReadAt(0, ra.data(), bytes);
    b.ReadAt(0, rb.data(), bytes);
    const size_t compared = staged_req || staged_rsp ? sizeof(RingIndices) : bytes;
    for (size_t i = 0; i < compared; ++i) {
      ASSERT_EQ(ra[i], rb[i]) << "ring byte " << i << " differs";
    }
    const uint32_t prod = a.Index(0);
    if (prod < last_prod) ++wraps;
    last_prod = prod;
  }
  EXPECT_TRUE(b.GuardsIntact());
  EXPECT_GE(wraps, 1u) << "the indices wrapped";
  EXPECT_GT(notifies, 0u);
  EXPECT_GT(suppressed, 0u);
}

namespace blk = abi::blkif;
using Req64 = blk::x86_64::Request;
using Rsp64 = blk::x86_64::Response;
using Req32 = blk::x86_32::Request;
using Rsp32 = blk::x86_32::Response;

void Run64(size_t pages, Side front, Side back) {
  RunLockstep<blkif_front_ring_t, blkif_back_ring_t, blkif_sring_t, Req64, Rsp64>(pages, front,
                                                                                  back, 42);
}
void Run32(size_t pages, Side front, Side back) {
  RunLockstep<blkif_x86_32_front_ring_t, blkif_x86_32_back_ring_t, blkif_x86_32_sring_t, Req32,
              Rsp32>(pages, front, back, 7);
}

TEST(RingInterop, XenFrontendOurBackRing) {
  for (size_t pages : {1, 2, 4}) Run64(pages, Side::kXen, Side::kOurs);
}
TEST(RingInterop, OurFrontRingXenBackend) {
  for (size_t pages : {1, 2, 4}) Run64(pages, Side::kOurs, Side::kXen);
}
TEST(RingInterop, OurRingsBothEndsOnScatteredPagesMatchXen) {
  for (size_t pages : {1, 4, 16}) Run64(pages, Side::kOurs, Side::kOurs);
}
TEST(RingInterop, X86_32LayoutSlotsCrossingPagesMatchXen) {
  for (size_t pages : {1, 2, 8}) {
    Run32(pages, Side::kXen, Side::kOurs);
    Run32(pages, Side::kOurs, Side::kXen);
    Run32(pages, Side::kOurs, Side::kOurs);
  }
}

}  // namespace
}  // namespace xpv::ring
