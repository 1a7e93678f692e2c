// FrontRing<Req, Rsp>: the frontend's end of a shared ring, over its own pages (direct memory).
// See ring_end.h for the protocol. The frontend is hardened too: a backend that publishes more
// responses than requests were made breaks the ring (EPROTO) instead of being believed.
//
//   auto ring = FrontRing<Req, Rsp>::Create(pages);        // SHARED_RING_INIT + FRONT_RING_INIT
//   ring->PutRequest(req);
//   if (*ring->PushRequests()) Notify(port);
//   size_t n = *ring->TakeResponses(responses);
//   bool more = *ring->FinalCheckForResponses();
#pragma once

#include <memory>
#include <span>
#include <type_traits>

#include "xpv/base/result.h"
#include "xpv/ring/ring_end.h"
#include "xpv/ring/ring_memory.h"

namespace xpv::ring {

enum class FrontInit : uint8_t {
  kInitShared,  // write the shared header as SHARED_RING_INIT does, attach at index 0
  kAttach,      // leave the header alone, attach at `start` (FRONT_RING_ATTACH)
};

template <typename Req, typename Rsp>
class FrontRing {
  static_assert(std::is_trivially_copyable_v<Req> && std::is_trivially_copyable_v<Rsp>);

 public:
  static constexpr size_t kSlotSize = kRingSlotSize<Req, Rsp>;

  // `pages`: the ring's pages in order, each mapped while the ring is used; need not be adjacent.
  static Result<FrontRing> Create(std::span<uint8_t* const> pages,
                                  FrontInit init = FrontInit::kInitShared, uint32_t start = 0) {
    auto memory = std::make_unique<DirectRingMemory>(pages);
    if (init == FrontInit::kInitShared) {
      XPV_ASSIGN_OR_RETURN(RingEnd end,
                           RingEnd::CreateAndInitShared(*memory, RingSide::kFront, kSlotSize));
      return FrontRing(std::move(memory), std::move(end));
    }
    XPV_ASSIGN_OR_RETURN(RingEnd end, RingEnd::Create(*memory, RingSide::kFront, kSlotSize, start));
    return FrontRing(std::move(memory), std::move(end));
  }

  uint32_t size() const { return end_.size(); }
  uint32_t req_prod_pvt() const { return end_.produced(); }
  uint32_t rsp_cons() const { return end_.consumed(); }
  uint32_t free_requests() const { return end_.producible(); }  // RING_FREE_REQUESTS
  bool full() const { return free_requests() == 0; }            // RING_FULL
  bool broken() const { return end_.broken(); }

  // Stages a request in the next slot. CHECK: !full().
  void PutRequest(const Req& req) { end_.Put(std::as_bytes(std::span(&req, 1))); }
  // Publishes staged requests, then req_prod; true if the backend wants an event.
  Result<bool> PushRequests() { return end_.Push(); }
  // Copies up to out.size() responses into `out`; EPROTO if the backend's rsp_prod lies.
  Result<size_t> TakeResponses(std::span<Rsp> out) {
    return end_.Take(reinterpret_cast<std::byte*>(out.data()), sizeof(Rsp), sizeof(Rsp),
                     out.size());
  }
  // RING_FINAL_CHECK_FOR_RESPONSES: true if responses are waiting.
  Result<bool> FinalCheckForResponses() { return end_.FinalCheck(); }

 private:
  FrontRing(std::unique_ptr<DirectRingMemory> memory, RingEnd end)
      : memory_(std::move(memory)), end_(std::move(end)) {}
  std::unique_ptr<DirectRingMemory> memory_;  // heap: end_ points at it, and FrontRing moves
  RingEnd end_;
};

}  // namespace xpv::ring
