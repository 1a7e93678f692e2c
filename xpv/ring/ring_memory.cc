#include "xpv/ring/ring_memory.h"

#include <algorithm>
#include <cstring>

#include "xpv/base/check.h"

namespace xpv::ring {
namespace {

// Stops the compiler from re-reading shared memory in place of a copy made before this point
// (the double-fetch class of bugs; ring.h's RING_COPY_REQUEST uses volatile for the same reason).
inline void CompilerBarrier() {
  asm volatile("" ::: "memory");
}

// Calls fn(page, offset_in_page, position_in_range, length) for each page-sized piece of
// [offset, offset + len), in order.
template <typename Fn>
void ForEachPiece(size_t page_count, size_t offset, size_t len, Fn fn) {
  XPV_CHECK(offset <= page_count * kPageSize && len <= page_count * kPageSize - offset);
  size_t done = 0;
  while (done < len) {
    const size_t at = offset + done;
    const size_t in_page = at % kPageSize;
    const size_t n = std::min(len - done, kPageSize - in_page);
    fn(at / kPageSize, in_page, done, n);
    done += n;
  }
}

}  // namespace

RingIndices DirectRingMemory::LoadIndices() const {
  // SAFETY: the header is the first 16 bytes of page 0, which is page-aligned and mapped while we
  // are used; each index is an aligned uint32_t the peer writes with single stores, read here
  // atomically. Acquire: the slot copies that follow see what the peer wrote before its index.
  const auto* idx = reinterpret_cast<const uint32_t*>(pages_[0]);
  RingIndices r;
  r.req_prod = __atomic_load_n(&idx[0], __ATOMIC_ACQUIRE);
  r.req_event = __atomic_load_n(&idx[1], __ATOMIC_ACQUIRE);
  r.rsp_prod = __atomic_load_n(&idx[2], __ATOMIC_ACQUIRE);
  r.rsp_event = __atomic_load_n(&idx[3], __ATOMIC_ACQUIRE);
  return r;
}

Status DirectRingMemory::Read(RingIndices& indices, std::span<const RingRead> reads) {
  XPV_CHECK(!pages_.empty());
  indices = LoadIndices();
  for (const RingRead& r : reads) {
    ForEachPiece(pages_.size(), r.offset, r.into.size(),
                 [&](size_t page, size_t in_page, size_t pos, size_t n) {
                   // SAFETY: the piece lies inside one mapped page (ForEachPiece) and the
                   // destination is the caller's private memory; the peer may write the source
                   // concurrently, so the copy may be torn, and the caller validates it as hostile.
                   std::memcpy(r.into.data() + pos, pages_[page] + in_page, n);
                 });
  }
  CompilerBarrier();
  return Ok();
}

Status DirectRingMemory::Publish(std::span<const RingWrite> writes, RingIndex index, uint32_t value,
                                 RingIndices& after) {
  XPV_CHECK(!pages_.empty());
  for (const RingWrite& w : writes) {
    ForEachPiece(pages_.size(), w.offset, w.from.size(),
                 [&](size_t page, size_t in_page, size_t pos, size_t n) {
                   // SAFETY: the piece lies inside one mapped page (ForEachPiece); these are slots
                   // the peer does not own until the index below publishes them.
                   std::memcpy(pages_[page] + in_page, w.from.data() + pos, n);
                 });
  }
  // SAFETY: an aligned uint32_t in the header of page 0, stored atomically. Release: the peer sees
  // the slots above before the index (ring.h's xen_wmb before the producer update).
  __atomic_store_n(reinterpret_cast<uint32_t*>(pages_[0] + RingIndexOffset(index)), value,
                   __ATOMIC_RELEASE);
  // ring.h's xen_mb: the peer's view of our index is ordered before our reading of its indices.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  after = LoadIndices();
  return Ok();
}

}  // namespace xpv::ring
