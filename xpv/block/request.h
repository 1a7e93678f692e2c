// Parsing blkif requests into owned, validated BlockRequests, and encoding blkif responses.
//
// The ring layer copies one request slot out of shared memory; ParseRequest validates that copy
// with a run of early returns and produces a BlockRequest that owns everything the backend needs
// (no pointer into guest memory survives). Nothing here does I/O or touches grants, so the same
// checks serve blkback and, through BlockRequest, any other transport that feeds the engine.
//
// Which checks and why follow Linux's xen-blkback (drivers/block/xen-blkback/blkback.c):
// segment bounds, misaligned I/O on 4 KiB-sector disks, ranges inside the disk, read-only disks,
// indirect segment counts, and the responses it gives (BLKIF_RSP_EOPNOTSUPP for barriers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "xpv/abi/blkif.h"
#include "xpv/base/result.h"
#include "xpv/base/types.h"

namespace xpv::block {

enum class Access : uint8_t { kReadWrite, kReadOnly };
// What the backend advertised: feature-discard, and discard-secure on top of it.
enum class DiscardSupport : uint8_t { kNone, kDiscard, kDiscardSecure };

// What a request is checked against: the disk and what the backend advertised in the store.
struct RequestLimits {
  uint64_t disk_sectors = 0;  // the disk's size in 512-byte sectors (blkif.h: always 512)
  Access access = Access::kReadWrite;
  // feature-max-indirect-segments; 0 when indirect descriptors are not advertised.
  uint32_t max_indirect_segments = 0;
  DiscardSupport discard = DiscardSupport::kNone;
  // The disk's logical sector size (the store's sector-size): 512 or 4096. With 4096, every
  // request must start and span whole 4 KiB blocks (Linux: "Misaligned I/O request").
  uint32_t logical_sector_size = 512;
};

enum class BlockOp : uint8_t {
  kRead,
  kWrite,
  // A cache flush. With segments it is a write that must follow the flush (Linux's blkfront sends
  // FUA writes this way and blkback issues them as REQ_PREFLUSH writes).
  kFlush,
  kDiscard,
};

enum class DiscardKind : uint8_t { kNormal, kSecure };  // BLKIF_DISCARD_SECURE

// One piece of guest memory: `length` bytes at `offset` in the page named by `gref`.
struct Segment {
  GrantRef gref;
  uint16_t offset = 0;  // first_sect * 512
  uint16_t length = 0;  // (last_sect - first_sect + 1) * 512, at most 4096
};

// A validated request, owning its data.
struct BlockRequest {
  uint64_t id = 0;  // echoed in the response
  // The BLKIF_OP_* the response carries: the request's operation, or for BLKIF_OP_INDIRECT its
  // indirect_op (as Linux blkback answers and blkfront expects).
  uint8_t response_operation = 0;
  BlockOp op = BlockOp::kRead;
  uint64_t sector = 0;      // first sector, 512-byte units
  uint64_t nr_sectors = 0;  // 512-byte units: the segments' total, or the discard's length
  DiscardKind discard_kind = DiscardKind::kNormal;
  // In the order the guest listed them; their lengths add up to nr_sectors * 512. For an indirect
  // request, empty until ParseIndirectSegments fills it from the indirect pages.
  std::vector<Segment> segments;
  // Indirect requests only: the pages holding the segments, ceil(indirect_segments / 512) of them,
  // for the backend to map or copy before calling ParseIndirectSegments.
  std::vector<GrantRef> indirect_pages;
  uint16_t indirect_segments = 0;

  bool is_indirect() const { return !indirect_pages.empty(); }
  uint64_t byte_offset() const { return sector * abi::blkif::kSectorSize; }
  uint64_t byte_length() const { return nr_sectors * abi::blkif::kSectorSize; }
};

// Why a request was refused, with what the response needs. error.code is EOPNOTSUPP for
// operations the backend does not implement or advertise; anything else answers BLKIF_RSP_ERROR.
struct Rejection {
  uint64_t id = 0;
  uint8_t response_operation = 0;
  Error error;
};

// Bytes of one ring slot's request / response in a layout (sizeof the respective structs).
size_t RequestSize(abi::blkif::Protocol protocol);
size_t ResponseSize(abi::blkif::Protocol protocol);

// Parses one request slot. `slot` is a private copy of at least RequestSize(protocol) bytes (a
// shorter one is a caller bug). Read/write/flush/discard come back complete; an indirect request
// comes back with indirect_pages set and its segments still to parse.
Result<BlockRequest, Rejection> ParseRequest(std::span<const std::byte> slot,
                                             abi::blkif::Protocol protocol,
                                             const RequestLimits& limits);

// Fills an indirect request's segments from a private copy of its indirect pages (the pages
// concatenated, at least request.indirect_segments * 8 bytes; fewer is a caller bug) and checks
// them exactly like direct segments, then the whole range against the disk. The guest wrote
// those pages: nothing in them is trusted.
Result<void, Rejection> ParseIndirectSegments(BlockRequest& request,
                                              std::span<const std::byte> indirect_pages,
                                              const RequestLimits& limits);

// The one place errors become blkif statuses: 0 is BLKIF_RSP_OKAY, EOPNOTSUPP is
// BLKIF_RSP_EOPNOTSUPP, every other errno (positive or negative) is BLKIF_RSP_ERROR.
int16_t BlkifStatus(int error_code);
inline int16_t BlkifStatus(const Error& error) {
  return BlkifStatus(error.code);
}

// Writes a response {id, operation, status} as the bytes of a response slot in `protocol`'s
// layout (16 bytes on x86_64, 12 on x86_32, padding zeroed). `slot` must hold ResponseSize bytes.
void EncodeResponse(abi::blkif::Protocol protocol, uint64_t id, uint8_t operation, int16_t status,
                    std::span<std::byte> slot);

}  // namespace xpv::block
