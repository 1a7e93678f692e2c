// BackRing<Req, Rsp>: the backend's end of a shared ring, over any RingMemory (direct or grant
// copy): the hardened consumer of requests. See ring_end.h for the protocol and the hardening.
//
//   auto ring = BackRing<blkif_request, blkif_response>::Create(memory);
//   Req batch[32];
//   XPV_ASSIGN_OR_RETURN(size_t n, ring->TakeRequests(batch));   // EPROTO: the frontend lied
//   for (size_t i = 0; i < n; ++i) { validate batch[i]; ...; ring->PutResponse(rsp); }
//   XPV_ASSIGN_OR_RETURN(bool notify, ring->PushResponses());
//   XPV_ASSIGN_OR_RETURN(bool more, ring->FinalCheckForRequests());
//
// Req and Rsp are trivially copyable ABI structs (for blkif, instantiate both layouts of
// xpv/abi/blkif.h and pick one from the `protocol` node). A request is copied once, into the
// caller's array, and the caller uses only that copy. Requests whose type depends on a field
// (blkif's operation) can be taken as raw slots and interpreted afterwards.
#pragma once

#include <array>
#include <cstring>
#include <span>
#include <type_traits>

#include "xpv/base/result.h"
#include "xpv/ring/ring_end.h"

namespace xpv::ring {

// The bytes of one ring slot, copied out. Interpret them with As<T>() once a field said what the
// slot holds.
template <size_t N>
struct RawSlot {
  alignas(8) std::array<std::byte, N> bytes;

  template <typename T>
  T As() const {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= N);
    T v;
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
  }
};

template <typename Req, typename Rsp>
class BackRing {
  static_assert(std::is_trivially_copyable_v<Req> && std::is_trivially_copyable_v<Rsp>);

 public:
  static constexpr size_t kSlotSize = kRingSlotSize<Req, Rsp>;
  using Slot = RawSlot<kSlotSize>;

  // Attaches to a ring whose indices stand at `start` (BACK_RING_ATTACH). `memory` must outlive
  // the ring. EINVAL for a page count that is not a power of two in [1, kMaxRingPages].
  static Result<BackRing> Create(RingMemory& memory, uint32_t start = 0) {
    XPV_ASSIGN_OR_RETURN(RingEnd end, RingEnd::Create(memory, RingSide::kBack, kSlotSize, start));
    return BackRing(std::move(end));
  }

  uint32_t size() const { return end_.size(); }
  uint32_t req_cons() const { return end_.consumed(); }
  uint32_t rsp_prod_pvt() const { return end_.produced(); }
  // Requests taken and not yet answered: how many PutResponse accepts.
  uint32_t outstanding() const { return end_.producible(); }
  bool broken() const { return end_.broken(); }

  // Copies up to out.size() new requests into `out` (also bounded by free response slots) and
  // returns how many. EPROTO if the frontend's req_prod lies; the ring then refuses all work
  // until Reset.
  Result<size_t> TakeRequests(std::span<Req> out) {
    return end_.Take(reinterpret_cast<std::byte*>(out.data()), sizeof(Req), sizeof(Req),
                     out.size());
  }
  // The same, whole slots: read a discriminating field, then As<T>() the right request type.
  Result<size_t> TakeRequestSlots(std::span<Slot> out) {
    return end_.Take(reinterpret_cast<std::byte*>(out.data()), kSlotSize, sizeof(Slot), out.size());
  }

  // Stages the response to the oldest unanswered request. CHECK: outstanding() > 0.
  void PutResponse(const Rsp& rsp) { end_.Put(std::as_bytes(std::span(&rsp, 1))); }
  // Publishes staged responses, then rsp_prod; true if the frontend wants an event.
  Result<bool> PushResponses() { return end_.Push(); }
  // RING_FINAL_CHECK_FOR_REQUESTS: true if requests are waiting.
  Result<bool> FinalCheckForRequests() { return end_.FinalCheck(); }
  void Reset(uint32_t start = 0) { end_.Reset(start); }

 private:
  explicit BackRing(RingEnd end) : end_(std::move(end)) {}
  RingEnd end_;
};

}  // namespace xpv::ring
