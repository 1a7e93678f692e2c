#include "xpv/ring/ring_end.h"

#include <algorithm>
#include <cstring>

#include "xpv/base/check.h"

namespace xpv::ring {

Result<RingEnd> RingEnd::Create(RingMemory& memory, RingSide side, size_t slot_size,
                                uint32_t start) {
  XPV_ASSIGN_OR_RETURN(RingGeometry geo, MakeRingGeometry(memory.page_count(), slot_size));
  return RingEnd(memory, side, geo, start);
}

Result<RingEnd> RingEnd::CreateAndInitShared(RingMemory& memory, RingSide side, size_t slot_size) {
  XPV_ASSIGN_OR_RETURN(RingEnd end, Create(memory, side, slot_size, 0));
  // SHARED_RING_INIT: producers 0, events 1, pvt and padding zeroed.
  SharedRingHeader h{};
  h.req_event = 1;
  h.rsp_event = 1;
  const RingWrite header{0, std::as_bytes(std::span(&h, 1))};
  RingIndices after;
  XPV_TRY(memory.Publish({&header, 1}, end.produce_index(), 0, after));
  return end;
}

RingEnd::RingEnd(RingMemory& memory, RingSide side, RingGeometry geo, uint32_t start)
    : memory_(&memory), side_(side), geo_(geo), stage_(geo.entries * geo.slot_size) {
  Reset(start);
}

void RingEnd::Reset(uint32_t start) {
  prod_pvt_ = pushed_ = cons_ = start;
  broken_ = false;
  writes_.clear();
  reads_.clear();
}

RingIndex RingEnd::produce_index() const {
  return side_ == RingSide::kFront ? RingIndex::kReqProd : RingIndex::kRspProd;
}
RingIndex RingEnd::own_event_index() const {
  return side_ == RingSide::kFront ? RingIndex::kRspEvent : RingIndex::kReqEvent;
}
uint32_t RingEnd::peer_prod(const RingIndices& idx) const {
  return side_ == RingSide::kFront ? idx.rsp_prod : idx.req_prod;
}
uint32_t RingEnd::peer_event(const RingIndices& idx) const {
  return side_ == RingSide::kFront ? idx.req_event : idx.rsp_event;
}

uint32_t RingEnd::producible() const {
  if (side_ == RingSide::kFront) return size() - (prod_pvt_ - cons_);  // RING_FREE_REQUESTS
  return cons_ - prod_pvt_;  // requests taken, not yet answered
}

Result<uint32_t> RingEnd::Available(const RingIndices& idx) {
  const uint32_t prod = peer_prod(idx);
  if (side_ == RingSide::kBack) {
    // RING_REQUEST_PROD_OVERFLOW: a frontend may have at most `size` requests without a response
    // it has seen, and it has seen no more than rsp_prod_pvt.
    if (prod - prod_pvt_ > size()) {
      broken_ = true;
      return Err(EPROTO, "frontend's req_prod is beyond what the ring holds");
    }
    // XEN_RING_NR_UNCONSUMED_REQUESTS: published, and a response slot free for each.
    return std::min(prod - cons_, size() - (cons_ - prod_pvt_));
  }
  // A backend answers only requests it was given (this implies RING_RESPONSE_PROD_OVERFLOW).
  if (prod - cons_ > prod_pvt_ - cons_) {
    broken_ = true;
    return Err(EPROTO, "backend's rsp_prod is beyond the requests made");
  }
  return prod - cons_;
}

Result<size_t> RingEnd::Take(std::byte* out, size_t item_size, size_t stride, size_t max) {
  XPV_CHECK(item_size <= geo_.slot_size && (max <= 1 || stride >= item_size));
  if (broken_) return Err(EPROTO, "ring broken by a protocol error");
  // Speculatively copy as many slots as we could take, with the index, in one access; only those
  // the index covers are taken. Back: no more than free response slots.
  const uint32_t room = side_ == RingSide::kBack ? size() - (cons_ - prod_pvt_) : prod_pvt_ - cons_;
  const size_t n = std::min<size_t>(max, room);
  reads_.clear();
  for (size_t i = 0; i < n; ++i) {
    reads_.push_back({geo_.SlotOffset(cons_ + static_cast<uint32_t>(i)),
                      std::span(out + i * stride, item_size)});
  }
  RingIndices idx;
  Status read = memory_->Read(idx, reads_);
  reads_.clear();
  XPV_TRY(read);
  XPV_ASSIGN_OR_RETURN(uint32_t available, Available(idx));
  const size_t taken = std::min<size_t>(n, available);
  cons_ += static_cast<uint32_t>(taken);
  return taken;
}

void RingEnd::Put(std::span<const std::byte> item) {
  XPV_CHECK(producible() > 0 && item.size() <= geo_.slot_size);
  const size_t slot = prod_pvt_ & (size() - 1);
  std::byte* staged = stage_.data() + slot * geo_.slot_size;
  std::memcpy(staged, item.data(), item.size());
  writes_.push_back({geo_.SlotOffset(prod_pvt_), std::span(staged, item.size())});
  ++prod_pvt_;
}

Result<bool> RingEnd::Push() {
  if (broken_) return Err(EPROTO, "ring broken by a protocol error");
  if (prod_pvt_ == pushed_) return false;
  const uint32_t old_prod = pushed_, new_prod = prod_pvt_;
  RingIndices after;
  Status published = memory_->Publish(writes_, produce_index(), new_prod, after);
  if (!published) return published.error();  // staged items stay; a later Push retries them
  writes_.clear();
  pushed_ = new_prod;
  // RING_PUSH_*_AND_CHECK_NOTIFY. `old` is our own last value, not the shared copy a peer can
  // scribble on; for an honest peer they are equal.
  return static_cast<uint32_t>(new_prod - peer_event(after)) <
         static_cast<uint32_t>(new_prod - old_prod);
}

Result<bool> RingEnd::FinalCheck() {
  if (broken_) return Err(EPROTO, "ring broken by a protocol error");
  RingIndices idx;
  XPV_TRY(memory_->Read(idx, {}));
  XPV_ASSIGN_OR_RETURN(uint32_t available, Available(idx));
  if (available > 0) return true;
  XPV_TRY(memory_->Publish({}, own_event_index(), cons_ + 1, idx));
  XPV_ASSIGN_OR_RETURN(available, Available(idx));
  return available > 0;
}

}  // namespace xpv::ring
