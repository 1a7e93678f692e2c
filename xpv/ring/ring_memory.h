// RingMemory: how a ring end reaches the shared ring's pages, written from the ring code's side.
//
// A ring end needs exactly two accesses, each a whole step of the ring protocol:
//   Read:    snapshot the four indices, then copy some slots out (consume a batch);
//   Publish: copy some slots in, then store one index, then snapshot the indices again
//            (push and check for a notification; set an event and recheck).
// Everything crosses the interface by value: the ring code gets copies in memory it owns and never
// holds a pointer into the shared pages past an access. Two implementations:
//   DirectRingMemory     the pages are in our address space (our own RAM, a grant mapping, gntdev);
//                        a multi-page ring's pages need not be virtually contiguous.
//   GrantCopyRingMemory  (grant_copy_ring_memory.h) the peer's pages are reached only through
//                        GrantMapper::Copy, as xpv-hv's copy mode enforces.
// A RingMemory is used by one ring end on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "xpv/base/result.h"
#include "xpv/ring/ring_layout.h"

namespace xpv::ring {

// A byte range of the ring (offset from the start of its first page, header included) and where
// its copy goes. The range may cross page boundaries; it must lie inside the ring.
struct RingRead {
  size_t offset = 0;
  std::span<std::byte> into;
};
struct RingWrite {
  size_t offset = 0;
  std::span<const std::byte> from;
};

class RingMemory {
 public:
  virtual ~RingMemory() = default;

  // The ring's size in pages.
  virtual size_t page_count() const = 0;

  // Snapshots the four indices into `indices` (each read whole), then copies each range out of the
  // ring. The copies are ordered after the snapshot (acquire), so every byte the peer wrote before
  // publishing an index it is seen. One round trip. Fails only if the memory could not be reached
  // (a grant copy failed: the peer revoked its grant).
  virtual Status Read(RingIndices& indices, std::span<const RingRead> reads) = 0;

  // Copies each range into the ring; then stores `value` into `index`, ordered after those copies
  // (release: the peer never sees the index before the slots); then, after a full barrier,
  // snapshots the four indices into `after`. At most two round trips (one when `writes` is empty).
  virtual Status Publish(std::span<const RingWrite> writes, RingIndex index, uint32_t value,
                         RingIndices& after) = 0;
};

// Pages in our address space: our own RAM (a frontend), or the peer's pages mapped (a backend in
// xpv-hv's map mode or on real Xen's gntdev). Each pointer is one page; they need not be adjacent.
// The pages must stay mapped while this object is used.
class DirectRingMemory final : public RingMemory {
 public:
  explicit DirectRingMemory(std::span<uint8_t* const> pages) : pages_(pages.begin(), pages.end()) {}

  size_t page_count() const override { return pages_.size(); }
  Status Read(RingIndices& indices, std::span<const RingRead> reads) override;
  Status Publish(std::span<const RingWrite> writes, RingIndex index, uint32_t value,
                 RingIndices& after) override;

 private:
  RingIndices LoadIndices() const;
  std::vector<uint8_t*> pages_;
};

}  // namespace xpv::ring
