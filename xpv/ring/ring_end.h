// RingEnd: one end of a shared ring, untyped (slot bytes, sizes chosen at run time). FrontRing and
// BackRing (front_ring.h, back_ring.h) are typed faces of it; use RingEnd directly when the slot
// layout is only known at run time.
//
// The two ends are mirror images. The front produces requests and consumes responses; the back
// consumes requests and produces responses:
//                       front              back
//   produces index      req_prod           rsp_prod
//   peer's event        req_event          rsp_event     (checked when pushing)
//   consumes index      rsp_prod           req_prod
//   own event           rsp_event          req_event     (set by the final check)
//   may consume         responses to       requests while a response slot is free
//                       requests it made   (RING_REQUEST_CONS_OVERFLOW)
//   may produce         while a slot is    one response per request taken
//                       free (RING_FULL)
//
// Hardening, for a peer that is hostile:
//  - the peer's producer index is read once per batch, from a snapshot; each item is copied once,
//    into the caller's memory, by the same RingMemory access;
//  - a producer index that claims more than the ring can hold (back: req_prod - rsp_prod_pvt >
//    size, ring.h's RING_REQUEST_PROD_OVERFLOW, which implies req_prod - req_cons > size; front:
//    more responses than requests outstanding) is a protocol error: EPROTO, and every later call
//    fails with EPROTO until Reset. Nothing past the bound is ever processed;
//  - our own producer index is kept privately; the shared copy is only ever written.
// Every loop is bounded by the ring size or the caller's batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/ring/ring_layout.h"
#include "xpv/ring/ring_memory.h"

namespace xpv::ring {

enum class RingSide : uint8_t { kFront, kBack };

class RingEnd {
 public:
  // Attaches to a ring whose indices all stand at `start` (ring.h's FRONT/BACK_RING_ATTACH; 0 for
  // a fresh ring). `memory` must outlive the RingEnd. EINVAL if the page count is not a power of
  // two in [1, kMaxRingPages] or a slot does not fit.
  static Result<RingEnd> Create(RingMemory& memory, RingSide side, size_t slot_size,
                                uint32_t start = 0);

  // Initialises the shared header as ring.h's SHARED_RING_INIT does (indices 0, events 1, pads
  // zeroed) and attaches at index 0. For the end that owns the pages (the front).
  static Result<RingEnd> CreateAndInitShared(RingMemory& memory, RingSide side, size_t slot_size);

  RingSide side() const { return side_; }
  const RingGeometry& geometry() const { return geo_; }
  uint32_t size() const { return geo_.entries; }
  // Private indices (ring.h's req_prod_pvt/rsp_cons or rsp_prod_pvt/req_cons).
  uint32_t produced() const { return prod_pvt_; }
  uint32_t consumed() const { return cons_; }
  // How many items Put accepts now: front, free request slots (RING_FREE_REQUESTS); back,
  // requests taken and not yet answered.
  uint32_t producible() const;
  // True after a protocol error, until Reset.
  bool broken() const { return broken_; }

  // Consumes up to `max` items published by the peer. Item i's first `item_size` bytes are copied
  // to `out + i * stride` (item_size <= slot_size); memory there past the returned count is
  // clobbered. Reads the peer's index once, with the slots, in one RingMemory::Read.
  Result<size_t> Take(std::byte* out, size_t item_size, size_t stride, size_t max);

  // Stages one item (at most slot_size bytes) in the next slot; the peer sees it after Push.
  // A caller bug (CHECK) when producible() is 0.
  void Put(std::span<const std::byte> item);

  // Writes the staged items, then our producer index; returns whether the peer asked to be
  // notified (RING_PUSH_*_AND_CHECK_NOTIFY: (new - event) < (new - old)). Nothing staged: false,
  // and the ring is not touched.
  Result<bool> Push();

  // RING_FINAL_CHECK_FOR_*: true if items are waiting (do not sleep). Otherwise sets our event to
  // consumed() + 1 so the peer notifies on its next item, and checks again after a full barrier.
  // A back end with no free response slot reports no work: push responses, then check again.
  Result<bool> FinalCheck();

  // Forgets a protocol error and everything staged; all indices stand at `start` again.
  void Reset(uint32_t start = 0);

 private:
  RingEnd(RingMemory& memory, RingSide side, RingGeometry geo, uint32_t start);
  RingIndex produce_index() const;
  RingIndex own_event_index() const;
  uint32_t peer_prod(const RingIndices& idx) const;
  uint32_t peer_event(const RingIndices& idx) const;
  // How many items the peer's index makes available to Take, bounded as ring.h bounds it; EPROTO
  // (and broken) if the index lies.
  Result<uint32_t> Available(const RingIndices& idx);

  RingMemory* memory_;
  RingSide side_;
  RingGeometry geo_;
  uint32_t prod_pvt_ = 0;  // next slot we produce into
  uint32_t pushed_ = 0;    // the producer index we last published
  uint32_t cons_ = 0;      // next slot we consume
  bool broken_ = false;
  std::vector<std::byte> stage_;  // one slot per entry: staged items
  std::vector<RingWrite> writes_;
  std::vector<RingRead> reads_;
};

}  // namespace xpv::ring
