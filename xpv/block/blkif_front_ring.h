// The frontend's blkif ring in either layout (the `protocol` it writes: x86_64-abi or x86_32-abi):
// a FrontRing over x86_64 or x86_32 structs behind one interface, the mirror of
// blkif_back_ring.h. Requests go in as fields (or as raw slot bytes, for tests that play a hostile
// frontend); responses come out as fields, copied once out of the shared page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "xpv/abi/blkif.h"
#include "xpv/base/result.h"

namespace xpv::block {

// A response, whatever the layout.
struct BlkifResponse {
  uint64_t id = 0;
  uint8_t operation = 0;
  int16_t status = 0;
};

class BlkifFrontRing {
 public:
  virtual ~BlkifFrontRing() = default;
  // Initialises the shared ring in `pages` (our own RAM, each page mapped while the ring is used)
  // as SHARED_RING_INIT does. EINVAL unless the page count is a power of two <= kMaxRingPages.
  static Result<std::unique_ptr<BlkifFrontRing>> Create(std::span<uint8_t* const> pages,
                                                        abi::blkif::Protocol protocol);

  virtual abi::blkif::Protocol protocol() const = 0;
  virtual uint32_t size() const = 0;
  virtual uint32_t free_requests() const = 0;
  // Requests pushed or staged whose responses have not been taken.
  virtual uint32_t outstanding() const = 0;
  // True after the backend broke the protocol (a lying rsp_prod).
  virtual bool broken() const = 0;

  // Each Put* stages one request; a caller bug (CHECK) when free_requests() is 0.
  // READ, WRITE, FLUSH_DISKCACHE, WRITE_BARRIER: up to 11 segments (more is a caller bug unless
  // the caller means to misbehave: `segments` is copied up to 11, `nr_segments` written as given).
  virtual void PutSegments(uint8_t operation, uint64_t id, uint64_t sector, uint16_t handle,
                           uint8_t nr_segments,
                           std::span<const blkif_request_segment> segments) = 0;
  // BLKIF_OP_INDIRECT: `grefs` are the indirect pages (at most BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST
  // copied).
  virtual void PutIndirect(uint8_t indirect_op, uint64_t id, uint64_t sector, uint16_t handle,
                           uint16_t nr_segments, std::span<const uint32_t> grefs) = 0;
  // BLKIF_OP_DISCARD.
  virtual void PutDiscard(uint64_t id, uint64_t sector, uint64_t nr_sectors, uint8_t flag,
                          uint16_t handle) = 0;
  // Any bytes as a request slot (up to the layout's request size; the rest zeroed).
  virtual void PutRaw(std::span<const std::byte> bytes) = 0;

  // Publishes staged requests; true when the backend asked for an event.
  virtual Result<bool> Push() = 0;
  // Copies up to out.size() responses. EPROTO when the backend's rsp_prod lies.
  virtual Result<size_t> Take(std::span<BlkifResponse> out) = 0;
  // RING_FINAL_CHECK_FOR_RESPONSES: true when responses are waiting.
  virtual Result<bool> FinalCheck() = 0;
};

}  // namespace xpv::block
