#include "xpv/ring/grant_copy_ring_memory.h"

#include <algorithm>
#include <cstring>

#include "xpv/base/check.h"

namespace xpv::ring {

using platform::CopyOp;
using platform::CopyPtr;
using platform::GrantStatus;

Result<std::unique_ptr<GrantCopyRingMemory>> GrantCopyRingMemory::Create(
    platform::GrantMapper& mapper, platform::GuestMemory& memory, DomId peer,
    std::span<const GrantRef> refs) {
  if (refs.empty() || refs.size() > kMaxRingPages) {
    return Err(EINVAL, "ring page count out of range");
  }
  XPV_ASSIGN_OR_RETURN(Gfn mirror, memory.AllocPages(refs.size()));
  return std::unique_ptr<GrantCopyRingMemory>(
      new GrantCopyRingMemory(mapper, memory, peer, refs, mirror));
}

GrantCopyRingMemory::GrantCopyRingMemory(platform::GrantMapper& mapper,
                                         platform::GuestMemory& memory, DomId peer,
                                         std::span<const GrantRef> refs, Gfn mirror)
    : mapper_(mapper),
      memory_(memory),
      peer_(peer),
      refs_(refs.begin(), refs.end()),
      mirror_(mirror) {}

GrantCopyRingMemory::~GrantCopyRingMemory() {
  memory_.FreePages(mirror_, refs_.size());
}

uint8_t* GrantCopyRingMemory::Mirror(size_t offset) const {
  return memory_.PageAddress(Gfn(mirror_.value + offset / kPageSize)) + offset % kPageSize;
}

RingIndices GrantCopyRingMemory::MirrorIndices() const {
  RingIndices r;
  // SAFETY: the mirror is our own RAM, which only the hypervisor writes, and only during a Copy
  // that has returned; the 16 bytes are the header's index block.
  std::memcpy(&r, Mirror(0), sizeof r);
  return r;
}

void GrantCopyRingMemory::AddOps(size_t offset, size_t len, Direction dir) {
  XPV_CHECK(offset <= page_count() * kPageSize && len <= page_count() * kPageSize - offset);
  size_t done = 0;
  while (done < len) {
    const size_t at = offset + done;
    const size_t page = at / kPageSize;
    const size_t in_page = at % kPageSize;
    const size_t n = std::min(len - done, kPageSize - in_page);
    CopyPtr ring{CopyPtr::Kind::kGrant, peer_, refs_[page], Gfn(), static_cast<uint16_t>(in_page)};
    CopyPtr local{CopyPtr::Kind::kLocal, DomId(), GrantRef(), Gfn(mirror_.value + page),
                  static_cast<uint16_t>(in_page)};
    CopyOp op;
    op.source = dir == Direction::kFromRing ? ring : local;
    op.dest = dir == Direction::kFromRing ? local : ring;
    op.len = static_cast<uint16_t>(n);
    ops_.push_back(op);
    done += n;
  }
}

Status GrantCopyRingMemory::RunOps() {
  Status s = mapper_.Copy(ops_);
  bool ok = s.has_value() && std::all_of(ops_.begin(), ops_.end(), [](const CopyOp& op) {
              return op.status == GrantStatus::kOkay;
            });
  ops_.clear();
  if (!s) return s;
  if (!ok) return Err(EFAULT, "grant copy of a ring page failed");
  return Ok();
}

Status GrantCopyRingMemory::Read(RingIndices& indices, std::span<const RingRead> reads) {
  ops_.clear();
  AddOps(0, sizeof(RingIndices), Direction::kFromRing);  // first: the ranges are ordered after it
  for (const RingRead& r : reads) AddOps(r.offset, r.into.size(), Direction::kFromRing);
  XPV_TRY(RunOps());
  indices = MirrorIndices();
  for (const RingRead& r : reads) {
    for (size_t done = 0; done < r.into.size();) {
      const size_t at = r.offset + done;
      const size_t n = std::min(r.into.size() - done, kPageSize - at % kPageSize);
      // SAFETY: the piece lies in one mirror page (our own RAM, at rest since Copy returned).
      std::memcpy(r.into.data() + done, Mirror(at), n);
      done += n;
    }
  }
  return Ok();
}

Status GrantCopyRingMemory::Publish(std::span<const RingWrite> writes, RingIndex index,
                                    uint32_t value, RingIndices& after) {
  ops_.clear();
  if (!writes.empty()) {
    for (const RingWrite& w : writes) {
      for (size_t done = 0; done < w.from.size();) {
        const size_t at = w.offset + done;
        const size_t n = std::min(w.from.size() - done, kPageSize - at % kPageSize);
        // SAFETY: the piece lies in one mirror page (our own RAM; no Copy is in flight).
        std::memcpy(Mirror(at), w.from.data() + done, n);
        done += n;
      }
      AddOps(w.offset, w.from.size(), Direction::kToRing);
    }
    // Batch one: the slots, so the peer never sees the index before them.
    XPV_TRY(RunOps());
  }
  // Batch two: the index, then a fresh snapshot of all four.
  // SAFETY: the 4 bytes of the index in the mirror's header; our own RAM, no Copy in flight.
  std::memcpy(Mirror(RingIndexOffset(index)), &value, sizeof value);
  AddOps(RingIndexOffset(index), sizeof value, Direction::kToRing);
  AddOps(0, sizeof(RingIndices), Direction::kFromRing);
  XPV_TRY(RunOps());
  after = MirrorIndices();
  return Ok();
}

}  // namespace xpv::ring
