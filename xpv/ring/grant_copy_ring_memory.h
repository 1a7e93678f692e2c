// GrantCopyRingMemory: a peer's ring reached only by grant copy (GrantMapper::Copy), never mapped:
// xpv-hv's copy mode, where the backend never holds the frontend's memory.
//
// We keep a private mirror of the ring in our own RAM (`page_count` bounce pages allocated from
// GuestMemory): ring page i is copied to and from mirror page i at the same offsets, so no copy op
// crosses a page boundary on either side. A Read is one Copy batch (the 16 index bytes first, then
// the requested ranges); a Publish is at most two (the ranges, then the index store followed by
// the index snapshot). Ops of one batch run in order, and each pins its grant with a locked
// read-modify-write on the grant entry (Xen's gnttab_copy and xpv-hv alike), which orders an
// op's reads after an earlier op's writes.
//
// The mapper, the memory and the peer's grants must outlive this object. Bounce pages are freed
// on destruction.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/base/types.h"
#include "xpv/platform/platform.h"
#include "xpv/ring/ring_memory.h"

namespace xpv::ring {

class GrantCopyRingMemory final : public RingMemory {
 public:
  // `refs`: the peer's grants of its ring pages, in ring order (blkif's ring-ref0..N). Allocates
  // refs.size() bounce pages from `memory`.
  static Result<std::unique_ptr<GrantCopyRingMemory>> Create(platform::GrantMapper& mapper,
                                                             platform::GuestMemory& memory,
                                                             DomId peer,
                                                             std::span<const GrantRef> refs);
  ~GrantCopyRingMemory() override;
  GrantCopyRingMemory(const GrantCopyRingMemory&) = delete;
  GrantCopyRingMemory& operator=(const GrantCopyRingMemory&) = delete;

  size_t page_count() const override { return refs_.size(); }
  Status Read(RingIndices& indices, std::span<const RingRead> reads) override;
  Status Publish(std::span<const RingWrite> writes, RingIndex index, uint32_t value,
                 RingIndices& after) override;

 private:
  enum class Direction : uint8_t { kFromRing, kToRing };
  GrantCopyRingMemory(platform::GrantMapper& mapper, platform::GuestMemory& memory, DomId peer,
                      std::span<const GrantRef> refs, Gfn mirror);
  // Appends the copy ops for [offset, offset + len) between the ring and the mirror.
  void AddOps(size_t offset, size_t len, Direction dir);
  // Runs ops_ as one batch; EFAULT if any op failed (the peer revoked or never granted a page).
  Status RunOps();
  uint8_t* Mirror(size_t offset) const;
  RingIndices MirrorIndices() const;

  platform::GrantMapper& mapper_;
  platform::GuestMemory& memory_;
  DomId peer_;
  std::vector<GrantRef> refs_;
  Gfn mirror_;  // first of refs_.size() contiguous pages of our RAM
  std::vector<platform::CopyOp> ops_;
};

}  // namespace xpv::ring
