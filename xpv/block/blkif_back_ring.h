// The backend's blkif ring in either layout, chosen at connect time by the frontend's `protocol`
// node: a BackRing over x86_64 or x86_32 structs behind one interface, so the data path is
// written once. Requests come out as raw slots for ParseRequest; responses go in as fields.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>

#include "xpv/abi/blkif.h"
#include "xpv/base/result.h"
#include "xpv/ring/ring_memory.h"

namespace xpv::block {

// Big enough for a request of either layout (112 bytes on x86_64).
using RequestSlot = std::array<std::byte, sizeof(abi::blkif::x86_64::Request)>;

class BlkifBackRing {
 public:
  virtual ~BlkifBackRing() = default;
  // `memory` must outlive the ring.
  static Result<std::unique_ptr<BlkifBackRing>> Create(ring::RingMemory& memory,
                                                       abi::blkif::Protocol protocol);

  virtual abi::blkif::Protocol protocol() const = 0;
  virtual uint32_t size() const = 0;
  // Requests taken and not yet answered.
  virtual uint32_t outstanding() const = 0;
  // Copies up to out.size() requests (each once). EPROTO when the frontend's index lies.
  virtual Result<size_t> Take(std::span<RequestSlot> out) = 0;
  // Stages a response. At most outstanding() of them.
  virtual void Put(uint64_t id, uint8_t operation, int16_t status) = 0;
  // Publishes staged responses; true when the frontend asked for an event.
  virtual Result<bool> Push() = 0;
  // RING_FINAL_CHECK_FOR_REQUESTS: true when requests are waiting.
  virtual Result<bool> FinalCheck() = 0;
};

}  // namespace xpv::block
